"""The frozen policy under attack, with the networks' apply functions as static fields."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from robustprune.certify import gaussian_tv
from robustprune.envs import Normalizer


@struct.dataclass
class Victim:
    """A trained cell, frozen for evaluation.

    policy_params: masked policy parameters. critic_params: critic parameters. normalizer: frozen statistics.
    policy_apply(params, obs) returns (mean [..., act], log_std [act]). critic_apply(params, obs) returns [...].
    ball_scale: per-dimension ball scale [obs] (None: the protocol's ball in this cell's normalized units).
    surrogate: another Victim that transfer attacks craft their perturbations on (None for other attacks).
    adversary: learned attack parameters for this cell and ε (a Q-function, an adversary or a director).
    head: the static action distribution (`robustprune.policies.PolicyHead`); None means a Gaussian.
    """

    policy_params: dict
    critic_params: dict
    normalizer: Normalizer
    policy_apply: Callable = struct.field(pytree_node=False)
    critic_apply: Callable = struct.field(pytree_node=False)
    ball_scale: Any = None
    surrogate: Any = None
    adversary: Any = None
    head: Any = struct.field(pytree_node=False, default=None)  # robustprune.policies.PolicyHead; None: Gaussian

    @property
    def categorical(self) -> bool:
        return self.head is not None and self.head.categorical

    def dist_params(self, obs: jax.Array) -> jax.Array:
        """The network's distribution output for normalized observations [..., obs]: the Gaussian mean
        [..., act], or the categorical logits [..., act·n_bins]. `kl_to` and `tv_to` take it as reference."""
        return self.policy_apply(self.policy_params, obs)[0]

    def _dist(self, first: jax.Array):
        return first if self.categorical else (first, self.log_std)

    def mean(self, obs: jax.Array) -> jax.Array:
        """Mean action [..., act], differentiable: μ(obs) for a Gaussian, the expected bin value for a
        categorical policy. Equal to `action` for a Gaussian."""
        first = self.dist_params(obs)
        return self.head.mean(first) if self.categorical else first

    def action(self, obs: jax.Array) -> jax.Array:
        """Deterministic action [..., act]: the Gaussian mean, or each dimension's argmax bin value."""
        first = self.dist_params(obs)
        return self.head.mode(first) if self.categorical else first

    def sample(self, obs: jax.Array, key: jax.Array) -> jax.Array:
        """A stochastic action [..., act] (Gaussian draws are not clipped)."""
        first = self.dist_params(obs)
        if self.categorical:
            return self.head.sample(first, key)
        return first + jnp.exp(self.log_std) * jax.random.normal(key, first.shape, first.dtype)

    @property
    def log_std(self) -> jax.Array:
        return self.policy_params["params"]["log_std"]

    @property
    def action_size(self) -> int:
        return self.head.action_size if self.head is not None else self.log_std.shape[-1]

    def value(self, obs: jax.Array) -> jax.Array:
        return self.critic_apply(self.critic_params, obs)

    def kl_to(self, clean: jax.Array, obs: jax.Array) -> jax.Array:
        """KL(π(·|s) ‖ π(·|ŝ)) per row, `clean` = dist_params(s). Gaussian with the fixed std:
        ½‖(μ(ŝ) − μ(s))/σ‖²; categorical: the sum over action dimensions of the softmax KLs."""
        if self.categorical:
            return self.head.kl(clean, self.dist_params(obs))
        z = (self.dist_params(obs) - clean) * jnp.exp(-self.log_std)
        return 0.5 * jnp.sum(z**2, axis=-1)

    def tv_to(self, clean: jax.Array, obs: jax.Array) -> jax.Array:
        """Exact TV(π(·|s), π(·|ŝ)) per row, `clean` = dist_params(s) (`PolicyHead.tv`)."""
        if self.categorical:
            return self.head.tv(clean, self.dist_params(obs))
        delta = jnp.linalg.norm((self.dist_params(obs) - clean) * jnp.exp(-self.log_std), axis=-1)
        return gaussian_tv(delta)
