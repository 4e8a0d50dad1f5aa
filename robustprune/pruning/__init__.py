"""Pruning: masks, allocations, schedules, capacity-matched widths, and the optimizer wrapper that keeps
pruned weights at exactly zero."""

from robustprune.pruning.allocation import (
    ALLOCATIONS,
    erk_weights,
    layer_caps,
    layer_densities,
    max_feasible_sparsity,
    prune_counts,
)
from robustprune.pruning.capacity import capacity_matched_hidden_sizes, kernel_shapes, num_kernel_weights
from robustprune.pruning.masks import (
    METHODS,
    MaskParams,
    achieved_sparsity,
    compute_masks,
    global_magnitude_masks,
    layer_sparsity,
    mask_scores,
)
from robustprune.pruning.optim import (
    apply_critic_masks,
    critic_kernels,
    full_mask_tree,
    mask_gradients,
    zero_pruned_moments,
)
from robustprune.pruning.schedules import (
    SCHEDULES,
    ScheduleParams,
    make_schedule,
    schedule_settings,
    scheduled_sparsity,
)

__all__ = [
    "ALLOCATIONS",
    "METHODS",
    "SCHEDULES",
    "MaskParams",
    "ScheduleParams",
    "achieved_sparsity",
    "apply_critic_masks",
    "capacity_matched_hidden_sizes",
    "compute_masks",
    "critic_kernels",
    "erk_weights",
    "full_mask_tree",
    "global_magnitude_masks",
    "kernel_shapes",
    "layer_caps",
    "layer_densities",
    "layer_sparsity",
    "make_schedule",
    "mask_gradients",
    "mask_scores",
    "max_feasible_sparsity",
    "num_kernel_weights",
    "prune_counts",
    "schedule_settings",
    "scheduled_sparsity",
    "zero_pruned_moments",
]
