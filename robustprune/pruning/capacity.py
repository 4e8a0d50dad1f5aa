"""Capacity control: the dense network with about as many weights as a pruned one.

A pruned policy differs from the dense one in two ways: which weights it keeps, and how many. A dense policy
with narrower hidden layers and about (1 − s) · n kernel weights separates the two, so a study can tell the
effect of pruning from the effect of capacity. Counts are of kernel weights (the prunable ones); biases are
not counted, as in the sparsity definition.
"""

from __future__ import annotations

from typing import Sequence


def kernel_shapes(obs_size: int, action_size: int, hidden_sizes: Sequence[int]) -> list[tuple[int, int]]:
    """Kernel shapes [n_in, n_out] of an MLP obs → hidden_sizes → action, in layer order."""
    sizes = [obs_size, *hidden_sizes, action_size]
    return list(zip(sizes[:-1], sizes[1:]))


def num_kernel_weights(obs_size: int, action_size: int, hidden_sizes: Sequence[int]) -> int:
    """Total kernel weights of the MLP (what sparsity counts)."""
    return sum(a * b for a, b in kernel_shapes(obs_size, action_size, hidden_sizes))


def capacity_matched_hidden_sizes(
    obs_size: int, action_size: int, hidden_sizes: Sequence[int], sparsity: float
) -> tuple[int, ...]:
    """Hidden sizes of the dense MLP whose kernel-weight count is closest to (1 − s) · n.

    The widths keep the original proportions: width_i = max(1, round(w · h_i / h_0)) for a first width w in
    1..h_0, and the w whose count is closest to the target wins (the narrower one on a tie). At s = 0 this
    returns `hidden_sizes`. Plain Python, run once per cell before compiling.

    Args:
      obs_size, action_size: input and output sizes of the policy mean network.
      hidden_sizes: the pruned network's hidden sizes, e.g. (64, 64).
      sparsity: the pruned network's sparsity s in [0, 1).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity={sparsity!r} must be in [0, 1)")
    target = (1.0 - sparsity) * num_kernel_weights(obs_size, action_size, hidden_sizes)
    first = hidden_sizes[0]
    best, best_gap = tuple(hidden_sizes), float("inf")
    for width in range(1, first + 1):
        sizes = tuple(max(1, round(width * h / first)) for h in hidden_sizes)
        gap = abs(num_kernel_weights(obs_size, action_size, sizes) - target)
        if gap < best_gap:
            best, best_gap = sizes, gap
    return best
