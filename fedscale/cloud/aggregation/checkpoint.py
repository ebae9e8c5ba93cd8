"""The job's checkpoint on disk: everything the next round needs, written atomically, read without unpickling.

A checkpoint is one file, ``<run_dir>/checkpoint/checkpoint.npz``, replaced whole: it is written
to a temporary file beside it, forced to disk, then renamed over the old one, so a process
killed at any moment leaves either the previous checkpoint or the new one. When it cannot be
written (disk full, file too large) the temporary file is removed and a ``CheckpointError``
names the file and the system's error.

The state is a tree of dicts whose leaves are numpy arrays or JSON values. Each array is stored
as its own entry of the ``.npz`` (named by its path in the tree, ``"selector/fleet/reward"``;
the global model is ``"model"``); the rest of the tree, with each array replaced by a reference
to its entry, is stored as JSON text in the entry ``"__meta__"``. Reading uses
``allow_pickle=False`` throughout, and object arrays are refused when writing.
"""
from __future__ import annotations

import json
import os
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FOLDER = "checkpoint"
FILE = "checkpoint.npz"
FORMAT = 1
META = "__meta__"
ARRAY = "__array__"
WRITE_SPACING_SECONDS = 0.5


class CheckpointError(OSError):
    """A checkpoint cannot be written or read; the one-line message names the file."""


def checkpoint_path(run_dir: Path) -> Path:
    """Where the checkpoint of the job run in ``run_dir`` lives."""
    return run_dir / FOLDER / FILE


def split_arrays(tree: Any, path: tuple[str, ...] = ()) -> tuple[dict[str, np.ndarray], Any]:
    """The arrays of ``tree`` by path, and ``tree`` with each replaced by ``{"__array__": path}``."""
    if isinstance(tree, np.ndarray):
        if tree.dtype.hasobject:
            raise TypeError(f"checkpoint entry {'/'.join(path)} is an object array, which needs pickling")
        key = "/".join(path)
        return {key: tree}, {ARRAY: key}
    if isinstance(tree, dict):
        arrays: dict[str, np.ndarray] = {}
        skeleton = {}
        for key, value in tree.items():
            if not isinstance(key, str) or "/" in key:
                raise TypeError(f"checkpoint keys must be strings without '/', got {key!r} under {'/'.join(path)}")
            found, skeleton[key] = split_arrays(value, (*path, key))
            arrays.update(found)
        return arrays, skeleton
    if isinstance(tree, np.generic):
        return {}, tree.item()
    return {}, tree


def join_arrays(arrays: dict[str, np.ndarray], skeleton: Any) -> Any:
    """The tree ``split_arrays`` took apart."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {ARRAY}:
            return arrays[skeleton[ARRAY]]
        return {key: join_arrays(arrays, value) for key, value in skeleton.items()}
    return skeleton


def checkpoint_entries(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ``.npz`` entries of ``state`` (a tree of arrays and JSON values): its arrays by path
    and the JSON skeleton."""
    arrays, skeleton = split_arrays({**state, "format": FORMAT})
    arrays[META] = np.array(json.dumps(skeleton, allow_nan=True))
    return arrays


def write_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Replace the checkpoint at ``path`` by ``state`` (a tree of arrays and JSON values)."""
    entries = checkpoint_entries(state)
    write_atomically(path, lambda f: np.savez(f, **entries))


class CheckpointWriter:
    """Writes checkpoints on a background thread, so rounds never wait for the disk.

    ``submit`` takes a state the caller no longer changes (a copy, see the aggregator's
    ``_checkpoint_state``) and returns at once. The thread writes the latest state submitted,
    first running ``before_write`` (syncing the event log up to at least the size the state
    records), then replacing the file atomically; a state submitted while an earlier one still
    waits replaces it. Writes start at least ``spacing`` seconds apart: a write with its three
    fsyncs costs about a millisecond of disk and kernel time, as much as a light round's
    framework overhead, so light rounds are written a few times a second while rounds longer
    than ``spacing`` are each written. A job killed in round r+1 thus resumes after round r, or
    at most ``spacing`` seconds of rounds before it. ``close`` writes the last state at once.
    A failed write is raised by the next ``submit`` or by ``close``.
    """

    def __init__(self, path: Path, before_write: Callable[[], None], spacing: float = WRITE_SPACING_SECONDS) -> None:
        self.path = path
        self.spacing = spacing
        self._before_write = before_write
        self._pending: dict[str, np.ndarray] | None = None
        self._error: Exception | None = None
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._write_loop, name="checkpoint-writer", daemon=True)
        self._thread.start()

    def submit(self, state: dict[str, Any]) -> None:
        entries = checkpoint_entries(state)
        with self._changed:
            error, self._error = self._error, None
            if error is None:
                self._pending = entries
                self._changed.notify_all()
        if error is not None:
            raise error

    def close(self, quiet: bool = False) -> None:
        """Write what is pending and stop; raise a failed write's error unless ``quiet``."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._thread.join()
        if not quiet:
            self._raise_error()

    def _raise_error(self) -> None:
        with self._changed:
            error, self._error = self._error, None
        if error is not None:
            raise error

    def _write_loop(self) -> None:
        next_write = 0.0
        while True:
            with self._changed:
                while not self._closed and (self._pending is None or time.monotonic() < next_write):
                    self._changed.wait(None if self._pending is None else next_write - time.monotonic())
                entries, self._pending = self._pending, None
            if entries is None:
                return
            next_write = time.monotonic() + self.spacing
            try:
                self._before_write()
                write_atomically(self.path, lambda f: np.savez(f, **entries))
            except Exception as error:  # handed to the rounds' thread, which ends the job with it
                with self._changed:
                    self._error = error


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The state a checkpoint holds, or a ``CheckpointError`` naming the file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        skeleton = json.loads(str(arrays.pop(META)))
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path} (save_checkpoint was off, or no round had ended)") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"cannot read the checkpoint {path}: {err}") from None
    if not isinstance(skeleton, dict) or skeleton.get("format") != FORMAT:
        raise CheckpointError(f"cannot read the checkpoint {path}: not a checkpoint of format {FORMAT}")
    return join_arrays(arrays, skeleton)


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Replace ``path`` by what ``write`` writes to a file object, all or nothing."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"cannot write the checkpoint {path}: {err.strerror or err}") from None


def rewind_event_log(path: Path, size: int, discarded: Path) -> int:
    """Cut the event log at ``path`` back to its first ``size`` bytes, where the checkpoint was
    written, appending the lines cut off to ``discarded``; the number of lines cut off."""
    with open(path, "rb+") as log:
        log.seek(size)
        tail = log.read()
        if tail:
            with open(discarded, "ab") as f:
                f.write(tail if tail.endswith(b"\n") else tail + b"\n")
            log.truncate(size)
    return len(tail.splitlines())
