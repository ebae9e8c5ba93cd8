"""The job's Weights & Biases run: one per job, opened by the aggregator alone, fed from its
event log so that W&B shows exactly what the log says.

W&B is used when the aggregator's environment has ``WANDB_API_KEY`` (the driver puts the job's
``wandb_token`` there; ``wandb login`` users set ``WANDB_MODE=online``) or ``WANDB_MODE``
(``offline`` writes the run under the run folder, for ``wandb sync`` later). The key never
reaches a command line or a file of ours. Each round logs its training metrics when it ends and
its test metrics when they arrive (a round's test can come after the next round began), with
``round`` as the x-axis of every chart and ``virtual_time`` logged alongside as a second one.
W&B's own variables pick the project, group, job type and name (``WANDB_PROJECT``,
``WANDB_RUN_GROUP``, ...; a sweep sets the group to its folder, the job type to the strategy and
the name to the run); by default the project is ``fedscale`` and the name the job's.
The package is an optional extra (``pip install 'fedscale[wandb]'``).
"""
from __future__ import annotations

import importlib.util
import os
import queue
import re
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedscale.cloud import commons

ENVIRONMENT = ("WANDB_API_KEY", "WANDB_MODE")
DEFAULT_PROJECT = "fedscale"
FINISH_SECONDS = 6.0  # with telemetry's 3 s, within the 10 s the driver waits for a job's processes
MISSING = ("note: W&B logging was asked for (wandb_token, WANDB_API_KEY or WANDB_MODE) but the wandb package is "
           "not installed (pip install 'fedscale[wandb]'); the job runs without it")


def requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the job is to be logged to W&B."""
    return any(environ.get(name) for name in ENVIRONMENT)


def installed() -> bool:
    return importlib.util.find_spec("wandb") is not None


def round_metrics(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """What an event contributes to the W&B run's history, or None: a round's training side from
    ROUND_END, its test from TEST_RESULT, each with the round and the virtual time."""
    tag = event["tag"]
    if tag == commons.ROUND_END:
        metrics = {"train/loss": event["train_loss"], "clients/aggregated": event["aggregated"],
                   "clients/failed": len(event["failures"]), "clients/stragglers": len(event["stragglers"]),
                   "clients/offline": len(event["offline"]),
                   "clients/byzantine_aggregated": event["byzantine_aggregated"],
                   "round/duration": event["round_duration"], "round/wall_seconds": event["wall_seconds"]}
    elif tag == commons.TEST_RESULT:
        metrics = {"test/accuracy": event["accuracy"], "test/loss": event["loss"]}
    else:
        return None
    return {"round": event["round"], "virtual_time": event["virtual_time"],
            **{key: value for key, value in metrics.items() if value is not None}}


def run_id(run_dir: Path) -> str:
    """The W&B id of the job in ``run_dir``: its name and run folder, so that a resumed job goes on
    in the same W&B run."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{run_dir.parent.name}-{run_dir.name}")[-128:]


class WandbRun:
    """The job's W&B run, fed the aggregator's events (an ``EventLog`` listener) and closed with
    its summary by the job's end.

    W&B works on a thread of its own: opening a run can take seconds (or, online without a
    network, until W&B gives up), and the rounds must not wait for it, so events queue up until
    the run is open. A W&B failure is one note in the aggregator's output and the job goes on.
    """

    def __init__(self, config: dict[str, Any], run_dir: Path) -> None:
        self.config, self.run_dir, self.opened = config, run_dir, False
        self.events: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._work, name="wandb", daemon=True)
        self.thread.start()

    @classmethod
    def open(cls, config: dict[str, Any], run_dir: Path) -> WandbRun | None:
        """The job's run if W&B is requested, else None."""
        return cls(config, run_dir) if requested() else None

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.put(event)

    def close(self, timeout: float = FINISH_SECONDS) -> None:
        """Wait up to ``timeout`` s for the run to take the job's end and finish."""
        self.thread.join(timeout)
        if self.thread.is_alive():
            what = "finish" if self.opened else "open (is W&B's server reachable?)"
            print(f"note: the W&B run did not {what} within {timeout:g} s of the job's end; what it had not "
                  "sent is lost", file=sys.stderr)

    def _work(self) -> None:
        try:
            import wandb
        except ImportError:
            print(MISSING, file=sys.stderr)
            return
        try:
            run = wandb.init(project=os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
                             name=os.environ.get("WANDB_NAME") or self.run_dir.parent.name,
                             id=run_id(self.run_dir), resume="allow", dir=str(self.run_dir), config=self.config,
                             settings=wandb.Settings(console="off", silent=True))
            run.define_metric("round")
            run.define_metric("virtual_time")
            run.define_metric("*", step_metric="round")
            self.opened = True
            while True:
                event = self.events.get()
                if event["tag"] == commons.JOB_END:
                    _finish(run, event)
                    return
                if (metrics := round_metrics(event)) is not None:
                    run.log(metrics)
        except Exception as err:  # no network, a refused key...: the job does not depend on W&B
            print(f"note: W&B logging stopped: {type(err).__name__}: {err}", file=sys.stderr)


def _finish(run: Any, end: dict[str, Any]) -> None:
    """Close ``run`` with the job's end in its summary."""
    test = end.get("test") or {}
    run.summary.update({"status": end["status"], "reason": end["reason"],
                        "rounds_completed": end.get("rounds_completed", 0), "virtual_time": end["virtual_time"],
                        "wall_seconds": end.get("wall_seconds"), **{f"final/{key}": value for key, value in test.items()}})
    run.finish(exit_code=0 if end["status"] == commons.STATUS_COMPLETED else 1)
