"""Figures of a run folder, written as PNG under `figures/`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


plt.style.use("tableau-colorblind10")


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def plot_return_vs_sparsity(cells: pd.DataFrame, evaluations: pd.DataFrame, path: Path) -> None:
    """Mean deterministic return against target sparsity: one line per (attack, ε), seeds averaged."""
    table = evaluations.merge(cells[["cell_id", "sparsity_target"]], on="cell_id")
    fig, ax = plt.subplots(figsize=(6, 4))
    for (attack, eps), group in table.groupby(["attack", "eps"]):
        if attack != "none" and eps == 0:
            continue  # identical to the clean line
        curve = group.groupby("sparsity_target").return_mean.agg(["mean", "std"])
        label = "clean" if attack == "none" else f"{attack}, ε={eps:g}"
        ax.errorbar(curve.index, curve["mean"], yerr=curve["std"], marker="o", capsize=3, label=label)
    ax.set_xlabel("sparsity (fraction of policy kernel weights pruned)")
    ax.set_ylabel("return (mean over episodes and seeds)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_bound_vs_sparsity(cells: pd.DataFrame, certificates: pd.DataFrame, path: Path) -> None:
    """Certified Lipschitz bound L_δ against sparsity, one line per bound (log scale)."""
    table = certificates.dropna(subset=["lipschitz"]).drop_duplicates(["cell_id", "bound"]).merge(
        cells[["cell_id", "sparsity_target"]], on="cell_id"
    )  # local (IBP) certificates have no Lipschitz constant
    fig, ax = plt.subplots(figsize=(6, 4))
    for bound, group in table.groupby("bound"):
        curve = group.groupby("sparsity_target").lipschitz.mean()
        monotone = bool(group.monotone.iloc[0])
        ax.plot(curve.index, curve.values, marker="o", linestyle="-" if monotone else "--",
                label=f"{bound}{'' if monotone else ' (not monotone)'}")
    ax.set_yscale("log")
    ax.set_xlabel("sparsity (fraction of policy kernel weights pruned)")
    ax.set_ylabel("certified Lipschitz bound L_δ (seed mean)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")
    _save(fig, path)


def write_figures(out: Path, cells: pd.DataFrame, evaluations: pd.DataFrame, certificates: pd.DataFrame) -> None:
    figures = out / "figures"
    plot_return_vs_sparsity(cells, evaluations, figures / "return_vs_sparsity.png")
    plot_bound_vs_sparsity(cells, certificates, figures / "bound_vs_sparsity.png")


def _variant_label(row) -> str:
    """A pruned cell's (schedule, method, allocation) as a legend label."""
    return f"{row.schedule}, {row.method}, {row.allocation}"


def _with_dense_in_every_variant(cells: pd.DataFrame) -> pd.DataFrame:
    """Pruned cells labeled by variant, plus the dense cells (schedule "none") copied into every variant, so
    each variant's curve starts at sparsity 0. Capacity-control cells are left out."""
    cells = cells[cells.capacity_of == 0] if "capacity_of" in cells else cells
    pruned = cells[cells.schedule != "none"].assign(variant=lambda d: d.apply(_variant_label, axis=1))
    dense = cells[cells.schedule == "none"]
    copies = [dense.assign(variant=v) for v in pruned.variant.unique()] or [dense.assign(variant="dense")]
    return pd.concat([pruned, *copies], ignore_index=True)


def plot_sparsity_trajectory(cells: pd.DataFrame, trajectory: pd.DataFrame, path: Path) -> None:
    """Achieved sparsity (solid) and scheduled target (dashed) per update: one panel per schedule, one line
    per target sparsity, averaged over seeds, methods and allocations."""
    table = trajectory.merge(cells[["cell_id", "schedule", "sparsity_target"]].rename(
        columns={"sparsity_target": "final_target"}), on="cell_id")
    table = table[table.schedule != "none"]
    schedules = sorted(table.schedule.unique()) or ["none"]
    fig, axes = plt.subplots(1, len(schedules), figsize=(3.2 * len(schedules), 3), sharey=True, squeeze=False)
    for ax, schedule in zip(axes[0], schedules):
        for final, group in table[table.schedule == schedule].groupby("final_target"):
            curve = group.groupby("update")[["sparsity_achieved", "sparsity_target"]].mean()
            line, = ax.plot(curve.index, curve.sparsity_achieved, label=f"s={final:g}")
            ax.plot(curve.index, curve.sparsity_target, linestyle="--", color=line.get_color(), alpha=0.6)
        ax.set_title(schedule, fontsize=9)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("sparsity (solid: achieved, dashed: target)")
    axes[0][-1].legend(fontsize=7)
    _save(fig, path)


def plot_return_by_schedule(cells: pd.DataFrame, evaluations: pd.DataFrame, path: Path) -> None:
    """Clean return and worst-case return (minimum over attacks at the largest ε) against target sparsity,
    one line per (schedule, method, allocation), seed mean with std bars. Capacity-control cells, if any,
    form their own line at the sparsity whose weight count they match."""
    clean = evaluations[evaluations.attack == "none"].groupby("cell_id").return_mean.mean().rename("clean")
    in_worst = (evaluations.attack != "none") & ~evaluations.attack.str.startswith("transfer_")
    attacked = evaluations[in_worst & (evaluations.eps == evaluations.eps.max())]  # "worst" rows are the minimum
    worst = attacked.groupby(["cell_id", "attack"]).return_mean.mean().groupby("cell_id").min().rename("worst")
    scores = pd.concat([clean, worst], axis=1).reset_index()
    table = _with_dense_in_every_variant(cells).merge(scores, on="cell_id")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    titles = {"clean": "clean", "worst": f"worst case over attacks, ε={evaluations.eps.max():g}"}
    for ax, column in zip(axes, ("clean", "worst")):
        for variant, group in table.groupby("variant"):
            curve = group.groupby("sparsity_target")[column].agg(["mean", "std"])
            ax.errorbar(curve.index, curve["mean"], yerr=curve["std"], marker="o", capsize=3, label=variant)
        if "capacity_of" in cells and (cells.capacity_of > 0).any():
            control = cells[cells.capacity_of > 0].merge(scores, on="cell_id")
            curve = control.groupby("capacity_of")[column].agg(["mean", "std"])
            ax.errorbar(curve.index, curve["mean"], yerr=curve["std"], marker="s", linestyle=":", capsize=3,
                        color="black", label="dense, matched weight count")
        ax.set_title(titles[column], fontsize=9)
        ax.set_xlabel("sparsity (fraction of policy kernel weights pruned)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("return (mean over episodes and seeds)")
    axes[1].legend(fontsize=7)
    _save(fig, path)


def write_pruning_figures(out: Path, cells: pd.DataFrame, evaluations: pd.DataFrame,
                          trajectory: pd.DataFrame) -> None:
    """Figures of the pruning settings: sparsity trajectories, and returns per schedule."""
    figures = out / "figures"
    plot_sparsity_trajectory(cells, trajectory, figures / "sparsity_trajectory.png")
    plot_return_by_schedule(cells, evaluations, figures / "return_by_schedule.png")


def _bound_label(bound: str, monotone: bool) -> str:
    return f"{bound}{'' if monotone else ' (not monotone)'}"


def _bound_color(bound: str) -> str:
    """A fixed color per bound name, the same in every panel and figure."""
    from robustprune.certify import BOUNDS
    from robustprune.certify_run import LOCAL_BOUNDS

    names = sorted(BOUNDS) + list(LOCAL_BOUNDS)
    index = names.index(bound) if bound in names else len(names)
    return plt.get_cmap("tab10")(index % 10)


def _plot_bound_curves(ax, table, x: str, y: str) -> None:
    """One line per bound of `table`: mean of column y against column x (dashed for non-monotone bounds)."""
    for bound, group in table.groupby("bound"):
        curve = group.groupby(x)[y].mean()
        monotone = bool(group.monotone.iloc[0])
        ax.plot(curve.index, curve.values, marker="o", linestyle="-" if monotone else "--",
                color=_bound_color(bound), label=_bound_label(bound, monotone))
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")


def plot_certificate_vs_sparsity(cells: pd.DataFrame, certificates: pd.DataFrame, path_table, path: Path) -> None:
    """Every bound against sparsity, for trained cells (left) and the post-training path (right).

    Top row: global Lipschitz bounds L_δ. Bottom row: TV bounds at the largest ε, IBP included. Trained
    cells are averaged over seeds and settings at each target sparsity, path copies over the dense cells.
    """
    eps_max = certificates.eps.max()
    trained = certificates.merge(cells[["cell_id", "sparsity_target"]], on="cell_id")
    trained = trained[trained.eps == eps_max]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    _plot_bound_curves(axes[0, 0], trained.dropna(subset=["lipschitz"]), "sparsity_target", "lipschitz")
    _plot_bound_curves(axes[1, 0], trained, "sparsity_target", "tv_bound")
    axes[0, 0].set_title("trained cells (pruned during training)", fontsize=9)
    if path_table is not None and len(path_table):
        _plot_bound_curves(axes[0, 1], path_table.dropna(subset=["lipschitz"]), "sparsity", "lipschitz")
        _plot_bound_curves(axes[1, 1], path_table, "sparsity", "tv_bound")
    axes[0, 1].set_title("dense cells pruned after training (nested masks)", fontsize=9)
    axes[0, 0].set_ylabel("Lipschitz bound L_δ")
    axes[1, 0].set_ylabel(f"TV bound at ε={eps_max:g}")
    for ax in axes[1]:
        ax.set_xlabel("sparsity (fraction of policy kernel weights pruned)")
    axes[1, 0].legend(fontsize=6)
    _save(fig, path)


def plot_bound_vs_measured_tv(certificates: pd.DataFrame, evaluations, path: Path) -> None:
    """Certified TV bound against measured TV, per cell and ε > 0, one marker per bound; the diagonal y = x.

    The measured TV is the largest `tv_empirical` of any attack. Global bounds must lie above the diagonal.
    Local (IBP) bounds are drawn against PGD's TV at their own visited states (`tv_pgd`), their lower bound.
    """
    table = certificates[certificates.eps > 0]
    if evaluations is not None and len(evaluations):
        measured = evaluations[evaluations.attack != "none"].groupby(["cell_id", "eps"]).tv_empirical.max()
        table = table.merge(measured.rename("tv_measured").reset_index(), on=["cell_id", "eps"], how="left")
    else:
        table = table.assign(tv_measured=float("nan"))
    table = table.assign(x=table.tv_measured.where(table.scope == "global", table.tv_pgd))
    fig, ax = plt.subplots(figsize=(6, 5))
    for marker, (bound, group) in zip("osD^v<>ph*", table.groupby("bound")):
        ax.scatter(group.x, group.tv_bound, s=14, marker=marker, alpha=0.7, color=_bound_color(bound),
                   label=_bound_label(bound, bool(group.monotone.iloc[0])))
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, label="y = x")
    ax.set_xlabel("measured TV (attacks' max; PGD at visited states for IBP)")
    ax.set_ylabel("certified TV bound")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    _save(fig, path)


def write_certify_figures(out: Path, cells: pd.DataFrame, evaluations, certificates: pd.DataFrame,
                          path_table) -> None:
    """Certificate figures: bounds against sparsity, and bounds against measured TV."""
    figures = out / "figures"
    plot_certificate_vs_sparsity(cells, certificates, path_table, figures / "certificate_vs_sparsity.png")
    plot_bound_vs_measured_tv(certificates, evaluations, figures / "bound_vs_measured_tv.png")
