"""Total variation (TV) and KL divergence between policy action distributions, and the bounds they imply.

Gaussian policies share a state-independent covariance Σ = diag(exp(2·log_std)). For two means μ₁, μ₂ let
δ = ‖Σ^{-1/2}(μ₁ − μ₂)‖₂ (the Mahalanobis distance). Then TV = 2Φ(δ/2) − 1 and KL = δ²/2, where Φ is the
standard normal CDF: both reduce to one dimension along the direction of μ₁ − μ₂.

Categorical policies: for logits z and z + Δ, TV(softmax z, softmax(z + Δ)) ≤ (max Δ − min Δ)/4 ≤ ‖Δ‖∞/2.
Along z + tΔ the TV grows at rate ½·E_p|Δ − E_pΔ|, and a mean absolute deviation is at most half the range.
For a factorized policy (a product over action dimensions), the joint TV is at most the sum of the
per-dimension TVs (couple each factor optimally), and at most 1.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erf, ndtri

MAX_JOINT_OUTCOMES = 2**16
"""Largest number of joint actions for which `categorical_tv` enumerates the product distribution."""


def gaussian_tv(delta: jax.Array) -> jax.Array:
    """Compute TV(N(μ₁, Σ), N(μ₂, Σ)) = 2Φ(δ/2) − 1 from the Mahalanobis distance δ ≥ 0 (any shape).

    Evaluated as erf(δ/(2√2)), which equals 2Φ(δ/2) − 1 and avoids the cancellation of 2Φ − 1 for small δ.
    """
    return erf(delta / (2.0 * math.sqrt(2.0)))


def gaussian_kl(delta: jax.Array) -> jax.Array:
    """Compute KL(N(μ₁, Σ) ‖ N(μ₂, Σ)) = δ²/2 from the Mahalanobis distance δ (any shape)."""
    return 0.5 * jnp.square(delta)


def gaussian_tv_bound(eps: jax.Array, lipschitz: jax.Array) -> jax.Array:
    """Bound the worst TV within an ε-ball: gaussian_tv(ε·L_δ), with L_δ from `gaussian_lipschitz_bounds`."""
    return gaussian_tv(eps * lipschitz)


def gaussian_kl_bound(eps: jax.Array, lipschitz: jax.Array) -> jax.Array:
    """Bound the worst KL within an ε-ball: (ε·L_δ)²/2."""
    return gaussian_kl(eps * lipschitz)


def categorical_tv_bound(eps: jax.Array, lipschitz: jax.Array, action_dims: int | None = 1) -> jax.Array:
    """Bound the worst joint TV within an ε-ball: min(1, Σ_d min(1, ε·L_d/2)).

    L_d bounds the ℓ∞ Lipschitz constant of the logits of action dimension d (`categorical_lipschitz_bounds`).
    With an integer `action_dims`, `lipschitz` is one bound shared by that many dimensions and broadcasts
    against `eps`. With `action_dims=None`, the last axis of `lipschitz` lists the per-dimension bounds.
    """
    per_dimension = jnp.minimum(1.0, 0.5 * eps * lipschitz)
    if action_dims is None:
        total = jnp.sum(per_dimension, axis=-1)
    else:
        total = action_dims * per_dimension
    return jnp.minimum(1.0, total)


def logit_change_tv_bound(delta_low: jax.Array, delta_high: jax.Array) -> jax.Array:
    """Bound TV(softmax z, softmax(z + Δ)) for any Δ with delta_low ≤ Δ ≤ delta_high ([..., n_logits]).

    Returns min(1, (max delta_high − min delta_low)/4), shape [...].
    """
    spread = jnp.max(delta_high, axis=-1) - jnp.min(delta_low, axis=-1)
    return jnp.minimum(1.0, 0.25 * spread)


def _factor_probabilities(logits: jax.Array, n_bins: int | None) -> jax.Array:
    """Softmax per action dimension: [..., action_dim·n_bins] → [..., action_dim, n_bins]."""
    if n_bins is None:
        n_bins = logits.shape[-1]
    if logits.shape[-1] % n_bins != 0:
        raise ValueError(f"n_bins={n_bins} must divide the number of logits, {logits.shape[-1]}.")
    factored = logits.reshape(*logits.shape[:-1], logits.shape[-1] // n_bins, n_bins)
    return jax.nn.softmax(factored, axis=-1)


def categorical_tv_per_dim(logits_a: jax.Array, logits_b: jax.Array, *, n_bins: int | None = None) -> jax.Array:
    """Compute the exact TV of each factor: [..., action_dim·n_bins] logits → [..., action_dim].

    Their sum, capped at 1, bounds the joint TV of the factorized policies from above.
    """
    probabilities_a = _factor_probabilities(logits_a, n_bins)
    probabilities_b = _factor_probabilities(logits_b, n_bins)
    return 0.5 * jnp.sum(jnp.abs(probabilities_a - probabilities_b), axis=-1)


def _joint_probabilities(factors: jax.Array) -> jax.Array:
    """Product distribution of [..., action_dim, n_bins] factors, flattened to [..., n_bins**action_dim]."""
    joint = factors[..., 0, :]
    for dimension in range(1, factors.shape[-2]):
        joint = joint[..., :, None] * factors[..., dimension, None, :]
        joint = joint.reshape(*joint.shape[:-2], -1)
    return joint


def categorical_tv(logits_a: jax.Array, logits_b: jax.Array, *, n_bins: int | None = None) -> jax.Array:
    """Compute the exact joint TV between two (factorized) categorical policies, of shape [...].

    Logits have shape [..., action_dim·n_bins], and `n_bins=None` means one categorical over all logits. The
    product distributions are enumerated, so n_bins**action_dim must not exceed `MAX_JOINT_OUTCOMES`.
    Beyond that, use `categorical_tv_per_dim`, whose capped sum is an upper bound.
    """
    factors_a = _factor_probabilities(logits_a, n_bins)
    factors_b = _factor_probabilities(logits_b, n_bins)
    action_dims, bins = factors_a.shape[-2:]
    if bins**action_dims > MAX_JOINT_OUTCOMES:
        raise ValueError(
            f"The joint action space has {bins}**{action_dims} outcomes, more than MAX_JOINT_OUTCOMES="
            f"{MAX_JOINT_OUTCOMES}. Use categorical_tv_per_dim and sum its values for an upper bound."
        )
    joint_a = _joint_probabilities(factors_a)
    joint_b = _joint_probabilities(factors_b)
    return 0.5 * jnp.sum(jnp.abs(joint_a - joint_b), axis=-1)


def certified_radius(
    lipschitz: jax.Array, tau: jax.Array, kind: str = "gaussian", action_dims: int = 1
) -> jax.Array:
    """Return the largest ε whose TV bound stays ≤ τ, for a Lipschitz bound L (any broadcastable shapes).

    Gaussian: 2Φ(εL/2) − 1 ≤ τ ⇔ ε ≤ 2Φ^{-1}((1 + τ)/2)/L. Categorical with `action_dims` factors sharing
    the bound L: action_dims·εL/2 ≤ τ ⇔ ε ≤ 2τ/(action_dims·L). The radius is +inf when L = 0 or τ ≥ 1.
    """
    if kind not in ("gaussian", "categorical"):
        raise ValueError(f"Unsupported kind {kind!r}. Use 'gaussian' or 'categorical'.")
    tau = jnp.asarray(tau)
    lipschitz = jnp.asarray(lipschitz)
    if kind == "gaussian":
        half_radius = ndtri(0.5 * (1.0 + jnp.minimum(tau, 1.0)))
    else:
        half_radius = tau / action_dims
    safe_lipschitz = jnp.where(lipschitz > 0, lipschitz, 1.0)
    radius = 2.0 * half_radius / safe_lipschitz
    return jnp.where((lipschitz > 0) & (tau < 1.0), radius, jnp.inf)
