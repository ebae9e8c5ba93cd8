"""Job files: a YAML job turned into a typed, checked JobSpec.

The accepted format is FedScale's job file (``ps_ip``, ``worker_ips``, ``exp_path``, ``auth``,
``setup_commands``, ``job_conf`` as a list of one-key maps), so existing FedScale jobs keep
working. Every FedScale job_conf key is declared once, by the component that reads it
(``fedscale.cloud.config``), and listed in ``KEYS``; those this tool does not act on yet are
accepted, typed and marked inactive so the CLI can say so. Any problem is reported as
one ``ConfigError`` line naming the file, the key and what was expected, before anything
starts. Nothing read from a job file is ever executed.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fedscale.cloud.commons import JOB_FILE, MODE_ASYNC, MODE_SYNC, executor_id
from fedscale.cloud.config.deployment import KEYS as DEPLOYMENT_KEYS
from fedscale.cloud.config.deployment import Deployment, parse_deployment
from fedscale.cloud.config.job_conf import ALL_NAMES, KEYS, JobConf, canonical_pairs, check_mode, inactive_keys
from fedscale.cloud.config.keys import TYPE_NAMES, Check, ConfigError, KeySpec, reported_from, show, suggest

__all__ = [
    "DEFAULT_JOB",
    "KEYS",
    "Check",
    "ConfigError",
    "JobConf",
    "JobSpec",
    "KeySpec",
    "WorkerHost",
    "describe_keys",
    "inactive_keys",
    "load_job",
    "parse_job",
]


@dataclass(frozen=True)
class WorkerHost:
    """One host of ``worker_ips`` and the number of executor processes it runs."""

    host: str
    procs: int


@dataclass(frozen=True)
class JobSpec:
    """A whole job file, checked and resolved: cluster layout, paths, the job_conf, and how the
    aggregator aggregates (``mode``: ``MODE_SYNC`` rounds, or ``MODE_ASYNC`` FedBuff steps for an
    aggregator_entry of async_aggregator.py)."""

    source: str
    ps_ip: str
    ps_port: int
    workers: tuple[WorkerHost, ...]
    exp_path: str
    auth: dict[str, Any]
    setup_commands: tuple[str, ...]
    conf: JobConf
    deployment: Deployment = Deployment()
    mode: str = MODE_SYNC
    in_process: bool = False  # executor-1 trains in the aggregator's process (see LocalLauncher.prepare)

    @property
    def num_executors(self) -> int:
        """Executors over all hosts."""
        return sum(worker.procs for worker in self.workers)

    @property
    def executor_ids(self) -> list[str]:
        """The executors' names, ``executor-1`` to ``executor-<num_executors>``."""
        return [executor_id(number) for number in range(1, self.num_executors + 1)]

    @property
    def executor_processes(self) -> list[str]:
        """The executors started as processes of their own: all but ``executor-1`` when it runs in
        the aggregator's process (``in_process``, chosen by the local launcher), else all."""
        return self.executor_ids[1:] if self.in_process else self.executor_ids

    @property
    def log_root(self) -> str:
        """Folder under which the job's logs go: job_conf.log_path if set, else exp_path."""
        return self.conf.identity.log_path or self.exp_path

    def to_dict(self) -> dict[str, Any]:
        """The resolved job as JSON-serialisable data, read back by ``from_dict``; credentials
        are blanked (``JobConf.public_dict``)."""
        return {
            "source": self.source,
            "ps_ip": self.ps_ip,
            "ps_port": self.ps_port,
            "workers": [{"host": worker.host, "procs": worker.procs} for worker in self.workers],
            "exp_path": self.exp_path,
            "auth": dict(self.auth),
            "setup_commands": list(self.setup_commands),
            "deployment": self.deployment.to_dict(),
            "conf": self.conf.public_dict(),
            "explicit": sorted(self.conf.explicit),
            "mode": self.mode,
            "in_process": self.in_process,
        }

    def save(self, run_dir: Path) -> None:
        """Write the job into its run folder, where the job's processes read it (``read``)."""
        (run_dir / JOB_FILE).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def read(cls, run_dir: Path) -> JobSpec:
        """The job a run folder was laid out for (``save``)."""
        return cls.from_dict(json.loads((run_dir / JOB_FILE).read_text()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobSpec:
        """Rebuild and re-validate a job from ``to_dict`` output."""
        source = str(d.get("source", "<dict>")) if isinstance(d, Mapping) else "<dict>"
        with reported_from(source):
            try:
                top = {
                    "ps_ip": d["ps_ip"],
                    "ps_port": d["ps_port"],
                    "worker_ips": [f"{worker['host']}:[{worker['procs']}]" for worker in d["workers"]],
                    "exp_path": d["exp_path"],
                    "auth": d["auth"],
                    "setup_commands": d["setup_commands"],
                    **d.get("deployment", {}),
                }
                settings, explicit = d["conf"], list(d["explicit"])
            except (KeyError, TypeError) as err:
                problem = f"not a resolved job as written by JobSpec.to_dict ({type(err).__name__}: {err})"
                raise ConfigError(problem) from None
            mode = d.get("mode", MODE_SYNC)
            if mode not in (MODE_SYNC, MODE_ASYNC):
                raise ConfigError(f"expected {MODE_SYNC!r} or {MODE_ASYNC!r}, got {show(mode)}", "mode")
            raw, _ = _collect_job_conf(settings)
            return dataclasses.replace(_assemble(top, raw, explicit, source, mode),
                                       in_process=d.get("in_process") is True)


# Top-level keys. ps_ip and ps_port share their job_conf declarations.

# the job ``submit`` runs without a job file, and a sweep's runs start from without a base
DEFAULT_JOB = Path(__file__).resolve().parents[1] / "jobs" / "quickstart.yml"
_TOP_LEVEL_KEYS = ("ps_ip", "ps_port", "worker_ips", "num_executors", "exp_path", "executor_entry",
                   "aggregator_entry", "auth", "setup_commands", *DEPLOYMENT_KEYS, "job_conf")
_TOP_LEVEL_SHAPE = "a mapping of job keys (ps_ip, worker_ips, job_conf, ...)"
_DEFAULT_HOST = "127.0.0.1"
_DEFAULT_WORKERS = [f"{_DEFAULT_HOST}:[1]"]
_EXP_PATH = KeySpec("exp_path", str, "", "Experiment folder; empty means the working directory.", path=True)
_AUTH_KEYS = {
    "ssh_user": KeySpec("ssh_user", str, "", "User for SSH to the worker hosts."),
    "ssh_private_key": KeySpec("ssh_private_key", str, "", "Private key for SSH to the worker hosts.", path=True),
    "ssh_port": KeySpec("ssh_port", int, 0, "SSH port of the worker hosts; 0: ~/.ssh/config's, else 22.", ge=0,
                        le=65535),
    "ssh_known_hosts": KeySpec("ssh_known_hosts", str, "", "known_hosts file holding the worker hosts' keys "
                               "(hosts not in it are refused); empty: ~/.ssh/known_hosts.", path=True),
}


def _entry_spec(key: str, script: str, *others: str) -> KeySpec:
    """FedScale's entry-script keys: only a path to a built-in script (same basename, FedScale's
    container variant ``<name>_ctnr.py``, or one of ``others``) is accepted."""
    names = (f"{script}.py", f"{script}_ctnr.py", *others)
    quoted = [repr(name) for name in names]
    return KeySpec(key, str, names[0], f"FedScale's {key.replace('_', ' ')} script.",
                   check=Check(lambda path: os.path.basename(path) in names,
                               f"a path ending in {', '.join(quoted[:-1])} or {quoted[-1]}, meaning the built-in one "
                               "(custom entry scripts are not run)"))


# FedScale's asynchronous aggregator (FedBuff), chosen by its entry script
ASYNC_AGGREGATOR_ENTRY = "async_aggregator.py"
_ENTRY_KEYS = (_entry_spec("executor_entry", "executor"),
               _entry_spec("aggregator_entry", "aggregator", ASYNC_AGGREGATOR_ENTRY))


def _check_entry(key: str, entry: str, exp_path: Any) -> None:
    """Refuse an entry script of one of FedScale's examples (under its ``examples/`` folder, the
    built-in container scripts of ``examples/containerization`` aside): each example replaces the
    executor or aggregator with its own code, which is not run here, and running the built-in one
    in its place would silently be another experiment."""
    folder = exp_path if isinstance(exp_path, str) else ""
    path = os.path.normpath(os.path.join(os.path.expandvars(os.path.expanduser(folder)), entry)).replace(os.sep, "/")
    parts = path.split("/")
    if "examples" in parts[:-1] and parts[-2] != "containerization":
        example = "/".join(parts[parts.index("examples"):])
        raise ConfigError(f"expected FedScale's own {key.split('_')[0]}, got {example} (the code of one of FedScale's "
                          "examples, which is not run here)", key)


def _aggregation_mode(aggregator_entry: str | None) -> str:
    """``MODE_ASYNC`` for FedScale's asynchronous aggregator's entry script (a checked
    aggregator_entry), else ``MODE_SYNC``."""
    is_async = aggregator_entry is not None and os.path.basename(aggregator_entry) == ASYNC_AGGREGATOR_ENTRY
    return MODE_ASYNC if is_async else MODE_SYNC
MAX_PROCS_PER_HOST = 64
MAX_EXECUTORS = 1024
_WORKER_ENTRY = re.compile(r"(?P<host>[^\s\[\]]+):\[\s*(?P<counts>\d+(?:\s*,\s*\d+)*)\s*\]", re.ASCII)


def _parse_workers(section: Any) -> tuple[WorkerHost, ...]:
    """``worker_ips``: FedScale's 'host:[n1,n2,...]' entries, processes per GPU, summed per host;
    a host listed more than once (as FedScale allows) has the processes of all its entries, in the
    place of its first."""
    if not isinstance(section, list) or not section:
        raise ConfigError(f"expected a non-empty list of 'host:[n]' entries, got {show(section)}", "worker_ips")
    procs_of: dict[str, int] = {}
    for index, entry in enumerate(section):
        where = f"worker_ips[{index}]"
        match = _WORKER_ENTRY.fullmatch(entry.strip()) if isinstance(entry, str) else None
        if match is None:
            raise ConfigError("expected 'host:[n]' or 'host:[n1,n2,...]' (executor processes per GPU), "
                              f"got {show(entry)}", where)
        host, counts = match["host"], re.findall(r"\d+", match["counts"])
        procs = sum(int(count) if len(count.lstrip("0")) <= 6 else MAX_EXECUTORS for count in counts)
        if procs == 0:
            raise ConfigError(f"expected at least one process on {host}, got {show(entry)}", where)
        on_host = procs_of.get(host, 0) + procs
        if on_host > MAX_PROCS_PER_HOST:
            listed = "" if on_host == procs else f" ({on_host} with its earlier entries for {host})"
            raise ConfigError(f"expected at most {MAX_PROCS_PER_HOST} executor processes on one host, "
                              f"got {show(entry)}{listed}", where)
        procs_of[host] = on_host
    total = sum(procs_of.values())
    if total > MAX_EXECUTORS:
        raise ConfigError(f"expected at most {MAX_EXECUTORS} executor processes in all, got {total}", "worker_ips")
    return tuple(WorkerHost(host, procs) for host, procs in procs_of.items())


def _parse_auth(section: Any) -> dict[str, Any]:
    """``auth``: optional ssh_user, ssh_private_key, ssh_port, ssh_known_hosts (paths expanded)."""
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"expected a mapping with ssh_user and/or ssh_private_key, got {show(section)}", "auth")
    auth: dict[str, Any] = {}
    for key, value in section.items():
        spec = _AUTH_KEYS.get(key) if isinstance(key, str) else None
        if spec is None:
            raise ConfigError(f"unknown key {show(key)}{suggest(key, _AUTH_KEYS)}", "auth")
        if value is not None:
            auth[key] = spec.parse(value, f"auth.{key}")
    return auth


def _parse_setup_commands(section: Any) -> tuple[str, ...]:
    """``setup_commands``: shell commands kept for the deploy launchers; never run by the parser."""
    if section is None:
        return ()
    if not isinstance(section, list):
        raise ConfigError(f"expected a list of shell commands, got {show(section)}", "setup_commands")
    for index, command in enumerate(section):
        if not isinstance(command, str):
            raise ConfigError(f"expected a string, got {show(command)}", f"setup_commands[{index}]")
    return tuple(section)


def _collect_job_conf(section: Any) -> tuple[dict[str, Any], frozenset[str]]:
    """``job_conf`` as FedScale writes it (a list of one-key maps) or as a plain mapping."""
    if section is None:
        return {}, frozenset()
    if isinstance(section, Mapping):
        return canonical_pairs(section.items())
    if not isinstance(section, list):
        raise ConfigError(f"expected a list of one-key maps ('- key: value') or a mapping, got {show(section)}",
                          "job_conf")
    for index, item in enumerate(section):
        if not isinstance(item, Mapping) or len(item) != 1:
            raise ConfigError(f"expected a one-key map such as '- learning_rate: 0.05', got {show(item)}",
                              f"job_conf[{index}]")
    return canonical_pairs(pair for item in section for pair in item.items())


def _top_level_choice(key: str, top: Mapping[str, Any], raw: Mapping[str, Any]) -> Any:
    """ps_ip/ps_port: the top-level value wins; a different job_conf value alongside it is an error."""
    spec = KEYS[key]
    if key not in top:
        return raw.get(key, spec.default)
    chosen = spec.parse(top[key], key)
    if key in raw and spec.parse(raw[key], f"job_conf.{key}") != chosen:
        raise ConfigError(f"{show(raw[key])} differs from the top-level {key} {show(top[key])}; "
                          "set it in one place", f"job_conf.{key}")
    return chosen


def _executor_hosts(top: Mapping[str, Any]) -> tuple[WorkerHost, ...]:
    """``worker_ips``, or for a job that gives only a top-level ``num_executors`` (FedScale's
    Kubernetes jobs, whose executors go where the cluster puts them) that many on this host."""
    if "worker_ips" in top or top.get("num_executors") is None:
        return _parse_workers(top.get("worker_ips", _DEFAULT_WORKERS))
    count = KEYS["num_executors"].parse(top["num_executors"], "num_executors")
    if count > MAX_EXECUTORS:
        raise ConfigError(f"expected at most {MAX_EXECUTORS} executor processes, got {count}", "num_executors")
    return (WorkerHost(_DEFAULT_HOST, count),)


def _assemble(top: Mapping[str, Any], raw: Mapping[str, Any], explicit: Iterable[str], source: str,
              mode: str) -> JobSpec:
    """Build the JobSpec of aggregation ``mode`` from top-level values and canonical raw job_conf values."""
    workers = _executor_hosts(top)
    total = sum(worker.procs for worker in workers)
    deployment = parse_deployment(top, total)
    settings = {key: deployment.host_path(value) if key in KEYS and KEYS[key].path else value
                for key, value in raw.items()}
    for where, given in (("num_executors", top.get("num_executors")), ("job_conf.num_executors", raw.get("num_executors"))):
        if given is not None and KEYS["num_executors"].parse(given, where) != total:
            raise ConfigError(f"expected {total}, the process total of worker_ips it is derived from, "
                              f"got {show(given)}", where)
    settings["num_executors"] = total
    for key in ("ps_ip", "ps_port"):
        settings[key] = _top_level_choice(key, top, raw)
    conf = JobConf(settings, explicit)
    check_mode(conf, mode)
    return JobSpec(
        source=source,
        ps_ip=conf.cluster.ps_ip,
        ps_port=conf.cluster.ps_port,
        workers=workers,
        exp_path=_EXP_PATH.parse(top.get("exp_path", ""), "exp_path") or os.getcwd(),
        auth=_parse_auth(top.get("auth")),
        setup_commands=_parse_setup_commands(top.get("setup_commands")),
        conf=conf,
        deployment=deployment,
        mode=mode,
    )


def parse_job(data: Any, source: str) -> JobSpec:
    """Check and resolve already-loaded job data (a FedScale-format mapping).

    ``source`` names the data in errors: the job file's path, or e.g. '<default>' for
    ``parse_job({}, "<default>")``, the all-defaults job.
    """
    with reported_from(source):
        if not isinstance(data, Mapping):
            raise ConfigError(f"expected {_TOP_LEVEL_SHAPE} at the top level, got {show(data)}")
        for key in data:
            if key not in _TOP_LEVEL_KEYS:
                if key in ALL_NAMES and isinstance(key, str):
                    hint = " (it is a job_conf key: put it under job_conf)"
                else:
                    hint = suggest(key, _TOP_LEVEL_KEYS)
                raise ConfigError(f"unknown top-level key {show(key)}{hint}")
        for spec in _ENTRY_KEYS:
            if spec.name in data:
                _check_entry(spec.name, spec.parse(data[spec.name], spec.name), data.get("exp_path"))
        raw, explicit = _collect_job_conf(data.get("job_conf"))
        return _assemble(data, raw, explicit, source, _aggregation_mode(data.get("aggregator_entry")))


# Limits on a job file, far above any real one (a few kilobytes, a few levels, a few hundred
# values), so reading a hostile file stays cheap and every refusal is one line.
MAX_JOB_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_NODES = 100_000


class _JobLoader(yaml.SafeLoader):
    """Safe YAML loading that refuses nesting deeper than MAX_DEPTH and a key repeated within one
    mapping (PyYAML would keep the last)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ConfigError(f"YAML nested deeper than {MAX_DEPTH} levels; expected a job file's few levels",
                                  f"line {self.peek_event().start_mark.line + 1}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ConfigError:
            raise
        except ValueError as err:
            raise ConfigError(f"expected a value YAML can read, got {show(node.value)} ({show(str(err))})",
                              f"line {node.start_mark.line + 1}") from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise ConfigError(f"duplicate key {show(key)}", f"line {key_node.start_mark.line + 1}")
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases would expand it past MAX_NODES nodes, or refer to
    themselves, counting each shared node once (nothing is expanded to count it)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_counted = stack.pop()
        if children_counted:
            open_nodes.discard(id(node))
            sizes[id(node)] = min(MAX_NODES + 1, 1 + sum(sizes[id(child)] for child in _children(node)))
            continue
        if id(node) in open_nodes:
            raise ConfigError("a YAML alias refers to the collection it is in; expected a finite document",
                              f"line {node.start_mark.line + 1}")
        if id(node) in sizes:
            continue
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node))
    if sizes[id(root)] > MAX_NODES:
        raise ConfigError(f"YAML that expands to more than {MAX_NODES} values once its aliases are expanded; "
                          "expected a job file's few hundred")


def _read_yaml(text: str) -> Any:
    """The document in ``text``, within the limits above; None for an empty one."""
    loader = _JobLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_job(path: str) -> JobSpec:
    """Read, check and resolve a YAML job file; any problem is one ConfigError naming the file."""
    source = os.fspath(path)
    try:
        with open(source, "rb") as stream:
            content = stream.read(MAX_JOB_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read the job file: {err.strerror or err}", source=source) from None
    with reported_from(source):
        if len(content) > MAX_JOB_BYTES:
            raise ConfigError(f"the job file is larger than {MAX_JOB_BYTES} bytes (1 MiB); expected a job file")
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError("cannot read the job file: it is not UTF-8 text") from None
        try:
            data = _read_yaml(text)
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            detail = "; ".join(part for part in (err.context, err.problem) if part)
            raise ConfigError(f"YAML syntax error: {detail}", f"line {mark.line + 1}" if mark else "") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"YAML syntax error: {err}") from None
        if data is None:
            raise ConfigError(f"the file is empty; expected {_TOP_LEVEL_SHAPE}")
    return parse_job(data, source)


def describe_keys() -> str:
    """Every job_conf key as a plain-text table (name, type, default, help), active keys first."""
    header = ("KEY", "TYPE", "DEFAULT", "DESCRIPTION")
    rows: dict[str, tuple[str, str, str, str]] = {}
    for spec in KEYS.values():
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        notes = [spec.help]
        if spec.constrained:
            notes.append(f"Expects {spec.expects}.")
        if spec.aliases:
            notes.append("Also accepted as: " + ", ".join(spec.aliases) + ".")
        rows[spec.name] = (spec.name, TYPE_NAMES[spec.type], json.dumps(default), " ".join(notes))
    widths = [max(len(row[column]) for row in (header, *rows.values())) for column in range(3)]

    def line(row: tuple[str, str, str, str]) -> str:
        return "  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3]

    sections = []
    for title, active in (("Keys this tool acts on:", True),
                          ("Keys accepted for FedScale compatibility, no effect yet:", False)):
        names = [name for name, spec in KEYS.items() if spec.active == active]
        sections.append("\n".join([title, line(header), *(line(rows[name]) for name in names)]))
    return "\n\n".join(sections)
