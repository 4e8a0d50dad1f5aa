"""Environments and the running observation normalizer.

Any Brax environment works by name (`brax.envs.get_environment`). The module also provides `point_mass`,
a tiny JAX environment with known behavior that compiles in about a second, for tests.
"""

from __future__ import annotations

import logging
import warnings

import jax
import jax.numpy as jnp
from flax import struct

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from brax import envs as brax_envs
    from brax.envs import base as brax_base
    from brax.envs.wrappers import training as brax_wrappers

logger = logging.getLogger(__name__)

OBS_CLIP = 10.0  # normalized observations are clipped to ±10, as in the SA_PPO ZFilter


class PointMass(brax_base.Env):
    """A 1-D point mass that earns 1 − min(1, x²) per step and terminates when |x| > 2.

    Observation: [x, v]. Action: a force in [−1, 1]. A policy that drives x to 0 earns close to 1 per step.
    """

    def __init__(self, dt: float = 0.1, **kwargs):
        del kwargs  # accepts `backend` like Brax envs, and ignores it
        self._dt = dt

    def reset(self, rng: jax.Array) -> brax_base.State:
        obs = jax.random.uniform(rng, (2,), minval=-1.0, maxval=1.0)
        zero = jnp.zeros(())
        return brax_base.State(pipeline_state=None, obs=obs, reward=zero, done=zero, metrics={}, info={})

    def step(self, state: brax_base.State, action: jax.Array) -> brax_base.State:
        x, v = state.obs[0], state.obs[1]
        force = jnp.clip(action[0], -1.0, 1.0)
        v = v + self._dt * force
        x = x + self._dt * v
        reward = 1.0 - jnp.minimum(1.0, x**2)
        done = (jnp.abs(x) > 2.0).astype(x.dtype)
        return state.replace(obs=jnp.stack([x, v]), reward=reward, done=done)

    @property
    def observation_size(self) -> int:
        return 2

    @property
    def action_size(self) -> int:
        return 1

    @property
    def backend(self) -> str:
        return "jax"


def _cartpole(**kwargs):
    from robustprune.cartpole import CartPole

    return CartPole(**kwargs)


_TOY_ENVS = {"point_mass": PointMass, "cartpole": _cartpole}


def available_envs() -> list[str]:
    """List the environment names that `make_base_env` accepts: Brax's registry plus the toy environments."""
    return sorted(set(brax_envs._envs) | set(_TOY_ENVS))  # Brax exposes no public listing function


def make_base_env(name: str, backend: str) -> brax_base.Env:
    """Build an unwrapped environment by name."""
    if name in _TOY_ENVS:
        return _TOY_ENVS[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return brax_envs.get_environment(name, backend=backend)


def make_train_env(name: str, backend: str, episode_length: int, action_repeat: int) -> brax_base.Env:
    """Build a batched, auto-resetting environment: `reset(keys[n])` and `step(state, actions[n, act])`."""
    env = make_base_env(name, backend)
    env = brax_wrappers.EpisodeWrapper(env, episode_length, action_repeat)
    env = brax_wrappers.VmapWrapper(env)
    return brax_wrappers.AutoResetWrapper(env)


def make_eval_env(name: str, backend: str, episode_length: int, action_repeat: int) -> brax_base.Env:
    """Build a batched environment without auto-reset, because the evaluator masks steps after `done` itself."""
    env = make_base_env(name, backend)
    env = brax_wrappers.EpisodeWrapper(env, episode_length, action_repeat)
    return brax_wrappers.VmapWrapper(env)


@struct.dataclass
class Normalizer:
    """Running mean and variance of raw observations (parallel Welford update).

    Fields: mean [obs], m2 [obs] (sum of squared deviations), count [] (number of observations seen).
    """

    mean: jax.Array
    m2: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, obs_size: int) -> "Normalizer":
        return cls(mean=jnp.zeros(obs_size), m2=jnp.zeros(obs_size), count=jnp.zeros(()))

    @property
    def std(self) -> jax.Array:
        var = self.m2 / jnp.maximum(self.count, 1.0)
        return jnp.sqrt(jnp.maximum(var, 1e-8))

    def update(self, batch: jax.Array) -> "Normalizer":
        """Merge a batch of raw observations, shape [..., obs], into the statistics."""
        batch = batch.reshape(-1, batch.shape[-1])
        n = batch.shape[0]
        batch_mean = batch.mean(axis=0)
        batch_m2 = ((batch - batch_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = batch_mean - self.mean
        mean = self.mean + delta * n / total
        m2 = self.m2 + batch_m2 + delta**2 * self.count * n / total
        return Normalizer(mean=mean, m2=m2, count=total)

    def normalize(self, obs: jax.Array) -> jax.Array:
        """Map raw observations to normalized units, clipped to ±OBS_CLIP."""
        return jnp.clip((obs - self.mean) / self.std, -OBS_CLIP, OBS_CLIP)
