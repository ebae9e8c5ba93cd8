"""The structured event log: one JSON object per line, one file per process.

Every line carries ``tag``, ``job``, ``round``, ``virtual_time`` (both read from the process's
``VirtualClock``) and ``wall_time`` (Unix seconds), then the event's own keys. Lines are flushed as written so a crashed process loses
nothing it had logged and readers (the driver's progress display, the sweep) can tail the file.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

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


class EventLogError(OSError):
    """An event line could not be written; the message names the file and the system's error."""


class EventLog:
    """Appends tagged JSON events to ``path`` for job ``job``, stamped with ``clock``'s round and
    time; safe to call from any thread.

    A line is written whole or not at all: when the write fails (disk full, file too large) the
    part written is cut off again, so the file keeps ending with a complete line and a later,
    shorter line (the job's end) may still fit. With ``echo`` (a binary stream) each line written
    is also written there as is: a cluster keeps a pod's output, not its files.
    """

    def __init__(self, path: str | Path, job: str, clock: VirtualClock, echo: BinaryIO | None = None) -> None:
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # called with each event once written
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.job = job
        self.clock = clock
        self.echo = echo
        self._lock = threading.Lock()
        self._file = open(self.path, "ab", buffering=0)
        self._size = os.fstat(self._file.fileno()).st_size

    @property
    def size(self) -> int:
        """Bytes in the file: where the next line will start."""
        return self._size

    def emit(self, tag: str, **fields: Any) -> dict[str, Any]:
        """Write one event line and return it as a dict; an ``EventLogError`` if it cannot be written."""
        event = {"tag": tag, "job": self.job, "round": self.clock.round,
                 "virtual_time": self.clock.time, "wall_time": time.time()}
        event.update(fields)
        try:
            text = json.dumps(event, default=_json_default, allow_nan=False)
        except ValueError:  # a NaN or infinity somewhere: spelled null, at the cost of a walk over the event
            text = json.dumps(_finite(event), default=_json_default, allow_nan=False)
        line = (text + "\n").encode()
        with self._lock:
            try:
                view = memoryview(line)
                while view:
                    view = view[self._file.write(view):]
            except OSError as err:
                self._cut_back()
                raise EventLogError(f"cannot write the event log {self.path}: {err.strerror}") from None
            self._size += len(line)
            if self.echo is not None:
                self.echo.write(line)
                self.echo.flush()
        for listener in self.listeners:
            listener(event)
        return event

    def sync(self) -> None:
        """Force the lines written so far onto the disk (without holding up writers meanwhile)."""
        with self._lock:
            descriptor = self._file.fileno()
        os.fsync(descriptor)

    def _cut_back(self) -> None:
        """Drop a partly written line (best effort: the disk is already failing)."""
        try:
            os.ftruncate(self._file.fileno(), self._size)
        except OSError:
            pass

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
    """Incrementally reads complete new lines of an event log that another process is writing,
    from byte ``offset`` on."""

    def __init__(self, path: str | Path, offset: int = 0) -> None:
        self.path = Path(path)
        self._offset = offset
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
