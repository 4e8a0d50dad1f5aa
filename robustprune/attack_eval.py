"""Run the attack suite over a grid: prepare victims for the threat model, fit the learned attacks, evaluate
every attack at every ε, and add the worst case over the suite per cell and ε.
"""

from __future__ import annotations

import functools
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from robustprune.attacks import LEARNED_ATTACKS, TRANSFER_ATTACKS
from robustprune.attacks.learned import fit_adversaries
from robustprune.attacks.threat import reference_cells, with_surrogates, with_threat_model
from robustprune.config import ConfigError, StudyConfig
from robustprune.evaluate import evaluate_grid, evaluate_members

logger = logging.getLogger(__name__)

FIT_KEY = 20_000  # key of every learned attack's training, fixed so reruns reproduce


def prepare_victims(cfg: StudyConfig, victims, cells=None):
    """Set the threat model's ball scale and, for transfer attacks, the dense surrogate of each cell.

    cells: the Cell list matching the victims' leading axis (needed for "shared_raw" and transfer attacks).
    """
    needs_reference = cfg.attack.threat_model == "shared_raw" or any(a in TRANSFER_ATTACKS for a in cfg.eval.attacks)
    if not needs_reference:
        return victims
    if cells is None:
        raise ConfigError("The shared_raw threat model and transfer attacks need the grid's cells to find each "
                          "seed's dense reference cell; pass cells= to evaluate_all.")
    try:
        reference = reference_cells([c.sparsity for c in cells], [c.seed for c in cells])
    except ValueError as err:
        raise ConfigError(f"{err} in this chunk of the grid. Run the study in one chunk (a --chunk-size of at "
                          f"least {cfg.num_cells}) so every seed's dense cell is evaluated with its pruned cells.")
    victims = with_threat_model(victims, cfg.attack.threat_model, reference)
    if any(a in TRANSFER_ATTACKS for a in cfg.eval.attacks):
        victims = with_surrogates(victims, reference)
    return victims


@functools.lru_cache(maxsize=32)
def attack_program(cfg: StudyConfig, attack: str, learned: bool):
    """Build the jitted evaluation of one attack over a grid: (victims, eps [num_eps], key[, adversaries]) →
    EvalResult [cells, num_eps, ...], plus, when learned, the index of each (cell, ε)'s strongest member."""
    if learned:
        return jax.jit(lambda v, e, k, a: evaluate_members(cfg, attack, v, e, k, a))
    return jax.jit(lambda v, e, k: evaluate_grid(cfg, attack, v, e, k))


def evaluate_attack(cfg: StudyConfig, attack: str, victims, eps_values, key, adversaries=None):
    """Evaluate one attack on every cell at every ε. Returns (EvalResult, best member index or None, timing)."""
    learned = adversaries is not None
    args = (victims, eps_values, key) + ((adversaries,) if learned else ())
    start = time.perf_counter()
    compiled = attack_program(cfg, attack, learned).lower(*args).compile()
    mid = time.perf_counter()
    out = jax.device_get(compiled(*args))
    timing = {"compile_s": mid - start, "run_s": time.perf_counter() - mid}
    result, best = out if learned else (out, None)
    return result, best, timing


def nonzero_eps_index(eps_values) -> tuple[np.ndarray, np.ndarray]:
    """Return the ε > 0 to train adversaries at, and for each ε its index among them.

    A ball of radius 0 admits no perturbation, so an adversary trained at ε = 0 is never needed: ε = 0 reuses
    the first trained one, whose perturbation the zero ball cancels. With no ε > 0, every ε is kept.
    """
    eps = np.asarray(eps_values)
    trained = np.flatnonzero(eps > 0)
    if trained.size == 0:
        return eps, np.arange(eps.size)
    position = np.zeros(eps.size, dtype=np.int32)
    position[trained] = np.arange(trained.size)
    return eps[trained], position


def fit_learned(cfg: StudyConfig, attack: str, victims, eps_values, cache: dict, timings: dict, progress: bool):
    """Train the adversaries a learned attack needs, once per kind, and cache them (RS and RS+MAD share Qs).

    Adversaries are trained at the ε > 0 only (`nonzero_eps_index`), and the result has the ε axis of eps_values.
    """
    kind = LEARNED_ATTACKS[attack]
    if kind not in cache:
        key = jax.random.PRNGKey(FIT_KEY)
        trained_eps, position = nonzero_eps_index(eps_values)
        params, info = fit_adversaries(cfg, kind, victims.replace(surrogate=None), jnp.asarray(trained_eps), key,
                                       progress=progress)
        cache[kind] = jax.tree_util.tree_map(lambda x: x[:, position], params)
        timings[f"fit_{kind}"] = {"compile_s": 0.0, "run_s": info["fit_s"]}
        for name, value in info.items():
            if name != "fit_s":
                logger.info("Fitted %s adversaries: %s median %.4g", kind, name, float(jnp.median(value)))
    return cache[kind]


def worst_case_rows(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Per cell and ε, the row of the attack with the lowest mean return, relabeled attack "worst".

    Every attack except "none" counts. The `worst_attack` column names the attack that achieved it.
    """
    attacked = evaluations[evaluations.attack != "none"]
    if attacked.empty:
        return attacked.assign(worst_attack=pd.Series(dtype=str))
    order = attacked.sort_values(["cell_id", "eps", "return_mean", "attack"], kind="stable")
    worst = order.groupby(["cell_id", "eps"], sort=True).head(1).copy()
    worst["worst_attack"] = worst["attack"]
    worst["attack"] = "worst"
    return worst.reset_index(drop=True)


def with_worst_case(evaluations: pd.DataFrame) -> pd.DataFrame:
    """The evaluations table plus its worst-case rows; `worst_attack` is empty on the other rows."""
    table = evaluations.assign(worst_attack="")
    return pd.concat([table, worst_case_rows(evaluations)], ignore_index=True)



def attack_budgets(cfg: StudyConfig) -> dict:
    """The search budget of every attack in the config, for run.json (the worst case depends on it)."""
    a, ev = cfg.attack, cfg.eval
    budgets = {"pgd": {"steps": ev.pgd_steps, "step_frac_of_eps": ev.pgd_step_frac, "restarts": a.pgd_restarts,
                       "mad_langevin_beta": a.mad_langevin_beta}}
    if any(LEARNED_ATTACKS.get(x) == "sarsa" for x in ev.attacks):
        budgets["robust_sarsa"] = {
            "env_steps_per_cell": a.rs_num_envs * a.rs_unroll_length, "epochs": a.rs_epochs,
            "q_functions_per_cell": len(a.rs_radii) * len(a.rs_weights), "radii": list(a.rs_radii),
            "weights": list(a.rs_weights), "rs_mad_ratio": a.rs_mad_ratio, "policy": "stochastic (Gaussian)"}
    if any(LEARNED_ATTACKS.get(x) in ("sa_rl", "pa_ad") for x in ev.attacks):
        budgets["ppo_adversaries"] = {
            "env_steps_per_adversary": a.adv_num_envs * a.adv_unroll_length * a.adv_num_updates,
            "adversaries_per_cell_and_eps": len(a.adv_learning_rates), "learning_rates": list(a.adv_learning_rates),
            "paad_actor_steps": a.paad_actor_steps}
    return budgets
