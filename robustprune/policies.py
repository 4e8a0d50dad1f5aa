"""Action distributions of the policy network: a diagonal Gaussian or a factorized categorical.

The static `network.policy` setting picks the kind. Both networks keep their prunable kernels under
`params/mean/...`, so masks, pruning and the Lipschitz bounds read them the same way.

- "gaussian": the network outputs the mean μ(s) [..., act]; the std exp(log_std) [act] is state-independent.
  Its distribution parameters (`dist`) are the pair (μ, log_std).
- "categorical": the network outputs logits [..., act·n_bins]; each action dimension d is an independent
  softmax over the logits d·n_bins … (d+1)·n_bins − 1, and bin k stands for the action value
  −1 + 2k/(n_bins − 1). Its distribution parameters are those flat logits, the layout that
  `robustprune.certify.categorical_tv` and `categorical_lipschitz_bounds(..., n_bins=...)` read.

Actions are always continuous values in [−1, 1]^act (for a categorical policy, the bin values), so trajectories
and environments look the same for both kinds. `log_prob` maps a categorical action back to its bin by rounding.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from robustprune.certify import categorical_tv, categorical_tv_per_dim, gaussian_tv
from robustprune.certify.distributions import MAX_JOINT_OUTCOMES
from robustprune.networks import MLP, GaussianPolicy


class CategoricalPolicy(nn.Module):
    """Factorized softmax policy. Returns (logits [..., act·n_bins], None): the second slot is the Gaussian's
    log-std, which a categorical policy does not have."""

    action_size: int
    n_bins: int = 11
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, None]:
        # The output layer starts at the Gaussian mean network's scale (orthogonal, gain 1). A tiny gain (0.01,
        # common for softmax heads) would put the whole output layer first in line for global magnitude pruning.
        logits = MLP(self.hidden_sizes, self.action_size * self.n_bins, self.activation, out_scale=1.0,
                     name="mean")(obs)
        return logits, None


@dataclasses.dataclass(frozen=True)
class PolicyHead:
    """Static description of the action distribution: kind ("gaussian" or "categorical"), sizes.

    Every method is pure and batched over leading axes. `dist` is (mean, log_std) for a Gaussian and the flat
    logits [..., act·n_bins] for a categorical policy.
    """

    kind: str = "gaussian"
    action_size: int = 1
    n_bins: int = 11

    @property
    def categorical(self) -> bool:
        return self.kind == "categorical"

    def bins(self, dtype=None) -> jax.Array:
        """Action value of each bin, evenly spaced in [−1, 1]: [n_bins]."""
        return jnp.linspace(-1.0, 1.0, self.n_bins, dtype=dtype)

    def dist(self, network_output) -> object:
        """Distribution parameters from the network's (first, second) output."""
        first, second = network_output
        return first if self.categorical else (first, second)

    def _log_probs(self, logits: jax.Array) -> jax.Array:
        """Per-dimension log-probabilities [..., act, n_bins]."""
        return jax.nn.log_softmax(logits.reshape(*logits.shape[:-1], self.action_size, self.n_bins), axis=-1)

    def sample(self, dist, key: jax.Array) -> jax.Array:
        """Draw actions [..., act]: Gaussian unclipped, categorical the sampled bins' values."""
        if not self.categorical:
            mean, log_std = dist
            return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)
        index = jax.random.categorical(key, self._log_probs(dist), axis=-1)
        return self._bin_value(index, dist.dtype)

    def _bin_value(self, index: jax.Array, dtype) -> jax.Array:
        """Action value of bin indices [..., act] (a one-hot sum rather than a gather)."""
        return jnp.sum(jax.nn.one_hot(index, self.n_bins, dtype=dtype) * self.bins(dtype), axis=-1)

    def bin_index(self, action: jax.Array) -> jax.Array:
        """Nearest bin of each action value: [..., act] int32."""
        index = jnp.round((jnp.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (self.n_bins - 1))
        return index.astype(jnp.int32)

    def log_prob(self, dist, action: jax.Array) -> jax.Array:
        """Log-probability (Gaussian: density) of actions [..., act], summed over dimensions: [...]."""
        if not self.categorical:
            mean, log_std = dist
            z = (action - mean) * jnp.exp(-log_std)
            return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)
        one_hot = jax.nn.one_hot(self.bin_index(action), self.n_bins, dtype=dist.dtype)
        return jnp.sum(self._log_probs(dist) * one_hot, axis=(-2, -1))

    def mode(self, dist) -> jax.Array:
        """Deterministic action [..., act]: the Gaussian mean, or the value of each dimension's argmax bin."""
        if not self.categorical:
            return dist[0]
        return self._bin_value(jnp.argmax(self._log_probs(dist), axis=-1), dist.dtype)

    def mean(self, dist) -> jax.Array:
        """Expected action [..., act], differentiable in the network output."""
        if not self.categorical:
            return dist[0]
        return jnp.sum(jnp.exp(self._log_probs(dist)) * self.bins(dist.dtype), axis=-1)

    def kl(self, p, q) -> jax.Array:
        """KL(p ‖ q) summed over factors: [...]. Gaussians share q's fixed std: ½‖(μ_q − μ_p)/σ‖²."""
        if not self.categorical:
            (mean_p, _), (mean_q, log_std) = p, q
            return 0.5 * jnp.sum(((mean_q - mean_p) * jnp.exp(-log_std)) ** 2, axis=-1)
        log_p, log_q = self._log_probs(p), self._log_probs(q)
        return jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=(-2, -1))

    def tv(self, p, q) -> jax.Array:
        """Exact total variation between the joint distributions: [...].

        A categorical policy whose joint space exceeds MAX_JOINT_OUTCOMES gets the capped sum of the exact
        per-dimension TVs instead, an upper bound of the joint TV.
        """
        if not self.categorical:
            (mean_p, _), (mean_q, log_std) = p, q
            return gaussian_tv(jnp.linalg.norm((mean_q - mean_p) * jnp.exp(-log_std), axis=-1))
        if self.n_bins**self.action_size <= MAX_JOINT_OUTCOMES:
            return categorical_tv(p, q, n_bins=self.n_bins)
        return jnp.minimum(1.0, jnp.sum(categorical_tv_per_dim(p, q, n_bins=self.n_bins), axis=-1))

    def entropy(self, dist) -> jax.Array:
        """Entropy summed over dimensions: [...]."""
        if not self.categorical:
            _, log_std = dist
            return jnp.sum(log_std + 0.5 * jnp.log(2 * jnp.pi * jnp.e)) * jnp.ones(dist[0].shape[:-1])
        log_probs = self._log_probs(dist)
        return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=(-2, -1))


def policy_head(network_cfg, action_size: int) -> PolicyHead:
    """The PolicyHead of a NetworkConfig (`policy`, `n_bins`) for an environment's action size."""
    return PolicyHead(kind=network_cfg.policy, action_size=action_size, n_bins=network_cfg.n_bins)


def make_policy(network_cfg, action_size: int) -> nn.Module:
    """The policy network of a NetworkConfig: a GaussianPolicy or a CategoricalPolicy."""
    net = network_cfg
    if net.policy == "categorical":
        return CategoricalPolicy(action_size, net.n_bins, tuple(net.hidden_sizes), net.activation)
    return GaussianPolicy(action_size, tuple(net.hidden_sizes), net.activation, net.init_log_std)
