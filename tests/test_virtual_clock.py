"""The virtual clock and the event log that stamps its lines with it."""
from __future__ import annotations

import json

import pytest

from fedscale.cloud.logger.events import EventLog
from fedscale.cloud.virtual_clock import VirtualClock


def test_the_clock_starts_rounds_and_only_moves_forward():
    clock = VirtualClock()
    assert (clock.round, clock.time) == (0, 0.0)
    clock.start_round(1)
    clock.advance_to(30.0)
    clock.advance_by(12.5)
    assert (clock.round, clock.time) == (1, 42.5)
    clock.advance_by(0.0)
    with pytest.raises(ValueError, match="back to 40.0"):
        clock.advance_to(40.0)
    with pytest.raises(ValueError):
        clock.advance_by(float("nan"))
    assert clock.time == 42.5


def test_event_lines_carry_the_clock_at_the_time_they_are_written(tmp_path):
    clock = VirtualClock()
    log = EventLog(tmp_path / "log.jsonl", "job", clock)
    log.emit("JOB_BEGIN")
    clock.start_round(2)
    clock.advance_to(7.25)
    log.emit("ROUND_END", aggregated=3)
    log.close()
    first, second = (json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines())
    assert list(first) == ["tag", "job", "round", "virtual_time", "wall_time"]
    assert (first["round"], first["virtual_time"]) == (0, 0.0)
    assert (second["round"], second["virtual_time"], second["aggregated"]) == (2, 7.25, 3)


def test_non_finite_values_are_written_as_null_anywhere_in_an_event(tmp_path):
    log = EventLog(tmp_path / "log.jsonl", "job", VirtualClock())
    log.emit("ROUND_END", train_loss=float("nan"), test={"loss": float("inf"), "accuracy": 0.5},
             durations=[1.0, float("-inf")])
    log.emit("ROUND_END", train_loss=0.25)
    log.close()
    first, second = (json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines())
    assert first["train_loss"] is None and first["test"] == {"loss": None, "accuracy": 0.5}
    assert first["durations"] == [1.0, None] and second["train_loss"] == 0.25
