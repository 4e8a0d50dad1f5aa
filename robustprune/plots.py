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
    table = certificates.drop_duplicates(["cell_id", "bound"]).merge(
        cells[["cell_id", "sparsity_target"]], on="cell_id"
    )
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
