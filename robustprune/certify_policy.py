"""Policy-kind-aware certificate pieces for `robustprune.certify_run`: Gaussian or factorized categorical.

- Gaussian: L bounds x ↦ Σ^{-1/2}μ(x) into ℓ2 (one scalar); the TV bound is 2Φ(εL/2) − 1.
- Categorical (`network.n_bins` bins per action dimension): L_d bounds the logits of dimension d into ℓ∞
  (a vector [act]); the joint TV is at most the sum of the per-dimension TVs, so the bound is
  min(1, Σ_d min(1, ε·L_d/2)) (`robustprune.certify.categorical_tv_bound`). Its scalar summary is
  L = Σ_d L_d, for which min(1, εL/2) is also sound: the `lipschitz` column, the certified radius 2τ/L, the
  post-training path's monotonicity check, and the comparison with the local Jacobian norm (logits into ℓ∞,
  at most max_d L_d ≤ L) all use it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from robustprune.certify import (
    categorical_lipschitz_bounds,
    categorical_tv_bound,
    certified_radius,
    gaussian_lipschitz_bounds,
    gaussian_tv_bound,
    local_categorical_tv_bound,
    local_gaussian_tv_bound,
    local_jacobian_norm,
    pgd_max_categorical_tv,
    pgd_max_tv,
)
from robustprune.config import StudyConfig


def is_categorical(cfg: StudyConfig) -> bool:
    return cfg.network.policy == "categorical"


def global_bounds(cfg: StudyConfig, kernels, log_std, in_scale) -> dict:
    """Compute every global Lipschitz bound of the masked policy network: {bound: []} (Gaussian) or {bound: [act]}."""
    net, norm = cfg.network, cfg.eval.norm
    if is_categorical(cfg):
        return categorical_lipschitz_bounds(kernels, activation=net.activation, norm=norm, in_scale=in_scale,
                                            n_bins=net.n_bins)
    return gaussian_lipschitz_bounds(kernels, log_std, activation=net.activation, norm=norm, in_scale=in_scale)


def scalar_lipschitz(cfg: StudyConfig, lipschitz):
    """Summarize `global_bounds` values as one scalar: L itself (Gaussian) or Σ_d L_d over the last axis."""
    return np.sum(np.asarray(lipschitz), axis=-1) if is_categorical(cfg) else np.asarray(lipschitz)


def global_tv_bound(cfg: StudyConfig, eps, lipschitz) -> np.ndarray:
    """Bound the worst TV within the ε-ball at every state from `global_bounds` values; eps broadcasts against the
    values' leading shape (categorical values carry a trailing [act] axis)."""
    if is_categorical(cfg):
        eps = jnp.asarray(eps)[..., None]
        return np.asarray(categorical_tv_bound(eps, jnp.asarray(lipschitz), action_dims=None))
    return np.asarray(gaussian_tv_bound(eps, lipschitz))


def radius(cfg: StudyConfig, lipschitz, tau: float) -> np.ndarray:
    """Compute the certified radius at TV τ from `global_bounds` values (categorical: from the scalar Σ_d L_d)."""
    if is_categorical(cfg):
        return np.asarray(certified_radius(scalar_lipschitz(cfg, lipschitz), tau, kind="categorical"))
    return np.asarray(certified_radius(lipschitz, tau))


def jacobian_norm(cfg: StudyConfig, victim, x, in_scale):
    """Compute the local Jacobian norm at x [obs]: Σ^{-1/2}μ into ℓ2 (Gaussian) or the logits into ℓ∞ (categorical)."""
    norm = cfg.eval.norm
    if is_categorical(cfg):
        return local_jacobian_norm(victim.dist_params, x, norm=norm, out_norm="linf", in_scale=in_scale)
    return local_jacobian_norm(victim.mean, x, norm=norm, out_norm="l2", out_scale=jnp.exp(-victim.log_std),
                               in_scale=in_scale)


def local_tv_bound(cfg: StudyConfig, kernels, biases, log_std, x, eps, in_scale):
    """Bound by IBP the TV over the ε-ball around x [obs] (a scalar)."""
    net, norm = cfg.network, cfg.eval.norm
    if is_categorical(cfg):
        return local_categorical_tv_bound(kernels, biases, x, eps, activation=net.activation, norm=norm,
                                          in_scale=in_scale, n_bins=net.n_bins)
    return local_gaussian_tv_bound(kernels, biases, log_std, x, eps, activation=net.activation, norm=norm,
                                   in_scale=in_scale)


def pgd_tv(cfg: StudyConfig, victim, x, eps, key, in_scale):
    """Search by PGD for the largest TV in the ε-ball around x [obs] (a lower bound; exact joint TV)."""
    c, norm = cfg.certify, cfg.eval.norm
    if is_categorical(cfg):
        tv, _ = pgd_max_categorical_tv(victim.dist_params, x, eps, key, n_bins=cfg.network.n_bins, norm=norm,
                                       steps=c.pgd_steps, restarts=c.pgd_restarts, in_scale=in_scale)
        return tv
    tv, _ = pgd_max_tv(victim.mean, victim.log_std, x, eps, key, norm=norm, steps=c.pgd_steps,
                       restarts=c.pgd_restarts, in_scale=in_scale)
    return tv
