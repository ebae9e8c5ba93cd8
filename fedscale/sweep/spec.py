"""A sweep's runs: a TOML spec, a YAML grid or command-line flags, all become ``list[RunSpec]``.

- TOML (phalanx-fl's shape): ``[shared]`` holds job_conf keys and sweep keys (``base``, a job
  file the runs start from; the budgets; ``seeds``; ``executors``); each ``[[runs]]`` has a
  ``name``, a ``strategy`` (``fedscale.sweep.strategies``), optional ``[[runs.attacks]]`` and
  any job_conf keys of its own.
- YAML grid: a top-level ``shared`` mapping as above and a ``grid`` list; each entry has a
  ``group`` and ``params`` (job_conf keys, or ``strategy``) whose list values are expanded as a
  Cartesian product, in the order written.
- Flags: ``--strategies`` x (no attack, then each of ``--attacks``), with ``--rounds``,
  ``--clients`` (clients per round) and the other sweep options.

Every form goes through ``expand``: cells (a group, a combination label, a strategy, attack
entries and job_conf settings) become runs with the ids ``<index>_<group>[_<combo>]`` (and
``_s<seed>`` when ``seeds`` > 1). Cell ``i`` runs with seed ``seed + i``; with ``seeds`` K every
cell runs with the same K seeds ``seed .. seed + K - 1``, so runs with equal seeds are paired
(same data split, model initialisation and devices). A seed a cell sets itself is kept.
Each run is resolved into a complete job (``RunSpec.job_data``) and checked like a job file
before anything starts; an error names the spec file and the run.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from fedscale.cloud.config_parser import DEFAULT_JOB, JobSpec, load_job, parse_job
from fedscale.cloud.config.job_conf import SECRET_KEYS, canonical_pairs
from fedscale.cloud.config.keys import ConfigError, reported_from, show, suggest
from fedscale.sweep.strategies import StrategyError, attack_settings, strategy_settings

TARGET_METRICS = ("test_accuracy", "test_loss")
SWEEP_KEYS = ("base", "iso_time", "wall_budget", "target_metric", "target_value", "seeds", "executors")
NO_ATTACK = "none"
# set by the sweep for every run: the run's identity, its folder and a free port of its own
_OWNED_KEYS = frozenset({"job_name", "time_stamp", "log_path", "ps_ip", "ps_port", "num_executors"})


class RunSpec(BaseModel):
    """One run of a sweep: a complete job (a base job file and the settings over it) and how it
    is labelled, budgeted and judged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    group: str
    strategy: str = ""
    attack: str = ""
    seed: int
    base: str = Field("", description="Job file the run starts from (absolute path); empty: the quickstart job.")
    executors: int | None = Field(None, ge=1, description="Executor processes; None: the base job's.")
    job_conf: dict[str, Any] = Field(default_factory=dict, description="job_conf settings over the base job's.")
    wall_budget: float | None = Field(None, gt=0, description="Wall seconds after which the run is stopped.")
    target_metric: Literal[TARGET_METRICS] | None = None
    target_value: float | None = None

    def job_data(self, run_dir: Path) -> dict[str, Any]:
        """The run as a job file's data (FedScale's format), its logs under ``run_dir``."""
        base = _base_job(self.base)
        conf = {name: _plain(base.conf[name]) for name in sorted(base.conf.explicit - _OWNED_KEYS)}
        conf.update(self.job_conf)
        conf["job_name"] = _job_name(self.run_id, run_dir)
        executors = self.executors or base.num_executors
        return {
            "ps_ip": "127.0.0.1",
            "ps_port": 0,
            "worker_ips": [f"127.0.0.1:[{executors}]"],
            "exp_path": str(run_dir),
            "auth": dict(base.auth),
            "setup_commands": list(base.setup_commands),
            "job_conf": [{key: value} for key, value in conf.items()],
        }

    def job(self, run_dir: Path, source: str = "") -> JobSpec:
        """The run's job, checked as a job file would be; errors name ``source`` and the run."""
        return parse_job(self.job_data(run_dir), f"{source or 'sweep'}: run {self.run_id}")

    def config_hash(self) -> str:
        """A digest of what determines the run's results: the resolved job_conf and executors."""
        job = self.job(Path("/"))
        conf = {k: v for k, v in job.conf.to_dict().items() if k not in _OWNED_KEYS}
        data = {"conf": conf, "executors": job.num_executors, "wall_budget": self.wall_budget,
                "target": [self.target_metric, self.target_value]}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Sweep(BaseModel):
    """The runs of a sweep and where they came from."""

    model_config = ConfigDict(frozen=True)

    source: str
    runs: list[RunSpec]
    seeds: int = 1


@dataclass
class Cell:
    """One combination of settings before seeds are applied."""

    group: str
    combo: str = ""
    strategy: str = ""
    attacks: list[Mapping[str, Any]] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@functools.lru_cache(maxsize=None)
def _base_job(path: str) -> JobSpec:
    """The base job file, read once per sweep process: every run built on it is resolved
    several times (checked, hashed, written), and all of them see the same file."""
    return load_job(path or str(DEFAULT_JOB))


def _job_name(run_id: str, run_dir: Path) -> str:
    """A job name unique to the run's folder, so two sweeps' runs never share one."""
    digest = hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:8]
    return f"{run_id}.{digest}"[:120]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "x"


def _settings(pairs: Mapping[str, Any], where: str) -> dict[str, Any]:
    """job_conf settings by canonical name; unknown or owned keys refused."""
    try:
        values, _ = canonical_pairs(pairs.items())
    except ConfigError as err:
        raise ConfigError(err.problem, where) from None
    for key in values:
        if key in SECRET_KEYS:
            raise ConfigError(f"{key!r} is a credential, and a sweep writes its runs' settings into files; "
                              "leave it out of the sweep", where)
        if key in _OWNED_KEYS:
            raise ConfigError(f"{key!r} is set by the sweep for every run (each run gets its own name, folder "
                              "and free port)", where)
    return values


def expand(source: str, shared: Mapping[str, Any], cells: Sequence[Cell], seed: int | None = None,
           seeds: int | None = None) -> Sweep:
    """The sweep of ``cells`` under ``shared`` settings (job_conf and sweep keys); ``seed`` and
    ``seeds`` override the shared ones. The one path every spec form takes."""
    shared = dict(shared)
    sweep_keys = {k: _sweep_value(k, shared.pop(k)) for k in SWEEP_KEYS if k in shared}
    base = str(sweep_keys.get("base", "") or "")
    common = _settings(shared, "shared")
    seeds = int(sweep_keys.get("seeds", 1) if seeds is None else seeds)
    if seeds < 1:
        raise ConfigError(f"expected a number of seeds >= 1, got {show(seeds)}", "seeds")
    if "iso_time" in sweep_keys:
        common["max_virtual_time"] = sweep_keys["iso_time"]
        common.setdefault("rounds", 1_000_000)
    if seed is None:
        seed = int(common.get("seed", _base_job(base).conf.training.seed))
    common.pop("seed", None)
    target = {k: sweep_keys[k] for k in ("target_metric", "target_value") if k in sweep_keys}
    if ("target_metric" in target) != ("target_value" in target):
        raise ConfigError("give target_metric and target_value together", "shared")
    runs: list[RunSpec] = []
    for index, cell in enumerate(cells):
        where = f"run {cell.group}"
        settings = dict(common)
        try:
            if cell.strategy:
                settings.update(strategy_settings(cell.strategy))
            if len(cell.attacks) > 1:
                raise StrategyError(f"{len(cell.attacks)} attacks given; a run has one attack (one Byzantine "
                                    "behaviour); make one run per attack")
            for entry in cell.attacks:
                settings.update(attack_settings(entry))
        except StrategyError as err:
            raise ConfigError(str(err), where) from None
        settings.update(cell.settings)
        own_seed = settings.pop("seed", None)
        run_seeds = ([own_seed] if own_seed is not None and seeds == 1 else
                     [own_seed + k for k in range(seeds)] if own_seed is not None else
                     [seed + k for k in range(seeds)] if seeds > 1 else [seed + index])
        stem = f"{index}_{_slug(cell.group)}" + (f"_{_slug(cell.combo)}" if cell.combo else "")
        for run_seed in run_seeds:
            run_id = stem + (f"_s{run_seed}" if seeds > 1 else "")
            attack = str(settings.get("attack", "") or "")
            runs.append(RunSpec(
                run_id=run_id, group=cell.group + (f"_{cell.combo}" if cell.combo else ""),
                strategy=cell.strategy, attack=attack, seed=run_seed,
                base=str(Path(base).resolve()) if base else "", executors=sweep_keys.get("executors"),
                job_conf={**settings, "seed": run_seed}, wall_budget=sweep_keys.get("wall_budget"), **target))
    if not runs:
        raise ConfigError("the sweep has no runs", "runs")
    ids = [r.run_id for r in runs]
    if len(set(ids)) != len(ids):
        raise ConfigError("two runs have the same name; give each run its own", "runs")
    sweep = Sweep(source=source, runs=runs, seeds=seeds)
    check(sweep)
    return sweep


def _sweep_value(key: str, value: Any) -> Any:
    """A sweep key's value, checked: positive numbers, a whole count, a metric name, a path."""
    if key == "base":
        if not isinstance(value, str):
            raise ConfigError(f"expected the path of a job file, got {show(value)}", key)
        return value
    if key == "target_metric":
        if value not in TARGET_METRICS:
            raise ConfigError(f"expected one of {', '.join(TARGET_METRICS)}, got {show(value)}", key)
        return value
    integer = key in ("seeds", "executors")
    ok = (isinstance(value, int) if integer else isinstance(value, (int, float))) and not isinstance(value, bool)
    if not ok or (key != "target_value" and not value > 0) or value != value or value in (float("inf"), float("-inf")):
        kind = "a whole number >= 1" if integer else "a finite number" + ("" if key == "target_value" else " > 0")
        raise ConfigError(f"expected {kind}, got {show(value)}", key)
    return value


def check(sweep: Sweep) -> None:
    """Resolve every run's job as a job file would be, so a bad key, value or base job fails
    before anything starts."""
    for run in sweep.runs:
        run.job(Path("/sweep-check"), sweep.source)


# -- the three forms ------------------------------------------------------------------------------

def _base_relative(shared: dict[str, Any], folder: Path) -> dict[str, Any]:
    if shared.get("base"):
        shared["base"] = str((folder / os.path.expanduser(str(shared["base"]))).resolve())
    return shared


def _mapping(value: Any, where: str, source: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a table of keys, got {show(value)}", where, source)
    return dict(value)


def from_toml(path: Path, seed: int | None = None, seeds: int | None = None) -> Sweep:
    """A TOML sweep: ``[shared]`` and ``[[runs]]`` (``name``, ``strategy``, ``[[runs.attacks]]``
    and job_conf keys)."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read the sweep file: {err.strerror or err}", source=source) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"TOML syntax error: {err}", source=source) from None
    for key in data:
        if key not in ("shared", "runs"):
            raise ConfigError(f"unknown top-level table {key!r}{suggest(key, ('shared', 'runs'))}; expected [shared] "
                              "and [[runs]]", source=source)
    shared = _base_relative(_mapping(data.get("shared"), "shared", source), path.parent)
    runs = data.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ConfigError("expected one or more [[runs]] tables", "runs", source)
    cells = []
    for position, run in enumerate(runs):
        run = dict(run)
        name = run.pop("name", None)
        if not isinstance(name, str) or not name:
            raise ConfigError("every run needs a name", f"runs[{position}]", source)
        attacks = run.pop("attacks", [])
        if isinstance(attacks, Mapping):
            attacks = [attacks]
        cells.append(Cell(group=name, strategy=str(run.pop("strategy", "") or ""), attacks=list(attacks),
                          settings=_cell_settings(run, f"run {name}", source)))
    with reported_from(source):
        return expand(source, shared, cells, seed=seed, seeds=seeds)


def from_grid(path: Path, seed: int | None = None, seeds: int | None = None) -> Sweep:
    """A YAML grid: ``shared`` and ``grid`` entries (``group``, ``params`` with list values
    expanded as a Cartesian product)."""
    from fedscale.cloud.config_parser import _read_yaml
    source = str(path)
    try:
        data = _read_yaml(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read the sweep file: {err.strerror or err}", source=source) from None
    except yaml.YAMLError as err:
        raise ConfigError(f"YAML syntax error: {err}".splitlines()[0], source=source) from None
    if not isinstance(data, Mapping) or not isinstance(data.get("grid"), list) or not data["grid"]:
        raise ConfigError("expected a 'grid' list of entries (group, params)", source=source)
    for key in data:
        if key not in ("shared", "grid"):
            raise ConfigError(f"unknown top-level key {key!r}; expected shared and grid", source=source)
    shared = _base_relative(_mapping(data.get("shared"), "shared", source), path.parent)
    cells = []
    for position, entry in enumerate(data["grid"]):
        where = f"grid[{position}]"
        entry = _mapping(entry, where, source)
        group = entry.pop("group", None)
        if not isinstance(group, str) or not group:
            raise ConfigError("every grid entry needs a group name", where, source)
        params = _mapping(entry.pop("params", {}), f"{where}.params", source)
        if entry:
            raise ConfigError(f"unknown key {next(iter(entry))!r}; a grid entry has group and params", where, source)
        names = list(params)
        choices = [v if isinstance(v, list) else [v] for v in params.values()]
        varying = [i for i, v in enumerate(params.values()) if isinstance(v, list) and len(v) > 1]
        for combo in itertools.product(*choices):
            values = dict(zip(names, combo))
            label = "_".join(str(combo[i]) for i in varying)
            strategy = str(values.pop("strategy", "") or "")
            cells.append(Cell(group=group, combo=label, strategy=strategy,
                              settings=_cell_settings(values, f"group {group}", source)))
    with reported_from(source):
        return expand(source, shared, cells, seed=seed, seeds=seeds)


def from_flags(strategies: Sequence[str], attacks: Sequence[str] = (), rounds: int | None = None,
               clients: int | None = None, seed: int | None = None, seeds: int | None = None, base: str = "",
               executors: int | None = 1, byzantine_fraction: float = 0.2, iso_time: float | None = None,
               wall_budget: float | None = None, target_metric: str | None = None,
               target_value: float | None = None) -> Sweep:
    """The ad hoc sweep: every strategy without an attack, then under each attack (with
    ``byzantine_fraction`` of the clients Byzantine)."""
    shared: dict[str, Any] = {"executors": executors} if executors else {}
    for key, value in (("base", base), ("rounds", rounds), ("num_participants", clients), ("iso_time", iso_time),
                       ("wall_budget", wall_budget), ("target_metric", target_metric),
                       ("target_value", target_value)):
        if value:
            shared[key] = value
    cells = []
    for strategy in strategies:
        for attack in [NO_ATTACK, *attacks]:
            entries = [] if attack == NO_ATTACK else [{"type": attack, "fraction": byzantine_fraction}]
            cells.append(Cell(group=strategy if attack == NO_ATTACK else f"{strategy}_{attack}",
                              strategy=strategy, attacks=entries))
    with reported_from("command line"):
        return expand("command line", shared, cells, seed=seed, seeds=seeds)


def load_sweep(path: str, seed: int | None = None, seeds: int | None = None) -> Sweep:
    """A sweep file by its extension: ``.toml``, or ``.yaml``/``.yml`` for a grid; ``seed`` and
    ``seeds`` override the file's."""
    p = Path(path)
    if p.suffix == ".toml":
        return from_toml(p, seed, seeds)
    if p.suffix in (".yaml", ".yml"):
        return from_grid(p, seed, seeds)
    raise ConfigError("expected a .toml sweep or a .yaml grid", source=path)


def _cell_settings(values: Mapping[str, Any], where: str, source: str) -> dict[str, Any]:
    try:
        return _settings(values, where)
    except ConfigError as err:
        raise ConfigError(err.problem, err.where, source) from None
