"""A run's plots (PNG, matplotlib's Agg backend), drawn from its event log alone
(``python docker/driver.py plot <run folder>``):

- ``progress.png``: test accuracy and loss against round and against virtual time;
- ``clients.png``: per round, the clients aggregated, left out as stragglers, offline, and
  otherwise failed;
- ``round_durations.png``: the distribution of the rounds' simulated durations.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

from fedscale.cloud.config.keys import ConfigError
from fedscale.cloud.logger.rounds import aggregator_events, aggregator_log, round_rows

matplotlib.use("Agg")


def write_run_plots(run_dir: str | Path) -> list[Path]:
    """Write the run's plots into ``run_dir``; returns their paths."""
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    if aggregator_log(run_dir) is None:
        raise ConfigError(f"{run_dir}: not a run folder (no aggregator.jsonl)")
    rows = round_rows(aggregator_events(run_dir))
    if not rows:
        raise ConfigError(f"{run_dir}: the run has no finished round to plot")
    tested = [r for r in rows if r["test_accuracy"] is not None]
    written = []

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for column, (x, xlabel) in enumerate((("round", "round"), ("virtual_time", "virtual time (s)"))):
        for row, (y, ylabel) in enumerate((("test_accuracy", "test accuracy"), ("test_loss", "test loss"))):
            ax = axes[row][column]
            ax.plot([r[x] for r in tested], [r[y] for r in tested], marker="o", markersize=3)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            if y == "test_loss" and tested and all(r[y] and r[y] > 0 for r in tested):
                ax.set_yscale("log")
    written.append(save_figure(fig, run_dir / "progress.png"))

    fig, ax = plt.subplots(figsize=(10, 4))
    rounds = [r["round"] for r in rows]
    bottom = [0] * len(rows)
    for key, label in (("aggregated", "aggregated"), ("stragglers", "stragglers"), ("offline", "offline"),
                       ("failed", "failed (not offline)")):
        heights = [r[key] - (r["offline"] if key == "failed" else 0) for r in rows]
        ax.bar(rounds, heights, bottom=bottom, label=label, width=1.0)
        bottom = [b + h for b, h in zip(bottom, heights)]
    ax.set_xlabel("round")
    ax.set_ylabel("clients")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    written.append(save_figure(fig, run_dir / "clients.png"))

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist([r["round_duration"] for r in rows], bins=min(30, max(5, len(rows) // 3)))
    ax.set_xlabel("simulated round duration (s)")
    ax.set_ylabel("rounds")
    written.append(save_figure(fig, run_dir / "round_durations.png"))
    return written


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG and free it."""
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
