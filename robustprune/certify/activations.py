"""Activation functions, their slope bounds and their exact interval images.

Every certificate in this package needs two facts about the activation σ: an interval [a, b] that contains
σ'(x) for every x (for a Lipschitz bound, ρ = max(|a|, |b|)), and the exact image σ([l, u]) of an interval
(for interval bound propagation).

SiLU (swish), σ(x) = x·s(x) with s the logistic function, is the only non-monotone activation here. Its
derivative is σ'(x) = s(x)·(1 + x·(1 − s(x))), so:

- σ'' vanishes where x·tanh(x/2) = 2, that is at x = ±2.39935728..., where σ' reaches its maximum
  1.09983932... and its minimum −0.09983932... (σ'(x) + σ'(−x) = 1 because σ(x) − σ(−x) = x).
- σ' vanishes where 1 + x·(1 − s(x)) = 0, that is at x* = −1.27846454..., the global minimum of σ. There
  s(x*) = 1 + 1/x*, so σ(x*) = x* + 1 = −0.27846454...

The constants below were solved with `scipy.optimize.brentq` in float64 (xtol 1e-15) and rounded outward, so
that slope bounds are upper bounds and the minimum value is a lower bound. `tests/test_certify_activations.py`
checks them against a dense grid.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "elu": jax.nn.elu,  # alpha = 1, the jax.nn default
    "silu": jax.nn.silu,
}

SILU_MAX_SLOPE = 1.09983932013
"""Upper bound on max_x σ'(x) for SiLU (true value 1.0998393201288668 in float64)."""

SILU_MIN_SLOPE = -0.09983932013
"""Lower bound on min_x σ'(x) for SiLU (true value −0.0998393201288669 in float64)."""

SILU_ARGMIN = -1.2784645427610737
"""The point x* where SiLU attains its global minimum."""

SILU_MIN_VALUE = -0.27846454277
"""Lower bound on min_x SiLU(x) = x* + 1 (true value −0.2784645427610738 in float64)."""

ACTIVATION_SLOPE_RANGE: dict[str, tuple[float, float]] = {
    "tanh": (0.0, 1.0),
    "relu": (0.0, 1.0),
    "elu": (0.0, 1.0),
    "silu": (SILU_MIN_SLOPE, SILU_MAX_SLOPE),
}
"""Interval [a, b] that contains σ'(x) for every x. ReLU's slope is 0 or 1 wherever it is differentiable."""

ACTIVATION_SLOPE: dict[str, float] = {
    name: max(abs(low), abs(high)) for name, (low, high) in ACTIVATION_SLOPE_RANGE.items()
}
"""Bound ρ on |σ'(x)|: 1.0 for tanh, ReLU and ELU, about 1.0998 for SiLU."""


def check_activation(activation: str) -> None:
    """Raise a ValueError unless `activation` names a supported activation."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"Unsupported activation {activation!r}. Use one of {sorted(ACTIVATIONS)} "
            "(for swish, pass 'silu')."
        )


def interval_activation(lower: jax.Array, upper: jax.Array, activation: str) -> tuple[jax.Array, jax.Array]:
    """Map the interval [lower, upper] (elementwise, any shape) to its exact image under the activation.

    tanh, ReLU and ELU are non-decreasing, so the image is [σ(lower), σ(upper)]. SiLU decreases up to x* and
    increases after it, so its maximum over an interval sits at an endpoint, and its minimum is σ(x*)
    whenever the interval contains x*.
    """
    check_activation(activation)
    function = ACTIVATIONS[activation]
    at_lower = function(lower)
    at_upper = function(upper)
    if activation != "silu":
        return at_lower, at_upper

    contains_argmin = (lower <= SILU_ARGMIN) & (upper >= SILU_ARGMIN)
    endpoint_min = jnp.minimum(at_lower, at_upper)
    image_lower = jnp.where(contains_argmin, jnp.minimum(endpoint_min, SILU_MIN_VALUE), endpoint_min)
    image_upper = jnp.maximum(at_lower, at_upper)
    return image_lower, image_upper
