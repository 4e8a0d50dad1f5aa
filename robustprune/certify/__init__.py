"""Certificates for masked MLP policies under observation perturbations (the SA-MDP setting).

Global Lipschitz bounds (`lipschitz.py`) turn into bounds on the total variation between clean and attacked
action distributions (`distributions.py`), and those into bounds on the lost return (`value_gap.py`).
Interval bound propagation gives tighter bounds at visited states (`local.py`). PGD and local Jacobian norms
give lower bounds that every certificate must stay above (`empirical.py`). `monotonicity.py` measures how
often a bound rises as masks shrink.

Conventions: kernels are stored [in, out] (flax, y = x @ W + b) and already contain their binary masks. x is
the normalized observation, and Gaussian policies have a state-independent `log_std` [action_dim]. Every
function is pure and works under `jax.jit` and `jax.vmap`, and string arguments are static.

NOTE: bounds are computed in the inputs' dtype without directed rounding, so they hold up to rounding error.
The soundness tests run in float64. A float32 rerun of that sweep found one attained TV above its bound, by
1.4e-7 in absolute terms.
"""

from robustprune.certify.activations import (
    ACTIVATION_SLOPE,
    ACTIVATION_SLOPE_RANGE,
    ACTIVATIONS,
    SILU_ARGMIN,
    SILU_MIN_VALUE,
    interval_activation,
)
from robustprune.certify.distributions import (
    MAX_JOINT_OUTCOMES,
    categorical_tv,
    categorical_tv_bound,
    categorical_tv_per_dim,
    certified_radius,
    gaussian_kl,
    gaussian_kl_bound,
    gaussian_tv,
    gaussian_tv_bound,
    logit_change_tv_bound,
)
from robustprune.certify.empirical import (
    local_jacobian_norm,
    pgd_max_categorical_tv,
    pgd_max_tv,
    pgd_maximize,
    project_to_ball,
    sample_in_ball,
)
from robustprune.certify.lipschitz import (
    BOUNDS,
    LipschitzBound,
    bound_names,
    categorical_lipschitz_bounds,
    gaussian_lipschitz_bounds,
)
from robustprune.certify.local import (
    ibp_bounds,
    local_categorical_tv_bound,
    local_categorical_tv_per_dim,
    local_gaussian_delta_bound,
    local_gaussian_tv_bound,
)
from robustprune.certify.mlp import NORMS, fold_scales, mlp_apply
from robustprune.certify.monotonicity import (
    gaussian_bound_increase_fractions,
    increase_fraction,
    masks_are_nested,
    spectral_increase_fraction,
)
from robustprune.certify.norms import frobenius_norm, operator_norm, spectral_norm
from robustprune.certify.value_gap import finite_horizon_gap_bound, value_gap_bound, value_gap_factor

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_SLOPE",
    "ACTIVATION_SLOPE_RANGE",
    "BOUNDS",
    "MAX_JOINT_OUTCOMES",
    "NORMS",
    "SILU_ARGMIN",
    "SILU_MIN_VALUE",
    "LipschitzBound",
    "bound_names",
    "categorical_lipschitz_bounds",
    "categorical_tv",
    "categorical_tv_bound",
    "categorical_tv_per_dim",
    "certified_radius",
    "finite_horizon_gap_bound",
    "fold_scales",
    "frobenius_norm",
    "gaussian_bound_increase_fractions",
    "gaussian_kl",
    "gaussian_kl_bound",
    "gaussian_lipschitz_bounds",
    "gaussian_tv",
    "gaussian_tv_bound",
    "ibp_bounds",
    "increase_fraction",
    "interval_activation",
    "local_categorical_tv_bound",
    "local_categorical_tv_per_dim",
    "local_gaussian_delta_bound",
    "local_gaussian_tv_bound",
    "local_jacobian_norm",
    "logit_change_tv_bound",
    "masks_are_nested",
    "mlp_apply",
    "operator_norm",
    "pgd_max_categorical_tv",
    "pgd_max_tv",
    "pgd_maximize",
    "project_to_ball",
    "sample_in_ball",
    "spectral_increase_fraction",
    "spectral_norm",
    "value_gap_bound",
    "value_gap_factor",
]
