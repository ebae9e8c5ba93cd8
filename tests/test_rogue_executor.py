"""A rogue executor holding the job secret against a real aggregator process in a real job.

The rogues (benchmark/rogue_executor.py) speak the real protocol through the executor's own
``AggregatorConnection`` with crafted content, beside one honest executor process. The
aggregator must refuse or drop each of them with a logged reason, keep its memory bounded,
and finish the job with the honest executor's results.
"""
from __future__ import annotations

import pytest

from benchmark.rogue_executor import ATTACKS, HONEST, HUGE_HEADER_BYTES, honest_clients, run_with_rogues
from fedscale.cloud import commons
from tests.jobs import events, run_dirs, run_driver, write_job


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return run_with_rogues(tmp_path_factory.mktemp("rogues"), ATTACKS, num_participants=14)


def reason_for(outcome, tag, rogue):
    found = [e["reason"] for e in outcome.events if e["tag"] == tag and e["executor"] == f"rogue-{rogue}"]
    assert found, f"no {tag} for rogue-{rogue}"
    return found[0]


def test_the_job_completes_with_every_honest_result(outcome):
    end = outcome.events[-1]
    assert end["tag"] == commons.JOB_END and end["status"] == commons.STATUS_COMPLETED, end
    assert outcome.exit_code == 0 and end["rounds_completed"] == 4
    given, aggregated = honest_clients(outcome.events)
    assert given > 0 and aggregated == given
    assert not [e for e in outcome.events if e["tag"] == commons.EXECUTOR_LOST and e["executor"] == HONEST]


@pytest.mark.parametrize("rogue, reason", [
    ("huge-header", "the executor sent malformed data: task results announce tensors [updates float32 [1, "
                    f"{HUGE_HEADER_BYTES // 4}]], expected [updates float32 [1, "),
    ("overflowing-shape", "task results announce tensors [updates float32 [4611686018427387904, 3]]"),
    ("foreign-clients", "not assigned to this executor in task"),
    ("impossible-test", "refused: test result counts"),
    ("mismatched-hello", "refused: its input_shape differs from executor-1's (the first executor's)"),
    ("huge-input-shape", "refused: input_shape [1048576, 1048576] must have 1 to 4 positive dimensions"),
])
def test_each_rogue_is_dropped_with_the_reason(outcome, rogue, reason):
    assert reason in reason_for(outcome, commons.EXECUTOR_LOST, rogue)


def test_a_huge_header_allocates_nothing(outcome):
    """The header announced 1 GiB (the old code zero-filled it at once); the peak stays far below."""
    assert outcome.rss_after_round_1_mb - outcome.rss_start_mb < HUGE_HEADER_BYTES / 2 ** 20 / 4


@pytest.mark.parametrize("rogue, reason", [
    ("inflated-samples", "reported 1000000000000 samples, the client holds "),
    ("nan-update", "non-finite update"),
])
def test_lying_results_are_that_clients_failure(outcome, rogue, reason):
    assert reason_for(outcome, commons.CLIENT_FAILED, rogue).startswith(reason)
    assert not [e for e in outcome.events if e["tag"] == commons.EXECUTOR_LOST and e["executor"] == f"rogue-{rogue}"]


def test_refused_clients_are_not_aggregated(outcome):
    failed = {(e["round"], e["client"]) for e in outcome.events if e["tag"] == commons.CLIENT_FAILED}
    for end in (e for e in outcome.events if e["tag"] == commons.ROUND_END):
        assert not {(end["round"], c) for c in end["clients"]} & failed
        assert end["train_loss"] == end["train_loss"]


def test_a_diverging_honest_job_ends_diverged_with_a_non_zero_exit(tmp_path):
    """No rogue: the server step (fed-adam with a huge server rate) overflows the model in round 1."""
    done = run_driver(tmp_path, "submit", str(write_job(tmp_path, executors=1, rounds=3, gradient_policy="fed-adam",
                                                        yogi_eta=1e39)))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("job small diverged: round 1: the global model is not finite after aggregation"), \
        done.stderr
    end = events(run_dirs(tmp_path)[-1] / commons.AGGREGATOR_LOG)[-1]
    assert end["status"] == commons.STATUS_DIVERGED and end["rounds_completed"] == 0
