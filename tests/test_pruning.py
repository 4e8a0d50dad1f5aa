"""Masks and schedules: exact counts, no regrowth, and the closed-form schedule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from robustprune.pruning import ScheduleParams, achieved_sparsity, global_magnitude_masks, scheduled_sparsity

SHAPES = [(4, 16), (16, 16), (16, 2)]


def random_kernels(seed):
    keys = jax.random.split(jax.random.PRNGKey(seed), len(SHAPES))
    return [jax.random.normal(k, s) for k, s in zip(keys, SHAPES)]


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.33, 0.5, 0.9, 0.99])
def test_mask_count_exact(sparsity):
    kernels = random_kernels(0)
    masks = global_magnitude_masks(kernels, [jnp.ones_like(k) for k in kernels], sparsity)
    n = sum(k.size for k in kernels)
    zeros = sum(int(jnp.sum(m == 0)) for m in masks)
    assert zeros == round(sparsity * n)


def test_mask_prunes_smallest_magnitudes():
    kernels = random_kernels(1)
    masks = global_magnitude_masks(kernels, [jnp.ones_like(k) for k in kernels], 0.5)
    kept = np.concatenate([np.abs(k)[m > 0] for k, m in zip(kernels, masks)])
    pruned = np.concatenate([np.abs(k)[m == 0] for k, m in zip(kernels, masks)])
    assert pruned.max() <= kept.min()


def test_masks_never_regrow():
    kernels = random_kernels(2)
    masks = [jnp.ones_like(k) for k in kernels]
    for step, target in enumerate([0.2, 0.4, 0.4, 0.1, 0.7]):
        kernels = random_kernels(10 + step)  # weights change between pruning events
        new = global_magnitude_masks(kernels, masks, target)
        for old_mask, new_mask in zip(masks, new):
            assert not np.any((np.asarray(old_mask) == 0) & (np.asarray(new_mask) == 1))
        masks = new
    assert float(achieved_sparsity(masks)) == pytest.approx(0.7, abs=1 / 336)


def test_mask_sparsity_is_traceable():
    kernels = random_kernels(3)
    ones = [jnp.ones_like(k) for k in kernels]
    fn = jax.jit(jax.vmap(lambda s: achieved_sparsity(global_magnitude_masks(kernels, ones, s))))
    np.testing.assert_allclose(fn(jnp.array([0.0, 0.25, 0.5])), [0.0, 0.25, 0.5], atol=1 / 336)


def schedule(final=0.8, start=10.0, end=50.0, exponent=3.0, period=5.0):
    return ScheduleParams(*(jnp.asarray(x) for x in (final, start, end, exponent, period)))


@pytest.mark.parametrize("update", [0, 9, 10, 12, 15, 33, 49, 50, 80])
def test_gradual_schedule_closed_form(update):
    last_event = 10 + 5 * ((update - 10) // 5) if update < 50 else 50
    progress = min(max((last_event - 10) / 40, 0.0), 1.0)
    expected = 0.0 if update < 10 else 0.8 * (1 - (1 - progress) ** 3)
    assert float(scheduled_sparsity(schedule(), update)) == pytest.approx(expected, abs=1e-6)


def test_one_shot_schedule_jumps():
    params = schedule(start=20.0, end=20.0)
    assert float(scheduled_sparsity(params, 19)) == 0.0
    assert float(scheduled_sparsity(params, 20)) == pytest.approx(0.8)
    assert float(scheduled_sparsity(params, 99)) == pytest.approx(0.8)
