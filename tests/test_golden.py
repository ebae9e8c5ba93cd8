"""The golden jobs' event logs are unchanged (see tests/golden/__init__.py)."""
from __future__ import annotations

import json

import pytest

from benchmark.kill_resume import differing_keys
from tests.golden import JOBS, recorded, run_job


def _difference(want: str, have: str) -> str:
    """The keys whose values differ between two event lines (floats to the tolerance of
    ``same_value``), shortened for the message; empty if none."""
    a, b = json.loads(want), json.loads(have)
    return "; ".join(f"{key}: recorded {str(a.get(key))[:120]}, got {str(b.get(key))[:120]}"
                     for key in differing_keys(a, b))


@pytest.mark.parametrize("name", JOBS)
def test_event_logs_match_the_recorded_ones(tmp_path, name):
    expected, actual = recorded(name), run_job(name, tmp_path)
    assert sorted(actual) == sorted(expected), "a different set of log files"
    for file_name, lines in expected.items():
        got = actual[file_name]
        for number, (want, have) in enumerate(zip(lines, got), 1):
            difference = _difference(want, have)
            assert not difference, f"{name}/{file_name} line {number}: {difference}"
        assert len(got) == len(lines), f"{name}/{file_name}: {len(got)} lines, recorded {len(lines)}"
