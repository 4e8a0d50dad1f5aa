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


# --- methods, allocations and caps -----------------------------------------------------------------------------

from robustprune.pruning import (  # noqa: E402
    ALLOCATIONS,
    METHODS,
    MaskParams,
    capacity_matched_hidden_sizes,
    compute_masks,
    erk_weights,
    layer_caps,
    layer_densities,
    make_schedule,
    num_kernel_weights,
    schedule_settings,
)

NUM_WEIGHTS = sum(a * b for a, b in SHAPES)


def mask_params(method="magnitude", allocation="global", cap=1.0, seed=0):
    return MaskParams(
        method=jnp.asarray(METHODS.index(method), jnp.int32),
        allocation=jnp.asarray(ALLOCATIONS.index(allocation), jnp.int32),
        max_sparsity_first_last=jnp.asarray(cap, jnp.float32),
        score_key=jax.random.PRNGKey(seed),
    )


@jax.jit
def fresh_masks(kernels, sparsity, params):
    return compute_masks(kernels, [jnp.ones_like(k) for k in kernels], sparsity, params)


def zero_counts(masks):
    return np.asarray([int(np.sum(np.asarray(m) == 0)) for m in masks])


SETTINGS = [(m, a, c) for m in METHODS for a in ALLOCATIONS for c in (1.0, 0.7)]  # 0.7 allows up to 0.918


@pytest.mark.parametrize("method,allocation,cap", SETTINGS)
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.77, 0.9])
def test_counts_within_one_weight(method, allocation, cap, sparsity):
    params = mask_params(method, allocation, cap)
    counts = zero_counts(fresh_masks(random_kernels(4), jnp.float32(sparsity), params))
    assert abs(counts.sum() - sparsity * NUM_WEIGHTS) <= 1.0
    sizes = np.asarray([a * b for a, b in SHAPES])
    caps = np.asarray(layer_caps(len(SHAPES), jnp.float32(cap)))
    assert np.all(counts <= np.floor(caps * sizes) + 1)
    if allocation != "global":
        densities = np.asarray(layer_densities(SHAPES, jnp.float32(sparsity), params.allocation, jnp.asarray(caps)))
        assert np.all(np.abs(counts - (1 - densities) * sizes) <= 1.0)


def evci_erk(shapes, density):
    """Reference ERK (Evci et al., 2020): scale ρ_l to the target density, keep layers that would exceed 1 dense
    and re-solve the rest, until no layer exceeds 1."""
    sizes = np.asarray([a * b for a, b in shapes], float)
    rho = np.asarray([(a + b) / (a * b) for a, b in shapes])
    dense = np.zeros(len(shapes), bool)
    while True:
        budget = density * sizes.sum() - sizes[dense].sum()
        eps = budget / np.sum(rho[~dense] * sizes[~dense])
        over = (~dense) & (eps * rho > 1)
        if not over.any():
            return np.where(dense, 1.0, eps * rho)
        dense |= over


@pytest.mark.parametrize("sparsity", [0.1, 0.5, 0.8, 0.95])
def test_erk_matches_formula(sparsity):
    got = np.asarray(layer_densities(SHAPES, jnp.float32(sparsity), jnp.int32(ALLOCATIONS.index("erk")),
                                     jnp.ones(len(SHAPES))))
    np.testing.assert_allclose(got, evci_erk(SHAPES, 1 - sparsity), rtol=1e-5)
    rho = np.asarray(erk_weights(SHAPES))
    free = got < 1 - 1e-6
    assert free.any()
    assert np.ptp(got[free] / rho[free]) <= 1e-5 * np.max(got[free] / rho[free])
    sizes = np.asarray([a * b for a, b in SHAPES])
    assert np.sum(got * sizes) == pytest.approx((1 - sparsity) * NUM_WEIGHTS, rel=1e-5)


def test_uniform_allocation_is_the_target_everywhere():
    got = layer_densities(SHAPES, jnp.float32(0.6), jnp.int32(ALLOCATIONS.index("uniform")), jnp.ones(len(SHAPES)))
    np.testing.assert_allclose(got, 0.4, rtol=1e-6)


def test_cap_keeps_output_layer_alive_at_high_sparsity():
    kernels = random_kernels(5)
    kernels[-1] = kernels[-1] * 1e-3  # small output weights: uncapped global magnitude prunes them all
    uncapped = zero_counts(fresh_masks(kernels, jnp.float32(0.95), mask_params()))
    capped = zero_counts(fresh_masks(kernels, jnp.float32(0.95), mask_params(cap=0.5)))
    assert uncapped[-1] == 32
    assert capped[-1] <= 16
    assert capped.sum() == round(0.95 * NUM_WEIGHTS)


def test_random_masks_nested_and_independent_of_weights():
    params = mask_params("random", "global")
    low = fresh_masks(random_kernels(6), jnp.float32(0.3), params)
    high = fresh_masks(random_kernels(7), jnp.float32(0.7), params)  # other weights, same cell key
    for a, b in zip(low, high):
        assert not np.any((np.asarray(a) == 0) & (np.asarray(b) == 1))
    magnitude = fresh_masks(random_kernels(7), jnp.float32(0.7), mask_params())
    assert any(np.any(np.asarray(a) != np.asarray(b)) for a, b in zip(high, magnitude))


@pytest.mark.parametrize("method,allocation,cap", SETTINGS)
def test_masks_never_regrow_any_setting(method, allocation, cap):
    params = mask_params(method, allocation, cap)
    masks = [jnp.ones_like(k) for k in random_kernels(0)]
    for step, target in enumerate([0.2, 0.5, 0.5, 0.3, 0.8]):
        new = jax.jit(compute_masks)(random_kernels(20 + step), masks, jnp.float32(target), params)
        for old_mask, new_mask in zip(masks, new):
            assert not np.any((np.asarray(old_mask) == 0) & (np.asarray(new_mask) == 1))
        masks = new
    assert abs(zero_counts(masks).sum() - 0.8 * NUM_WEIGHTS) <= 1.0


def test_traced_method_and_allocation_batch():
    kernels = random_kernels(8)
    settings = [mask_params(m, a, c, seed=i) for i, (m, a, c) in enumerate(SETTINGS)]
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *settings)
    targets = jnp.linspace(0.1, 0.9, len(settings))
    batched = jax.vmap(lambda s, p: fresh_masks(kernels, s, p))(targets, batch)
    for i, params in enumerate(settings):
        alone = fresh_masks(kernels, targets[i], params)
        for a, b in zip(alone, batched):
            np.testing.assert_array_equal(a, b[i])


# --- the schedule family ----------------------------------------------------------------------------------------

def named(name, final=0.6, num_updates=40):
    return make_schedule(schedule_settings(name, final, num_updates, start_frac=0.25, end_frac=0.75, exponent=3.0,
                                           period=3, micro_increment=0.05, micro_period=2))


@pytest.mark.parametrize("update", [0, 9, 10, 11, 12, 13, 20, 33, 34, 39])
def test_micro_schedule_closed_form(update):
    start, end = 10, 10 + 2 * 0.6 / 0.05  # start = round(0.25 · 39), 12 increments of 0.05 every 2 updates
    expected = 0.6 if update >= end else 0.05 * max(0, (update - start) // 2)
    assert float(scheduled_sparsity(named("micro"), update)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("update", [0, 9, 10, 38, 39])
def test_one_shot_and_post_training_closed_form(update):
    assert float(scheduled_sparsity(named("one_shot"), update)) == pytest.approx(0.6 if update >= 10 else 0.0)
    assert float(scheduled_sparsity(named("post_training"), update)) == pytest.approx(0.6 if update == 39 else 0.0)


@pytest.mark.parametrize("update", [0, 10, 13, 14, 25, 28, 29, 30, 39])
def test_named_gradual_closed_form(update):
    start, end, period = 10, 29, 3  # round(0.25 · 39), round(0.75 · 39)
    last_event = end if update >= end else start + period * ((update - start) // period)
    progress = min(max((last_event - start) / (end - start), 0.0), 1.0)
    expected = 0.0 if update < start else 0.6 * (1 - (1 - progress) ** 3)
    assert float(scheduled_sparsity(named("gradual"), update)) == pytest.approx(expected, abs=1e-6)


def test_schedules_batch_in_one_program():
    names = ["gradual", "one_shot", "micro", "post_training"]
    batch = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[named(n) for n in names])
    updates = jnp.arange(40)
    curves = jax.jit(jax.vmap(lambda p: jax.vmap(lambda t: scheduled_sparsity(p, t))(updates)))(batch)
    for i, name in enumerate(names):
        alone = [float(scheduled_sparsity(named(name), t)) for t in range(40)]
        np.testing.assert_allclose(curves[i], alone, atol=1e-7)
        assert np.all(np.diff(np.asarray(curves[i])) >= 0)


# --- capacity control -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.8, 0.95])
def test_capacity_matched_widths_are_closest(sparsity):
    obs, act, hidden = 4, 1, (64, 32)
    sizes = capacity_matched_hidden_sizes(obs, act, hidden, sparsity)
    target = (1 - sparsity) * num_kernel_weights(obs, act, hidden)
    gap = abs(num_kernel_weights(obs, act, sizes) - target)
    candidates = [(w, max(1, round(w / 2))) for w in range(1, 65)]
    assert gap == min(abs(num_kernel_weights(obs, act, c) - target) for c in candidates)
    assert sizes[0] >= 2 * sizes[1] - 1
    if sparsity == 0.0:
        assert sizes == hidden
