"""Spec strings for robust aggregation and attacks, and the names users already know.

An aggregation spec chains pre-aggregators and ends with one aggregator, applied left to
right: ``"nnm+krum"``, ``"bucketing(s=2)+cc"``, ``"arc+trimmed_mean"``. Parameters go in
parentheses as ``key=value`` (numbers, ``true``/``false``, or words). Names are matched
case-insensitively, with ``-`` and ``_`` alike, and include Flower's strategy names
(``FedAvg``, ``FedMedian``, ``FedTrimmedAvg``, ``Krum``, ``MultiKrum``, ``Bulyan``) and the
usual short forms (``cc``, ``alie``, ``ipm``). The methods themselves are the tables in the
``aggregators``, ``preaggregators`` and ``attacks`` packages: adding one is a file there and a
line in its table; an alias is a line here.
"""
from __future__ import annotations

import functools
import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from fedscale.robust.aggregators import AGGREGATORS
from fedscale.robust.attacks import ATTACKS, DATA_ATTACKS
from fedscale.robust.method_table import MethodTable
from fedscale.robust.preaggregators import PREAGGREGATORS

if TYPE_CHECKING:
    import torch

ALIASES: dict[str, str] = {
    "fedavg": "mean", "average": "mean", "avg": "mean",
    "fedmedian": "median", "coordinate_median": "median", "cwmed": "median",
    "fedtrimmedavg": "trimmed_mean", "trmean": "trimmed_mean", "cwtm": "trimmed_mean",
    "multikrum": "multi_krum",
    "gm": "geometric_median", "geomed": "geometric_median", "rfa": "geometric_median",
    "cc": "centered_clipping", "centeredclipping": "centered_clipping",
    "clipping": "static_clipping", "clip": "static_clipping",
    "signflipping": "sign_flip", "signflip": "sign_flip",
    "gaussian": "gaussian_noise", "noise": "gaussian_noise",
    "alie": "little", "a_little_is_enough": "little",
    "ipm": "empire", "inner_product_manipulation": "empire", "fallofempires": "empire",
    "scaling": "model_poisoning",
    "labelflip": "label_flip", "labelflipping": "label_flip",
}

WEIGHTED = frozenset({"mean", "geometric_median"})  # aggregators that take per-client weights

_TERM = re.compile(r"^\s*([A-Za-z][\w-]*)\s*(?:\((.*)\))?\s*$")


class SpecError(ValueError):
    """A robust-aggregation or attack spec that cannot be parsed; one line."""


@dataclass(frozen=True)
class Step:
    """One method of a spec and its parameters."""

    name: str
    params: dict[str, Any]


def canonical(name: str) -> str:
    """The table name for ``name`` (case, '-' and aliases folded)."""
    key = name.strip().lower().replace("-", "_")
    return ALIASES.get(key, ALIASES.get(key.replace("_", ""), key))


def _value(text: str) -> Any:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _term(text: str, spec: str) -> Step:
    match = _TERM.match(text)
    if not match:
        raise SpecError(f"{spec!r}: cannot read {text.strip()!r}; expected name or name(key=value, ...)")
    params: dict[str, Any] = {}
    for item in filter(str.strip, (match.group(2) or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise SpecError(f"{spec!r}: parameter {item.strip()!r} is not key=value")
        params[key.strip()] = _value(value)
    return Step(canonical(match.group(1)), params)


# arguments the job supplies to every method; a spec's own parameters are the others
SUPPLIED = frozenset({"updates", "honest", "labels", "num_classes", "f", "weights", "generator", "report",
                      "num_byzantine"})


def parameters(table: MethodTable, name: str) -> list[str]:
    """The parameters a spec may set for method ``name`` of ``table``."""
    return [p for p in table.parameters(name) if p not in SUPPLIED]


def _attack_table(name: str) -> MethodTable:
    return ATTACKS if name in ATTACKS else DATA_ATTACKS


def _check_params(step: Step, table: MethodTable, spec: str) -> None:
    allowed = parameters(table, step.name)
    for key in step.params:
        if key not in allowed:
            takes = f"it takes {', '.join(allowed)}" if allowed else "it takes none"
            extra = " (f is the job's f key)" if key == "f" else ""
            raise SpecError(f"{spec!r}: {step.name} has no parameter {key!r}{extra}; {takes}")


def parse_aggregation(spec: str) -> tuple[list[Step], Step]:
    """(pre-aggregators, aggregator) of a spec such as ``"bucketing(s=2)+cc"``, with every
    parameter name checked against its method."""
    steps = [_term(part, spec) for part in spec.split("+")]
    *pre, last = steps
    for step in pre:
        if step.name not in PREAGGREGATORS:
            raise SpecError(f"{spec!r}: {step.name!r} is not a pre-aggregator; choose from "
                            f"{', '.join(sorted(PREAGGREGATORS))}")
    if last.name not in AGGREGATORS:
        raise SpecError(f"{spec!r}: {last.name!r} is not an aggregator; choose from {', '.join(sorted(AGGREGATORS))}")
    for step in pre:
        _check_params(step, PREAGGREGATORS, spec)
    _check_params(last, AGGREGATORS, spec)
    return pre, last


def parse_attack(spec: str) -> Step:
    """The attack named by ``spec``, e.g. ``"little(z=1.5)"``, ``"sign_flip"`` or ``"label_flip"``,
    with its parameter names checked."""
    step = _term(spec, spec)
    if step.name not in ATTACKS and step.name not in DATA_ATTACKS:
        raise SpecError(f"{spec!r}: {step.name!r} is not an attack; choose from "
                        f"{', '.join(sorted([*ATTACKS, *DATA_ATTACKS]))}")
    _check_params(step, _attack_table(step.name), spec)
    return step


def intensity_parameter(name: str) -> str | None:
    """The parameter of attack ``name`` that a sweep's ``intensity`` sets (its module's
    ``INTENSITY``), or None for an attack without a strength (sign_flip, label_flip...)."""
    step = parse_attack(name)
    return _attack_table(step.name).constant(step.name, "INTENSITY")


def data_attack(spec: str) -> Callable[[torch.Tensor, int], torch.Tensor] | None:
    """The labels map ``(labels, num_classes) -> labels`` of a data-attack spec such as
    ``"label_flip"``, its parameters bound; None for no attack or an update attack."""
    step = parse_attack(spec) if spec else None
    if step is None or step.name not in DATA_ATTACKS:
        return None
    return functools.partial(DATA_ATTACKS[step.name], **step.params)


def _reports(fn: Callable) -> bool:
    return "report" in inspect.signature(fn).parameters


def robust_aggregator(spec: str, f: int = 0,
                      generator: torch.Generator | None = None) -> Callable[..., torch.Tensor]:
    """A function ``(updates, weights=None, report=None) -> d-vector`` running the spec with
    ``f`` assumed Byzantine. Weights (sample counts) reach the aggregator only if it takes them
    and no pre-aggregator changed the rows; the others treat every update alike.

    A ``report`` dict receives what the spec chose, as sorted positions of the input rows:
    ``kept`` (the rows behind what the aggregator averaged) and ``clipped`` (rows any step
    scaled down), each present only if some step records it (see ``fedscale.robust.report``).
    A row that bucketing merged counts as kept or clipped for every input behind it.
    """
    pre, last = parse_aggregation(spec)
    steps = [(PREAGGREGATORS[s.name], s.params, {"generator": generator}) for s in pre]
    steps.append((AGGREGATORS[last.name], last.params, {}))
    reporting = [_reports(fn) for fn, _, _ in steps]
    weighted = not pre and last.name in WEIGHTED

    def run(updates: torch.Tensor, weights: torch.Tensor | None = None,
            report: dict | None = None) -> torch.Tensor:
        behind: list[list[int]] | None = None  # input positions behind each row, once rows are merged

        def inputs(rows: list[int]) -> set[int]:
            return set(rows) if behind is None else {p for row in rows for p in behind[row]}

        clipped: set[int] = set()
        for (fn, params, extra), reports in zip(steps, reporting):
            notes: dict | None = {} if reports and report is not None else None
            kwargs = {**extra, **params}
            if notes is not None:
                kwargs["report"] = notes
            if weights is not None and weighted:
                kwargs["weights"] = weights
            updates = fn(updates, f=f, **kwargs)
            if notes:
                clipped |= inputs(notes.get("clipped", []))
                if "kept" in notes:
                    report["kept"] = sorted(inputs(notes["kept"]))
                if "groups" in notes:
                    behind = [sorted(inputs(group)) for group in notes["groups"]]
        if clipped:
            report["clipped"] = sorted(clipped)
        return updates

    return run


def listing(kind: str) -> str:
    """The names of one kind (aggregators, preaggregators, attacks) with their aliases, one per line."""
    tables = {"aggregators": AGGREGATORS, "preaggregators": PREAGGREGATORS, "attacks": {**ATTACKS, **DATA_ATTACKS}}
    if kind not in tables:
        raise SpecError(f"nothing to list as {kind!r}; choose from {', '.join(tables)}")
    lines = []
    for name in sorted(tables[kind]):
        aliases = sorted(a for a, target in ALIASES.items() if target == name)
        notes = [f"also: {', '.join(aliases)}"] if aliases else []
        if kind == "attacks" and intensity_parameter(name):
            notes.append(f"intensity sets {intensity_parameter(name)}")
        lines.append(name + (f"  ({'; '.join(notes)})" if notes else ""))
    return "\n".join(lines)
