"""Empirical lower bounds: projected gradient ascent (PGD) inside the ball, and local Jacobian norms.

Whatever PGD finds is attained by a real perturbation, so it bounds the worst case from below and must never
exceed a certified bound. The perturbation Δ lives in the ball ‖Δ‖_norm ≤ ε, and the perturbed observation
is x̂ = x + in_scale ⊙ Δ (in_scale = 1 when the ball is in normalized units).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from robustprune.certify.distributions import categorical_tv, gaussian_tv
from robustprune.certify.mlp import check_norm
from robustprune.certify.norms import operator_norm, spectral_norm


def project_l1_ball(vector: jax.Array, radius: jax.Array) -> jax.Array:
    """Project [n] onto {‖v‖₁ ≤ radius} in Euclidean distance (Duchi et al., 2008, sort-based algorithm)."""
    magnitude = jnp.abs(vector)
    ordered = jnp.sort(magnitude)[::-1]
    cumulative = jnp.cumsum(ordered)
    counts = jnp.arange(1, vector.shape[-1] + 1, dtype=vector.dtype)
    active = ordered - (cumulative - radius) / counts > 0
    last_active = jnp.max(jnp.where(active, jnp.arange(vector.shape[-1]), 0))
    threshold = jnp.maximum((cumulative[last_active] - radius) / counts[last_active], 0.0)
    projected = jnp.sign(vector) * jnp.maximum(magnitude - threshold, 0.0)
    return jnp.where(jnp.sum(magnitude) <= radius, vector, projected)


def project_to_ball(delta: jax.Array, eps: jax.Array, norm: str) -> jax.Array:
    """Project a perturbation [n] onto the `norm` ball of radius ε."""
    if norm == "linf":
        return jnp.clip(delta, -eps, eps)
    if norm == "l2":
        length = jnp.sqrt(jnp.sum(jnp.square(delta)))
        return delta * jnp.minimum(1.0, eps / jnp.maximum(length, jnp.finfo(delta.dtype).tiny))
    return project_l1_ball(delta, eps)


def sample_in_ball(key: jax.Array, count: int, size: int, eps: jax.Array, norm: str, dtype) -> jax.Array:
    """Draw `count` points uniformly from the `norm` ball of radius ε in R^size, as a [count, size] array."""
    if norm == "linf":
        return jax.random.uniform(key, (count, size), dtype, -1.0, 1.0) * eps
    direction_key, radius_key = jax.random.split(key)
    if norm == "l2":
        direction = jax.random.normal(direction_key, (count, size), dtype)
        direction = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
        radius = jax.random.uniform(radius_key, (count, 1), dtype) ** (1.0 / size)
        return eps * radius * direction
    # Normalizing size + 1 exponential spacings gives a uniform point of the simplex {y ≥ 0, Σy ≤ 1},
    # and random signs spread it uniformly over the ℓ1 ball.
    spacings = jax.random.exponential(direction_key, (count, size + 1), dtype)
    magnitudes = spacings[:, :size] / jnp.sum(spacings, axis=-1, keepdims=True)
    signs = jax.random.rademacher(radius_key, (count, size), dtype)
    return eps * signs * magnitudes


def _ascent_direction(gradient: jax.Array, norm: str) -> jax.Array:
    """Steepest-ascent direction of unit `norm` for a gradient [n]."""
    if norm == "linf":
        return jnp.sign(gradient)
    if norm == "l2":
        length = jnp.sqrt(jnp.sum(jnp.square(gradient)))
        return gradient / jnp.maximum(length, jnp.finfo(gradient.dtype).tiny)
    coordinate = jnp.argmax(jnp.abs(gradient))
    return jax.nn.one_hot(coordinate, gradient.shape[-1], dtype=gradient.dtype) * jnp.sign(gradient[coordinate])


def pgd_maximize(
    objective: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    eps: jax.Array,
    key: jax.Array,
    *,
    norm: str = "linf",
    steps: int = 50,
    restarts: int = 4,
    step_size: float | None = None,
    in_scale: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Maximize objective(x̂) over x̂ = x + in_scale ⊙ Δ with ‖Δ‖_norm ≤ ε by PGD from random starts.

    Each restart starts uniformly in the ball and takes `steps` steps along the steepest-ascent direction of
    unit norm (the gradient's sign for ℓ∞, the normalized gradient for ℓ2, the largest gradient coordinate
    for ℓ1), each followed by projection. The step length decays linearly from `step_size` (default ε) to
    a twentieth of it: long first steps cross the ball, and short last steps settle on the boundary.
    Returns (best value over all iterates and restarts, its x̂ [obs_dim]).
    """
    check_norm(norm)
    scale = jnp.ones_like(x) if in_scale is None else in_scale
    initial_step = eps if step_size is None else step_size
    step_lengths = initial_step * jnp.linspace(1.0, 0.05, steps, dtype=x.dtype)

    def value_of(delta: jax.Array) -> jax.Array:
        return objective(x + scale * delta)

    def step(carry, step_length):
        delta, best_value, best_delta = carry
        gradient = jax.grad(value_of)(delta)
        delta = project_to_ball(delta + step_length * _ascent_direction(gradient, norm), eps, norm)
        value = value_of(delta)
        improved = value > best_value
        best_delta = jnp.where(improved, delta, best_delta)
        return (delta, jnp.maximum(value, best_value), best_delta), None

    def run(start: jax.Array) -> tuple[jax.Array, jax.Array]:
        initial = (start, value_of(start), start)
        (_, best_value, best_delta), _ = jax.lax.scan(step, initial, step_lengths)
        return best_value, best_delta

    starts = sample_in_ball(key, restarts, x.shape[-1], eps, norm, x.dtype)
    values, deltas = jax.vmap(run)(starts)
    best = jnp.argmax(values)
    return values[best], x + scale * deltas[best]


def pgd_max_tv(
    apply_mean: Callable[[jax.Array], jax.Array],
    log_std: jax.Array,
    x: jax.Array,
    eps: jax.Array,
    key: jax.Array,
    *,
    norm: str = "linf",
    steps: int = 50,
    restarts: int = 4,
    step_size: float | None = None,
    in_scale: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Search the ball for the x̂ that maximizes TV(π(·|x), π(·|x̂)) of a Gaussian policy.

    PGD maximizes δ² = ‖Σ^{-1/2}(μ(x̂) − μ(x))‖₂², whose maximizer also maximizes the TV. `apply_mean` maps
    [obs_dim] → [action_dim]. Returns (gaussian_tv(best δ), x̂), a lower bound on the worst-case TV.
    """
    reference = apply_mean(x)
    inverse_std = jnp.exp(-log_std)

    def squared_delta(x_hat: jax.Array) -> jax.Array:
        return jnp.sum(jnp.square((apply_mean(x_hat) - reference) * inverse_std))

    best, x_hat = pgd_maximize(
        squared_delta, x, eps, key, norm=norm, steps=steps, restarts=restarts, step_size=step_size, in_scale=in_scale
    )
    return gaussian_tv(jnp.sqrt(best)), x_hat


def pgd_max_categorical_tv(
    apply_logits: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    eps: jax.Array,
    key: jax.Array,
    *,
    n_bins: int | None = None,
    norm: str = "linf",
    steps: int = 50,
    restarts: int = 4,
    step_size: float | None = None,
    in_scale: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Search the ball for the x̂ that maximizes the exact joint TV of a (factorized) categorical policy.

    `apply_logits` maps [obs_dim] → [action_dim·n_bins]. `categorical_tv` states the size limit. Returns
    (best TV, x̂), a lower bound on the worst-case TV.
    """
    reference = apply_logits(x)

    def total_variation(x_hat: jax.Array) -> jax.Array:
        return categorical_tv(apply_logits(x_hat), reference, n_bins=n_bins)

    return pgd_maximize(
        total_variation, x, eps, key, norm=norm, steps=steps, restarts=restarts, step_size=step_size, in_scale=in_scale
    )


def _linf_to_l2_lower_bound(jacobian: jax.Array, iterations: int) -> jax.Array:
    """Lower-bound ‖J‖_{∞→2} = max over sign vectors s of ‖J s‖₂, for J [out, in].

    Candidates: the signs of each row of J (exact when J has one row), and a sign iteration s ← sign(JᵀJ s)
    from the signs of the top right singular vector. Each iteration maximizes the linearization of the
    convex function ‖J s‖² over the cube, so ‖J s‖ never decreases along it.
    """
    row_signs = jnp.where(jacobian >= 0, 1.0, -1.0).astype(jacobian.dtype)
    best = jnp.max(jnp.linalg.norm(jacobian @ row_signs.T, axis=0))
    _, _, right = jnp.linalg.svd(jacobian, full_matrices=False)
    signs = jnp.where(right[0] >= 0, 1.0, -1.0).astype(jacobian.dtype)
    for _ in range(iterations):
        best = jnp.maximum(best, jnp.linalg.norm(jacobian @ signs))
        signs = jnp.where(jacobian.T @ (jacobian @ signs) >= 0, 1.0, -1.0).astype(jacobian.dtype)
    return jnp.maximum(best, jnp.linalg.norm(jacobian @ signs))


def local_jacobian_norm(
    apply_fn: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    *,
    norm: str = "linf",
    out_norm: str = "l2",
    out_scale: jax.Array | None = None,
    in_scale: jax.Array | None = None,
    iterations: int = 10,
) -> jax.Array:
    """Compute the `norm`→`out_norm` operator norm of the Jacobian of Δ ↦ out_scale ⊙ f(x + in_scale ⊙ Δ) at 0.

    Pass out_scale = exp(−log_std) for the Gaussian δ. Every global Lipschitz bound for the same norms must
    be at least this value. It is exact for every supported pair but ℓ∞→ℓ2, which is NP-hard, and there
    the value is a lower bound (`_linf_to_l2_lower_bound`). Returns a scalar, so vmap over states.
    """
    check_norm(norm)
    check_norm(out_norm, ("l2", "linf"))
    jacobian = jax.jacfwd(apply_fn)(x)
    if out_scale is not None:
        jacobian = out_scale[:, None] * jacobian
    if in_scale is not None:
        jacobian = jacobian * in_scale[None, :]
    if norm == "linf" and out_norm == "l2":
        return _linf_to_l2_lower_bound(jacobian, iterations)
    if norm == "l2" and out_norm == "l2":
        return spectral_norm(jacobian)
    return operator_norm(jacobian.T, norm, out_norm)
