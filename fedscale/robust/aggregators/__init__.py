"""Robust aggregation rules: pure functions on an (n x d) stack of flattened client updates.

Each module exposes ``aggregate(updates, *, f=0, weights=None, **params) -> d-vector``.
``AGGREGATORS`` maps a method name to its ``aggregate`` function, imported when looked up.
"""

from fedscale.robust.method_table import MethodTable

AGGREGATORS = MethodTable(__name__, {
    "mean": "mean.aggregate",
    "median": "median.aggregate",
    "trimmed_mean": "trimmed_mean.aggregate",
    "meamed": "meamed.aggregate",
    "krum": "krum.aggregate",
    "multi_krum": "krum.multi_krum",
    "geometric_median": "geometric_median.aggregate",
    "centered_clipping": "centered_clipping.aggregate",
    "bulyan": "bulyan.aggregate",
    "mda": "mda.aggregate",
    "monna": "monna.aggregate",
    "cge": "cge.aggregate",
    "smea": "smea.aggregate",
    "caf": "caf.aggregate",
})
