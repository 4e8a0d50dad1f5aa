"""Sparsity schedules as one parameterized family, so that cells with different schedules share a program.

The polynomial ramp of Zhu & Gupta (2017), "To prune, or not to prune":
    s(t) = s_f · (1 − (1 − p(t))^k),  p(t) = clip((t − t_start) / (t_end − t_start), 0, 1),
evaluated at t quantized down to the last pruning event (every `period` updates from t_start), and at
t_end from then on. The mask is recomputed after the SGD steps of update t, so update t + 1 is the first to
train under it. The named schedules are members of this family:

- gradual: the ramp above.
- one_shot: t_start = t_end, the target jumps to s_f after update t_start, then fine-tuning.
- micro: many small steps. k = 1 and t_end = t_start + period · s_f / increment, so the target rises by
  `increment` every `period` updates: s(t) = increment · floor((t − t_start) / period) for t < t_end, and s_f
  from update t_end on (the last step is the remainder, smaller than `increment`).
- post_training: one-shot after the last update (t_start = t_end = num_updates − 1), so no update trains
  under the mask: the pruned-after-training baseline without fine-tuning.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

SCHEDULES = ("gradual", "one_shot", "micro", "post_training")


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


def schedule_settings(
    name: str,
    final_sparsity: float,
    num_updates: int,
    *,
    start_frac: float,
    end_frac: float,
    exponent: float,
    period: int,
    micro_increment: float,
    micro_period: int,
) -> dict[str, float]:
    """The family's fields (Python floats) of one named schedule; see the module docstring.

    start_frac and end_frac are fractions of the last update index num_updates − 1, rounded to an update.
    """
    last = num_updates - 1
    start = float(round(start_frac * last))
    if name == "gradual":
        fields = (start, float(round(end_frac * last)), exponent, period)
    elif name == "one_shot":
        fields = (start, start, 1.0, 1)
    elif name == "micro":
        fields = (start, start + micro_period * final_sparsity / micro_increment, 1.0, micro_period)
    elif name == "post_training":
        fields = (float(last), float(last), 1.0, 1)
    else:
        raise ValueError(f"unknown schedule {name!r}; choose one of {SCHEDULES}")
    start, end, exponent, period = fields
    return {"final_sparsity": float(final_sparsity), "start": start, "end": end, "exponent": float(exponent),
            "period": float(period)}


def make_schedule(settings: dict[str, float]) -> ScheduleParams:
    """ScheduleParams (scalar arrays) from `schedule_settings` output."""
    return ScheduleParams(**{k: jnp.asarray(v) for k, v in settings.items()})
