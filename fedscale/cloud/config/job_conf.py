"""The job's configuration: every component's typed settings, composed and checked together.

``JobConf`` reads raw job_conf values (by key name or alias), converts and checks each with its
key's declaration, builds every component's model from them (so each component's own rules
run), then checks the rules that span components. The components are the runtime's parts
(``COMPONENTS``), the job's selector (the ``Config`` of the ``sample_mode`` selector) and its
server algorithm (the ``Config`` of the ``gradient_policy`` algorithm). ``KEYS`` is every key
declared by any of them, every selector's and server algorithm's included; a key several
models read is declared alike by each (checked here).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from fedscale.cloud.aggregation.server_algorithms import DEFAULT_ALGORITHM, SERVER_ALGORITHMS
from fedscale.cloud.commons import MODE_ASYNC
from fedscale.cloud.config.components import (AdaptiveConfig, AsyncConfig, Cluster, DataConfig, FedScaleCompat,
                                               FleetConfig, JobIdentity, RobustnessConfig, SelectionConfig,
                                               ServerConfig, TrainingConfig)
from fedscale.cloud.config.keys import ConfigError, KeySpec, from_values, key_specs, show, suggest
from fedscale.dataloaders.catalog import LANGUAGE_MODELS, TEXT_DATA_SETS
from fedscale.robust.attacks import DATA_ATTACKS
from fedscale.robust.registry import parse_attack
from fedscale.selection.registry import SELECTORS, selector_class

COMPONENTS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("identity", JobIdentity),
    ("cluster", Cluster),
    ("data", DataConfig),
    ("training", TrainingConfig),
    ("fleet", FleetConfig),
    ("selection", SelectionConfig),
    ("adaptive", AdaptiveConfig),
    ("asynchronous", AsyncConfig),
    ("robustness", RobustnessConfig),
    ("server", ServerConfig),
    ("compat", FedScaleCompat),
)


def _extension_configs() -> tuple[dict[str, type[BaseModel]], dict[str, type[BaseModel]]]:
    """The ``Config`` of every registered selector and of every server algorithm, by name."""
    return ({name: selector_class(name).Config for name in SELECTORS},
            {name: algorithm.Config for name, algorithm in SERVER_ALGORITHMS.items()})


def _declared_keys(selectors: Mapping[str, type[BaseModel]],
                   algorithms: Mapping[str, type[BaseModel]]) -> dict[str, KeySpec]:
    """Every key of the components, ``selectors`` and ``algorithms`` (their ``Config`` models) by
    name; a key declared twice must be declared alike."""
    keys: dict[str, KeySpec] = {}
    for model in [model for _, model in COMPONENTS] + [*selectors.values(), *algorithms.values()]:
        for spec in key_specs(model):
            if keys.setdefault(spec.name, spec) != spec:
                raise TypeError(f"job_conf key {spec.name!r} is declared differently by {model.__name__}: "
                                f"{spec} and {keys[spec.name]}")
    return keys


# keys whose values are credentials: kept in memory, never written to a file or a log line
SECRET_KEYS = frozenset({"wandb_token"})

SELECTOR_CONFIGS, ALGORITHM_CONFIGS = _extension_configs()
KEYS: dict[str, KeySpec] = _declared_keys(SELECTOR_CONFIGS, ALGORITHM_CONFIGS)
_ALIASES: dict[str, str] = {alias: spec.name for spec in KEYS.values() for alias in spec.aliases}
ALL_NAMES: tuple[str, ...] = (*KEYS, *_ALIASES)


def canonical_pairs(pairs: Iterable[tuple[Any, Any]]) -> tuple[dict[str, Any], frozenset[str]]:
    """Map (key as written, raw value) pairs to canonical key names.

    Rejects unknown keys (suggesting the nearest), a key given twice, and a key given
    under two of its names. Returns the raw values by canonical name and the names set.
    """
    values: dict[str, Any] = {}
    written: dict[str, Any] = {}
    for key, value in pairs:
        name = _ALIASES.get(key, key) if isinstance(key, str) else None
        if name not in KEYS:
            raise ConfigError(f"unknown key {show(key)}{suggest(key, ALL_NAMES)}", "job_conf")
        if name in values:
            first = written[name]
            problem = (f"duplicate key {key!r}" if first == key
                       else f"{first!r} and {key!r} are names of the same key; set only one")
            raise ConfigError(problem, "job_conf")
        values[name] = value
        written[name] = key
    return values, frozenset(values)


class JobConf:
    """The job's configuration: every job_conf key resolved to a typed value, defaults filled in,
    and each component's typed model (``conf.training``, ``conf.fleet``, ...); immutable.

    Components read their own model. The flat FedScale view reads values by key name
    (``conf["train-manifest"]``), for the job file, the sweep and hyphenated keys; aliases such
    as ``sample_seed`` work too. ``explicit`` holds the canonical names of the keys that were set
    rather than defaulted. Building one always validates: each value, each component's rules,
    then the rules between components (so ``JobConf()`` is the all-defaults configuration).
    """

    __slots__ = ("_values", "explicit", "selector", "server_algorithm", *(name for name, _ in COMPONENTS))
    _values: dict[str, Any]
    explicit: frozenset[str]
    identity: JobIdentity
    cluster: Cluster
    data: DataConfig
    training: TrainingConfig
    fleet: FleetConfig
    selection: SelectionConfig
    adaptive: AdaptiveConfig
    asynchronous: AsyncConfig
    robustness: RobustnessConfig
    server: ServerConfig
    compat: FedScaleCompat
    selector: BaseModel
    server_algorithm: BaseModel

    def __init__(self, settings: Mapping[str, Any] | None = None, explicit: Iterable[str] | None = None) -> None:
        """Validate ``settings`` (raw values by key name or alias); ``explicit`` defaults to their keys."""
        if settings is None:
            settings = {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"expected a mapping of keys to values, got {show(settings)}", "job_conf")
        raw, given = canonical_pairs(settings.items())
        values = {name: spec.parse(raw[name], f"job_conf.{name}") if name in raw else spec.default
                  for name, spec in KEYS.items()}
        object.__setattr__(self, "_values", values)
        for name, model in COMPONENTS:
            object.__setattr__(self, name, _component(model, values))
        object.__setattr__(self, "selector", _component(SELECTOR_CONFIGS[self.selection.sample_mode], values))
        algorithm = self.server.gradient_policy or DEFAULT_ALGORITHM
        object.__setattr__(self, "server_algorithm", _component(ALGORITHM_CONFIGS[algorithm], values))
        _check_relations(self)
        if explicit is not None:
            given = canonical_pairs((name, None) for name in explicit)[1]
        object.__setattr__(self, "explicit", given)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], explicit: Iterable[str] | None = None) -> JobConf:
        """Re-validate a configuration read back from ``to_dict`` output (e.g. by an executor process).

        Pass ``explicit`` to keep track of which keys the user set; without it every key in
        ``d`` counts as set.
        """
        return cls(d, explicit)

    def to_dict(self) -> dict[str, Any]:
        """All values by canonical name, JSON-serialisable (lists for list keys)."""
        return {name: list(value) if isinstance(value, tuple) else value for name, value in self._values.items()}

    def public_dict(self) -> dict[str, Any]:
        """``to_dict`` with every credential (``SECRET_KEYS``) blanked: what may be written to a
        file (job.json) or a log line (JOB_BEGIN's config)."""
        return {name: ("" if name in SECRET_KEYS and value else value) for name, value in self.to_dict().items()}

    def replace(self, **changes: Any) -> JobConf:
        """A validated copy with ``changes`` applied; the changed keys count as explicit."""
        changed, names = canonical_pairs(changes.items())
        return JobConf({**self._values, **changed}, self.explicit | names)

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[_ALIASES.get(name, name)]
        except KeyError:
            raise KeyError(f"no job_conf key {name!r}{suggest(name, ALL_NAMES)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("JobConf is immutable; use replace()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("JobConf is immutable; use replace()")

    def __reduce__(self) -> tuple[Any, ...]:
        return JobConf, (self.to_dict(), sorted(self.explicit))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobConf):
            return NotImplemented
        return self._values == other._values and self.explicit == other.explicit

    def __hash__(self) -> int:
        return hash((tuple(self._values.items()), self.explicit))

    def __repr__(self) -> str:
        changed = (f"{name}={value!r}" for name, value in self._values.items() if value != KEYS[name].default)
        return f"JobConf({', '.join(changed)})"


def check_mode(conf: JobConf, mode: str) -> None:
    """Refuse, in one ConfigError line, what the aggregation ``mode`` (``commons.MODE_SYNC`` or
    ``MODE_ASYNC``) cannot do. A synchronous job takes no asynchronous key. An asynchronous job
    buffers at most max_concurrency updates per step, trains fixed local_steps (adaptive training
    fits a round's budget), has no over-commitment (max_concurrency replaces it), takes no
    selector that shapes each participant's work to a round (PyramidFL) and writes no checkpoint
    (its clients in flight are not saved). Robust aggregation and attacks apply to each step's buffer."""
    explicit = conf.explicit
    if mode != MODE_ASYNC:
        stray = sorted(explicit & set(AsyncConfig.model_fields))
        if stray:
            raise ConfigError("applies to asynchronous jobs only (aggregator_entry: async_aggregator.py)",
                              f"job_conf.{stray[0]}")
        return
    buffer, concurrency = conf.training.num_participants, conf.asynchronous.max_concurrency
    if buffer > concurrency:
        raise ConfigError(f"expected an async_buffer (num_participants) of at most max_concurrency ({concurrency}), "
                          f"got {buffer}", "job_conf.num_participants")
    refused = (
        ("adaptive_training", conf.adaptive.adaptive_training,
         "fits each client's work to a synchronous round's time budget"),
        ("overcommitment", "overcommitment" in explicit,
         "over-commits synchronous rounds (max_concurrency sets how many clients train)"),
        ("save_checkpoint", "save_checkpoint" in explicit and conf.training.save_checkpoint,
         "cannot save the clients in flight"),
        ("sample_mode", selector_class(conf.selection.sample_mode).needs.client_overrides,
         f"{conf.selection.sample_mode} shapes each participant's work to a synchronous round"),
    )
    for key, bad, why in refused:
        if bad:
            raise ConfigError(f"{why}; not available in an asynchronous job (aggregator_entry: async_aggregator.py)",
                              f"job_conf.{key}")


def inactive_keys(conf: JobConf) -> list[str]:
    """Keys the user set that are accepted for FedScale compatibility but have no effect yet."""
    return [name for name, spec in KEYS.items() if name in conf.explicit and not spec.active]


def _component(model: type[BaseModel], values: Mapping[str, Any]) -> BaseModel:
    """``model`` built from the typed values; its own rules' errors as one ConfigError."""
    try:
        return from_values(model, values)
    except ValidationError as err:
        raise _as_config_error(err) from None


def _as_config_error(err: ValidationError) -> ConfigError:
    """The first problem of a component's validation. A rule raises ConfigError, or a ValueError
    whose message starts with the key it is about ('key: problem')."""
    first = err.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    message = str(cause) if cause is not None else first["msg"]
    key, colon, problem = message.partition(": ")
    if colon and key in KEYS:
        return ConfigError(problem, f"job_conf.{key}")
    where = ".".join(map(str, first["loc"]))
    return ConfigError(message, f"job_conf.{where}" if where else "job_conf")


def _check_relations(conf: JobConf) -> None:
    """Rules that involve several components."""
    data, training = conf.data, conf.training
    if not data.data_map_file and data.data_set == "digits" and training.num_participants > data.num_clients:
        raise ConfigError(f"expected at most num_clients ({data.num_clients}), got {training.num_participants}",
                          "job_conf.num_participants")
    if (training.model in LANGUAGE_MODELS) != (data.data_set in TEXT_DATA_SETS):
        kinds = ("a classifier", "the language model") if training.model in LANGUAGE_MODELS else \
            ("a language model", "the classifier")
        raise ConfigError(f"expected {kinds[0]} for data_set {data.data_set!r}, got {kinds[1]} {training.model!r}",
                          "job_conf.model")
    attack = conf.robustness.attack
    if data.data_set in TEXT_DATA_SETS and attack and parse_attack(attack).name in DATA_ATTACKS:
        raise ConfigError(f"a data attack relabels classes; data_set {data.data_set!r} predicts next words, "
                          f"got {attack!r}", "job_conf.attack")
