"""Keep pruned weights at exactly zero under an optax optimizer, including Adam's moment estimates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from robustprune.networks import layer_names


def _set_kernels(net_params: dict, module: str, kernels: tuple) -> dict:
    """Replace the kernels of `net_params["params"][module]` (layers dense_0, ..., out) by `kernels`."""
    layers = dict(net_params["params"][module])
    for name, kernel in zip(layer_names(len(kernels) - 1), kernels):
        layers[name] = {**layers[name], "kernel": kernel}
    return {"params": {**net_params["params"], module: layers}}


def critic_kernels(critic_params: dict, num_hidden: int) -> list:
    """The critic's kernels in layer order, each [in, out]."""
    layers = critic_params["params"]["value"]
    return [layers[name]["kernel"] for name in layer_names(num_hidden)]


def apply_critic_masks(critic_params: dict, masks: tuple) -> dict:
    """The critic parameters with every kernel multiplied by its mask."""
    kernels = critic_kernels(critic_params, len(masks) - 1)
    return _set_kernels(critic_params, "value", tuple(k * m for k, m in zip(kernels, masks)))


def full_mask_tree(params: dict, masks: tuple, critic_masks: tuple = ()) -> dict:
    """A tree shaped like `params` ({"policy", "critic"}): the masks at mean kernels, and at critic kernels
    when `critic_masks` is not empty; ones elsewhere (biases, log-std)."""
    tree = jax.tree_util.tree_map(jnp.ones_like, params)
    tree["policy"] = _set_kernels(tree["policy"], "mean", masks)
    if critic_masks:
        tree["critic"] = _set_kernels(tree["critic"], "value", critic_masks)
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
