"""The structured event log: one JSON object per line, one file per process.

Every line carries ``tag``, ``job``, ``round``, ``virtual_time`` (both read from the process's
``VirtualClock``) and ``wall_time`` (Unix seconds), then the event's own keys. Lines are flushed as written so a crashed process loses
nothing it had logged and readers (the driver's progress display, the sweep) can tail the file.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from fedscale.cloud.virtual_clock import VirtualClock


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """Map NaN and infinities to None: JSON has no spelling for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


class EventLog:
    """Appends tagged JSON events to ``path`` for job ``job``, stamped with ``clock``'s round and
    time; safe to call from any thread."""

    def __init__(self, path: str | Path, job: str, clock: VirtualClock) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.job = job
        self.clock = clock
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")

    def emit(self, tag: str, **fields: Any) -> dict[str, Any]:
        """Write one event line and return it as a dict."""
        event = {"tag": tag, "job": self.job, "round": self.clock.round,
                 "virtual_time": self.clock.time, "wall_time": time.time()}
        event.update(fields)
        line = json.dumps(_finite(event), default=_json_default, allow_nan=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()
        return event

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_events(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the events of a log file; a torn last line (a process killed mid-write) is skipped."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                return
            yield json.loads(line)


class EventTail:
    """Incrementally reads complete new lines of an event log that another process is writing."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = ""

    def poll(self) -> list[dict[str, Any]]:
        """Events appended since the last call (none if the file does not exist yet)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                f.seek(self._offset)
                chunk = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return []
        text = self._partial + chunk
        lines = text.split("\n")
        self._partial = lines.pop()
        return [json.loads(line) for line in lines if line]
