"""RL controller: an LSTM policy trained with PPO (or REINFORCE) on the trial rewards.

MnasNet (Tan et al. 2019, arXiv:1807.11626, section 3): an RNN controller
samples the per-block decisions autoregressively (``rl_policy.DecisionPolicy``)
and is trained with Proximal Policy Optimization (Schulman et al. 2017,
arXiv:1707.06347) to maximise the expected reward ``ACC * (cost/T)^w``;
Zoph & Le 2017 used REINFORCE with an exponential moving-average baseline,
selectable here with ``algorithm='reinforce'``.

Per ask, the sampled decisions and their summed log-probability under the
policy *at sampling time* are kept with the pending ask (and in the state), so
results may come back late and out of order: PPO's importance ratio
``exp(logp_now - logp_then)`` corrects for a policy updated meanwhile, its clip
bounds the step.

On each told result: advantage ``A = reward - b`` with ``b`` the moving-average
baseline (``b`` starts at the first reward, then ``b <- d*b + (1-d)*reward``,
``d = baseline_decay``).  Every ``update_every`` completed trials the buffer of
(decisions, old log-prob, A) is used for one update: PPO runs ``ppo_epochs``
full-batch Adam steps on the clipped surrogate
``-mean(min(r*A, clip(r, 1-eps, 1+eps)*A)) - entropy * mean(H) + F``; REINFORCE one
step on ``-mean(logp*A) - entropy * mean(H) + F`` (``H``: the policy's entropy
summed over decisions).  With ``normalize`` the batch advantages are divided by
their root mean square, which makes ``lr`` independent of the reward scale.

Entropy floor ``F = floor_weight * mean(relu(h_min - H))`` with ``h_min =
min_entropy * H_uniform`` (``H_uniform = sum log(options)``, 38.8 nats on the
MnasNet space): a hinge that leaves the policy alone above the floor and pushes
its entropy back up below it.  Without it the policy collapses onto a handful
of genotypes (0.07-0.17 nats after 1,000 samples on bench/controllers.py, where
92-98% of the last 400 proposals were repeats); the base class's rule against
repeats then only finds neighbours of the same few points.  ``min_entropy:
0`` turns the floor off.

Failed trials (reward None/NaN/inf): with ``failed_reward=None`` (default)
they are skipped — they count toward ``update_every`` but add no sample
(an update whose K trials all failed is skipped);
with a number they are learned from as that reward (e.g. 0.0).

Under a constraint, policy samples are rejected until the cost fits; the kept
log-prob is that of the unconstrained policy (the usual approximation).

Proposals come from the policy.  When a draw is a network already evaluated or pending (the base
class redraws it), the next draws of the same ask come from the policy at a rising temperature
(``1 + redraw * redraw_temperature``: the same preferences, flattened), with the log-prob of the
tempered distribution kept for PPO's importance ratio; only when ``resample_tries`` draws all
repeat does the base class's walk to an unseen neighbour step in, counted in
``stats()['neighbours']`` (issue 20: about a fifth of late proposals came from that walk).

Cost on a CPU: sampling is ~42 LSTM steps (about a millisecond); an update on
K=10 sequences is a few full-sequence LSTM passes — small beside a trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from search_spaces import Genotype

from .base import Controller
from .settings import ProposalSettings, check_float, check_int
from .rl_policy import DecisionPolicy, from_plain, optimizer_from_plain, to_plain


@dataclass(frozen=True)
class RLSettings(ProposalSettings):
    """Policy size, optimizer and PPO/REINFORCE settings (see the module docstring)."""

    algorithm: Literal["ppo", "reinforce"] = "ppo"
    hidden: int = 64
    lr: float = 0.003
    update_every: int = 10
    ppo_epochs: int = 4
    clip: float = 0.2
    entropy: float = 0.01
    baseline_decay: float = 0.95
    normalize: bool = True
    failed_reward: float | None = None
    min_entropy: float = 0.25
    floor_weight: float = 1.0
    redraw_temperature: float = 0.05

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = "RLSettings"
        if self.algorithm not in ("ppo", "reinforce"):
            raise ValueError(f"{owner}.algorithm must be 'ppo' or 'reinforce', got {self.algorithm!r}")
        check_int(owner, "hidden", self.hidden, 1)
        check_float(owner, "lr", self.lr, 0.0, 1.0, low_open=True)
        check_int(owner, "update_every", self.update_every, 1)
        check_int(owner, "ppo_epochs", self.ppo_epochs, 1)
        check_float(owner, "clip", self.clip, 0.0, 1.0, low_open=True)
        check_float(owner, "entropy", self.entropy, 0.0, math.inf, high_open=True)
        check_float(owner, "baseline_decay", self.baseline_decay, 0.0, 1.0, high_open=True)
        if not isinstance(self.normalize, bool):
            raise ValueError(f"{owner}.normalize must be true or false, got {self.normalize!r}")
        if self.failed_reward is not None:
            check_float(owner, "failed_reward", self.failed_reward, -math.inf, math.inf, True, True)
        check_float(owner, "min_entropy", self.min_entropy, 0.0, 1.0, high_open=True)
        check_float(owner, "floor_weight", self.floor_weight, 0.0, math.inf, high_open=True)
        check_float(owner, "redraw_temperature", self.redraw_temperature, 0.0, math.inf, high_open=True)


class RLController(Controller):
    """MnasNet-style RL search: LSTM policy, PPO or REINFORCE, moving-average baseline."""

    name = "rl"
    settings_cls = RLSettings

    def __init__(self, space, seed: int = 0, constraint=None, settings: RLSettings | None = None, *, key=None,
                 budget: int | None = None, noise: float | None = None) -> None:
        super().__init__(space, seed=seed, constraint=constraint, settings=settings, key=key, budget=budget,
                         noise=noise)
        self._generator = torch.Generator().manual_seed(self.seed)
        self.policy = DecisionPolicy(space.decision_sizes, self.settings.hidden, self._generator)
        self._optimizer = torch.optim.Adam(self.policy.parameters(), lr=self.settings.lr)
        self.entropy_floor = self.settings.min_entropy * sum(math.log(n) for n in space.decision_sizes)
        self._baseline: float | None = None
        self._buffer: list[tuple[list[int], float, float]] = []  # decisions, log-prob at ask, advantage
        self._since_update = 0
        self._updates = 0
        self._skipped = 0
        self._redraws = 0  # draws of the current ask so far (the temperature rises with them)
        self._tempered = 0  # proposals kept from a tempered draw
        self._last: dict[str, float | None] = {"policy_loss": None, "entropy": None, "approx_kl": None,
                                               "clip_fraction": None}

    # -- ask / tell -----------------------------------------------------------
    def _propose(self) -> tuple[Genotype, dict]:
        drawn: list[tuple[list[int], float]] = []
        temperature = 1.0 + self._redraws * self.settings.redraw_temperature
        self._redraws += 1

        def draw() -> Genotype:
            decisions, logp = self.policy.sample(self._generator, temperature)
            drawn.append((decisions, logp))
            return self.space.decode(decisions)

        genotype = self._constrained(draw, "policy sample")
        decisions, logp = drawn[-1]
        return genotype, {"decisions": decisions, "logp": logp, "temperature": temperature}

    def _accepted(self, genotype: Genotype, info: dict) -> None:
        self._tempered += info.get("temperature", 1.0) > 1.0
        self._redraws = 0

    def _info_for(self, genotype: Genotype, kind: str) -> dict:
        """Decisions and log-prob under the current policy (the PPO ratio starts at 1 for them)."""
        decisions = self.space.encode(genotype)
        with torch.no_grad():
            logp, _ = self.policy.evaluate(torch.tensor([decisions], dtype=torch.long))
        return {"decisions": decisions, "logp": float(logp[0])}

    def _observe(self, genotype: Genotype, reward: float | None, info: dict) -> None:
        self._since_update += 1
        if reward is None:
            reward = self.settings.failed_reward
            if reward is None:
                self._skipped += 1
        if reward is not None:
            if self._baseline is None:
                self._baseline = reward
            advantage = reward - self._baseline
            decay = self.settings.baseline_decay
            self._baseline = decay * self._baseline + (1.0 - decay) * reward
            self._buffer.append((list(info["decisions"]), float(info["logp"]), advantage))
        if self._since_update >= self.settings.update_every:
            if self._buffer:
                self._update()
            self._since_update = 0  # K trials that all failed: nothing to learn, count the next K

    def _update(self) -> None:
        s = self.settings
        decisions = torch.tensor([d for d, _, _ in self._buffer], dtype=torch.long)
        old_logp = torch.tensor([lp for _, lp, _ in self._buffer], dtype=torch.float32)
        advantage = torch.tensor([a for _, _, a in self._buffer], dtype=torch.float32)
        if s.normalize:
            advantage = advantage / (advantage.pow(2).mean().sqrt() + 1e-8)
        epochs = s.ppo_epochs if s.algorithm == "ppo" else 1
        for _ in range(epochs):
            logp, entropy = self.policy.evaluate(decisions)
            if s.algorithm == "ppo":
                ratio = torch.exp(logp - old_logp)
                clipped = torch.clamp(ratio, 1.0 - s.clip, 1.0 + s.clip)
                surrogate = -torch.minimum(ratio * advantage, clipped * advantage).mean()
            else:
                surrogate = -(logp * advantage).mean()
            loss = surrogate - s.entropy * entropy.mean()
            if self.entropy_floor > 0.0:
                loss = loss + s.floor_weight * torch.relu(self.entropy_floor - entropy).mean()
            self._optimizer.zero_grad()
            loss.backward()
            self._optimizer.step()
        with torch.no_grad():
            ratio = torch.exp(logp - old_logp)
            self._last = {"policy_loss": float(loss), "entropy": float(entropy.mean()),
                          "approx_kl": float((old_logp - logp).mean()),
                          "clip_fraction": float(((ratio - 1.0).abs() > s.clip).float().mean())}
        self._updates += 1
        self._buffer = []

    # -- logging and state ----------------------------------------------------
    def _core_stats(self) -> dict[str, float]:
        out = {k: math.nan if v is None else v for k, v in self._last.items()}
        out.update({"baseline": math.nan if self._baseline is None else self._baseline,
                    "updates": float(self._updates), "skipped_failed": float(self._skipped),
                    "buffer": float(len(self._buffer)), "tempered_proposals": float(self._tempered)})
        return out

    def _core_state(self) -> dict[str, Any]:
        return {
            "policy": to_plain(self.policy.state_dict()),
            "optimizer": to_plain(self._optimizer.state_dict()),
            "generator": self._generator.get_state().tolist(),
            "baseline": self._baseline,
            "buffer": [{"decisions": list(d), "logp": lp, "advantage": a} for d, lp, a in self._buffer],
            "since_update": self._since_update, "updates": self._updates, "skipped": self._skipped,
            "tempered": self._tempered,
            "last": dict(self._last),
        }

    def _load_core_state(self, state: dict[str, Any]) -> None:
        self.policy.load_state_dict(from_plain(state["policy"]))
        self._optimizer.load_state_dict(optimizer_from_plain(state["optimizer"]))
        self._generator.set_state(torch.tensor(state["generator"], dtype=torch.uint8))
        self._baseline = None if state["baseline"] is None else float(state["baseline"])
        self._buffer = [([int(v) for v in b["decisions"]], float(b["logp"]), float(b["advantage"]))
                        for b in state["buffer"]]
        self._since_update, self._updates = int(state["since_update"]), int(state["updates"])
        self._skipped = int(state["skipped"])
        self._tempered = int(state.get("tempered", 0))
        self._redraws = 0
        self._last = dict(state["last"])
