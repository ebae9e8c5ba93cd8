"""plan.json: a sweep folder's runs in order, so that a process given nothing but the folder and
a run's index (a Slurm array task, a Kubernetes Indexed Job's pod, ``fedscale.sweep.cell``)
runs exactly the run the sweep meant.

The file is the sweep as JSON (``Sweep.model_dump()``): ``{"source": str, "seeds": int,
"runs": [RunSpec, ...]}``, each run with its ``run_id``, ``group``, ``strategy``, ``attack``,
``seed``, ``base`` (an absolute path, so the base job file must be on the shared file system),
``executors``, ``job_conf``, ``wall_budget``, ``target_metric`` and ``target_value``. Run ``i`` is
``runs[i]``; its folder is ``<sweep folder>/<run_id>``. JSON only: a cell trusts no pickle.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from fedscale.cloud.config.keys import ConfigError
from fedscale.sweep.results import read_json, write_json
from fedscale.sweep.spec import RunSpec, Sweep

PLAN = "plan.json"


def write_plan(sweep: Sweep, out: Path) -> Path:
    """Write ``out/plan.json`` (``out`` made if missing) and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / PLAN, sweep.model_dump())
    return out / PLAN


def read_plan(out: Path) -> Sweep:
    """The sweep written into ``out`` by ``write_plan``; a missing or broken file is a one-line error."""
    data = read_json(out / PLAN)
    if not isinstance(data, dict):
        raise ConfigError(f"{out}: not a prepared sweep folder (no readable {PLAN})")
    try:
        return Sweep.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{out / PLAN}: not a sweep plan ({err.errors()[0]['msg']})") from None


def planned_run(out: Path, index: int) -> RunSpec:
    """Run number ``index`` (from 0) of the sweep planned in ``out``."""
    runs = read_plan(out).runs
    if not 0 <= index < len(runs):
        raise ConfigError(f"{out}: no run {index}; the sweep has {len(runs)} runs, 0 to {len(runs) - 1}")
    return runs[index]
