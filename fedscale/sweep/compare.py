"""The verdict of a sweep: cells ranked, a winner per metric only where it is significant, and
which strategy loses least under attack.

Runs that differ only in their seed form a cell. Each cell's figure for a metric is the mean
over its completed runs with a 95% Student-t interval (``mean_interval``). A cell wins a metric
only when it is significantly ahead of the runner-up: where both ran the same seeds, the 95%
interval of their per-seed difference excludes 0 (a paired comparison: equal seeds mean equal
data split, initial model, devices and Byzantine set); otherwise their own intervals do not
overlap. Else the verdict is "no significant difference" and names every cell not significantly
behind the best. With one seed per cell there is no interval, and the verdict says so instead
of naming a winner.
Robustness: for each strategy, the drop in final accuracy from its attack-free cell to each of
its attacked cells; an attack under which every run diverged is the worst outcome (listed under
``diverged``, no drop figure); the most robust strategy has the smallest worst drop among those
no attack made diverge.

``build`` is a pure function of the run records, so ``report`` rebuilds the same comparison from
the logs; ``render`` turns it into comparison.md.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fedscale.sweep.results import COMPLETED, DIVERGED

CONFIDENCE = 0.95
# metric -> (column title, True if higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "final_accuracy": ("Final acc", True),
    "final_loss": ("Final loss", False),
    "mean_loss": ("Mean loss", False),
    "virtual_seconds_to_target": ("Virtual time to target", False),
    "rounds_to_target": ("Rounds to target", False),
    "elapsed_seconds": ("Elapsed (s)", False),
}
VERDICT_METRICS = ("final_accuracy", "final_loss", "mean_loss", "virtual_seconds_to_target", "rounds_to_target")


def mean_interval(values: Sequence[float]) -> dict[str, Any] | None:
    """Mean and 95% Student-t interval of ``values`` (no interval for fewer than two); None if empty."""
    n = len(values)
    if n == 0:
        return None
    mean = math.fsum(values) / n
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    from scipy import stats
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def _seed_differences(a: Mapping[str, Any], b: Mapping[str, Any], metric: str) -> list[float]:
    """``a - b`` on ``metric`` for each seed both cells ran: runs with equal seeds share the data
    split, the initial model, the devices and the Byzantine set, so their difference is free of
    what the seed alone changes."""
    a_by_seed, b_by_seed = a.get("by_seed", {}).get(metric, {}), b.get("by_seed", {}).get(metric, {})
    return [a_by_seed[s] - b_by_seed[s] for s in sorted(set(a_by_seed) & set(b_by_seed))]


def _paired_difference(a: Mapping[str, Any], b: Mapping[str, Any], metric: str) -> dict[str, Any] | None:
    """The interval of ``a - b`` over the seeds both ran (``_seed_differences``); None for fewer
    than two."""
    differences = _seed_differences(a, b, metric)
    return mean_interval(differences) if len(differences) >= 2 else None


def _differs(a: Mapping[str, Any], b: Mapping[str, Any], metric: str) -> bool:
    """Whether ``a`` and ``b`` differ significantly on ``metric``: the paired difference's
    interval excludes 0, or without pairs, their own intervals do not overlap."""
    paired = _paired_difference(a, b, metric)
    if paired is not None:
        return paired["low"] > 0 or paired["high"] < 0
    x, y = a["metrics"][metric], b["metrics"][metric]
    return x["low"] is not None and y["low"] is not None and (x["low"] > y["high"] or y["low"] > x["high"])


def verdict(cells: Sequence[Mapping[str, Any]], metric: str, higher: bool | None = None) -> dict[str, Any]:
    """Who wins ``metric``: ``winner`` (significantly better than the runner-up, ``_differs``),
    ``tie`` (the best and every cell not significantly different from it), ``single_seed`` (no
    intervals: the best value is named, not claimed), or ``none`` (no cell has the figure)."""
    higher = METRICS[metric][1] if higher is None else higher
    scored = [c for c in cells if c["metrics"].get(metric) is not None]
    if not scored:
        return {"verdict": "none", "cells": [], "text": f"no run has a {metric.replace('_', ' ')}"}
    scored.sort(key=lambda c: c["metrics"][metric]["mean"], reverse=higher)
    best = scored[0]
    if len(scored) == 1:
        return {"verdict": "winner", "cells": [best["group"]], "text": f"{best['group']} (the only cell with it)"}
    runner_up = scored[1]
    if best["metrics"][metric]["low"] is None or runner_up["metrics"][metric]["low"] is None:
        return {"verdict": "single_seed", "cells": [best["group"]],
                "text": f"best: {best['group']}; one seed per run, so no interval and no significance claim "
                        "(run with --seeds K)"}
    if _differs(best, runner_up, metric):
        how = "paired by seed" if _paired_difference(best, runner_up, metric) else "intervals separate"
        return {"verdict": "winner", "cells": [best["group"]],
                "text": f"{best['group']}, significantly ahead of the runner-up {runner_up['group']} ({how}, 95%)"}
    tied = [c["group"] for c in scored if c is best or not _differs(best, c, metric)]
    return {"verdict": "tie", "cells": tied,
            "text": f"no significant difference between {tied[0]} (best mean) and {', '.join(tied[1:])}"}


def _cell(group: str, runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    first = runs[0]
    done = [r for r in runs if r["status"] == COMPLETED]
    by_seed = {m: {str(r["seed"]): r["summary"][m] for r in done if r["summary"].get(m) is not None} for m in METRICS}
    return {
        "group": group, "strategy": first["strategy"], "selector": first["selector"], "attack": first["attack"],
        "runs": [r["run_id"] for r in runs], "seeds": [r["seed"] for r in runs], "completed": len(done),
        "not_completed": [{"run_id": r["run_id"], "status": r["status"], "reason": r["reason"]}
                          for r in runs if r["status"] != COMPLETED],
        "metrics": {m: mean_interval(list(values.values())) for m, values in by_seed.items()},
        "by_seed": by_seed,
    }


def _drop(clean: Mapping[str, Any], attacked: Mapping[str, Any]) -> dict[str, Any]:
    """The final-accuracy drop from ``clean`` to ``attacked``: over the seeds both ran (paired:
    same data split, model and devices), with its interval; else the difference of the means."""
    differences = _seed_differences(clean, attacked, "final_accuracy")
    if differences:
        return {**mean_interval(differences), "paired": True}
    difference = clean["metrics"]["final_accuracy"]["mean"] - attacked["metrics"]["final_accuracy"]["mean"]
    return {"mean": difference, "low": None, "high": None, "n": 1, "paired": False}


def robustness(cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per strategy (and selector), the final-accuracy drop from its attack-free cell to each
    attacked one (``_drop``) and the attacks that made every run diverge; the most robust
    strategy is the one whose worst drop is smallest, claimed as for any metric (``verdict``:
    only where the intervals separate) among the strategies no attack made diverge."""
    rows = []
    keyed: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for cell in cells:
        keyed.setdefault((cell["strategy"], cell["selector"]), []).append(cell)
    for (strategy, selector), group in keyed.items():
        clean = next((c for c in group if c["attack"] == "none" and c["metrics"]["final_accuracy"]), None)
        attacked = [c for c in group if c["attack"] != "none" and c["metrics"]["final_accuracy"]]
        diverged = sorted(c["attack"] for c in group if c["attack"] != "none" and not c["completed"]
                          and c["not_completed"] and all(r["status"] == DIVERGED for r in c["not_completed"]))
        if clean is None or not (attacked or diverged):
            continue
        drops = {c["attack"]: _drop(clean, c) for c in attacked}
        worst = max(drops.values(), key=lambda d: d["mean"]) if drops and not diverged else None
        rows.append({"strategy": strategy, "selector": selector,
                     "clean_accuracy": clean["metrics"]["final_accuracy"]["mean"], "drops": drops,
                     "diverged": diverged, "worst_drop": worst})
    ranked = [{"group": r["strategy"], "metrics": {"worst_drop": r["worst_drop"]}} for r in rows if r["worst_drop"]]
    result = verdict(ranked, "worst_drop", higher=False) if ranked else None
    claimed = result is not None and result["verdict"] == "winner"
    return {"per_strategy": rows, "most_robust": result["cells"][0] if claimed else None, "verdict": result}


def winners_per_attack(cells: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each attack (``none`` included) met by two or more cells, the verdict on final accuracy
    among them: which strategy (or selector, or setting) to use under that attack."""
    by_attack: dict[str, list[Mapping[str, Any]]] = {}
    for cell in cells:
        by_attack.setdefault(cell["attack"], []).append(cell)
    return {attack: verdict(group, "final_accuracy") for attack, group in sorted(by_attack.items())
            if len(group) > 1}


def build(records: Sequence[Mapping[str, Any]], sweep: Mapping[str, Any]) -> dict[str, Any]:
    """The comparison of run ``records`` (run_id, group, strategy, selector, attack, seed, status,
    reason, config_hash, summary), cells ranked by final accuracy, with ``sweep``'s facts (source,
    parallel, seeds, wall_seconds) and the serial sum of the runs' wall times."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["group"], []).append(record)
    cells = [_cell(group, runs) for group, runs in groups.items()]
    cells.sort(key=lambda c: (c["metrics"]["final_accuracy"] is None,
                              -(c["metrics"]["final_accuracy"] or {"mean": 0.0})["mean"]))
    serial = math.fsum(r["summary"].get("elapsed_seconds") or 0.0 for r in records)
    wall = sweep.get("wall_seconds")
    return {
        "sweep": {**sweep, "runs": len(records), "serial_seconds": serial,
                  "speedup": serial / wall if wall else None},
        "statuses": {s: sum(r["status"] == s for r in records) for s in sorted({r["status"] for r in records})},
        "cells": cells,
        "winners": {m: verdict(cells, m) for m in VERDICT_METRICS
                    if sweep.get("target_metric") or not m.endswith("_to_target")},
        "winners_per_attack": winners_per_attack(cells),
        "robustness": robustness(cells),
        "runs": [dict(r) for r in records],
    }


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if abs(value) < 1e4 else f"{value:.3g}"


def _figure(stat: Mapping[str, Any] | None, metric: str) -> str:
    if stat is None:
        return "-"
    digits = 3 if metric in ("final_accuracy", "final_loss", "mean_loss") else 1
    text = _number(stat["mean"], digits)
    if stat["low"] is not None:
        text += f" [{_number(stat['low'], digits)}, {_number(stat['high'], digits)}]"
    return text


def _reached(cell: Mapping[str, Any], metric: str) -> str:
    """For a time-to-target figure, how many of the cell's completed runs reached the target
    (the mean is over those that did)."""
    if not metric.endswith("_to_target") or not cell["completed"]:
        return ""
    reached = (cell["metrics"][metric] or {"n": 0})["n"]
    return f" ({reached}/{cell['completed']} reached)" if reached < cell["completed"] else ""


def _signed(stat: Mapping[str, Any]) -> str:
    text = f"{stat['mean']:+.3f}"
    return text + (f" [{stat['low']:+.3f}, {stat['high']:+.3f}]" if stat["low"] is not None else "")


def console_summary(comparison: Mapping[str, Any], top: int = 10) -> list[str]:
    """A few lines for the terminal: the best cells by final accuracy and the verdicts."""
    lines = ["ranked by final accuracy:"]
    for rank, cell in enumerate(comparison["cells"][:top], 1):
        lines.append(f"  {rank:>2}. {cell['group']}: {_figure(cell['metrics']['final_accuracy'], 'final_accuracy')}")
    if len(comparison["cells"]) > top:
        lines.append(f"  ... {len(comparison['cells']) - top} more in comparison.md")
    lines += [f"under {attack}: {v['text']}" for attack, v in comparison["winners_per_attack"].items()]
    if comparison["robustness"]["verdict"]:
        lines.append(f"smallest worst drop under attack: {comparison['robustness']['verdict']['text']}")
    return lines


def render(comparison: Mapping[str, Any]) -> str:
    """comparison.md: the header, the ranked table, the winners and the robustness table."""
    s = comparison["sweep"]
    statuses = ", ".join(f"{n} {status}" for status, n in comparison["statuses"].items())
    lines = [f"# Sweep {s.get('name', '')}".rstrip(), "",
             f"Spec: `{s.get('source', '')}`. {s['runs']} runs ({statuses}), {s.get('seeds', 1)} seed(s) per cell, "
             f"{s.get('parallel', '?')} in parallel. Elapsed is each run's wall time from launch to exit."]
    if s.get("wall_seconds"):
        lines.append(f"Wall time {s['wall_seconds']:.1f} s against {s['serial_seconds']:.1f} s for the runs one "
                     f"after another: {s['speedup']:.2f}x.")
    if s.get("target_metric"):
        lines.append(f"Target: {s['target_metric']} {'>=' if s['target_metric'] == 'test_accuracy' else '<='} "
                     f"{s['target_value']}.")
    if comparison["cells"] and any(c["metrics"]["final_accuracy"] and c["metrics"]["final_accuracy"]["low"] is not None
                                   for c in comparison["cells"]):
        lines.append("Figures are means over seeds with 95% Student-t intervals.")
    header = ["Rank", "Run", "Strategy", "Selector", "Attack", *(METRICS[m][0] for m in METRICS)]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for rank, cell in enumerate(comparison["cells"], 1):
        figures = [_figure(cell["metrics"][m], m) + _reached(cell, m) for m in METRICS]
        if cell["not_completed"]:
            figures[0] += f" ({len(cell['not_completed'])} not completed)"
        lines.append("| " + " | ".join([str(rank), cell["group"], cell["strategy"], cell["selector"], cell["attack"],
                                         *figures]) + " |")
    if comparison["winners_per_attack"]:
        lines += ["", "## Best final accuracy under each attack", ""]
        lines += [f"- {attack}: {v['text']}" for attack, v in comparison["winners_per_attack"].items()]
    lines += ["", "## Winner per metric, over all cells", ""]
    lines += [f"- {METRICS[m][0]}: {v['text']}" for m, v in comparison["winners"].items()]
    rob = comparison["robustness"]
    if rob["per_strategy"]:
        attacks = sorted({a for row in rob["per_strategy"] for a in [*row["drops"], *row["diverged"]]})
        lines += ["", "## Most robust under attack", "",
                  "Final-accuracy drop from each strategy's attack-free cell (paired by seed, with 95% intervals, "
                  f"where both ran the same seeds). Smallest worst drop: {rob['verdict']['text'] if rob['verdict'] else '-'}.",
                  "",
                  "| Strategy | Selector | Clean acc | " + " | ".join(attacks) + " | Worst drop |",
                  "|" + "---|" * (len(attacks) + 4)]
        for row in rob["per_strategy"]:
            drops = [_signed(row["drops"][a]) if a in row["drops"] else "diverged" if a in row["diverged"] else "-"
                     for a in attacks]
            worst = "diverged" if row["worst_drop"] is None else _signed(row["worst_drop"])
            lines.append(f"| {row['strategy']} | {row['selector']} | {row['clean_accuracy']:.3f} | "
                         + " | ".join(drops) + f" | {worst} |")
    failed = [r for r in comparison["runs"] if r["status"] != COMPLETED]
    if failed:
        lines += ["", "## Runs that did not complete", ""]
        lines += [f"- {r['run_id']}: {r['status']}: {r['reason'] or 'no reason recorded'}" for r in failed]
    return "\n".join(lines) + "\n"
