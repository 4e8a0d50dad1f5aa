"""Figures of a report: heatmaps, robustness curves, frontier, regret bars, certified against empirical TV.

Every figure is written as PNG and PDF in one style with the Okabe–Ito colorblind-safe palette (lines and
bars) and the perceptually uniform `cividis` map (heatmaps). PDFs carry no creation date, so identical inputs
give identical files. Each figure has one row of panels per panel group (settings other than sparsity).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from robustprune.analysis.regret import TERMS  # noqa: E402
from robustprune.analysis.tables import SPARSITY_COLUMN  # noqa: E402

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
STYLE = {"font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
         "savefig.dpi": 130, "figure.dpi": 100, "pdf.fonttype": 42, "svg.hashsalt": "robustprune"}
HEATMAP = "cividis"


def save(fig, stem: Path) -> list[Path]:
    """Write `stem`.png and `stem`.pdf (no timestamps) and close the figure. Returns both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    plt.close(fig)
    return paths


def _label(keys: tuple, names: list[str]) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(names, keys))


def _panels(frame: pd.DataFrame, panel_by: list[str]):
    """Groups of `frame` by `panel_by` in sorted order, as (title, group) pairs."""
    return [(_label(k if isinstance(k, tuple) else (k,), panel_by), g)
            for k, g in frame.groupby(panel_by, sort=True, dropna=False)]


def _grid(rows: int, cols: int, width: float = 3.6, height: float = 2.9):
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    return fig, axes


def heatmaps(agents: pd.DataFrame, panel_by: list[str], stem: Path) -> list[Path]:
    """Sparsity × ε heatmaps per panel: worst-case return, empirical TV (max over attacks), certified TV."""
    values = (("worst_return", "worst-case return (seed mean)"), ("tv_empirical", "empirical TV, max over attacks"),
              ("tv_bound", "certified TV bound (tightest)"))
    panels = _panels(agents, panel_by)
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(panels), len(values), width=3.8)
        for row, (title, group) in enumerate(panels):
            for col, (value, name) in enumerate(values):
                ax = axes[row, col]
                grid = group.pivot_table(index=SPARSITY_COLUMN, columns="eps", values=value, aggfunc="mean")
                image = ax.imshow(grid.to_numpy(), cmap=HEATMAP, aspect="auto", origin="lower",
                                  vmin=0.0 if value != "worst_return" else None, vmax=1.0 if value != "worst_return" else None)
                ax.set_xticks(range(grid.shape[1]), [f"{e:g}" for e in grid.columns])
                ax.set_yticks(range(grid.shape[0]), [f"{s:g}" for s in grid.index])
                ax.set_xlabel("ε (normalized observation units)")
                ax.set_ylabel("target sparsity")
                ax.set_title(f"{name}\n{title}", fontsize=8)
                ax.grid(False)
                for (i, j), v in np.ndenumerate(grid.to_numpy()):
                    ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=6,
                            color="white" if np.isfinite(v) and v < np.nanmean(grid.to_numpy()) else "black")
                fig.colorbar(image, ax=ax, shrink=0.8)
        fig.tight_layout()
        return save(fig, stem)


def robustness_curves(stats: pd.DataFrame, panel_by: list[str], stem: Path) -> list[Path]:
    """Worst-case return against ε, one line per sparsity, with the 95% bootstrap interval of the mean."""
    worst = stats[stats.attack == "worst"]
    panels = _panels(worst, panel_by)
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(panels), 1, width=5.0, height=3.4)
        for row, (title, group) in enumerate(panels):
            ax = axes[row, 0]
            for i, (sparsity, line) in enumerate(group.groupby(SPARSITY_COLUMN, sort=True)):
                line = line.sort_values("eps")
                color = OKABE_ITO[i % len(OKABE_ITO)]
                ax.plot(line.eps, line.return_mean, marker=MARKERS[i % len(MARKERS)], color=color,
                        label=f"sparsity {sparsity:g}")
                ax.fill_between(line.eps, line.return_mean_low, line.return_mean_high, color=color, alpha=0.15)
            ax.set_xlabel("ε (normalized observation units)")
            ax.set_ylabel("worst-case return over attacks")
            ax.set_title(title, fontsize=8)
            ax.legend(fontsize=7)
        fig.tight_layout()
        return save(fig, stem)


def frontier(points: pd.DataFrame, panel_by: list[str], stem: Path) -> list[Path]:
    """Clean against worst-case return per ε; the Pareto front is joined by a line, labels give sparsity."""
    panels = _panels(points, panel_by)
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(panels), 1, width=5.0, height=3.6)
        for row, (title, group) in enumerate(panels):
            ax = axes[row, 0]
            for i, (eps, pts) in enumerate(group.groupby("eps", sort=True)):
                color = OKABE_ITO[i % len(OKABE_ITO)]
                ax.scatter(pts.clean_return, pts.worst_return, color=color, marker=MARKERS[i % len(MARKERS)],
                           label=f"ε={eps:g}", s=22)
                front = pts[pts.on_front].sort_values("clean_return")
                ax.plot(front.clean_return, front.worst_return, color=color, linewidth=1)
                for _, p in pts.iterrows():
                    ax.annotate(f"{p[SPARSITY_COLUMN]:g}", (p.clean_return, p.worst_return), fontsize=6,
                                xytext=(2, 2), textcoords="offset points")
            ax.set_xlabel("clean return (seed mean)")
            ax.set_ylabel("worst-case return (seed mean)")
            ax.set_title(title, fontsize=8)
            ax.legend(fontsize=7)
        fig.tight_layout()
        return save(fig, stem)


def regret_bars(summary: pd.DataFrame, panel_by: list[str], stem: Path) -> list[Path]:
    """Stacked bars of the seed-mean regret terms against sparsity, one panel per group and ε > 0."""
    summary = summary[summary.eps > 0]
    panels = _panels(summary, panel_by + ["eps"])
    cols = max(1, summary.eps.nunique())
    rows = max(1, int(np.ceil(len(panels) / cols)))
    with plt.rc_context(STYLE):
        fig, axes = _grid(rows, cols, width=3.4)
        for k, (title, group) in enumerate(panels):
            ax = axes[k // cols, k % cols]
            group = group.sort_values(SPARSITY_COLUMN)
            x = np.arange(len(group))
            bottom_pos, bottom_neg = np.zeros(len(group)), np.zeros(len(group))
            for i, term in enumerate(TERMS):
                value = group[term].to_numpy()
                bottom = np.where(value >= 0, bottom_pos, bottom_neg)
                ax.bar(x, value, bottom=bottom, color=OKABE_ITO[i], label=term.replace("_", " "))
                bottom_pos += np.maximum(value, 0)
                bottom_neg += np.minimum(value, 0)
            ax.set_xticks(x, [f"{s:g}" for s in group[SPARSITY_COLUMN]])
            ax.set_xlabel("target sparsity")
            ax.set_ylabel("regret (return units)")
            ax.set_title(title, fontsize=7)
            ax.legend(fontsize=6)
        for k in range(len(panels), rows * cols):
            axes[k // cols, k % cols].set_visible(False)
        fig.tight_layout()
        return save(fig, stem)


def tv_scatter(agents: pd.DataFrame, stem: Path) -> list[Path]:
    """Certified TV bound (tightest, of the stochastic policy) against the largest TV the attacks reached."""
    table = agents[agents.eps > 0]
    with plt.rc_context(STYLE):
        fig, axes = _grid(1, 1, width=4.6, height=4.0)
        ax = axes[0, 0]
        for i, (sparsity, pts) in enumerate(table.groupby(SPARSITY_COLUMN, sort=True)):
            ax.scatter(pts.tv_empirical, pts.tv_bound, color=OKABE_ITO[i % len(OKABE_ITO)], s=16,
                       marker=MARKERS[i % len(MARKERS)], label=f"sparsity {sparsity:g}")
        ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--", label="bound = measured")
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("empirical TV (max over attacks and visited states)")
        ax.set_ylabel("certified TV bound")
        ax.legend(fontsize=7)
        fig.tight_layout()
        return save(fig, stem)
