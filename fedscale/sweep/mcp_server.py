"""The sweep's verdict for agents, over MCP (stdio, the official ``mcp`` SDK):

- ``sweep_run(config_path, out_dir="", parallel=0)``: check the sweep file, start the sweep in
  the background (a ``fedscale sweep`` process) and return its id at once;
- ``sweep_status(sweep_id)``: each run pending, running (round, virtual time, accuracy) or ended;
- ``sweep_compare(sweep_dir)``: the ranked cells, the winner per metric and the most robust
  strategy, as structured data.

stdout is the protocol: sweeps write their console output into their own folder, never here.
``python docker/driver.py mcp`` serves it; ``pip install -e ".[mcp]"`` installs the SDK.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from fedscale.cloud.config.keys import ConfigError
from fedscale.deploy.local import child_setup
from fedscale.sweep.runner import default_out, report
from fedscale.sweep.spec import load_sweep
from fedscale.sweep.status import sweep_progress

CONSOLE = "sweep.out"


class SweepStarted(BaseModel):
    sweep_id: str
    sweep_dir: str
    runs: int


class RunProgress(BaseModel):
    run_id: str
    status: str
    round: int
    virtual_time: float
    accuracy: float | None
    reason: str


class SweepStatus(BaseModel):
    sweep_id: str
    sweep_dir: str
    state: str
    runs: list[RunProgress]


class Figure(BaseModel):
    mean: float
    low: float | None
    high: float | None
    n: int


class RankedCell(BaseModel):
    rank: int
    run: str
    strategy: str
    selector: str
    attack: str
    completed: int
    runs: int
    metrics: dict[str, Figure | None]


class Verdict(BaseModel):
    verdict: str
    cells: list[str]
    text: str


class SweepComparison(BaseModel):
    sweep_dir: str
    ranking: list[RankedCell]
    winners: dict[str, Verdict]
    most_robust: str | None
    robustness: Verdict | None
    statuses: dict[str, int]


class SweepRegistry:
    """The sweeps this server started: id -> (folder, process)."""

    def __init__(self) -> None:
        self.sweeps: dict[str, tuple[Path, subprocess.Popen]] = {}

    def start(self, config_path: str, out_dir: str = "", parallel: int = 0) -> SweepStarted:
        sweep = load_sweep(config_path)
        out = Path(out_dir) if out_dir else default_out()
        out = out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "fedscale.cli", "sweep", str(Path(config_path).resolve()), "--out", str(out)]
        if parallel:
            command += ["--parallel", str(parallel)]
        with open(out / CONSOLE, "ab") as console:
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                    preexec_fn=child_setup(()))
        sweep_id = out.name
        self.sweeps[sweep_id] = (out, proc)
        return SweepStarted(sweep_id=sweep_id, sweep_dir=str(out), runs=len(sweep.runs))

    def status(self, sweep_id: str) -> SweepStatus:
        folder, proc = self.sweeps.get(sweep_id, (Path(sweep_id), None))
        if not folder.is_dir():
            raise ConfigError(f"no sweep {sweep_id!r}: give an id sweep_run returned or a sweep folder")
        progress = sweep_progress(folder)
        if proc is not None and proc.poll() is None:
            state = "running"
        elif progress["finished"]:
            state = "finished"
        else:
            state = "failed" if proc is not None else "unfinished"
        return SweepStatus(sweep_id=sweep_id, sweep_dir=str(folder), state=state,
                           runs=[RunProgress(**run) for run in progress["runs"]])


def comparison_summary(sweep_dir: str) -> SweepComparison:
    """The ranked verdict of a finished sweep folder (rebuilt from its logs if comparison.json
    is missing)."""
    folder = Path(sweep_dir)
    path = folder / "comparison.json"
    try:
        comparison: dict[str, Any] = json.loads(path.read_text()) if path.exists() else report(folder)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{folder}: cannot read the comparison ({err})") from None
    ranking = [RankedCell(rank=i, run=c["group"], strategy=c["strategy"], selector=c["selector"], attack=c["attack"],
                          completed=c["completed"], runs=len(c["runs"]), metrics=c["metrics"])
               for i, c in enumerate(comparison["cells"], 1)]
    return SweepComparison(sweep_dir=str(folder), ranking=ranking, winners=comparison["winners"],
                           most_robust=comparison["robustness"]["most_robust"],
                           robustness=comparison["robustness"]["verdict"], statuses=comparison["statuses"])


@contextlib.contextmanager
def _as_tool_error() -> Iterator[None]:
    """A user error (a bad path, spec or id) reaches the agent as the tool's one-line error."""
    from mcp.server.mcpserver.exceptions import ToolError
    try:
        yield
    except ConfigError as err:
        raise ToolError(str(err)) from None


def build_server() -> Any:
    """The MCP server with the three sweep tools."""
    from mcp.server import MCPServer
    server = MCPServer("fedscale-sweep", instructions="Run federated-learning sweeps (strategies x attacks, or a "
                                                       "grid of job keys) and read their ranked verdict.")
    registry = SweepRegistry()

    @server.tool()
    def sweep_run(config_path: str, out_dir: str = "", parallel: int = 0) -> SweepStarted:
        """Start the sweep of a TOML spec or YAML grid in the background; returns its id at once."""
        with _as_tool_error():
            return registry.start(config_path, out_dir, parallel)

    @server.tool()
    def sweep_status(sweep_id: str) -> SweepStatus:
        """Progress of a sweep (its id, or a sweep folder): each run pending, running or ended."""
        with _as_tool_error():
            return registry.status(sweep_id)

    @server.tool()
    def sweep_compare(sweep_dir: str) -> SweepComparison:
        """The ranked comparison of a finished sweep folder: cells with mean and 95% interval per
        metric, the winner per metric where significant, the most robust strategy."""
        with _as_tool_error():
            return comparison_summary(sweep_dir)

    return server


def main() -> int:
    try:
        server = build_server()
    except ImportError:
        print("error: the MCP server needs the mcp package: pip install -e \".[mcp]\"", file=sys.stderr)
        return 2
    server.run("stdio")
    return 0
