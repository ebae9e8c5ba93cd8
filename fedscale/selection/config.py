"""Selector configurations as frozen pydantic models whose fields are the FedScale job_conf keys.

Each field carries its key's default, bounds, choices and help text. Knobs that several
selectors share are declared once here, in small models the selectors' configs inherit from:
Oort's epsilon-greedy exploration and admission (Lai et al., OSDI 2021, Algorithm 1), its pacer
(§4.2) and its penalty on slow clients (Eq. (2)). A rule between fields raises a ValueError
whose message starts with the field's name and a colon; ``build_config`` turns any rejection
into one such line.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

C = TypeVar("C", bound="SelectorConfig")


class SelectorConfig(BaseModel):
    """A selector's knobs: immutable, unknown names and non-finite numbers rejected. Empty for
    selectors without knobs."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class ExplorationConfig(SelectorConfig):
    """Epsilon-greedy split and admission of Oort's Algorithm 1: epsilon starts at
    ``exploration_factor`` and decays by ``exploration_decay`` per round down to
    ``exploration_min``; candidates within ``cut_off_util`` of the boundary utility are admitted.

    A key left unset (None) takes the selector's default, ``selector_defaults`` (Oort's depend on
    its ``oort_variant``), filled in before the fields are checked.
    """

    exploration_factor: float = Field(0.9, ge=0, le=1,
                                      description="Oort: initial fraction of picks spent on unexplored clients.")
    exploration_decay: float | None = Field(None, gt=0, le=1, description=(
        "Oort: per-round decay of the exploration fraction (unset: the selector's default; Oort's per oort_variant, "
        "Bliss 0.98)."))
    exploration_min: float | None = Field(None, ge=0, le=1, description=(
        "Oort: floor of the exploration fraction (unset: the selector's default; Oort's per oort_variant, Bliss 0.2)."))
    cut_off_util: float | None = Field(None, gt=0, le=1, description=(
        "Oort: clients with utility at least this fraction of the exploitation boundary's are admitted (unset: the "
        "selector's default; Oort's per oort_variant, Bliss 0.95)."))

    @classmethod
    def selector_defaults(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults of the keys left unset, given the values that were set."""
        return {"exploration_decay": 0.98, "exploration_min": 0.2, "cut_off_util": 0.95}

    @model_validator(mode="before")
    @classmethod
    def _fill_unset(cls, values: Any) -> Any:
        if not isinstance(values, Mapping):
            return values
        defaults = cls.selector_defaults(values)
        return {**values, **{key: value for key, value in defaults.items() if values.get(key) is None}}

    @model_validator(mode="after")
    def _floor_below_start(self) -> ExplorationConfig:
        if self.exploration_min > self.exploration_factor:
            raise ValueError(f"exploration_min: expected at most exploration_factor ({self.exploration_factor}), "
                             f"got {self.exploration_min}")
        return self


class PacerConfig(SelectorConfig):
    """The pacer of Oort §4.2: every ``pacer_step`` rounds it may move a threshold, by a step
    each selector declares in its own units (Oort's ``pacer_delta``, Bliss's ``bliss_pacer_delta``)."""

    pacer_step: int = Field(20, ge=1, description="Oort: rounds between pacer decisions.")


class PenaltyConfig(SelectorConfig):
    """Oort's Eq. (2): a client slower than the preferred duration T has its utility multiplied by
    ``(T / t)^round_penalty``."""

    round_penalty: float = Field(2.0, ge=0, description="Oort: exponent alpha penalising clients slower than the "
                                                        "preferred round duration.")


def build_config(config_type: type[C], values: Mapping[str, Any]) -> C:
    """``config_type`` from the entries of ``values`` named like its fields (others ignored, missing
    ones defaulted); a one-line ValueError ``"<key>: <problem>"`` if a value is rejected."""
    try:
        return config_type.model_validate({name: values[name] for name in config_type.model_fields if name in values})
    except ValidationError as error:
        raise ValueError(_one_line(error)) from None


def _one_line(error: ValidationError) -> str:
    """The first problem of ``error`` as ``"<key>: <problem>"``; rules between fields already start so."""
    first = error.errors()[0]
    if not first["loc"]:
        return first["msg"].removeprefix("Value error, ")
    key = ".".join(str(part) for part in first["loc"])
    return f"{key}: {first['msg'][:1].lower()}{first['msg'][1:]}, got {first['input']!r}"
