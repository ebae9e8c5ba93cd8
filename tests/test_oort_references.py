"""Each ``oort_variant`` replays its reference's selection on recorded inputs.

A fixed fleet of 30 clients (sample counts, profiled durations), fixed online sets and a fixed
feedback table drive the selector and, side by side, a plain loop-by-loop restatement of the
reference written here from its source: FedScale ``thirdparty/oort/oort.py`` (``getTopK``,
``pacer``, ``get_norm``) with ``config_parser.py``'s defaults, SymbioticLab/Oort ``oort/oort.py``
with ``training/argParser.py``'s defaults, and the paper's Algorithm 1. Every round compares T,
the pacer's threshold, epsilon, the exploitation scores, the admitted pool's size and the picks.
The random draws are replaced on both sides by one deterministic stand-in that depends on the
pool's membership and weights, so the picks must match exactly.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from fedscale.selection.base import Feedback
from thirdparty.oort.oort import OortConfig, OortSelector

SAMPLES = [12, 95, 40, 7, 60, 33, 150, 21, 88, 5, 47, 70, 18, 120, 64, 29, 9, 55, 101, 36,
           14, 77, 43, 26, 190, 58, 3, 82, 67, 31]
DURATIONS = [14.0, 55.0, 23.0, 8.0, 41.0, 19.0, 90.0, 12.0, 66.0, 6.0, 30.0, 48.0, 10.0, 75.0, 37.0,
             17.0, 9.0, 33.0, 120.0, 26.0, 11.0, 52.0, 28.0, 15.0, 140.0, 35.0, 7.0, 61.0, 44.0, 21.0]
NUM, ROUNDS, STEPS, BATCH = 6, 16, 4, 10
KNOBS = dict(pacer_step=2, local_steps=STEPS, batch_size=BATCH)


def online(r: int) -> list[int]:
    return [c for c in range(30) if (c * 7 + r) % 5 != 0]


def feedback(r: int, client: int) -> tuple[float, float, bool]:
    """(reward, duration, success) of ``client`` in round ``r``: the recorded feedback table."""
    reward = float((client * 37 + r * 11) % 23 + 1) * (3.0 if r % 4 == 0 else 1.0)
    return reward, DURATIONS[client] * (1.0 + 0.1 * ((client + r) % 3)), (client + r) % 3 != 0


def draw(weights, n: int) -> list[int]:
    """The deterministic stand-in for weighted sampling without replacement: positions of the n
    largest weights scaled by a fixed jitter per position (ties: lower position)."""
    jitter = np.random.default_rng(len(weights)).random(len(weights))
    return sorted(range(len(weights)), key=lambda i: (-weights[i] * (0.5 + jitter[i]), i))[:n]


class Reference:
    """One reference's selection, restated loop by loop from its source (module docstring)."""

    DEFAULTS = {"fedscale": dict(decay=0.98, floor=0.3, cut_off=0.05, clip=0.9, threshold=30.0),
                "artifact": dict(decay=0.95, floor=0.2, cut_off=0.7, clip=0.98, threshold=10.0),
                "paper": dict(decay=0.98, floor=0.2, cut_off=0.95, clip=0.95, threshold=5.0)}

    def __init__(self, variant: str) -> None:
        self.variant = variant
        for name, value in self.DEFAULTS[variant].items():
            setattr(self, name, value)
        self.eps, self.step, self.delta, self.alpha = 0.9, 2, 5.0, 2.0
        self.arms = {c: {"reward": min(SAMPLES[c], STEPS * BATCH), "duration": DURATIONS[c], "time_stamp": 0,
                         "count": 0} for c in range(30)}
        self.unexplored = set(range(30))
        self.history: list[float] = []
        self.exploited: list[int] = []
        self.successful: set[int] = set()
        self.round = 0
        self.scores: dict[int, float] = {}
        self.pool: list[int] = []

    def pacer(self) -> None:
        if self.variant == "paper":
            done = self.round - 1
            if done >= 2 * self.step and done % self.step == 0:
                recent, previous = sum(self.history[-self.step:]), sum(self.history[-2 * self.step:-self.step])
                if recent < previous:
                    self.threshold += self.delta
            return
        count, total = 1e-4, 0.0
        for client in self.exploited:
            if client in self.successful:
                count += 1
                total += self.arms[client]["reward"]
        self.history.append(total / count)
        self.successful = set()
        if self.round >= 2 * self.step and self.round % self.step == 0:
            recent, previous = sum(self.history[-self.step:]), sum(self.history[-2 * self.step:-self.step])
            if abs(recent - previous) <= previous * 0.1:
                self.threshold = min(100.0, self.threshold + self.delta)
            elif abs(recent - previous) >= previous * 5:
                self.threshold = max(self.delta, self.threshold - self.delta)

    def preferred(self) -> float:
        if self.variant == "paper":
            return self.threshold
        if self.threshold >= 100:
            return math.inf
        ordered = sorted(arm["duration"] for arm in self.arms.values())
        return ordered[min(int(len(ordered) * self.threshold / 100), len(ordered) - 1)]

    def penalised(self, value: float, duration: float, preferred: float) -> float:
        return value * (preferred / duration) ** self.alpha if duration > preferred else value

    def score_all(self, feasible: list[int], preferred: float) -> None:
        self.scores = {}
        if self.variant == "paper":
            explored = [c for c in feasible if self.arms[c]["count"] > 0]
            if not explored:
                return
            rewards = sorted(self.arms[c]["reward"] for c in explored)
            clip = rewards[min(max(math.ceil(self.clip * len(rewards) - 1e-9) - 1, 0), len(rewards) - 1)]
            for c in explored:
                value = min(max(self.arms[c]["reward"], 0.0), clip) / clip
                value += math.sqrt(0.1 * math.log(self.round) / self.arms[c]["time_stamp"])
                self.scores[c] = self.penalised(value, self.arms[c]["duration"], preferred)
            return
        rewards = sorted(self.arms[c]["reward"] for c in feasible if self.arms[c]["reward"] > 0)
        clip = rewards[min(int(len(rewards) * self.clip), len(rewards) - 1)]
        low = rewards[0] * 0.999
        spread = max(rewards[-1] - low, 1e-4)
        for c in feasible:
            if self.arms[c]["count"] > 0:
                value = (min(self.arms[c]["reward"], clip) - low) / spread
                value += math.sqrt(0.1 * math.log(self.round) / self.arms[c]["time_stamp"])
                value = self.penalised(value, self.arms[c]["duration"], preferred)
                self.scores[c] = abs(value) if self.variant == "fedscale" else value

    def select(self, feasible: list[int]) -> list[int]:
        self.round += 1
        self.pacer()
        preferred = self.preferred()
        self.score_all(feasible, preferred)
        if self.variant != "paper":
            self.eps = max(self.eps * self.decay, self.floor)
        self.used_eps = self.eps
        unexplored = [c for c in feasible if c in self.unexplored]
        explored = len(self.scores)
        if self.variant == "fedscale":
            exploit_len = min(NUM - min(int(NUM * self.eps), len(unexplored)), explored)
        elif self.variant == "artifact":
            exploit_len = min(int(NUM * (1 - self.eps)), explored)
        else:
            exploit_len = NUM - min(NUM - min(math.floor((1 - self.eps) * NUM + 1e-9), explored), len(unexplored))
        ranked = sorted(self.scores, key=lambda c: (-self.scores[c], c))
        picks: list[int] = []
        self.pool = []
        if exploit_len:
            boundary = ranked[min(exploit_len - (self.variant == "paper"), len(ranked) - 1)]
            cut = self.scores[boundary] * self.cut_off
            for c in ranked:
                if self.scores[c] < cut and (self.variant != "fedscale" or len(self.pool) > 10 * exploit_len):
                    break
                self.pool.append(c)
            pool = sorted(self.pool)
            picks = [pool[i] for i in draw([self.scores[c] for c in pool], exploit_len)]
        self.exploited = picks
        if self.variant == "artifact" and not self.unexplored:
            self.eps = self.floor = 0.0
            unexplored = []
        if unexplored:
            explore_len = min(len(unexplored), NUM - len(picks))
            if self.variant == "paper":
                prior = {c: 1.0 / DURATIONS[c] for c in unexplored}
            else:
                prior = {c: self.penalised(self.arms[c]["reward"], self.arms[c]["duration"], preferred)
                         for c in unexplored}
            window = sorted(sorted(prior, key=lambda c: (-prior[c], c))[:min(int(5 * explore_len), len(prior))])
            picks = picks + [window[i] for i in draw([prior[c] for c in window], explore_len)]
        if self.variant == "artifact":
            rest = [c for c in feasible if c not in picks]
            picks = picks + [rest[i] for i in draw([1.0] * len(rest), NUM - len(picks))]
        if self.variant == "paper":
            self.eps = max(self.eps * self.decay, self.floor)
        return sorted(picks)

    def feed(self, r: int, client: int, reward: float, duration: float, success: bool) -> None:
        arm = self.arms[client]
        arm["reward"], arm["duration"], arm["time_stamp"] = reward, duration, r
        arm["count"] += 1
        self.unexplored.discard(client)
        if self.variant != "paper" or success:
            self.successful.add(client)

    def end_round(self) -> None:
        """The paper's per-round utility: mean reward of the successful exploited clients."""
        if self.variant == "paper":
            rewards = [self.arms[c]["reward"] for c in self.exploited if c in self.successful]
            self.history.append(sum(rewards) / len(rewards) if rewards else 0.0)
            self.successful = set()


@pytest.mark.parametrize("variant", ["fedscale", "artifact", "paper"])
def test_variant_replays_its_reference_on_recorded_inputs(variant: str) -> None:
    selector = OortSelector(OortConfig(oort_variant=variant, **KNOBS), seed=0)
    selector._sample = lambda weights, n: np.array(draw(list(weights), n), dtype=np.int64)
    selector.register_clients(np.arange(30), np.array(SAMPLES), np.array(DURATIONS))
    reference = Reference(variant)
    thresholds = []
    for r in range(1, ROUNDS + 1):
        picks = selector.select_participants(NUM, float(r), np.array(online(r)))
        expected = reference.select(online(r))
        details = selector.details()
        thresholds.append(reference.threshold)
        assert details["round_threshold"] == pytest.approx(reference.threshold), r
        assert (details["preferred_duration"] or math.inf) == pytest.approx(reference.preferred()), r
        assert details["epsilon"] == pytest.approx(reference.used_eps), r
        ids = sorted(reference.scores)
        candidates = np.array(online(r))
        scores = selector.exploitation_utility(np.array(ids, dtype=np.int64), r, reference.preferred(), candidates)
        assert scores == pytest.approx([reference.scores[c] for c in ids], rel=1e-12), r
        assert details["num_admitted"] == len(reference.pool) or details["num_exploited"] == 0, r
        assert picks == expected, r
        exploited = set(np.flatnonzero(selector.exploited_in == r))
        assert exploited == set(reference.exploited), r
        batch = [(c, *feedback(r, c)) for c in picks]
        selector.register_feedback(Feedback(round_index=r, client_ids=np.array([b[0] for b in batch]),
                                            rewards=np.array([b[1] for b in batch]),
                                            durations=np.array([b[2] for b in batch]),
                                            success=np.array([b[3] for b in batch])))
        for client, reward, duration, success in batch:
            reference.feed(r, client, reward, duration, success)
        reference.end_round()
    assert len(set(thresholds)) > 1, "the recorded inputs should make the pacer move"
