"""What a sweep's ``strategy`` and ``attacks`` entries mean as job_conf settings.

A strategy is, in this order of lookup:

1. a server algorithm, by Flower's class name or our ``gradient_policy`` name (``FedAvg``,
   ``FedProx``, ``QFedAvg``, ``FedAvgM``, ``FedAdagrad``, ``FedAdam``, ``FedYogi``; ``fed-yogi``):
   that algorithm with the plain sample-weighted mean;
2. a robust aggregation spec, by our names or Flower's (``FedMedian``, ``FedTrimmedAvg``,
   ``Krum``, ``MultiKrum``, ``Bulyan``; ``nnm+trimmed_mean``, ``bucketing(s=2)+cc``): FedAvg's
   server step applied to what that spec aggregates.

An attack entry (``type``, ``intensity``, ``fraction`` and the attack's own parameters) becomes
the ``attack`` spec and ``byzantine_fraction``. ``intensity`` sets the one parameter each attack
declares as its strength (``INTENSITY`` in its module; ``python docker/driver.py list attacks``
shows them): empire's ``epsilon``, gaussian_noise's ``sigma``, little's ``z``, model_poisoning's
``intensity``. Both tables come from the registries, so a new aggregator or attack is a sweep
name as soon as it is registered.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedscale.cloud.aggregation.server_algorithms import DEFAULT_ALGORITHM, SERVER_ALGORITHMS
from fedscale.robust.aggregators import AGGREGATORS
from fedscale.robust.attacks import ATTACKS, DATA_ATTACKS
from fedscale.robust.registry import SpecError, intensity_parameter, parse_aggregation, parse_attack

ATTACK_ENTRY_KEYS = ("type", "intensity", "fraction")


class StrategyError(ValueError):
    """A strategy or attack entry the sweep cannot map; one line, naming the valid choices."""


def _fold(name: str) -> str:
    return name.strip().lower().replace("-", "").replace("_", "")


def strategy_settings(strategy: str) -> dict[str, Any]:
    """The job_conf settings (``gradient_policy`` and ``aggregator``) a strategy name stands for."""
    folded = _fold(strategy)
    for cls in SERVER_ALGORITHMS.values():
        if folded in (_fold(cls.__name__), _fold(cls.name)):
            return {"gradient_policy": cls.name, "aggregator": "mean"}
    try:
        parse_aggregation(strategy)
    except SpecError as err:
        if "+" in strategy or "(" in strategy:
            raise StrategyError(f"strategy {err}") from None
        algorithms = ", ".join(cls.__name__ for cls in SERVER_ALGORITHMS.values())
        raise StrategyError(f"strategy {strategy!r} is not known; choose a server algorithm ({algorithms}) or an "
                            f"aggregator ({', '.join(sorted(AGGREGATORS))}; Flower's FedMedian, FedTrimmedAvg, "
                            "MultiKrum... too), optionally after pre-aggregators as in 'nnm+trimmed_mean'") from None
    return {"gradient_policy": DEFAULT_ALGORITHM, "aggregator": strategy}


def attack_settings(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The job_conf settings (``attack`` spec, and ``byzantine_fraction`` if given) of one
    attack entry: ``type``, optional ``intensity`` and ``fraction``, and the attack's own
    parameters."""
    if "type" not in entry:
        raise StrategyError("an attack entry needs a 'type' (python docker/driver.py list attacks)")
    name = str(entry["type"])
    try:
        step = parse_attack(name)
    except SpecError:
        raise StrategyError(f"attack type {name!r} is not an attack; choose from "
                            f"{', '.join(sorted([*ATTACKS, *DATA_ATTACKS]))}") from None
    params = {k: v for k, v in entry.items() if k not in ATTACK_ENTRY_KEYS}
    if "intensity" in entry:
        target = intensity_parameter(step.name)
        if target is None:
            takes = sorted(n for n in [*ATTACKS, *DATA_ATTACKS] if intensity_parameter(n))
            raise StrategyError(f"attack {step.name!r} has no strength for 'intensity' to set; "
                                f"attacks that take one: {', '.join(takes)}")
        if target in params:
            raise StrategyError(f"attack {step.name!r}: give 'intensity' or {target!r}, not both")
        params[target] = entry["intensity"]
    spec = step.name + (f"({', '.join(f'{k}={_spec_value(v)}' for k, v in params.items())})" if params else "")
    try:
        parse_attack(spec)
    except SpecError as err:
        raise StrategyError(str(err)) from None
    settings: dict[str, Any] = {"attack": spec}
    if "fraction" in entry:
        settings["byzantine_fraction"] = entry["fraction"]
    return settings


def _spec_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise StrategyError(f"attack parameter value {value!r} is not a number, boolean or word")
