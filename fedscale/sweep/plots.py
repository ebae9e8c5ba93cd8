"""The sweep's plots (PNG, matplotlib's Agg backend): test accuracy and loss against round and
against virtual time, one line per cell (the mean over its seeds, with the band from the lowest
to the highest seed) in one panel per attack, and a heat map of final accuracy, strategy x
attack."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fedscale.cloud.logger.plots import save_figure
from fedscale.cloud.logger.rounds import aggregator_events, round_rows


def _tested_rows(out: Path, runs: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The tested rounds of each run (``round_rows`` of its event log), read once for all plots."""
    return {run: [r for r in round_rows(aggregator_events(out / run)) if r["test_accuracy"] is not None]
            for run in runs}


def _curves(tested: Mapping[str, list[dict[str, Any]]], cell: Mapping[str, Any], x: str,
            y: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cell's ``y`` against ``x`` over the points every seed has (mean, low, high)."""
    series = [tested[run] for run in cell["runs"] if tested[run]]
    length = min((len(rows) for rows in series), default=0)
    if not length:
        return (np.empty(0),) * 4
    xs = np.array([[row[x] for row in rows[:length]] for rows in series]).mean(axis=0)
    ys = np.array([[np.nan if row[y] is None else row[y] for row in rows[:length]] for rows in series])
    return xs, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def write_plots(out: Path, comparison: Mapping[str, Any]) -> list[Path]:
    """Write the plots into ``out``; returns their paths. With several attacks the curves get
    one panel per attack, so each panel compares the strategies that met the same attack."""
    import matplotlib.pyplot as plt
    tested = _tested_rows(out, [run for cell in comparison["cells"] for run in cell["runs"]])
    panels: dict[str, list[Mapping[str, Any]]] = {}
    for cell in comparison["cells"]:
        panels.setdefault(cell["attack"], []).append(cell)
    titles = sorted(panels, key=lambda a: (a != "none", a))
    columns = min(3, len(titles))
    rows = -(-len(titles) // columns)
    # a strategy keeps its colour across panels when it names one line per panel
    keys = sorted({(cell["strategy"], cell["selector"]) for cell in comparison["cells"]})
    by_strategy = all(len({(c["strategy"], c["selector"]) for c in cells}) == len(cells) for cells in panels.values())
    palette = plt.get_cmap("tab10" if max(len(keys), *map(len, panels.values())) <= 10 else "tab20")
    written = []
    for y, label in (("test_accuracy", "test accuracy"), ("test_loss", "test loss")):
        for x, xlabel in (("round", "round"), ("virtual_time", "virtual time (s)")):
            fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 3.8 * rows), squeeze=False)
            for ax, attack in zip(axes.flat, titles):
                for index, cell in enumerate(panels[attack]):
                    xs, mean, low, high = _curves(tested, cell, x, y)
                    if not len(xs):
                        continue
                    colour = palette((keys.index((cell["strategy"], cell["selector"])) if by_strategy else index)
                                     % palette.N)
                    ax.plot(xs, mean, color=colour, label=cell["group"])
                    if len(cell["runs"]) > 1:
                        ax.fill_between(xs, low, high, color=colour, alpha=0.15)
                if len(titles) > 1:
                    ax.set_title(f"attack: {attack}", fontsize="medium")
                if y == "test_loss":
                    ax.set_yscale("log")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(label)
                if ax.lines:
                    ax.legend(fontsize="small")
            for ax in list(axes.flat)[len(titles):]:
                ax.set_visible(False)
            written.append(save_figure(fig, out / f"{y.removeprefix('test_')}_vs_{x}.png"))
    heat = _heat_map(comparison)
    if heat is not None:
        strategies, attacks, values = heat
        fig, ax = plt.subplots(figsize=(1.5 + 1.3 * len(attacks), 1.2 + 0.5 * len(strategies)))
        image = ax.imshow(values, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right")
        ax.set_yticks(range(len(strategies)), strategies)
        for (i, j), v in np.ndenumerate(values):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="white" if v < np.nanmean(values) else "black")
        fig.colorbar(image, ax=ax, label="final accuracy")
        written.append(save_figure(fig, out / "robustness_heatmap.png"))
    return written


def _heat_map(comparison: Mapping[str, Any]) -> tuple[list[str], list[str], np.ndarray] | None:
    """Final accuracy (mean over seeds) by strategy x attack, when some strategy meets an attack."""
    cells = [c for c in comparison["cells"] if c["metrics"]["final_accuracy"]]
    strategies = sorted({c["strategy"] for c in cells})
    attacks = sorted({c["attack"] for c in cells}, key=lambda a: (a != "none", a))
    if len(attacks) < 2:
        return None
    values = np.full((len(strategies), len(attacks)), np.nan)
    for c in cells:
        values[strategies.index(c["strategy"]), attacks.index(c["attack"])] = c["metrics"]["final_accuracy"]["mean"]
    return strategies, attacks, values
