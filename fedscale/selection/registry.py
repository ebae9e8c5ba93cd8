"""Every selector by its ``sample_mode`` name, and the one way to build one from job values.

Entries are ``"module:Class"`` strings, imported on first use, so naming a selector does not
load its dependencies (Bliss's regressors need scikit-learn and xgboost). Adding a
selector is one line here.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from fedscale.selection.base import Selector
from fedscale.selection.config import build_config

SELECTORS: dict[str, str] = {
    "random": "fedscale.selection.random:RandomSelector",
    "oort": "thirdparty.oort.oort:OortSelector",
    "pyramidfl": "thirdparty.pyramidfl.pyramidfl:PyramidFLSelector",
    "bliss": "thirdparty.bliss.bliss:BlissSelector",
}
SAMPLE_MODES: tuple[str, ...] = tuple(SELECTORS)


def selector_class(name: str) -> type[Selector]:
    """The class registered as ``name``; a ValueError naming the valid names if there is none."""
    if name not in SELECTORS:
        raise ValueError(f"sample_mode: expected one of {', '.join(map(repr, SELECTORS))}, got {name!r}")
    module, _, attribute = SELECTORS[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def build_selector(name: str, values: Mapping[str, Any], seed: int) -> Selector:
    """The selector ``name`` configured from the entries of ``values`` named like its Config's fields
    (other entries ignored, missing ones defaulted), seeded with ``seed``; a one-line ValueError
    ``"<key>: <problem>"`` for a rejected value."""
    cls = selector_class(name)
    return cls(build_config(cls.Config, values), seed)
