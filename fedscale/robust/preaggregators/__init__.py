"""Pre-aggregators: maps from a stack of n flattened client updates (n x d) to m x d.

Each module exposes ``preaggregate(updates, *, f=0, generator=None, **params)``: ``updates`` is
the n x d floating-point stack of flattened client updates, ``f`` (0 <= f < n) the number of
Byzantine inputs, ``generator`` the torch generator of a randomised rule, and ``report``, for
the rules that take it, an optional dict receiving the input rows the rule acted on. They
compose in front of any aggregator (e.g. ``"nnm+krum"``). ``PREAGGREGATORS`` maps names to
functions.
"""

from __future__ import annotations

from fedscale.robust.method_table import MethodTable

PREAGGREGATORS = MethodTable(__name__, {
    "arc": "arc.preaggregate",
    "bucketing": "bucketing.preaggregate",
    "nnm": "nnm.preaggregate",
    "static_clipping": "static_clipping.preaggregate",
})
