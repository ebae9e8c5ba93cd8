"""The threat model: Byzantine set, poisoned training, forged rows, the defence and its report."""
from __future__ import annotations

import pytest
import torch

from fedscale.cloud import commons
from fedscale.cloud.aggregation.threat_model import ThreatModel, ThreatModelError
from fedscale.cloud.config.components import RobustnessConfig
from fedscale.robust.attacks import ATTACKS
from tests.jobs import events, run_dirs, run_driver, write_job


def threat_model(num_clients: int, seed: int = 7, num_participants: int = 10, **robustness) -> ThreatModel:
    """The threat model of ``num_clients`` clients under the ``robustness`` settings."""
    return ThreatModel(RobustnessConfig(**robustness), seed, num_participants, num_clients)


def test_the_byzantine_set_is_seeded_and_sized_by_the_count_or_the_fraction():
    by_fraction = threat_model(40, byzantine_fraction=0.25)
    assert len(by_fraction.byzantine) == 10 and by_fraction.byzantine <= set(range(40))
    assert threat_model(40, byzantine_fraction=0.25).byzantine == by_fraction.byzantine
    assert threat_model(40, byzantine_fraction=0.25, seed=8).byzantine != by_fraction.byzantine
    assert len(threat_model(40, byzantine_fraction=0.25, num_byzantine=3).byzantine) == 3
    with pytest.raises(ThreatModelError, match=r"job_conf.num_byzantine=41 exceeds the 40 clients"):
        threat_model(40, num_byzantine=41)


def test_f_defaults_to_the_expected_byzantine_participants():
    assert threat_model(40, byzantine_fraction=0.25).f == round(10 / 40 * 10)
    assert threat_model(40, byzantine_fraction=0.25, f=1).f == 1


def test_only_a_data_attack_poisons_training_and_only_an_update_attack_forges():
    flip = threat_model(20, attack="label_flip", num_byzantine=5)
    clients = list(range(20))
    assert flip.poisoned(clients) == [c in flip.byzantine for c in clients] and any(flip.poisoned(clients))
    updates = torch.randn(20, 4)
    assert torch.equal(flip.forge(1, clients, updates), updates)
    sign = threat_model(20, attack="sign_flip", num_byzantine=5)
    assert sign.poisoned(clients) == []
    forged = sign.forge(1, clients, updates)
    bad = torch.tensor([c in sign.byzantine for c in clients])
    assert torch.equal(forged[~bad], updates[~bad]) and not torch.equal(forged[bad], updates[bad])
    expected = ATTACKS["sign_flip"](updates[~bad], num_byzantine=5,
                                    generator=torch.Generator().manual_seed(7 * 1_000_003 + 1))
    assert torch.equal(forged[bad], expected)
    assert threat_model(20, attack="sign_flip").poisoned(clients) == []


def test_an_attack_that_cannot_forge_names_the_key_and_the_round():
    threat = threat_model(2, attack="little", num_byzantine=1)
    honest = [c for c in range(2) if c not in threat.byzantine]
    with pytest.raises(ThreatModelError, match=r"^job_conf.attack='little' cannot forge round 3's rows .*at least 2 row"):
        threat.forge(3, [0, 1], torch.randn(2, 4))
    assert torch.equal(threat.forge(3, honest, torch.ones(1, 4)), torch.ones(1, 4))


def test_the_defence_reports_client_ids_and_counts_the_byzantine_ones():
    threat = threat_model(50, aggregator="multi_krum", f=1, num_byzantine=1)
    (bad,) = threat.byzantine
    clients = sorted({bad, *range(5)})[-5:]
    updates = torch.stack([torch.full((3,), 100.0 if c == bad else 0.0) for c in clients])
    update, choice = threat.aggregate(1, clients, updates, torch.ones(5))
    assert torch.equal(update, torch.zeros(3))
    assert choice == {"kept": [c for c in clients if c != bad], "byzantine_kept": 0}
    assert threat.round_fields(clients, choice) == {"byzantine": [bad], "byzantine_aggregated": 1,
                                                    "defence": choice}
    with pytest.raises(ThreatModelError, match=r"^job_conf.aggregator='multi_krum' cannot aggregate round 2's 2"):
        threat.aggregate(2, clients[:2], updates[:2], torch.ones(2))


def test_an_attack_that_cannot_forge_the_rounds_is_refused_before_launch(tmp_path):
    """Two clients, one Byzantine, both in every round: ALIE needs two honest rows."""
    job = write_job(tmp_path, executors=1, num_clients=2, num_participants=2, rounds=2, attack="little",
                    num_byzantine=1)
    done = run_driver(tmp_path, "submit", str(job))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "job_conf.attack='little' cannot forge round 1's rows" in lines[0], done.stderr
    assert not run_dirs(tmp_path)


def test_a_job_whose_attack_cannot_forge_a_round_ends_with_one_line_naming_the_attack(tmp_path):
    """The data map file makes two clients, one Byzantine; validation, which does not read the map,
    expects no Byzantine participant among 2 of num_clients=20, so the job starts and round 1 fails."""
    mapping = tmp_path / "map.csv"
    mapping.write_text("client_id,sample_path\n" + "".join(f"{i % 2},{i}\n" for i in range(40)))
    job = write_job(tmp_path, executors=1, num_clients=20, num_participants=2, rounds=2, attack="little",
                    num_byzantine=1, data_map_file=str(mapping))
    done = run_driver(tmp_path, "submit", str(job))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "job_conf.attack='little' cannot forge round 1's rows" in lines[0], done.stderr
    end = events(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)[-1]
    assert end["tag"] == commons.JOB_END and end["status"] == commons.STATUS_FAILED
    assert end["reason"].startswith("job_conf.attack='little' cannot forge round 1's rows")