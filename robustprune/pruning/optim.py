"""Keep pruned weights at exactly zero under an optax optimizer, including Adam's moment estimates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from robustprune.networks import layer_names


def full_mask_tree(params: dict, masks: tuple) -> dict:
    """A tree shaped like `params` ({"policy", "critic"}): the masks at mean kernels, ones elsewhere."""
    tree = jax.tree_util.tree_map(jnp.ones_like, params)
    layers = dict(tree["policy"]["params"]["mean"])
    for name, mask in zip(layer_names(len(masks) - 1), masks):
        layers[name] = {**layers[name], "kernel": mask}
    tree["policy"] = {"params": {**tree["policy"]["params"], "mean": layers}}
    return tree


def mask_gradients(grads: dict, mask_tree: dict) -> dict:
    """Zero the gradient of every pruned weight (same structure as `mask_tree`)."""
    return jax.tree_util.tree_map(lambda g, m: g * m, grads, mask_tree)


def zero_pruned_moments(
    optimizer: optax.GradientTransformation, opt_state: optax.OptState, mask_tree: dict
) -> optax.OptState:
    """Zero every parameter-shaped optimizer statistic (Adam's mu and nu) at pruned positions."""
    return optax.tree_utils.tree_map_params(
        optimizer, lambda leaf, m: leaf * m, opt_state, mask_tree, transform_non_params=lambda x: x
    )
