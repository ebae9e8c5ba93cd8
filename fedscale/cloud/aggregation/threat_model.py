"""The job's threat model: who is Byzantine, what they do, and the defence that assumes it.

A seeded, fixed subset of the clients is Byzantine for the whole job. Under a data attack
(``fedscale.robust.attacks.DATA_ATTACKS``, e.g. label flipping) the executors train those
clients on poisoned data and their updates are kept as sent. Under an update attack the server
replaces their rows of each round by what the attack computes from the round's honest rows: the
omniscient attacker of A Little Is Enough (Baruch et al., NeurIPS 2019, Sec. 3) and of the inner
product manipulation attack (Xie et al., UAI 2019, Sec. 3), which see every honest update. The
defence is the job's robust aggregation spec run with ``f`` Byzantine rows assumed per round,
the ``f`` of Krum's analysis (Blanchard et al., NeurIPS 2017, Sec. 4); by default the expected
number of Byzantine clients among ``num_participants``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from fedscale.cloud.config.components import RobustnessConfig
from fedscale.robust.attacks import ATTACKS, DATA_ATTACKS
from fedscale.robust.registry import Step, parse_attack, robust_aggregator

BYZANTINE_STREAM = 0xB12
FORGE_SEED_STRIDE = 1_000_003


class ThreatModelError(ValueError):
    """The threat model cannot be set up or applied; the one-line message names the key."""


def byzantine_count(robustness: RobustnessConfig, num_clients: int) -> int:
    """``num_byzantine`` if set (>= 0), else ``byzantine_fraction`` of the clients, rounded."""
    if robustness.num_byzantine >= 0:
        return robustness.num_byzantine
    return round(robustness.byzantine_fraction * num_clients)


def expected_byzantine(count: int, num_clients: int, num_participants: int) -> int:
    """The expected number of Byzantine clients among a round's ``num_participants`` when
    ``count`` of the ``num_clients`` are Byzantine, rounded."""
    return round(count / max(num_clients, 1) * num_participants)


def assumed_f(robustness: RobustnessConfig, count: int, num_clients: int, num_participants: int) -> int:
    """``f`` if set (>= 0), else the expected number of Byzantine clients per round."""
    if robustness.f >= 0:
        return robustness.f
    return expected_byzantine(count, num_clients, num_participants)


class ThreatModel:
    """The Byzantine set, the attack and the defence of one job of ``num_clients`` clients, from
    the job's robustness settings, its ``seed`` and its ``num_participants`` per round."""

    def __init__(self, robustness: RobustnessConfig, seed: int, num_participants: int, num_clients: int) -> None:
        count = byzantine_count(robustness, num_clients)
        if count > num_clients:
            raise ThreatModelError(f"job_conf.num_byzantine={count} exceeds the {num_clients} clients")
        rng = np.random.default_rng([seed, BYZANTINE_STREAM])
        self.byzantine: frozenset[int] = frozenset(rng.choice(num_clients, size=count, replace=False).tolist())
        self.seed = seed
        self.attack_spec = robustness.attack
        self.aggregator_spec = robustness.aggregator
        attack = parse_attack(robustness.attack) if robustness.attack and count else None
        self.data_attack = attack is not None and attack.name in DATA_ATTACKS
        self.update_attack: Step | None = None if self.data_attack else attack
        self.f = assumed_f(robustness, count, num_clients, num_participants)
        self.generator = torch.Generator().manual_seed(seed)
        self.defence: Callable[..., torch.Tensor] = robust_aggregator(robustness.aggregator, f=self.f,
                                                                      generator=self.generator)

    def state(self) -> dict[str, np.ndarray]:
        """The Byzantine set and the defence's generator state, for a checkpoint (the update
        attack draws from a generator seeded per round and keeps no state)."""
        return {"byzantine": np.array(sorted(self.byzantine), dtype=np.int64),
                "defence_generator": self.generator.get_state().numpy()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Take back what ``state`` returned."""
        self.byzantine = frozenset(state["byzantine"].tolist())
        self.generator.set_state(torch.from_numpy(state["defence_generator"]))

    def poisoned(self, clients: Sequence[int]) -> list[bool]:
        """Per client of a task, whether it trains on poisoned data; empty without a data attack."""
        return [c in self.byzantine for c in clients] if self.data_attack else []

    def forge(self, round_index: int, clients: Sequence[int], updates: torch.Tensor) -> torch.Tensor:
        """``updates`` (one row per client of ``clients``) with the Byzantine rows replaced by the
        update attack's output on the honest rows, drawn from a generator seeded by (seed, round).
        Rows stay as sent without an update attack, or when every row or none is Byzantine."""
        bad = torch.tensor([c in self.byzantine for c in clients], dtype=torch.bool)
        if self.update_attack is None or not bad.any() or bad.all():
            return updates
        generator = torch.Generator().manual_seed(self.seed * FORGE_SEED_STRIDE + round_index)
        try:
            forged = ATTACKS[self.update_attack.name](updates[~bad], num_byzantine=int(bad.sum()),
                                                      generator=generator, **self.update_attack.params)
        except ValueError as err:
            raise ThreatModelError(f"job_conf.attack={self.attack_spec!r} cannot forge round {round_index}'s "
                                   f"rows ({int((~bad).sum())} honest, {int(bad.sum())} Byzantine): {err}") from None
        forged_updates = updates.clone()
        forged_updates[bad] = forged.to(updates.dtype)
        return forged_updates

    def aggregate(self, round_index: int, clients: Sequence[int], updates: torch.Tensor,
                  weights: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any]]:
        """The defence's aggregate of the round's rows (row i from ``clients[i]``, weighted by
        ``weights`` where the aggregator takes weights) and its choice: the report's ``kept`` /
        ``clipped`` rows (see ``fedscale.robust.report``) as client ids, with the Byzantine
        clients among them counted as ``byzantine_kept`` / ``byzantine_clipped``."""
        report: dict[str, list[int]] = {}
        try:
            update = self.defence(updates, weights, report)
        except ValueError as err:
            raise ThreatModelError(f"job_conf.aggregator={self.aggregator_spec!r} cannot aggregate round "
                                   f"{round_index}'s {len(clients)} updates: {err}") from None
        choice: dict[str, Any] = {}
        for key, rows in report.items():
            choice[key] = [clients[r] for r in rows]
            choice[f"byzantine_{key}"] = sum(clients[r] in self.byzantine for r in rows)
        return update, choice

    def round_fields(self, clients: Sequence[int], choice: dict[str, Any]) -> dict[str, Any]:
        """ROUND_END's ``byzantine`` (the Byzantine clients among the aggregated ``clients``),
        ``byzantine_aggregated`` and ``defence`` (the defence's ``choice``)."""
        byzantine = [c for c in clients if c in self.byzantine]
        return {"byzantine": byzantine, "byzantine_aggregated": len(byzantine), "defence": choice}
