"""Sparsity schedules as one parameterized family, so that cells with different schedules share a program.

The polynomial ramp of Zhu & Gupta (2017), "To prune, or not to prune":
    s(t) = s_f · (1 − (1 − p(t))^k),  p(t) = clip((t − t_start) / (t_end − t_start), 0, 1),
evaluated at t quantized down to the last pruning event (every `period` updates from t_start), and at
t_end from then on. With t_start = t_end it is one-shot pruning at t_start.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

SCHEDULES = ("gradual", "one_shot")


@struct.dataclass
class ScheduleParams:
    """Traced schedule fields (all scalars, so vmap can batch cells with different schedules).

    final_sparsity: target s_f in [0, 1). start, end: update indices t_start <= t_end. exponent: k.
    period: updates between mask recomputations.
    """

    final_sparsity: jax.Array
    start: jax.Array
    end: jax.Array
    exponent: jax.Array
    period: jax.Array


def scheduled_sparsity(params: ScheduleParams, update: jax.Array) -> jax.Array:
    """Target sparsity in force after update index `update` (0-based), a scalar in [0, s_f]."""
    update = jnp.asarray(update, params.start.dtype)
    since_start = jnp.maximum(update - params.start, 0.0)
    quantized = params.start + jnp.floor(since_start / params.period) * params.period
    t = jnp.where(update >= params.end, params.end, quantized)
    span = jnp.maximum(params.end - params.start, 1.0)
    progress = jnp.clip((t - params.start) / span, 0.0, 1.0)
    progress = jnp.where(params.end <= params.start, 1.0, progress)  # one-shot
    ramp = params.final_sparsity * (1.0 - (1.0 - progress) ** params.exponent)
    return jnp.where(update >= params.start, ramp, 0.0)
