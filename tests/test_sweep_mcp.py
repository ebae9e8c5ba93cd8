"""The sweep's MCP tools: through the SDK's in-process client on a real background sweep, and
once over a real stdio subprocess (``docker/driver.py mcp``)."""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from tests.jobs import DRIVER, TWO_RUN_SWEEP

mcp = pytest.importorskip("mcp")


def structured(result) -> dict:
    assert not result.is_error, result.content
    return result.structured_content


async def _run_and_compare(spec: Path, out: Path) -> tuple[dict, dict, dict]:
    from mcp import Client
    from fedscale.sweep.mcp_server import build_server
    async with Client(build_server(), raise_exceptions=True) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert names == {"sweep_run", "sweep_status", "sweep_compare"}
        started = structured(await client.call_tool("sweep_run", {"config_path": str(spec), "out_dir": str(out)}))
        first = structured(await client.call_tool("sweep_status", {"sweep_id": started["sweep_id"]}))
        deadline = time.monotonic() + 180
        status = first
        while status["state"] == "running" and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            status = structured(await client.call_tool("sweep_status", {"sweep_id": started["sweep_id"]}))
        comparison = structured(await client.call_tool("sweep_compare", {"sweep_dir": started["sweep_dir"]}))
        bad = await client.call_tool("sweep_run", {"config_path": str(spec.with_name("missing.toml"))})
        assert bad.is_error and "missing.toml" in bad.content[0].text
        return started, status, comparison


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory) -> tuple[Path, dict, dict, dict]:
    folder = tmp_path_factory.mktemp("mcp")
    spec = folder / "two.toml"
    spec.write_text(TWO_RUN_SWEEP)
    out = folder / "out"
    return (out, *asyncio.run(_run_and_compare(spec, out)))


def test_sweep_run_returns_at_once_and_status_and_compare_follow_it(finished_sweep):
    out, started, status, comparison = finished_sweep
    assert started == {"sweep_id": "out", "sweep_dir": str(out), "runs": 2}
    assert status["state"] == "finished"
    assert [(r["run_id"], r["status"], r["round"]) for r in status["runs"]] == [
        ("0_FedAvg", "completed", 2), ("1_FedMedian", "completed", 2)]
    assert [c["run"] for c in comparison["ranking"]] in (["FedAvg", "FedMedian"], ["FedMedian", "FedAvg"])
    best = comparison["ranking"][0]["metrics"]["final_accuracy"]
    assert 0 < best["mean"] <= 1 and best["n"] == 1 and best["low"] is None
    assert comparison["winners"]["final_accuracy"]["verdict"] == "single_seed"
    assert comparison["statuses"] == {"completed": 2}
    assert (out / "comparison.md").exists() and (out / "sweep.out").exists()


def test_the_tools_over_a_real_stdio_subprocess(finished_sweep):
    from mcp import Client, StdioServerParameters
    out = finished_sweep[0]
    params = StdioServerParameters(command=sys.executable, args=[str(DRIVER), "mcp"], env=dict(os.environ))

    async def talk() -> tuple[set, dict, dict]:
        async with Client(params) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            status = structured(await client.call_tool("sweep_status", {"sweep_id": str(out)}))
            comparison = structured(await client.call_tool("sweep_compare", {"sweep_dir": str(out)}))
            return names, status, comparison

    names, status, comparison = asyncio.run(talk())
    assert names == {"sweep_run", "sweep_status", "sweep_compare"}
    assert status["state"] == "finished" and len(status["runs"]) == 2
    assert comparison == finished_sweep[3]
