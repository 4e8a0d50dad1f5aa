"""Rollouts on attacked observations during training, for robust training (e.g. ATLA-style or adversarial PPO).

The policy acts on the perturbed observation; the environment steps with the true state. The stored
`Transition.obs` is the perturbed observation and `raw_obs` the true one, so a trainer can compute its
losses on either.
"""

from __future__ import annotations

import jax

from robustprune.attacks.settings import settings_from_config
from robustprune.attacks.suite import ATTACKS, LEARNED_ATTACKS, TRANSFER_ATTACKS
from robustprune.attacks.victim import Victim
from robustprune.config import ConfigError, StudyConfig
from robustprune.policies import policy_head
from robustprune.train.ppo import collect
from robustprune.train.state import TrainState, make_networks, train_env


def collect_under_attack(cfg: StudyConfig, ts: TrainState, attack: str, eps, env=None):
    """`collect` with every observation the policy sees perturbed by `attack` at radius ε (traced scalar).

    The attack targets the current parameters and normalizer (gradients stopped). Only attacks without
    trained state work here (random, critic, MAD). Returns (TrainState, Transition, metrics) as `collect`.
    """
    if attack in LEARNED_ATTACKS or attack in TRANSFER_ATTACKS or attack not in ATTACKS:
        raise ConfigError(f"attack={attack!r} cannot run inside training: use one of none, random, critic, mad.")
    env = train_env(cfg) if env is None else env
    policy, critic = make_networks(cfg, env.action_size)
    settings, attack_fn = settings_from_config(cfg), ATTACKS[attack]

    def perturb(params, obs, key):
        victim = Victim(params["policy"], params["critic"], ts.normalizer, policy.apply, critic.apply,
                        head=policy_head(cfg.network, env.action_size))
        victim = jax.lax.stop_gradient(victim)
        return jax.lax.stop_gradient(attack_fn(victim, obs, key, eps, settings))

    return collect(cfg, ts, env, perturb)
