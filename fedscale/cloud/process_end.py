"""How a job's process ends once its work is done and logged: at once, without finalisation.

The aggregator and the executors run gRPC, whose native threads may still be winding down when
``main`` returns; the interpreter's finalisation then destroys them under their feet, which
now and then aborts the process (``terminate called without an active exception``, exit -6)
after a job that completed. Nothing is left to finalise by then: the event logs are unbuffered,
telemetry and W&B were shut down by ``main``, so the process flushes its output and leaves.
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush stdout and stderr, then end the process with ``code`` without finalisation."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed or broken stream: nothing more can be said on it
            pass
    os._exit(code)
