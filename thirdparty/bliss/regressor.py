"""The utility regressors g and h behind one ``fit``/``predict`` interface.

The public Bliss code (Bossbap/Bliss, ``thirdparty/bliss/regressor.py``) wraps the same three
back-ends; it falls back to linear regression on an unknown name and answers zeros when asked
to predict before fitting. Here an unknown name, a missing package and an unfitted model are
errors, because each would otherwise turn a selector silently random.

A fitted model is checkpointed as the rows it was fitted on (``state``), and ``restore`` fits
again on them: every back-end is deterministic for its seed, so the refit predicts exactly as
the original did, and no back-end's model object needs pickling.

Back-ends (``make_regressor(name, seed)``):

* ``linreg``: scikit-learn ``LinearRegression`` (ordinary least squares).
* ``xgboost`` (the default, as in the public code's ``fedscale/cloud/config_parser.py``):
  ``xgboost.XGBRegressor`` with the public code's defaults (``XGBOOST_PARAMS``: 300 trees of
  depth 6, learning rate 0.05, row and column subsampling 0.8, squared error), on the CPU
  with one thread and seeded, so a run repeats exactly. Package ``xgboost-cpu``.
* ``mlp``: scikit-learn ``MLPRegressor`` (``MLP_PARAMS``: two ReLU layers of 64 and 32, Adam,
  up to 300 epochs, seeded) behind a ``StandardScaler`` on the inputs; the target is
  standardised too, since utilities run into the thousands and Adam's steps are sized for unit
  scale. Convergence warnings are silenced: a selector refits every round and stops early on
  purpose.
"""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType
from typing import Any, Literal, get_args

import numpy as np

RegressorName = Literal["linreg", "xgboost", "mlp"]
REGRESSORS: tuple[str, ...] = get_args(RegressorName)
XGBOOST_PARAMS: dict[str, Any] = {"n_estimators": 300, "max_depth": 6, "learning_rate": 0.05, "subsample": 0.8,
                                  "colsample_bytree": 0.8, "objective": "reg:squarederror", "tree_method": "hist",
                                  "device": "cpu", "n_jobs": 1, "verbosity": 0}
MLP_PARAMS: dict[str, Any] = {"hidden_layer_sizes": (64, 32), "learning_rate_init": 1e-3, "alpha": 1e-4,
                              "max_iter": 300}


class Regressor:
    """A fitted-or-not regression model: ``fit(X, y)`` returns itself, ``predict(X)`` a float64 vector."""

    def __init__(self, name: str, model: Any) -> None:
        self.name = name
        self._model = model
        self._fitted_on: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def fitted(self) -> bool:
        return self._fitted_on is not None

    def fit(self, X: np.ndarray, y: np.ndarray) -> Regressor:
        """Fit on rows ``X`` ([n, d], n >= 1) and targets ``y`` ([n]), replacing any earlier fit."""
        X, y = _rows(X), np.asarray(y, dtype=np.float64)
        if y.shape != (len(X),) or len(X) == 0:
            raise ValueError(f"fit needs one target per row and at least one row: X {X.shape}, y {y.shape}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", _sklearn("sklearn.exceptions").ConvergenceWarning)
            self._model.fit(X, y)
        self._fitted_on = (X, y)
        return self

    def state(self) -> dict[str, np.ndarray]:
        """The rows and targets of the last fit (none before the first)."""
        return {} if self._fitted_on is None else dict(zip(("X", "y"), self._fitted_on))

    def restore(self, state: dict[str, np.ndarray]) -> None:
        """Fit again on the rows ``state`` holds (or stay unfitted): the same model as before."""
        if "X" in state:
            self.fit(state["X"], state["y"])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions for rows ``X``; a RuntimeError before ``fit``."""
        if not self.fitted:
            raise RuntimeError(f"the {self.name} regressor was asked to predict before it was fitted")
        X = _rows(X)
        if len(X) == 0:
            return np.empty(0)
        return np.asarray(self._model.predict(X), dtype=np.float64).reshape(-1)


def make_regressor(name: str, seed: int) -> Regressor:
    """An unfitted regressor of kind ``name`` (one of ``REGRESSORS``), deterministic for a seed.

    An ImportError naming the pip package is raised here, not at the first fit, when the
    back-end's package is missing.
    """
    random_state = int(seed) % 2**32
    if name == "linreg":
        return Regressor(name, _sklearn("sklearn.linear_model").LinearRegression())
    if name == "xgboost":
        return Regressor(name, _module("xgboost", "xgboost-cpu").XGBRegressor(random_state=random_state,
                                                                              **XGBOOST_PARAMS))
    if name == "mlp":
        network = _sklearn("sklearn.neural_network").MLPRegressor(random_state=random_state, **MLP_PARAMS)
        scaler = _sklearn("sklearn.preprocessing").StandardScaler
        inputs = _sklearn("sklearn.pipeline").make_pipeline(scaler(), network)
        return Regressor(name, _sklearn("sklearn.compose").TransformedTargetRegressor(inputs, transformer=scaler()))
    raise ValueError(f"unknown regressor {name!r}: must be one of {REGRESSORS}")


def _rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"regressor rows must form a 2-D array, got shape {X.shape}")
    return X


def _sklearn(module: str) -> ModuleType:
    return _module(module, "scikit-learn")


def _module(module: str, package: str) -> ModuleType:
    """Import ``module``, or an ImportError saying which pip package provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"Bliss's regressor needs the {module.split('.')[0]} module: "
                          f"pip install {package}") from error
