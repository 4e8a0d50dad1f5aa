"""Certify the trained cells of a grid: global and local certificates, empirical lower bounds, and the
post-training pruning path. `robustprune.study` calls `certify_cells` on every trained chunk, and
`robustprune.certify_folder` calls it again on a saved run folder.

One compiled program per network shape (`certify_program`) handles every cell of a chunk (vmap) at every ε:
1. Visited states: a short deterministic (mean-action) rollout of each cell without attack
   (`collect_states`), in the cell's normalized observation units.
2. Global bounds: every bound of `robustprune.certify.BOUNDS` on the masked mean network with Σ^{-1/2}
   folded in, turned into TV bounds, certified radii at τ and value-gap bounds. They hold at every state.
3. Local bounds: interval bound propagation (IBP) over the ε-ball at each visited state, summarized as the
   mean and the max over states (`ibp_local_mean`, `ibp_local_max`). They hold at those states only.
4. Empirical lower bounds at the same states: the TV that PGD attains (`tv_pgd`) and the norm of the local
   Jacobian (`lipschitz_empirical`). `tightness` = bound / attained value, which is ≥ 1 for a sound bound.
5. The post-training path: each cell's masks shrunk by global magnitude pruning at every grid sparsity
   (nested masks, same weights), with every bound at each step. Only dense cells' paths are reported.

The ball follows the evaluation's threat model: each victim's `ball_scale` (None, or std_ref / std_cell
under "shared_raw") is the certificates' `in_scale`.
"""

from __future__ import annotations

import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from robustprune import certify_policy as cp
from robustprune.certify import BOUNDS, finite_horizon_gap_bound, value_gap_bound
from robustprune.config import StudyConfig
from robustprune.envs import make_train_env
from robustprune.networks import mean_biases, mean_kernels
from robustprune.pruning import achieved_sparsity, global_magnitude_masks

logger = logging.getLogger(__name__)

CERTIFY_KEY = 30_000  # one key for every cell (common random numbers), so chunking never changes a result
LOCAL_BOUNDS = ("ibp_local_mean", "ibp_local_max")
RADIUS_RANGE = (1e-8, 1e3)  # bisection interval of the IBP certified radius, in ε units
RADIUS_ITERATIONS = 48  # halvings of the log-interval: relative precision about 1e-13


def path_sparsities(cfg: StudyConfig) -> tuple[float, ...]:
    """Return the sparsities of the post-training path: the grid's, with 0 added, in ascending order."""
    return tuple(sorted(set(cfg.prune.sparsities) | {0.0}))


def collect_states(cfg: StudyConfig, victim, key: jax.Array) -> jax.Array:
    """Collect visited states of one cell: [rollout_envs · (rollout_steps // state_stride), obs], normalized.

    The environments auto-reset, so every kept state is a state the clean policy actually reaches. Actions
    are the clipped mean, as in the evaluation.
    """
    c = cfg.certify
    env = make_train_env(cfg.env.name, cfg.env.backend, cfg.eval.episode_length, cfg.env.action_repeat)
    state = env.reset(jax.random.split(key, c.rollout_envs))

    def step(state, _):
        obs = victim.normalizer.normalize(state.obs)
        return env.step(state, jnp.clip(victim.action(obs), -1.0, 1.0)), obs

    _, observations = jax.lax.scan(step, state, None, c.rollout_steps)  # [steps, envs, obs]
    kept = c.rollout_steps // c.state_stride
    observations = observations[: kept * c.state_stride : c.state_stride]
    return observations.reshape(-1, observations.shape[-1])


def _monotone_radius(tv_at, tau: jax.Array) -> jax.Array:
    """Find the largest ε in RADIUS_RANGE with tv_at(ε) ≤ τ, for tv_at non-decreasing in ε (log bisection).

    Returns the certified (lower) end of the final interval, 0 when even the smallest ε fails, and +inf
    when the largest ε passes.
    """
    low, high = jnp.log(RADIUS_RANGE[0]), jnp.log(RADIUS_RANGE[1])

    def halve(_, interval):
        lo, hi = interval
        mid = 0.5 * (lo + hi)
        ok = tv_at(jnp.exp(mid)) <= tau
        return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)

    lo, _ = jax.lax.fori_loop(0, RADIUS_ITERATIONS, halve, (low, high))
    radius = jnp.where(tv_at(jnp.exp(low)) <= tau, jnp.exp(lo), 0.0)
    return jnp.where(tv_at(jnp.exp(high)) <= tau, jnp.inf, radius)


def _path_bounds(cfg: StudyConfig, kernels, log_std, in_scale):
    """Compute every global bound along one cell's post-training path.

    The masks start dense and shrink by global magnitude pruning at each of `path_sparsities`, so they are
    nested. Returns ({bound: [steps]}, masked kernels [steps, in, out] per layer, achieved sparsity [steps]).
    """
    def step(old_masks, sparsity):
        new_masks = global_magnitude_masks(kernels, old_masks, sparsity)
        masked = [m * k for m, k in zip(new_masks, kernels)]
        bounds = cp.global_bounds(cfg, masked, log_std, in_scale)
        return new_masks, (bounds, masked, achieved_sparsity(new_masks))

    sparsities = jnp.asarray(path_sparsities(cfg), kernels[0].dtype)
    dense = tuple(jnp.ones_like(k) for k in kernels)
    _, (bounds, masked, achieved) = jax.lax.scan(step, dense, sparsities)
    return bounds, masked, achieved


def certify_cell(cfg: StudyConfig, victim, eps_values: jax.Array, key: jax.Array) -> dict:
    """Compute the certificates and empirical lower bounds of one cell at every ε (vmap over cells).

    Returns arrays: `lipschitz` {bound: []}, `lipschitz_empirical` [] (max over states), `tv_pgd` and
    `tv_ibp` [eps, states], `radius_ibp_mean` and `radius_ibp_max` [] at τ, and the post-training path:
    `path_lipschitz` {bound: [steps]}, `path_ibp_max` [steps] (IBP at the largest ε, max over states) and
    `path_sparsity` [steps] (achieved).
    """
    c = cfg.certify
    num_hidden = len(cfg.network.hidden_sizes)
    kernels = mean_kernels(victim.policy_params, num_hidden)
    biases = mean_biases(victim.policy_params, num_hidden)
    log_std = None if cp.is_categorical(cfg) else victim.log_std
    in_scale = victim.ball_scale
    state_key, pgd_key = jax.random.split(key)
    states = collect_states(cfg, victim, state_key)

    lipschitz = cp.global_bounds(cfg, kernels, log_std, in_scale)
    jacobian_norm = jax.vmap(lambda x: cp.jacobian_norm(cfg, victim, x, in_scale))(states)

    def ibp_at(masked_kernels, x, eps):
        return cp.local_tv_bound(cfg, masked_kernels, biases, log_std, x, eps, in_scale)

    def pgd_at(x, eps, k):
        return cp.pgd_tv(cfg, victim, x, eps, k, in_scale)

    state_keys = jax.random.split(pgd_key, states.shape[0])
    per_state = jax.vmap(pgd_at, in_axes=(0, None, 0))
    tv_pgd = jax.vmap(per_state, in_axes=(None, 0, None))(states, eps_values, state_keys)

    def ibp_states(eps):
        return jax.vmap(lambda x: ibp_at(kernels, x, eps))(states)

    tv_ibp = jax.vmap(ibp_states)(eps_values)

    tau = jnp.asarray(c.tau, kernels[0].dtype)
    path_lipschitz, path_kernels, path_sparsity = _path_bounds(cfg, kernels, log_std, in_scale)
    eps_max = jnp.max(eps_values)
    path_ibp = jax.vmap(lambda ks: jnp.max(jax.vmap(lambda x: ibp_at(ks, x, eps_max))(states)))(path_kernels)
    return {
        "lipschitz": lipschitz,
        "lipschitz_empirical": jnp.max(jacobian_norm),
        "tv_pgd": tv_pgd,
        "tv_ibp": tv_ibp,
        "radius_ibp_mean": _monotone_radius(lambda e: jnp.mean(ibp_states(e)), tau),
        "radius_ibp_max": _monotone_radius(lambda e: jnp.max(ibp_states(e)), tau),
        "path_lipschitz": path_lipschitz,
        "path_ibp_max": path_ibp,
        "path_sparsity": path_sparsity,
    }


@functools.lru_cache(maxsize=16)
def certify_program(cfg: StudyConfig):
    """Return the jitted `certify_cell` over a leading cell axis of victims: (victims, eps [E], key) → dict."""
    per_cell = jax.vmap(functools.partial(certify_cell, cfg), in_axes=(0, None, None))
    return jax.jit(per_cell)


TV_TOLERANCE = 1e-6  # slack for float32 rounding when comparing attained and certified TVs
PATH_RTOL = 1e-5  # a path value counts as a rise above this relative change (float32 sums of up to ~1e3 terms)
LIPSCHITZ_RTOL = 1e-5  # relative slack of lipschitz_empirical <= lipschitz, for float32 rounding


CERTIFICATE_COLUMNS = (
    "cell_id", "bound", "scope", "sound", "monotone", "norm", "eps", "lipschitz", "lipschitz_empirical",
    "lipschitz_ratio", "tv_bound", "tv_pgd", "tightness", "tau", "certified_radius", "value_gap_bound",
    "finite_horizon_gap_bound", "gap_policy", "num_states",
)
"""Columns of certificates.csv, in order (see `certificates_table`)."""


def _long_rows(num_cells: int, eps: np.ndarray, **columns) -> pd.DataFrame:
    """Build a cell × ε table: [cells, eps] columns are raveled, [cells] columns repeated, scalars broadcast."""
    shape = (num_cells, len(eps))
    data = {"cell_id": np.repeat(np.arange(num_cells), len(eps)), "eps": np.tile(eps, num_cells)}
    for name, value in columns.items():
        value = np.asarray(value)
        data[name] = np.broadcast_to(value[:, None] if value.ndim == 1 else value, shape).ravel()
    return pd.DataFrame(data)


def _ratio(bound: np.ndarray, attained: np.ndarray) -> np.ndarray:
    """Return bound / attained, or NaN where PGD attained no TV (ε = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(attained > 0, bound / attained, np.nan)


def certificates_table(cfg: StudyConfig, raw: dict) -> pd.DataFrame:
    """One row per cell × bound × ε (local cell ids: the row index of `raw`'s leading axis).

    Columns: bound, scope ('global' or 'local'), sound (valid at every state, not only the visited ones),
    monotone, norm, eps, lipschitz (global only), lipschitz_empirical and lipschitz_ratio, tv_bound, tv_pgd (PGD's attained TV at
    the visited states: max over states, or the mean for `ibp_local_mean`), tightness = tv_bound / tv_pgd,
    tau and certified_radius, value_gap_bound and finite_horizon_gap_bound (stochastic policy, global only),
    num_states.
    """
    eps = np.asarray(cfg.eval.eps, np.float64)
    tv_pgd, tv_ibp = np.asarray(raw["tv_pgd"]), np.asarray(raw["tv_ibp"])  # [cells, eps, states]
    num_cells, _, num_states = tv_pgd.shape
    empirical = np.asarray(raw["lipschitz_empirical"])
    common = dict(norm=cfg.eval.norm, lipschitz_empirical=empirical, tau=cfg.certify.tau, num_states=num_states)
    frames = []
    for name, values in raw["lipschitz"].items():
        per_factor = np.asarray(values)  # [cells], or [cells, act] for a categorical policy
        lipschitz = cp.scalar_lipschitz(cfg, per_factor)
        tv = cp.global_tv_bound(cfg, eps[None, :], per_factor[:, None])
        attained = tv_pgd.max(axis=-1)
        frames.append(_long_rows(
            num_cells, eps, bound=np.full(num_cells, name), scope="global", sound=True,
            monotone=BOUNDS[name].monotone, lipschitz=lipschitz, lipschitz_ratio=_ratio(lipschitz, empirical),
            tv_bound=tv, tv_pgd=attained, tightness=_ratio(tv, attained),
            certified_radius=cp.radius(cfg, per_factor, cfg.certify.tau),
            value_gap_bound=np.asarray(value_gap_bound(tv, cfg.ppo.gamma, cfg.env.reward_per_step_max)),
            finite_horizon_gap_bound=np.asarray(finite_horizon_gap_bound(
                tv, cfg.eval.episode_length, cfg.env.reward_per_step_max)),
            gap_policy="stochastic", **common))
    for name, reduce in zip(LOCAL_BOUNDS, (np.mean, np.max)):
        tv, attained = reduce(tv_ibp, axis=-1), reduce(tv_pgd, axis=-1)
        frames.append(_long_rows(
            num_cells, eps, bound=np.full(num_cells, name), scope="local", sound=False, monotone=False,
            lipschitz=np.nan, lipschitz_ratio=np.nan, tv_bound=tv, tv_pgd=attained,
            tightness=_ratio(tv, attained), certified_radius=np.asarray(raw[f"radius_{name.replace('_local', '')}"]),
            value_gap_bound=np.nan, finite_horizon_gap_bound=np.nan, gap_policy="", **common))
    return pd.concat(frames, ignore_index=True)[list(CERTIFICATE_COLUMNS)]


def path_table(cfg: StudyConfig, raw: dict, dense: np.ndarray) -> pd.DataFrame:
    """One row per dense cell × bound × path step (local cell ids; `dense` is a bool mask over cells).

    Columns: cell_id, sparsity (target), sparsity_achieved, bound, scope, monotone, lipschitz (global
    bounds), eps (the largest ε) and tv_bound at that ε, rose and increase_fraction. A step rose when its
    value exceeds the previous step's by more than PATH_RTOL. Global bounds compare lipschitz, and
    `ibp_local_max` compares tv_bound. increase_fraction is the share of the cell's steps that rose.
    """
    sparsities = np.asarray(path_sparsities(cfg))
    eps_max = float(max(cfg.eval.eps))
    achieved = np.asarray(raw["path_sparsity"])  # [cells, steps]
    series = {name: np.asarray(v) for name, v in raw["path_lipschitz"].items()}
    series["ibp_local_max"] = np.asarray(raw["path_ibp_max"])
    frames = []
    for name, values in series.items():
        local = name in LOCAL_BOUNDS
        tv = values if local else cp.global_tv_bound(cfg, eps_max, values)
        values = values if local else cp.scalar_lipschitz(cfg, values)
        compared = tv if local else values
        rose = np.zeros_like(compared, dtype=bool)
        rose[:, 1:] = compared[:, 1:] > compared[:, :-1] * (1.0 + PATH_RTOL)
        fraction = rose[:, 1:].mean(axis=1) if len(sparsities) > 1 else np.full(len(values), np.nan)
        for i in np.flatnonzero(dense):
            frames.append(pd.DataFrame({
                "cell_id": i, "sparsity": sparsities, "sparsity_achieved": achieved[i], "bound": name,
                "scope": "local" if local else "global", "monotone": False if local else BOUNDS[name].monotone,
                "lipschitz": np.nan if local else values[i], "eps": eps_max, "tv_bound": tv[i], "rose": rose[i],
                "increase_fraction": fraction[i]}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["cell_id", "sparsity", "sparsity_achieved", "bound", "scope", "monotone", "lipschitz", "eps",
                 "tv_bound", "rose", "increase_fraction"])


def certify_cells(cfg: StudyConfig, victims, cells: list) -> dict[str, pd.DataFrame]:
    """Certify every cell of `victims` (leading axis; `cells` the matching Cell list, padding included).

    `victims` must carry the threat model's ball scale (`attack_eval.prepare_victims`). Returns the tables
    `certificates` and `certificates_path` with local cell ids. Raises SoundnessError when PGD attains more
    TV at a visited state than IBP certifies there.
    """
    eps = jnp.asarray(cfg.eval.eps)
    raw = jax.device_get(certify_program(cfg)(victims, eps, jax.random.PRNGKey(CERTIFY_KEY)))
    excess = np.asarray(raw["tv_pgd"]) - np.asarray(raw["tv_ibp"])
    if np.nanmax(excess) > TV_TOLERANCE:
        from robustprune.study import SoundnessError

        cell, j, state = np.unravel_index(np.nanargmax(excess), excess.shape)
        raise SoundnessError(f"PGD attained TV above the IBP bound by {excess[cell, j, state]:.3g} at cell "
                             f"{cell} (local index), eps={cfg.eval.eps[j]}, visited state {state}.")
    dense = np.asarray([c.sparsity == 0 for c in cells]) if cfg.certify.post_training_path else \
        np.zeros(len(cells), bool)
    return {"certificates": certificates_table(cfg, raw), "certificates_path": path_table(cfg, raw, dense)}


def check_certificates(certificates: pd.DataFrame, path: pd.DataFrame | None = None) -> None:
    """Raise SoundnessError when a certificate falls below its empirical lower bound, or a monotone bound
    rises along the post-training path. Rows with NaN (diverged cells) are skipped.

    Checks: tv_pgd ≤ tv_bound (every row), lipschitz_empirical ≤ lipschitz (global rows), and no `rose` on a
    monotone global bound. The check of the evaluations' tv_empirical is `robustprune.study.check_soundness`.
    """
    from robustprune.study import SoundnessError

    problems = []
    if "tv_pgd" in certificates:
        bad = certificates[certificates.tv_pgd > certificates.tv_bound + TV_TOLERANCE]
        if len(bad):
            problems.append(f"{len(bad)} rows with tv_pgd above tv_bound:\n{bad.head().to_string()}")
        limit = certificates.lipschitz * (1 + LIPSCHITZ_RTOL) + TV_TOLERANCE
        bad = certificates[certificates.lipschitz_empirical > limit]
        if len(bad):
            problems.append(f"{len(bad)} rows with lipschitz_empirical above lipschitz:\n{bad.head().to_string()}")
    if path is not None and len(path):
        bad = path[path.monotone.astype(bool) & path.rose.astype(bool)]
        if len(bad):
            problems.append(f"{len(bad)} steps where a monotone bound rose on the post-training path:\n"
                            f"{bad.head().to_string()}")
    if problems:
        raise SoundnessError("Certificate check failed. " + "\n".join(problems))
