"""docs/events.md is the event log's contract: every key real logs hold is documented with its
type, and every documented key is one real logs hold. The golden logs are real logs of every
kind of job (plain, each selector, adaptive training, Byzantine attacks); the whole-job tests
check their own logs, faults and restarts included, with ``check_log_lines``."""
from __future__ import annotations

import json

from tests.golden import HERE, JOBS, MACHINE_KEYS
from tests.jobs import check_documented, documented_events

# keys the golden logs cannot hold: machine measurements (dropped when recording), and what
# only a fault, a resume or an asynchronous job writes (the whole-job tests of those check their logs)
NOT_IN_GOLDEN = {"": {"wall_time"}, "JOB_BEGIN": {"address", "port", "run_dir", "resumed_from"},
                 "EXECUTOR_JOINED": {"index"}, "ROUND_BEGIN": {"start_times", "mode"},
                 "ROUND_END": {"wall_seconds", "compute_seconds", "staleness", "mode"},
                 "JOB_END": {"wall_seconds"}, "EXECUTOR_LOST": {"executor", "reason"},
                 "CLIENTS_REASSIGNED": {"executor", "assignment"}}


def golden_events() -> list[dict]:
    return [{"wall_time": 0.0, **json.loads(line)} for name in JOBS for path in sorted((HERE / name).glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_every_key_of_real_logs_is_documented_with_its_type():
    docs = documented_events()
    logged = golden_events()
    for event in logged:
        check_documented(event, docs)
    assert {e["tag"] for e in logged} >= {"JOB_BEGIN", "EXECUTOR_JOINED", "ROUND_BEGIN", "ROUND_END", "TEST_RESULT",
                                          "CLIENT_FAILED", "JOB_END"}


def test_every_documented_key_is_one_real_logs_hold():
    docs = documented_events()
    seen: dict[str, set[str]] = {}
    for event in golden_events():
        seen.setdefault(event["tag"], set()).update(event)
    common = set.intersection(*seen.values())
    assert set(docs[""]) - NOT_IN_GOLDEN[""] <= common
    for tag, keys in docs.items():
        if tag:
            assert set(keys) - NOT_IN_GOLDEN.get(tag, set()) <= seen.get(tag, set()), tag
    assert MACHINE_KEYS <= {key for keys in NOT_IN_GOLDEN.values() for key in keys}
