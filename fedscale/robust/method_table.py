"""A table of robust methods (aggregators, pre-aggregators, attacks) that names each method's
function without importing it.

Checking a job's spec needs only a method's name, its parameter names and its module's
``INTENSITY``; these are read from the module's source, so a driver or a sweep validates its
jobs without importing torch (about a second of CPU per process). Looking a method up
(``table[name]``) imports its module, as running it must.
"""
from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from collections.abc import Callable, Iterator, Mapping
from typing import Any


class MethodTable(Mapping[str, Callable[..., Any]]):
    """``name -> function`` for the methods of ``package``, each given as ``"module.function"``
    (a module of the package and a function defined in it)."""

    def __init__(self, package: str, entries: dict[str, str]) -> None:
        self.package = package
        self.entries = {name: tuple(entry.split(".")) for name, entry in entries.items()}

    def __getitem__(self, name: str) -> Callable[..., Any]:
        module, function = self.entries[name]
        return getattr(importlib.import_module(f"{self.package}.{module}"), function)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def parameters(self, name: str) -> tuple[str, ...]:
        """The names of the parameters of method ``name`` that can be passed by keyword, in order."""
        module, function = self.entries[name]
        for node in _source(f"{self.package}.{module}").body:
            if isinstance(node, ast.FunctionDef) and node.name == function:
                return tuple(a.arg for a in (*node.args.args, *node.args.kwonlyargs))
        raise LookupError(f"{self.package}.{module} defines no function {function}")

    def constant(self, name: str, constant: str) -> Any:
        """The module-level literal ``constant`` of method ``name``'s module, or None."""
        module, _ = self.entries[name]
        for node in _source(f"{self.package}.{module}").body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name) and node.targets[0].id == constant):
                return ast.literal_eval(node.value)
        return None


@functools.lru_cache(maxsize=None)
def _source(module: str) -> ast.Module:
    """The parsed source of ``module``, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise LookupError(f"no source for {module}")
    with open(spec.origin, encoding="utf-8") as f:
        return ast.parse(f.read(), spec.origin)
