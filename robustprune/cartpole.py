"""CartPole in pure JAX as a Brax environment: the discrete-action test bed of categorical policies.

The dynamics, constants and termination follow the classic cart-pole of Barto, Sutton and Anderson (1983)
as popularized by OpenAI Gym's CartPole-v1: explicit Euler steps of 0.02 s, a pole of half-length 0.5 m,
termination when |x| > 2.4 m or |θ| > 12°, and a reward of 1 per step. The action a ∈ [−1, 1] scales the
push force: F = 10·clip(a, −1, 1) N. A categorical policy with `network.n_bins = 2` has the bins {−1, +1},
which is the classic two-action push left / push right; a Gaussian policy pushes with a continuous force.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from brax.envs import base as brax_base

GRAVITY = 9.8
CART_MASS = 1.0
POLE_MASS = 0.1
POLE_HALF_LENGTH = 0.5
FORCE_MAG = 10.0
DT = 0.02
X_LIMIT = 2.4
THETA_LIMIT = 12 * 2 * jnp.pi / 360


def cartpole_dynamics(state: jax.Array, force: jax.Array) -> jax.Array:
    """Advance the cart-pole by one Euler step: state [x, ẋ, θ, θ̇] and force [] (N) → next state [4]."""
    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]
    total_mass = CART_MASS + POLE_MASS
    pole_mass_length = POLE_MASS * POLE_HALF_LENGTH
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    temp = (force + pole_mass_length * theta_dot**2 * sin) / total_mass
    theta_acc = (GRAVITY * sin - cos * temp) / (
        POLE_HALF_LENGTH * (4.0 / 3.0 - POLE_MASS * cos**2 / total_mass))
    x_acc = temp - pole_mass_length * theta_acc * cos / total_mass
    return jnp.stack([x + DT * x_dot, x_dot + DT * x_acc, theta + DT * theta_dot, theta_dot + DT * theta_acc])


class CartPole(brax_base.Env):
    """Balance a pole on a cart. Observation [x, ẋ, θ, θ̇]; action [1] in [−1, 1]; reward 1 per step."""

    def __init__(self, **kwargs):
        del kwargs  # accepts `backend` like Brax envs, and ignores it

    def reset(self, rng: jax.Array) -> brax_base.State:
        obs = jax.random.uniform(rng, (4,), minval=-0.05, maxval=0.05)
        zero = jnp.zeros(())
        return brax_base.State(pipeline_state=None, obs=obs, reward=zero, done=zero, metrics={}, info={})

    def step(self, state: brax_base.State, action: jax.Array) -> brax_base.State:
        obs = cartpole_dynamics(state.obs, FORCE_MAG * jnp.clip(action[0], -1.0, 1.0))
        done = (jnp.abs(obs[0]) > X_LIMIT) | (jnp.abs(obs[2]) > THETA_LIMIT)
        return state.replace(obs=obs, reward=jnp.ones(()), done=done.astype(obs.dtype))

    @property
    def observation_size(self) -> int:
        return 4

    @property
    def action_size(self) -> int:
        return 1

    @property
    def backend(self) -> str:
        return "jax"
