"""The frozen policy under attack, with the networks' apply functions as static fields."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import struct

from robustprune.envs import Normalizer


@struct.dataclass
class Victim:
    """A trained cell, frozen for evaluation.

    policy_params: masked policy parameters. critic_params: critic parameters. normalizer: frozen statistics.
    policy_apply(params, obs) returns (mean [..., act], log_std [act]). critic_apply(params, obs) returns [...].
    ball_scale: per-dimension ball scale [obs] (None: the protocol's ball in this cell's normalized units).
    surrogate: another Victim that transfer attacks craft their perturbations on (None for other attacks).
    adversary: learned attack parameters for this cell and ε (a Q-function, an adversary or a director).
    """

    policy_params: dict
    critic_params: dict
    normalizer: Normalizer
    policy_apply: Callable = struct.field(pytree_node=False)
    critic_apply: Callable = struct.field(pytree_node=False)
    ball_scale: Any = None
    surrogate: Any = None
    adversary: Any = None

    def mean(self, obs: jax.Array) -> jax.Array:
        """Deterministic action μ(obs) for normalized observations [..., obs]."""
        return self.policy_apply(self.policy_params, obs)[0]

    @property
    def log_std(self) -> jax.Array:
        return self.policy_params["params"]["log_std"]

    def value(self, obs: jax.Array) -> jax.Array:
        return self.critic_apply(self.critic_params, obs)

    def kl_to(self, clean_mean: jax.Array, obs: jax.Array) -> jax.Array:
        """KL(π(·|s) ‖ π(·|ŝ)) per row, for a Gaussian with the fixed std: ½‖(μ(ŝ) − μ(s))/σ‖²."""
        z = (self.mean(obs) - clean_mean) * jnp.exp(-self.log_std)
        return 0.5 * jnp.sum(z**2, axis=-1)
