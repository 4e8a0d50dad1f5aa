"""Flax networks: a Gaussian policy (mean MLP, state-independent log-std) and a critic.

Parameter layout of the policy: `{"params": {"mean": {"dense_0": {"kernel", "bias"}, ..., "out": {...}},
"log_std": [act]}}`. Kernels have shape [in, out] (y = x @ W + b). The prunable weights are the kernels of
the mean network. Their binary masks are a tuple of arrays in layer order, the same shapes as the kernels.
"""

from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": nn.relu,
    "elu": nn.elu,
    "silu": nn.silu,
}

Masks = tuple  # tuple[jax.Array, ...] of {0, 1} arrays, one per kernel of the mean network


def orthogonal_init(scale: float = 1.0):
    """Orthogonal kernel initializer (Saxe et al., 2014) computed by Gram–Schmidt with plain matmuls.

    It draws the same kind of matrix as `flax.linen.initializers.orthogonal`: columns (or rows, for wide
    kernels) orthonormal, times `scale`. NOTE: it avoids the LAPACK QR behind Flax's initializer because,
    with jaxlib 0.10.2 on CPU, a batched QR under `jax.vmap` hung forever on its thread pool in most runs
    of a float64 grid here (5 of 6), while this version never did (0 of 6).
    """

    def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
        rows, cols = shape
        tall = (max(rows, cols), min(rows, cols))
        # Work in float64 when it is enabled, so a cell initialized inside `vmap` gets the same float32
        # kernel as the same cell initialized alone (batched matmuls round differently).
        work_dtype = jax.dtypes.canonicalize_dtype(jnp.float64)
        a = jax.random.normal(key, tall, work_dtype)

        def orthogonalize(k, q):
            v = a[:, k]
            for _ in range(2):  # a second pass restores orthogonality lost to rounding
                v = v - q @ (q.T @ v)
            return q.at[:, k].set(v / jnp.linalg.norm(v))

        q = jax.lax.fori_loop(0, tall[1], orthogonalize, jnp.zeros(tall, work_dtype))
        q = q if rows >= cols else q.T
        return (scale * q).astype(dtype)

    return init


def layer_names(num_hidden: int) -> list[str]:
    """Names of the mean network's dense layers, in order: dense_0, ..., dense_{n-1}, out."""
    return [f"dense_{i}" for i in range(num_hidden)] + ["out"]


class MLP(nn.Module):
    """Dense layers with an activation after every hidden layer and a linear output layer."""

    hidden_sizes: Sequence[int]
    out_size: int
    activation: str = "tanh"
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATION_FNS[self.activation]
        for i, size in enumerate(self.hidden_sizes):
            x = act(nn.Dense(size, kernel_init=orthogonal_init(jnp.sqrt(2.0)), name=f"dense_{i}")(x))
        return nn.Dense(self.out_size, kernel_init=orthogonal_init(self.out_scale), name="out")(x)


class GaussianPolicy(nn.Module):
    """π(a|s) = N(μ(s), diag(exp(log_std))²). Returns (mean [..., act], log_std [act])."""

    action_size: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = -0.5

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean = MLP(self.hidden_sizes, self.action_size, self.activation, out_scale=1.0, name="mean")(obs)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std), (self.action_size,))
        return mean, log_std


class Critic(nn.Module):
    """State-value network V(s), returning shape [...]."""

    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        return MLP(self.hidden_sizes, 1, self.activation, out_scale=1.0, name="value")(obs)[..., 0]


def mean_kernels(policy_params: dict, num_hidden: int) -> list[jax.Array]:
    """The mean network's kernels in layer order, each [in, out]."""
    layers = policy_params["params"]["mean"]
    return [layers[name]["kernel"] for name in layer_names(num_hidden)]


def mean_biases(policy_params: dict, num_hidden: int) -> list[jax.Array]:
    layers = policy_params["params"]["mean"]
    return [layers[name]["bias"] for name in layer_names(num_hidden)]


def apply_masks(policy_params: dict, masks: Masks) -> dict:
    """Return the policy parameters with every mean-network kernel multiplied by its mask."""
    names = layer_names(len(masks) - 1)
    layers = dict(policy_params["params"]["mean"])
    for name, mask in zip(names, masks):
        layers[name] = {**layers[name], "kernel": layers[name]["kernel"] * mask}
    return {"params": {**policy_params["params"], "mean": layers}}


def dense_masks(policy_params: dict, num_hidden: int) -> Masks:
    """All-ones masks, one per kernel of the mean network."""
    return tuple(jnp.ones_like(k) for k in mean_kernels(policy_params, num_hidden))
