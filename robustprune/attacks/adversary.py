"""Learned adversaries trained by the victim's own PPO code: SA-RL and PA-AD.

`AdversaryEnv` turns a frozen victim and its environment into an MDP for the attacker. Its observation is
the victim's normalized observation of the true state, its reward is minus the victim's reward, and its
action sets the perturbation:
- SA-RL (Zhang et al., 2021): the action a ∈ [−1, 1]^obs (the trainer clips actions to [−1, 1]) is the
  perturbation δ = ε·scale·a, projected onto the ball. The trainer's clip makes ε·tanh(a) reach only 0.76ε,
  so the map is linear in the clipped action, which spans the whole ℓ∞ box.
- PA-AD (Sun et al., 2022): the action is a direction d ∈ [−1, 1]^act in action space; an actor finds the
  ŝ in the ball that moves the victim's action along d, maximizing ⟨μ(ŝ) − μ(s), d⟩ by signed-gradient
  ascent from ŝ = s (one step of ε is FGSM). The sign is ascent on purpose: the director picks where the
  action should go, and the actor pushes it there.
The victim acts with its deterministic mean action, as in evaluation.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp

from robustprune.attacks.ball import project
from robustprune.attacks.pgd import pgd_maximize
from robustprune.attacks.settings import AttackSettings
from robustprune.attacks.victim import Victim
from robustprune.networks import GaussianPolicy

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from brax.envs import base as brax_base

KINDS = ("sa_rl", "pa_ad")


def sarl_perturbation(victim: Victim, obs, action, eps, settings: AttackSettings):
    """SA-RL: the perturbed observations obs + ε·scale·clip(action), inside the ball. obs, action: [n, obs]."""
    scale = 1.0 if victim.ball_scale is None else victim.ball_scale
    delta = project(eps * scale * jnp.clip(action, -1.0, 1.0), eps, settings.norm, victim.ball_scale)
    return obs + delta


def paad_actor(victim: Victim, obs, direction, eps, settings: AttackSettings):
    """PA-AD's actor: ŝ in the ball maximizing ⟨μ(ŝ) − μ(s), d⟩. obs [n, obs], direction d [n, act].

    Signed-gradient ascent from ŝ = s, settings.paad_actor_steps steps of ε·min(1, 2/steps).
    """
    clean_mean = jax.lax.stop_gradient(victim.mean(obs))
    steps = settings.paad_actor_steps
    return pgd_maximize(lambda x: jnp.sum((victim.mean(x) - clean_mean) * direction, axis=-1), obs,
                        jax.random.PRNGKey(0), eps, norm=settings.norm, steps=steps,
                        step_size=eps * min(1.0, 2.0 / steps), scale=victim.ball_scale, random_start=False)


def perturb_from_action(kind: str, victim: Victim, obs, action, eps, settings: AttackSettings):
    """Perturbed observations [n, obs] from the adversary's actions (SA-RL: δ; PA-AD: direction)."""
    if kind == "sa_rl":
        return sarl_perturbation(victim, obs, action, eps, settings)
    return paad_actor(victim, obs, jnp.clip(action, -1.0, 1.0), eps, settings)


def adversary_network(settings: AttackSettings, action_size: int) -> GaussianPolicy:
    return GaussianPolicy(action_size, tuple(settings.hidden_sizes), settings.activation)


def _adversary_action(victim: Victim, obs, settings: AttackSettings, action_size: int):
    """The trained adversary's deterministic action for clean observations obs [n, obs]."""
    adv = victim.adversary
    return adversary_network(settings, action_size).apply(adv["policy"], adv["normalizer"].normalize(obs))[0]


def sarl_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """SA-RL optimal adversary: the trained PPO adversary in victim.adversary outputs the perturbation."""
    del key
    action = _adversary_action(victim, obs, settings, obs.shape[-1])
    return sarl_perturbation(victim, obs, action, eps, settings)


def paad_attack(victim: Victim, obs, key, eps, settings: AttackSettings):
    """PA-AD: the trained director in victim.adversary picks a direction, the actor finds ŝ along it."""
    del key
    action_size = victim.action_size
    direction = jnp.clip(_adversary_action(victim, obs, settings, action_size), -1.0, 1.0)
    return paad_actor(victim, obs, direction, eps, settings)


class AdversaryEnv(brax_base.Env):
    """The attacker's MDP around a frozen victim (one environment; wrap it with Brax's training wrappers).

    The inner state of the victim's environment lives in `pipeline_state`. Each step holds the victim's
    action for `action_repeat` inner steps and sums the rewards, as the evaluation env does.
    """

    def __init__(self, base_env, victim: Victim, eps, kind: str, settings: AttackSettings, action_repeat: int = 1):
        self._base, self._victim, self._eps = base_env, victim, eps
        self._kind, self._settings, self._repeat = kind, settings, action_repeat

    def _observe(self, inner) -> jax.Array:
        return self._victim.normalizer.normalize(inner.obs)

    def reset(self, rng: jax.Array) -> brax_base.State:
        inner = self._base.reset(rng)
        zero = jnp.zeros(())
        return brax_base.State(pipeline_state=inner, obs=self._observe(inner), reward=zero, done=zero,
                               metrics={}, info={})

    def step(self, state: brax_base.State, action: jax.Array) -> brax_base.State:
        inner = state.pipeline_state
        clean = self._observe(inner)
        perturbed = perturb_from_action(self._kind, self._victim, clean[None], action[None], self._eps,
                                        self._settings)
        victim_action = jnp.clip(self._victim.action(perturbed)[0], -1.0, 1.0)
        reward, done = jnp.zeros(()), jnp.zeros(())
        for _ in range(self._repeat):
            inner = self._base.step(inner, victim_action)
            reward, done = reward + inner.reward, jnp.maximum(done, inner.done)
        return state.replace(pipeline_state=inner, obs=self._observe(inner), reward=-reward, done=done)

    @property
    def observation_size(self) -> int:
        return self._base.observation_size

    @property
    def action_size(self) -> int:
        return self._base.observation_size if self._kind == "sa_rl" else self._base.action_size

    @property
    def backend(self) -> str:
        return self._base.backend
