"""Threat models and transfer sources for a grid of victims.

Cells are trained separately, so each has its own observation normalizer. Under the protocol's threat
model ("cell") each cell's ball lives in its own normalized units. Under "shared_raw", every cell of a seed
faces the same raw-space box: ε times the per-dimension std of the dense reference cell of that seed,
which each cell sees as a per-dimension ball scale std_ref_i / std_cell_i.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from robustprune.attacks.ball import shared_raw_scale
from robustprune.attacks.victim import Victim


def reference_cells(sparsities, seeds) -> np.ndarray:
    """For each cell (given by its sparsity and seed), the index of the first dense (sparsity 0) cell of its seed.

    Returns an int array [cells]. Raises ValueError when a seed has no dense cell.
    """
    dense = {}
    for i, (s, seed) in enumerate(zip(sparsities, seeds)):
        if s == 0.0:
            dense.setdefault(seed, i)  # the first one: full-width cells precede capacity-control cells
    missing = sorted(set(seeds) - set(dense))
    if missing:
        raise ValueError(f"seeds {missing} have no dense (sparsity 0.0) cell to serve as reference")
    return np.asarray([dense[seed] for seed in seeds])


def _take(tree, index):
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def with_threat_model(victims: Victim, threat_model: str, reference: np.ndarray) -> Victim:
    """Set each victim's ball scale for the threat model ("cell": None; "shared_raw": std_ref / std_cell)."""
    if threat_model == "cell":
        return victims.replace(ball_scale=None)
    std = victims.normalizer.std  # [cells, obs]
    return victims.replace(ball_scale=shared_raw_scale(std[jnp.asarray(reference)], std))


def with_surrogates(victims: Victim, reference: np.ndarray) -> Victim:
    """Attach to each victim its dense reference cell as the surrogate that transfer attacks craft on."""
    plain = victims.replace(surrogate=None, adversary=None)
    return victims.replace(surrogate=_take(plain, jnp.asarray(reference)))


def describe(threat_model: str, norm: str) -> str:
    """The run.json sentence stating the threat model."""
    if threat_model == "cell":
        return f"{norm} ball of radius eps in each cell's own normalized observation units"
    return (f"{norm} ball shared in raw observation space: radius eps times the per-dimension std of the dense "
            "reference cell of the same seed, converted into each cell's normalized units")
