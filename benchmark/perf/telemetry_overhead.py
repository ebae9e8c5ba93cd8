"""What OpenTelemetry costs a job: the default job's median round with telemetry off and on
(spans and metrics of every process exported over OTLP/HTTP to a collector on 127.0.0.1), in
interleaved passes, and the ratio on / off (target: at most 1.05).
Usage: python benchmark/perf/telemetry_overhead.py [--repeats 5] [--rounds 100]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from otlp_collector import Collector

ROOT = Path(__file__).resolve().parents[2]
DRIVER = ROOT / "docker" / "driver.py"


def median_round(env: dict[str, str], rounds: int) -> float:
    """Median wall seconds between consecutive rounds' ends of the default job (round 1 left out)."""
    with tempfile.TemporaryDirectory() as folder:
        job = Path(folder) / "job.yml"
        data = yaml.safe_load((ROOT / "fedscale" / "jobs" / "quickstart.yml").read_text())
        data["exp_path"] = folder
        data["job_conf"] = [e for e in data["job_conf"] if "rounds" not in e] + [{"rounds": rounds}]
        job.write_text(yaml.safe_dump(data))
        done = subprocess.run([sys.executable, str(DRIVER), "submit", "--no-plots", str(job)], cwd=folder, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the job failed: {done.stderr.strip()}")
        log = next(Path(folder).rglob("aggregator.jsonl"))
        ends = [e["wall_time"] for e in map(json.loads, log.read_text().splitlines()) if e["tag"] == "ROUND_END"]
    return statistics.median(b - a for a, b in zip(ends[1:], ends[2:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    collector = Collector()
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    on = dict(base, OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint)
    ratios = []
    try:
        for i in range(args.repeats):
            off_seconds, on_seconds = median_round(base, args.rounds), median_round(on, args.rounds)
            ratios.append(on_seconds / off_seconds)
            print(f"pass {i + 1}: round off {off_seconds * 1000:.1f} ms, on {on_seconds * 1000:.1f} ms, "
                  f"ratio {ratios[-1]:.3f}", flush=True)
    finally:
        collector.close()
    spans = len(collector.collected.spans)
    print(f"telemetry on / off, median round: {statistics.median(ratios):.3f} (passes {min(ratios):.3f}-"
          f"{max(ratios):.3f}; {spans} spans collected; target <= 1.05)")


if __name__ == "__main__":
    main()
