"""Certificates of a grid of cells (`robustprune.certify_run`), on freshly initialized smoke-preset policies.

One compiled certify program serves every test of this file (module-scoped fixture, point_mass env).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from robustprune.certify import BOUNDS, bound_names, finite_horizon_gap_bound, gaussian_tv_bound, value_gap_factor
from robustprune.certify_run import (
    LOCAL_BOUNDS,
    PATH_RTOL,
    TV_TOLERANCE,
    certify_cells,
    certify_program,
    check_certificates,
    path_sparsities,
)
from robustprune.config import CertifyConfig, ConfigError
from robustprune.envs import make_base_env
from robustprune.evaluate import make_victim
from robustprune.grid import cell_params, expand_cells
from robustprune.presets import get_preset
from robustprune.study import SoundnessError
from robustprune.train import init_train_state


@pytest.fixture(scope="module")
def certified():
    cfg = get_preset("smoke")
    cfg = dataclasses.replace(cfg, prune=dataclasses.replace(cfg.prune, sparsities=(0.0, 0.3, 0.6, 0.9)),
                              eval=dataclasses.replace(cfg.eval, eps=(0.0, 0.05, 0.3)))
    cells = expand_cells(cfg)
    state = jax.vmap(lambda c: init_train_state(cfg, c))(cell_params(cfg, cells))
    victims = make_victim(cfg, state.params, state.normalizer, make_base_env(cfg.env.name, cfg.env.backend).action_size)
    tables = certify_cells(cfg, victims, cells)
    return cfg, cells, victims, tables


def test_every_bound_every_cell_every_eps(certified):
    cfg, cells, _, tables = certified
    certificates = tables["certificates"]
    expected = set(bound_names(cfg.eval.norm)) | set(LOCAL_BOUNDS)
    assert set(certificates.bound) == expected
    assert len(certificates) == len(cells) * len(expected) * len(cfg.eval.eps)
    assert not certificates.duplicated(["cell_id", "bound", "eps"]).any()


def test_scope_and_flags(certified):
    certificates = certified[3]["certificates"]
    local = certificates.bound.isin(LOCAL_BOUNDS)
    assert (certificates.scope[local] == "local").all()
    assert (~certificates.sound[local]).all()
    assert (~certificates.monotone[local]).all()
    assert certificates.lipschitz[local].isna().all()
    for bound, monotone in certificates[~local].groupby("bound").monotone.first().items():
        assert monotone == BOUNDS[bound].monotone


def test_every_bound_at_least_pgd(certified):
    certificates = certified[3]["certificates"]
    assert (certificates.tv_pgd > 0).any()
    assert (certificates.tv_bound + TV_TOLERANCE >= certificates.tv_pgd).all()
    defined = certificates.tightness.dropna()
    assert len(defined) == (certificates.tv_pgd > 0).sum()
    assert (defined >= 1 - 1e-4).all()


def test_global_lipschitz_at_least_jacobian_norm(certified):
    certificates = certified[3]["certificates"]
    global_rows = certificates[certificates.scope == "global"]
    assert (global_rows.lipschitz_empirical > 0).all()
    assert (global_rows.lipschitz >= global_rows.lipschitz_empirical * (1 - 1e-5)).all()
    assert np.allclose(global_rows.lipschitz_ratio, global_rows.lipschitz / global_rows.lipschitz_empirical)


def test_zero_eps_gives_zero_tv(certified):
    certificates = certified[3]["certificates"]
    at_zero = certificates[certificates.eps == 0]
    assert (at_zero.tv_bound.abs() < 1e-7).all()
    assert (at_zero.tv_pgd.abs() < 1e-7).all()
    assert at_zero.tightness.isna().all()


def test_global_certified_radius_meets_tau(certified):
    cfg, _, _, tables = certified
    rows = tables["certificates"].query("scope == 'global'").drop_duplicates(["cell_id", "bound"])
    tau = cfg.certify.tau
    inside = np.asarray(gaussian_tv_bound(rows.certified_radius.to_numpy() * (1 - 1e-4), rows.lipschitz.to_numpy()))
    outside = np.asarray(gaussian_tv_bound(rows.certified_radius.to_numpy() * 1.01, rows.lipschitz.to_numpy()))
    assert (inside <= tau).all()
    assert (outside > tau).all()


def test_local_radius_ordered_and_within_tau(certified):
    certificates = certified[3]["certificates"]
    radius = certificates.drop_duplicates(["cell_id", "bound"]).pivot(
        index="cell_id", columns="bound", values="certified_radius")
    assert (radius["ibp_local_max"] > 0).all()
    assert (radius["ibp_local_max"] <= radius["ibp_local_mean"] * (1 + 1e-6)).all()
    local = certificates[(certificates.bound == "ibp_local_max") & (certificates.eps > 0)]
    within = local.eps <= local.certified_radius
    assert (local.tv_bound[within] <= certificates.tau.iloc[0] + 1e-6).all()


def test_value_gap_columns(certified):
    cfg, _, _, tables = certified
    rows = tables["certificates"].query("scope == 'global'")
    reward, horizon = cfg.env.reward_per_step_max, cfg.eval.episode_length
    assert np.allclose(rows.value_gap_bound, float(value_gap_factor(cfg.ppo.gamma)) * reward * rows.tv_bound,
                       rtol=1e-5)
    expected = np.asarray(finite_horizon_gap_bound(rows.tv_bound.to_numpy(), horizon, reward))
    assert np.allclose(rows.finite_horizon_gap_bound, expected, rtol=1e-5)
    assert (rows.finite_horizon_gap_bound <= 2 * horizon * reward * (1 + 1e-6)).all()
    assert (rows.gap_policy == "stochastic").all()
    local = tables["certificates"].query("scope == 'local'")
    assert local.value_gap_bound.isna().all()


def test_path_covers_dense_cells_at_every_grid_sparsity(certified):
    cfg, cells, _, tables = certified
    path = tables["certificates_path"]
    dense = {i for i, c in enumerate(cells) if c.sparsity == 0}
    assert set(path.cell_id) == dense
    assert sorted(path.sparsity.unique()) == list(path_sparsities(cfg))
    assert np.allclose(path.sparsity_achieved, path.sparsity, atol=1e-3)


def test_path_monotone_bounds_never_rise(certified):
    cfg, path = certified[0], certified[3]["certificates_path"]
    monotone = path[path.monotone]
    assert set(monotone.bound) == {name for name in bound_names(cfg.eval.norm) if BOUNDS[name].monotone}
    for _, series in monotone.sort_values("sparsity").groupby(["cell_id", "bound"]):
        values = series.lipschitz.to_numpy()
        assert (values[1:] <= values[:-1] * (1 + PATH_RTOL)).all()
        assert values[-1] < values[0]
    assert not monotone.rose.any()
    assert (monotone.increase_fraction == 0).all()


def test_path_rose_flags_match_values(certified):
    path = certified[3]["certificates_path"]
    spectral = path[path.bound == "spectral_product"].sort_values(["cell_id", "sparsity"])
    for _, series in spectral.groupby("cell_id"):
        values = series.lipschitz.to_numpy()
        rose = values[1:] > values[:-1] * (1 + PATH_RTOL)
        assert (series.rose.to_numpy()[1:] == rose).all()
        assert not series.rose.iloc[0]
        assert np.isclose(series.increase_fraction.iloc[0], rose.mean())


def test_rerun_reuses_the_compiled_program(certified):
    cfg, cells, victims, tables = certified
    before = certify_program(cfg)._cache_size()
    again = certify_cells(cfg, victims, cells)
    assert certify_program(cfg)._cache_size() == before
    pd.testing.assert_frame_equal(again["certificates"], tables["certificates"])


def test_check_flags_a_bound_below_pgd(certified):
    certificates = certified[3]["certificates"].copy()
    check_certificates(certificates, certified[3]["certificates_path"])
    row = certificates.index[(certificates.bound == "abs_product") & (certificates.eps > 0)][0]
    certificates.loc[row, "tv_bound"] = certificates.loc[row, "tv_pgd"] / 2
    with pytest.raises(SoundnessError, match="tv_pgd above tv_bound"):
        check_certificates(certificates)


def test_check_flags_a_monotone_rise(certified):
    path = certified[3]["certificates_path"].copy()
    path.loc[path.index[path.monotone][1], "rose"] = True
    with pytest.raises(SoundnessError, match="monotone bound rose"):
        check_certificates(certified[3]["certificates"], path)


def test_shared_raw_ball_scales_the_bounds(certified):
    cfg, cells, victims, tables = certified
    scaled = victims.replace(ball_scale=jnp.full_like(victims.normalizer.mean, 2.0))
    doubled = certify_cells(cfg, scaled, cells)["certificates"]
    base = tables["certificates"].query("scope == 'global'").lipschitz.to_numpy()
    assert np.allclose(doubled.query("scope == 'global'").lipschitz.to_numpy(), 2 * base, rtol=1e-5)


@pytest.mark.parametrize("setting, value", [("tau", 0.0), ("tau", 1.0), ("pgd_steps", 0), ("state_stride", 100)])
def test_bad_settings_raise_config_error(setting, value):
    with pytest.raises(ConfigError, match=f"certify.{setting}"):
        CertifyConfig(**{setting: value}).validate()
