"""Frozen, validated settings for a robustprune study.

A study is a grid of cells (sparsity × seed) trained by PPO, then evaluated under attacks at several ε
and certified. Shape knobs (layer sizes, env counts, step counts) are static Python values here. The float
knobs that a grid varies (sparsity, seed key) become pytree fields in `robustprune.grid.CellParams`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any


class ConfigError(ValueError):
    """An invalid setting, raised before any compile. The message names the setting, value, range and fix."""


def _suggest(value: str, choices) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def check_choice(setting: str, value: str, choices) -> None:
    """Raise ConfigError when `value` is not one of `choices`, suggesting close matches."""
    if value not in choices:
        raise ConfigError(
            f"{setting}={value!r} is not supported. Allowed values: {', '.join(sorted(map(str, choices)))}."
            + _suggest(value, choices)
        )


def check_positive_int(setting: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{setting}={value!r} is invalid: it must be a positive integer (1, 2, ...).")


def check_range(setting: str, value: Any, low: float, high: float, *, high_open: bool = False) -> None:
    """Raise ConfigError unless low <= value <= high (or < high when `high_open`)."""
    ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= low
    ok = ok and (value < high if high_open else value <= high)
    if not ok:
        bracket = ")" if high_open else "]"
        raise ConfigError(f"{setting}={value!r} is outside the allowed range [{low}, {high}{bracket}. "
                          f"Set {setting} to a finite number in that range.")


ACTIVATIONS = ("tanh", "relu", "elu", "silu")
POLICIES = ("gaussian", "categorical")
ROBUST_METHODS = ("vanilla", "sa_ppo", "adversarial", "lipschitz")
NORMS = ("linf", "l2")
BACKENDS = ("spring", "positional", "generalized", "mjx")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Environment settings. `episode_length` counts agent steps after action repeat."""

    name: str = "inverted_pendulum"
    backend: str = "spring"
    episode_length: int = 200
    action_repeat: int = 1
    reward_per_step_max: float = 1.0  # max |r| per step, used for the horizon maximum and value-gap bounds

    def validate(self) -> None:
        from robustprune.envs import available_envs

        check_choice("env.name", self.name, available_envs())
        check_choice("env.backend", self.backend, BACKENDS)
        check_positive_int("env.episode_length", self.episode_length)
        check_positive_int("env.action_repeat", self.action_repeat)


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """MLP shapes. The policy network and the critic share hidden sizes and activation.

    policy: "gaussian" (mean MLP, state-independent log-std) or "categorical" (MLP logits of a factorized
    softmax over `n_bins` actions per action dimension, evenly spaced in [−1, 1]; `robustprune.policies`).
    """

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    init_log_std: float = -0.5
    policy: str = "gaussian"
    n_bins: int = 11

    def validate(self) -> None:
        if not self.hidden_sizes:
            raise ConfigError("network.hidden_sizes=() is invalid: give at least one hidden layer, e.g. (64, 64).")
        for i, size in enumerate(self.hidden_sizes):
            check_positive_int(f"network.hidden_sizes[{i}]", size)
        check_choice("network.activation", self.activation, ACTIVATIONS)
        check_range("network.init_log_std", self.init_log_std, -10.0, 5.0)
        check_choice("network.policy", self.policy, POLICIES)
        if not isinstance(self.n_bins, int) or isinstance(self.n_bins, bool) or self.n_bins < 2:
            raise ConfigError(f"network.n_bins={self.n_bins!r} is invalid: a categorical policy needs an integer "
                              "number of action bins >= 2 per action dimension, e.g. 11.")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """PPO settings. One update collects num_envs × unroll_length env steps."""

    num_envs: int = 64
    unroll_length: int = 32
    num_updates: int = 100
    update_epochs: int = 4
    num_minibatches: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    reward_scale: float = 0.1  # rewards are multiplied by this before GAE, to keep value targets near 1
    entropy_coef: float = 0.0  # weight of the policy-entropy bonus, which keeps a learned Gaussian std from collapsing

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.unroll_length

    @property
    def env_steps(self) -> int:
        return self.batch_size * self.num_updates

    def validate(self) -> None:
        for name in ("num_envs", "unroll_length", "num_updates", "update_epochs", "num_minibatches"):
            check_positive_int(f"ppo.{name}", getattr(self, name))
        if self.batch_size % self.num_minibatches:
            raise ConfigError(
                f"ppo.num_minibatches={self.num_minibatches} does not divide the batch size "
                f"num_envs × unroll_length = {self.batch_size}. Choose a divisor of {self.batch_size}."
            )
        check_range("ppo.learning_rate", self.learning_rate, 1e-8, 1.0)
        check_range("ppo.gamma", self.gamma, 0.0, 1.0, high_open=True)
        check_range("ppo.gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("ppo.clip_eps", self.clip_eps, 1e-6, 1.0)
        check_range("ppo.max_grad_norm", self.max_grad_norm, 1e-6, 1e6)
        check_range("ppo.entropy_coef", self.entropy_coef, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class PruneConfig:
    """Pruning settings. The grid is sparsities × schedules × methods × allocations × seeds.

    Sparsity is the fraction of prunable weights that are exactly zero. The prunable weights are the kernels of
    the policy mean network, and also the critic's kernels (own masks, same target and method) when
    `prune_critic`. Biases and the log-std are never pruned. Schedules (robustprune.pruning.schedules): the
    gradual ramp (Zhu & Gupta, 2017) from 0 at `start_frac` of training to the target at `end_frac` with
    exponent `exponent`, mask recomputed every `update_period` updates; one_shot at `start_frac` then
    fine-tuning; micro: `micro_increment` more sparsity every `micro_period` updates from `start_frac`;
    post_training: after the last update, no fine-tuning. Methods: magnitude or random scores. Allocations:
    one global ranking, or per-layer uniform or ERK. `max_sparsity_first_last` caps the sparsity of the first
    and last kernels (1.0: no cap; 0.0 keeps them dense). Sparsity 0 cells are trained once per seed (schedule
    and method do not change a dense run). `capacity_control` adds, per nonzero sparsity and seed, a dense cell
    with narrower hidden layers and about as many kernel weights. `enabled=False` skips masking altogether
    (all sparsities must then be 0), for overhead measurements.
    """

    sparsities: tuple[float, ...] = (0.0, 0.5, 0.8, 0.95)
    schedules: tuple[str, ...] = ("gradual",)
    methods: tuple[str, ...] = ("magnitude",)
    allocations: tuple[str, ...] = ("global",)
    start_frac: float = 0.2
    end_frac: float = 0.7
    exponent: float = 3.0
    update_period: int = 2
    micro_increment: float = 0.02
    micro_period: int = 1
    max_sparsity_first_last: float = 1.0
    prune_critic: bool = False
    capacity_control: bool = False
    enabled: bool = True

    def validate(self, num_updates: int) -> None:
        from robustprune.pruning import ALLOCATIONS, METHODS, SCHEDULES

        if not self.sparsities:
            raise ConfigError("prune.sparsities=() is empty: give at least one sparsity in [0, 1), e.g. (0.0, 0.5).")
        for i, s in enumerate(self.sparsities):
            check_range(f"prune.sparsities[{i}]", s, 0.0, 1.0, high_open=True)
        for setting, choices in (("schedules", SCHEDULES), ("methods", METHODS), ("allocations", ALLOCATIONS)):
            values = getattr(self, setting)
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"prune.{setting}={values!r} must list distinct names, at least one, from "
                                  f"{', '.join(choices)}.")
            for v in values:
                check_choice(f"prune.{setting}", v, choices)
        check_range("prune.max_sparsity_first_last", self.max_sparsity_first_last, 0.0, 1.0)
        check_range("prune.micro_increment", self.micro_increment, 1e-6, 1.0)
        check_positive_int("prune.micro_period", self.micro_period)
        if not self.enabled and any(s > 0 for s in self.sparsities):
            raise ConfigError(f"prune.enabled=False with prune.sparsities={self.sparsities}: a disabled pruner "
                              "cannot reach a nonzero target. Use sparsities (0.0,) or enable pruning.")
        check_range("prune.start_frac", self.start_frac, 0.0, 1.0)
        check_range("prune.end_frac", self.end_frac, 0.0, 1.0)
        if self.end_frac < self.start_frac:
            raise ConfigError(
                f"prune.end_frac={self.end_frac} is before prune.start_frac={self.start_frac}. "
                "The schedule must end at or after it starts, within training (both in [0, 1])."
            )
        check_range("prune.exponent", self.exponent, 0.0, 100.0)
        check_positive_int("prune.update_period", self.update_period)
        if self.update_period > num_updates:
            raise ConfigError(
                f"prune.update_period={self.update_period} exceeds ppo.num_updates={num_updates}: "
                "the mask would never be updated. Use a period of at most the number of updates."
            )
        if "micro" in self.schedules:
            last, start = num_updates - 1, round(self.start_frac * (num_updates - 1))
            end = start + self.micro_period * max(self.sparsities) / self.micro_increment
            if end > last:
                need = self.micro_period * max(self.sparsities) / max(last - start, 1)
                raise ConfigError(
                    f"prune.micro_increment={self.micro_increment} is too small: micro-pruning to "
                    f"{max(self.sparsities)} from update {start} would end at update {end:.1f}, after the last "
                    f"update {last}. Use prune.micro_increment >= {need:.4g}, a smaller prune.micro_period or an "
                    "earlier prune.start_frac."
                )


def _legacy_prune(prune: dict) -> dict:
    """Map the single `schedule` of configs written before schedules became a grid axis to `schedules`."""
    if "schedule" in prune:
        prune = {**prune, "schedules": (prune["schedule"],)}
        del prune["schedule"]
    return prune


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings. ε is the ball radius in normalized observation units (running-std units)."""

    episodes: int = 8
    episode_length: int = 200
    eps: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4)
    norm: str = "linf"
    attacks: tuple[str, ...] = ("none", "random", "mad")
    pgd_steps: int = 10
    pgd_step_frac: float = 0.1  # PGD step size as a fraction of ε

    def validate(self) -> None:
        from robustprune.attacks import ATTACKS

        check_positive_int("eval.episodes", self.episodes)
        check_positive_int("eval.episode_length", self.episode_length)
        if not self.eps:
            raise ConfigError("eval.eps=() is empty: give at least one ε >= 0, e.g. (0.0, 0.1).")
        for i, e in enumerate(self.eps):
            check_range(f"eval.eps[{i}]", e, 0.0, 1e3)
        check_choice("eval.norm", self.norm, NORMS)
        for a in self.attacks:
            check_choice("eval.attacks", a, ATTACKS)
        check_positive_int("eval.pgd_steps", self.pgd_steps)
        check_range("eval.pgd_step_frac", self.pgd_step_frac, 1e-6, 10.0)


@dataclasses.dataclass(frozen=True)
class RobustConfig:
    """Robust-training baselines, crossed with the pruning grid (`robustprune.train.robust`).

    methods: the grid axis of training methods. Each method is a static setting: the cells of one method
    share one compiled program, so vanilla cells never run SA-PPO's inner PGD. "vanilla": plain PPO;
    "sa_ppo": PPO plus κ·max_{ŝ∈B(s,ε)} KL(π(·|s) ‖ π(·|ŝ)) (Zhang et al., 2020); "adversarial": rollouts in
    which the policy acts on observations perturbed by `rollout_attack`; "lipschitz": PPO plus κ·ε·L/2, with L
    the global bound `lipschitz_bound` of `robustprune.certify` (certified training).
    kappas, train_eps: per-cell traced κ and training radius ε (normalized units, the eval norm), crossed for
    every non-vanilla method. The radius ramps linearly from 0 at `eps_start_frac` of training to ε at
    `eps_end_frac`. sa_steps: PGD steps of SA-PPO's inner maximum, step ε·sa_step_frac (SGLD noise
    `sa_langevin_beta` > 0).
    """

    methods: tuple[str, ...] = ("vanilla",)
    kappas: tuple[float, ...] = (0.1,)
    train_eps: tuple[float, ...] = (0.1,)
    eps_start_frac: float = 0.0
    eps_end_frac: float = 0.5
    sa_steps: int = 5
    sa_step_frac: float = 0.4
    sa_langevin_beta: float = 0.0
    rollout_attack: str = "mad"
    lipschitz_bound: str = "abs_product"

    def validate(self) -> None:
        if not self.methods or len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"robust.methods={self.methods!r} must list distinct names, at least one, from "
                              f"{', '.join(ROBUST_METHODS)}.")
        for m in self.methods:
            check_choice("robust.methods", m, ROBUST_METHODS)
        for setting in ("kappas", "train_eps"):
            values = getattr(self, setting)
            if not values:
                raise ConfigError(f"robust.{setting}=() is empty: give at least one value, e.g. (0.1,).")
            for i, v in enumerate(values):
                check_range(f"robust.{setting}[{i}]", v, 0.0, 1e3)
        check_range("robust.eps_start_frac", self.eps_start_frac, 0.0, 1.0)
        check_range("robust.eps_end_frac", self.eps_end_frac, 0.0, 1.0)
        if self.eps_end_frac < self.eps_start_frac:
            raise ConfigError(f"robust.eps_end_frac={self.eps_end_frac} is before robust.eps_start_frac="
                              f"{self.eps_start_frac}. The ε ramp must end at or after it starts (both in [0, 1]).")
        check_positive_int("robust.sa_steps", self.sa_steps)
        check_range("robust.sa_step_frac", self.sa_step_frac, 1e-6, 10.0)
        check_range("robust.sa_langevin_beta", self.sa_langevin_beta, 0.0, 100.0)
        check_choice("robust.rollout_attack", self.rollout_attack, ("random", "mad", "critic"))
        from robustprune.certify import BOUNDS

        check_choice("robust.lipschitz_bound", self.lipschitz_bound, [n for n, b in BOUNDS.items() if b.monotone])


THREAT_MODELS = ("cell", "shared_raw")


@dataclasses.dataclass(frozen=True)
class AttackConfig:
    """Settings of the attack suite beyond the PGD basics in EvalConfig.

    threat_model: "cell" puts the ball in each cell's own normalized units (the protocol); "shared_raw" gives
    every cell the same raw-space box, ε times the per-dimension std of the dense reference cell of its seed.
    Robust Sarsa (rs_*): Q^π of the frozen stochastic policy by TD(0) on rs_num_envs × rs_unroll_length
    on-policy steps per cell, with a smoothness penalty; one Q per (radius, weight) pair, strongest kept.
    Learned adversaries (adv_*, SA-RL and PA-AD): PPO with these sizes, one agent per cell × ε × learning
    rate, strongest kept. The published budgets (60k Sarsa steps, 6 × 5 Q-functions, 1M steps per adversary,
    about 216 settings) do not fit a 2-core CPU; the defaults are reduced and run.json records them.
    """

    threat_model: str = "cell"
    pgd_restarts: int = 1
    mad_langevin_beta: float = 0.0  # > 0: SA_PPO-style shrinking gradient noise in MAD (relative to |grad|)
    rs_mad_ratio: float = 0.5  # RS+MAD objective: (1 − ratio)·(−Q) + ratio·KL
    rs_num_envs: int = 64
    rs_unroll_length: int = 256
    rs_epochs: int = 10
    rs_num_minibatches: int = 16
    rs_learning_rate: float = 1e-3
    rs_radii: tuple[float, ...] = (0.02, 0.1)
    rs_weights: tuple[float, ...] = (0.1, 1.0)
    rs_penalty_steps: int = 2
    adv_num_envs: int = 32
    adv_unroll_length: int = 32
    adv_num_updates: int = 40
    adv_update_epochs: int = 4
    adv_num_minibatches: int = 4
    adv_learning_rates: tuple[float, ...] = (3e-4, 1e-3)
    paad_actor_steps: int = 2

    def validate(self) -> None:
        check_choice("attack.threat_model", self.threat_model, THREAT_MODELS)
        for name in ("pgd_restarts", "rs_num_envs", "rs_unroll_length", "rs_epochs", "rs_num_minibatches",
                     "rs_penalty_steps", "adv_num_envs", "adv_unroll_length", "adv_num_updates",
                     "adv_update_epochs", "adv_num_minibatches", "paad_actor_steps"):
            check_positive_int(f"attack.{name}", getattr(self, name))
        check_range("attack.mad_langevin_beta", self.mad_langevin_beta, 0.0, 100.0)
        check_range("attack.rs_mad_ratio", self.rs_mad_ratio, 0.0, 1.0)
        check_range("attack.rs_learning_rate", self.rs_learning_rate, 1e-8, 1.0)
        samples = self.rs_num_envs * (self.rs_unroll_length - 1)
        if samples % self.rs_num_minibatches:
            raise ConfigError(
                f"attack.rs_num_minibatches={self.rs_num_minibatches} does not divide the Sarsa sample count "
                f"rs_num_envs × (rs_unroll_length − 1) = {samples}. Choose a divisor of {samples}."
            )
        if (self.adv_num_envs * self.adv_unroll_length) % self.adv_num_minibatches:
            raise ConfigError(
                f"attack.adv_num_minibatches={self.adv_num_minibatches} does not divide adv_num_envs × "
                f"adv_unroll_length = {self.adv_num_envs * self.adv_unroll_length}. Choose a divisor."
            )
        for setting in ("rs_radii", "rs_weights", "adv_learning_rates"):
            values = getattr(self, setting)
            if not values:
                raise ConfigError(f"attack.{setting}=() is empty: give at least one value.")
            for i, v in enumerate(values):
                check_range(f"attack.{setting}[{i}]", v, 0.0, 1e3)


@dataclasses.dataclass(frozen=True)
class CertifyConfig:
    """Settings of the certificates written beside the evaluations (`robustprune.certify_run`).

    Visited states come from a deterministic (mean-action) rollout of each cell without attack:
    `rollout_envs` auto-resetting environments for `rollout_steps` steps, keeping every `state_stride`-th
    step, so each cell has rollout_envs × (rollout_steps // state_stride) states. PGD (`pgd_steps` steps,
    `pgd_restarts` random starts) searches each state's ball for the largest TV: the empirical lower bound
    that every certificate is compared with. `tau` is the TV threshold of the certified radius.
    `post_training_path` prunes copies of every trained dense cell at each grid sparsity (nested global
    magnitude masks) and certifies every copy.
    """

    tau: float = 0.1
    rollout_envs: int = 4
    rollout_steps: int = 64
    state_stride: int = 8
    pgd_steps: int = 20
    pgd_restarts: int = 2
    post_training_path: bool = True

    def validate(self) -> None:
        check_range("certify.tau", self.tau, 1e-9, 1.0, high_open=True)
        for name in ("rollout_envs", "rollout_steps", "state_stride", "pgd_steps", "pgd_restarts"):
            check_positive_int(f"certify.{name}", getattr(self, name))
        if self.state_stride > self.rollout_steps:
            raise ConfigError(
                f"certify.state_stride={self.state_stride} exceeds certify.rollout_steps={self.rollout_steps}: "
                "no state would be kept. Use a stride of at most the number of rollout steps."
            )


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """A whole study: environment, networks, PPO, pruning grid, seeds and evaluation."""

    name: str = "default"
    env: EnvConfig = EnvConfig()
    network: NetworkConfig = NetworkConfig()
    ppo: PPOConfig = PPOConfig()
    prune: PruneConfig = PruneConfig()
    eval: EvalConfig = EvalConfig()
    attack: AttackConfig = AttackConfig()
    certify: CertifyConfig = CertifyConfig()
    robust: RobustConfig = RobustConfig()
    seeds: tuple[int, ...] = (0, 1)
    notes: str = ""

    def validate(self) -> "StudyConfig":
        """Check every setting and return self. Raises ConfigError naming the first invalid setting."""
        self.env.validate()
        self.network.validate()
        self.ppo.validate()
        self.prune.validate(self.ppo.num_updates)
        self.eval.validate()
        self.attack.validate()
        self.certify.validate()
        self.robust.validate()
        if self.attack.threat_model == "shared_raw" or any(a.startswith("transfer_") for a in self.eval.attacks):
            if 0.0 not in self.prune.sparsities:
                raise ConfigError(
                    f"attack.threat_model={self.attack.threat_model!r} with eval.attacks={self.eval.attacks} needs "
                    "a dense reference cell, but prune.sparsities has no 0.0. Add 0.0 to prune.sparsities."
                )
        if not self.seeds:
            raise ConfigError("seeds=() is empty: give at least one seed, e.g. --seeds 2.")
        for i, seed in enumerate(self.seeds):
            if not isinstance(seed, int) or seed < 0:
                raise ConfigError(f"seeds[{i}]={seed!r} is invalid: seeds are integers >= 0.")
        return self

    @property
    def num_cells(self) -> int:
        from robustprune.grid import expand_cells

        return len(expand_cells(self))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "StudyConfig":
        """Rebuild a config from `to_dict` output (lists become tuples)."""
        def tup(d):
            return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

        return cls(
            name=data["name"],
            env=EnvConfig(**tup(data["env"])),
            network=NetworkConfig(**tup(data["network"])),
            ppo=PPOConfig(**tup(data["ppo"])),
            prune=PruneConfig(**_legacy_prune(tup(data["prune"]))),
            eval=EvalConfig(**tup(data["eval"])),
            attack=AttackConfig(**tup(data.get("attack", {}))),
            certify=CertifyConfig(**tup(data.get("certify", {}))),
            robust=RobustConfig(**tup(data.get("robust", {}))),
            seeds=tuple(data["seeds"]),
            notes=data.get("notes", ""),
        )
