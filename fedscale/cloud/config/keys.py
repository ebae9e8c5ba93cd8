"""Job keys: how one job_conf value is read, checked and described, and how a key is declared.

A key is declared once, as a field of a component's pydantic model (``Component``): its name
is FedScale's job_conf key (or the field's alias, for FedScale's hyphenated speech keys), its
type one of int, float, bool, str, ``Literal[...]`` (a choice), ``tuple[int, ...]`` or
``str | None``, its default, its help (``description``) and its bounds (``ge``/``gt``/``le``/
``lt``). ``Annotated`` markers add what pydantic cannot say: ``PATH`` (``~`` and ``$VARS``
expanded, made absolute), ``INACTIVE`` (accepted for FedScale compatibility, no effect yet),
``Aliases(...)`` (other names of the key) and a ``Check`` (any other rule, in words).
``KeySpec.of`` reads such a field back into the parser's view of the key; the parser converts
raw YAML values with it, so errors name the key and what was expected in one line.
"""
from __future__ import annotations

import contextlib
import datetime
import difflib
import math
import os
import re
import reprlib
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo

class ConfigError(ValueError):
    """A job file or job setting that cannot be accepted.

    ``str()`` is one line, ``<source>: <where>: <problem>`` with empty parts left out, so
    ``ConfigError("whole message")`` works too. The parts are kept as attributes for
    callers that want them separately.
    """

    def __init__(self, problem: str, where: str = "", source: str = "") -> None:
        self.problem = re.sub(r"\s*\n\s*", " ", problem)
        self.where = where
        self.source = source
        super().__init__(": ".join(part for part in (source, where, self.problem) if part))

    def __reduce__(self) -> tuple[Any, ...]:
        return ConfigError, (self.problem, self.where, self.source)


@contextlib.contextmanager
def reported_from(source: str) -> Iterator[None]:
    """Fill in the job's source on any ConfigError raised inside, so every error names its file."""
    try:
        yield
    except ConfigError as err:
        if err.source:
            raise
        raise ConfigError(err.problem, err.where, source) from None


def _excerpts() -> reprlib.Repr:
    """A repr that quotes a bounded excerpt of any value: a few levels, items and characters, so
    neither a huge value nor one that YAML aliases share many times over is ever expanded whole."""
    excerpt = reprlib.Repr()
    excerpt.maxlevel = 3
    excerpt.maxlist = excerpt.maxtuple = excerpt.maxdict = excerpt.maxset = 10
    excerpt.maxstring = excerpt.maxlong = excerpt.maxother = 80
    return excerpt


_EXCERPT = _excerpts()


def show(value: Any) -> str:
    """A value as the user wrote it in YAML terms, short enough for a one-line error."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = _EXCERPT.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def suggest(word: Any, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the nearest candidate, or '' when none is close."""
    match = difflib.get_close_matches(str(word), list(candidates), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


# Value conversion: each converter returns the typed value or raises ValueError.

_INT64_LIMIT = 2**63
_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True,
               "false": False, "no": False, "off": False, "0": False}


def _to_int(value: Any) -> int:
    """Integers, integral floats and numeric strings ("1e15" included), within int64.

    Values cross process boundaries as protobuf int64, hence the bound.
    """
    if isinstance(value, str):
        try:
            value = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError from None
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise ValueError
    if not isinstance(value, int) and not (math.isfinite(value) and value == int(value)):
        raise ValueError
    result = int(value)
    if not -_INT64_LIMIT <= result < _INT64_LIMIT:
        raise ValueError
    return result


def _to_float(value: Any) -> float:
    """Finite numbers and numeric strings."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    result = float(value)
    if not math.isfinite(result):
        raise ValueError
    return result


def _to_bool(value: Any) -> bool:
    """YAML booleans, 0/1, and true/false/yes/no/on/off/1/0 in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _BOOL_WORDS:
        return _BOOL_WORDS[value.strip().lower()]
    raise ValueError


def _to_str(value: Any) -> str:
    """Strings, and numbers or dates written without quotes."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, datetime.date)) and not isinstance(value, bool):
        return str(value)
    raise ValueError


def _to_int_tuple(value: Any) -> tuple[int, ...]:
    """A list of integers, or FedScale's command-line form "32 32 3" (commas and brackets allowed)."""
    if isinstance(value, str):
        value = re.split(r"[\s,]+", value.strip(" \t[]()"))
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError
    return tuple(_to_int(item) for item in value)


_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    str: _to_str,
    tuple: _to_int_tuple,
}
_NOUNS = {int: "an integer", float: "a number", bool: "a boolean (true/false)", str: "a string",
          tuple: "a list of integers"}
TYPE_NAMES = {int: "int", float: "float", bool: "bool", str: "str", tuple: "list[int]"}
_UNSET_VARIABLE = re.compile(r"\$(\w+|\{[^}]*\})")


def _resolve_path(text: str, where: str) -> str:
    """Expand ``~`` and ``$VARS`` and make the path absolute against the working directory.

    An empty string stays empty (it means "not set"). A variable missing from the
    environment is an error rather than a literal ``$NAME`` folder.
    """
    if not text:
        return text
    expanded = os.path.expandvars(os.path.expanduser(text))
    unset = _UNSET_VARIABLE.search(expanded)
    if unset:
        raise ConfigError(f"{text!r} uses {unset.group(0)}, which is not set in the environment", where)
    return os.path.abspath(expanded)


@dataclass(frozen=True)
class Check:
    """A constraint beyond type, range and choices: a test on the typed value, and what passes in words."""

    test: Callable[[Any], bool]
    expects: str
    why: Callable[[Any], str] | None = None  # what is wrong with a rejected value, when there is more to say


@dataclass(frozen=True)
class KeySpec:
    """One job key: its type, default, help text and constraints.

    ``type`` is one of int, float, bool, str or tuple (a list of integers). A default of
    None makes the key nullable. ``ge``/``gt``/``le``/``lt`` bound numbers, ``choices`` lists the
    allowed values, ``check`` is any other rule. ``path`` keys have ``~`` and ``$VARS``
    expanded and are made absolute. ``active`` is False for keys accepted only so FedScale
    job files load; they have no effect yet.
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    check: Check | None = None
    aliases: tuple[str, ...] = ()
    active: bool = False
    path: bool = False

    @classmethod
    def of(cls, field_name: str, info: FieldInfo) -> KeySpec:
        """The key a ``Component`` field declares (module docstring)."""
        kind, choices = _key_type(info.annotation)
        bounds = {_BOUNDS[type(rule)]: getattr(rule, _BOUNDS[type(rule)]) for rule in info.metadata
                  if type(rule) in _BOUNDS}
        marks = info.metadata
        aliases = next((mark.names for mark in marks if isinstance(mark, Aliases)), ())
        check = next((mark for mark in marks if isinstance(mark, Check)), None)
        return cls(info.alias or field_name, kind, info.get_default(), info.description or "", choices=choices,
                   check=check, aliases=aliases, active=INACTIVE not in marks, path=PATH in marks, **bounds)

    @property
    def expects(self) -> str:
        """What a valid value looks like, in words, e.g. 'an integer >= 1'."""
        if self.choices:
            return "one of " + ", ".join(map(repr, self.choices))
        if self.check:
            return self.check.expects
        limits = ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
        bounds = [f"{op} {limit}" for op, limit in limits if limit is not None]
        return " ".join([_NOUNS[self.type], " and ".join(bounds)]).strip()

    @property
    def constrained(self) -> bool:
        """Whether a value of the right type can still be rejected."""
        return any(rule is not None for rule in (self.choices, self.ge, self.gt, self.le, self.lt, self.check))

    def parse(self, value: Any, where: str) -> Any:
        """Convert a raw (YAML or JSON) value to this key's type and check its constraints.

        ``where`` names the value in errors, e.g. 'job_conf.learning_rate'.
        """
        if value is None and self.default is None:
            return None
        try:
            typed = _CONVERTERS[self.type](value)
        except (ValueError, OverflowError):
            raise self._rejection(value, where) from None
        if self.path:
            typed = _resolve_path(typed, where)
        if not self._allows(typed):
            reason = self.check.why(typed) if self.check and self.check.why and not self.check.test(typed) else ""
            raise self._rejection(value, where, reason)
        return typed

    def _rejection(self, value: Any, where: str, reason: str = "") -> ConfigError:
        return ConfigError(f"expected {self.expects}, got {show(value)}" + (f" ({reason})" if reason else ""), where)

    def _allows(self, value: Any) -> bool:
        return (
            (self.choices is None or value in self.choices)
            and (self.ge is None or value >= self.ge)
            and (self.gt is None or value > self.gt)
            and (self.le is None or value <= self.le)
            and (self.lt is None or value < self.lt)
            and (self.check is None or self.check.test(value))
        )


@dataclass(frozen=True)
class Aliases:
    """Other names a key is accepted under (``Annotated`` marker), e.g. FedScale's ``sample_seed``."""

    names: tuple[str, ...]

    def __init__(self, *names: str) -> None:
        object.__setattr__(self, "names", names)


class _Marker:
    """A named ``Annotated`` marker."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


PATH = _Marker("PATH")          # a path: ~ and $VARS expanded, made absolute
INACTIVE = _Marker("INACTIVE")  # accepted so FedScale job files load; no effect yet


class Component(BaseModel):
    """A component's configuration: one field per job_conf key it reads; immutable, and an
    unknown field is an error. ``KeySpec.of`` describes each field as a key. Selectors and
    server algorithms declare their ``Config`` the same way, on pydantic's ``BaseModel``."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def key_specs(model: type[BaseModel]) -> list[KeySpec]:
    """The keys a configuration model declares, in declaration order."""
    return [KeySpec.of(name, info) for name, info in model.model_fields.items()]


def from_values(model: type[BaseModel], values: typing.Mapping[str, Any]) -> BaseModel:
    """``model`` built from typed values by key name (other keys ignored; missing keys default)."""
    return model.model_validate({spec.name: values[spec.name] for spec in key_specs(model) if spec.name in values})


_BOUNDS = {annotated_types.Ge: "ge", annotated_types.Gt: "gt", annotated_types.Le: "le", annotated_types.Lt: "lt"}


def _key_type(annotation: Any) -> tuple[type, tuple[Any, ...] | None]:
    """(parser type, choices) of a field annotation: a plain type, ``Literal``, ``X | None`` or
    ``tuple[int, ...]``."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        return type(choices[0]), choices
    if origin in (typing.Union, types.UnionType):
        (inner,) = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _key_type(inner)
    if origin is tuple or annotation is tuple:
        return tuple, None
    if annotation in _CONVERTERS:
        return annotation, None
    raise TypeError(f"unsupported job key type {annotation!r}")
