"""The job's checkpoint on disk: written atomically, read without unpickling.

A checkpoint is one file, ``<run_dir>/checkpoint/checkpoint.npz``, replaced whole: it is written
to a temporary file beside it, forced to disk, then renamed over the old one, so a process
killed at any moment leaves either the previous checkpoint or the new one. When it cannot be
written (disk full, file too large) the temporary file is removed and a ``CheckpointError``
names the file and the system's error.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

FOLDER = "checkpoint"
FILE = "checkpoint.npz"


class CheckpointError(OSError):
    """A checkpoint cannot be written or read; the one-line message names the file."""


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir / FOLDER / FILE


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
