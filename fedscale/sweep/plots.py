"""The sweep's plots (PNG, matplotlib's Agg backend): test accuracy and loss against round and
against virtual time, one line per cell (the mean over its seeds, with the band from the lowest
to the highest seed) in one panel per attack, and a heat map of final accuracy, strategy x
attack."""
from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _tested_rows(folder: Path) -> list[dict[str, float]]:
    try:
        with open(folder / "rounds.csv", newline="") as f:
            return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)
                    if row.get("test_accuracy")]
    except OSError:
        return []


def _curves(out: Path, cell: Mapping[str, Any], x: str, y: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The cell's ``y`` against ``x`` over the points every seed has (mean, low, high)."""
    series = [rows for rows in (_tested_rows(out / run) for run in cell["runs"]) if rows]
    length = min((len(rows) for rows in series), default=0)
    if not length:
        return (np.empty(0),) * 4
    xs = np.array([[row[x] for row in rows[:length]] for rows in series]).mean(axis=0)
    ys = np.array([[row.get(y, np.nan) for row in rows[:length]] for rows in series])
    return xs, ys.mean(axis=0), ys.min(axis=0), ys.max(axis=0)


def write_plots(out: Path, comparison: Mapping[str, Any]) -> list[Path]:
    """Write the plots into ``out``; returns their paths (none if matplotlib is missing).
    With several attacks the curves get one panel per attack, so each panel compares the
    strategies that met the same attack."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
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
                    xs, mean, low, high = _curves(out, cell, x, y)
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
            path = out / f"{y.removeprefix('test_')}_vs_{x}.png"
            fig.tight_layout()
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
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
        fig.tight_layout()
        path = out / "robustness_heatmap.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
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
