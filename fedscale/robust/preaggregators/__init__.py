"""Pre-aggregators: maps from a stack of n flattened client updates (n x d) to m x d.

Each module exposes ``preaggregate(updates, *, f=0, generator=None, **params)``. They compose
in front of any aggregator (e.g. ``"nnm+krum"``). ``PREAGGREGATORS`` maps names to functions.
"""

from __future__ import annotations

from . import arc, bucketing, nnm, static_clipping

PREAGGREGATORS = {
    "arc": arc.preaggregate,
    "bucketing": bucketing.preaggregate,
    "nnm": nnm.preaggregate,
    "static_clipping": static_clipping.preaggregate,
}

__all__ = ["PREAGGREGATORS", "arc", "bucketing", "nnm", "static_clipping"]
