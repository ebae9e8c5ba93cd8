"""Server algorithms by ``gradient_policy`` name, and the one way to build the job's.

Adding an algorithm is one file in this package (a ``ServerAlgorithm`` subclass with its
``name`` and ``Config``) and one line in ``SERVER_ALGORITHMS``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fedscale.cloud.aggregation.server_algorithms.base import ServerAlgorithm
from fedscale.cloud.aggregation.server_algorithms.fedadagrad import FedAdagrad
from fedscale.cloud.aggregation.server_algorithms.fedadam import FedAdam
from fedscale.cloud.aggregation.server_algorithms.fedavg import FedAvg
from fedscale.cloud.aggregation.server_algorithms.fedavgm import FedAvgM
from fedscale.cloud.aggregation.server_algorithms.fedprox import FedProx
from fedscale.cloud.aggregation.server_algorithms.fedyogi import FedYogi
from fedscale.cloud.aggregation.server_algorithms.qfedavg import QFedAvg

if TYPE_CHECKING:
    from fedscale.cloud.config.job_conf import JobConf

__all__ = ["DEFAULT_ALGORITHM", "SERVER_ALGORITHMS", "ServerAlgorithm", "build_server_algorithm",
           "make_server_algorithm"]

SERVER_ALGORITHMS: dict[str, type[ServerAlgorithm]] = {algorithm.name: algorithm for algorithm in (
    FedAvg,
    FedProx,
    QFedAvg,
    FedAvgM,
    FedAdagrad,
    FedAdam,
    FedYogi,
)}
DEFAULT_ALGORITHM = FedAvg.name


def make_server_algorithm(conf: JobConf) -> ServerAlgorithm:
    """The job's server algorithm: the ``gradient_policy`` class (fed-avg when unset) built from
    the job's validated algorithm Config and the clients' ``learning_rate``."""
    algorithm = SERVER_ALGORITHMS[conf.server.gradient_policy or DEFAULT_ALGORITHM]
    return algorithm(conf.server_algorithm, conf.training.learning_rate)


def build_server_algorithm(name: str, values: Mapping[str, Any], learning_rate: float) -> ServerAlgorithm:
    """The algorithm ``name`` with its ``Config`` built from the entries of ``values`` that are its
    fields (other keys are ignored; missing ones take their defaults) and the clients'
    ``learning_rate``. Raises ValueError for an unknown name and pydantic's ValidationError,
    naming the field, for a bad value."""
    try:
        algorithm = SERVER_ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"gradient_policy must be one of {', '.join(SERVER_ALGORITHMS)}, got {name!r}") from None
    fields = algorithm.Config.model_fields
    return algorithm(algorithm.Config(**{key: value for key, value in values.items() if key in fields}),
                     learning_rate)
