"""Pruning: masks, schedules and the optimizer wrapper that keeps pruned weights at exactly zero."""

from robustprune.pruning.masks import achieved_sparsity, global_magnitude_masks, layer_sparsity
from robustprune.pruning.optim import full_mask_tree, mask_gradients, zero_pruned_moments
from robustprune.pruning.schedules import SCHEDULES, ScheduleParams, scheduled_sparsity

__all__ = [
    "SCHEDULES",
    "ScheduleParams",
    "achieved_sparsity",
    "full_mask_tree",
    "global_magnitude_masks",
    "layer_sparsity",
    "mask_gradients",
    "scheduled_sparsity",
    "zero_pruned_moments",
]
