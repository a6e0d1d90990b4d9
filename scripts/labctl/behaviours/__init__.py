"""What a deployment must do: one module per class of behaviour (redirects, forwarded headers,
the Host, the request id, bodies, errors, websockets, TLS, HTTP/3), each behaviour an object with
its id, title, hint, severity, the scenarios that break it, its probe and its static rule (see
core). `make doctor` runs the probes against any deployment; `lab check` runs them against a
user's nginx config in front of the lab's app and pairs them with the rules' reading of it.

The registry is found, not listed: every module of this package but ``core`` is imported and its
Behaviour objects collected, in the module's ``ORDER`` (the report's order: probes share what
they saw, the request id reads what the forwarded probe got from the app) then as written.

Each probe says what it needs. Some need a route of the app (the lab's own, or the user's:
``Routes``); a probe whose route is absent reports "not probed", never "broken".

Standard library only: the doctor runs before the virtualenv exists. The one exception, HTTP/3's
client (aioquic, labctl.h3), is imported only where .venv provides it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import TypeVar

from ..endpoints import Endpoint
from .core import (
    BROKEN,
    NOT_PROBED,
    NOTE,
    OK,
    Behaviour,
    Finding,
    Options,
    Probe,
    ProbeFunction,
    Result,
    Routes,
    RuleFunction,
    Site,
)

__all__ = [
    "BROKEN",
    "NOTE",
    "NOT_PROBED",
    "OK",
    "Behaviour",
    "Finding",
    "Options",
    "Probe",
    "Result",
    "Routes",
    "Site",
    "by_id",
    "findings",
    "modules",
    "probes",
    "registry",
    "rules",
    "run",
]
CORE = "core"
F = TypeVar("F", bound=Callable[..., object])


@functools.cache
def modules() -> tuple[ModuleType, ...]:
    """The behaviour modules of this package, in their ORDER."""
    found = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if info.name != CORE
    ]
    return tuple(sorted(found, key=lambda module: module.ORDER))


@functools.cache
def registry() -> tuple[Behaviour, ...]:
    """Every behaviour, once, in the report's order; an id declared twice is an error."""
    behaviours = [b for m in modules() for b in vars(m).values() if isinstance(b, Behaviour)]
    ids = [b.id for b in behaviours]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise ValueError(f"labctl.behaviours: ids declared twice: {', '.join(twice)}")
    return tuple(behaviours)


def by_id(name: str) -> Behaviour | None:
    """The behaviour a scenario.toml names (``behaviour = "redirect-port"``)."""
    return next((b for b in registry() if b.id == name), None)


def _in_order(functions: list[F | None]) -> tuple[F, ...]:
    """Each function once, by its module's ORDER and then as written in it."""
    unique = {f: None for f in functions if f is not None}
    rank = {m.__name__: m.ORDER for m in modules()}
    return tuple(sorted(unique, key=lambda f: (rank[f.__module__], f.__code__.co_firstlineno)))


def probes() -> tuple[ProbeFunction, ...]:
    return _in_order([b.probe for b in registry()])


def rules() -> tuple[RuleFunction, ...]:
    return _in_order([b.rule for b in registry()])


def run(endpoint: Endpoint, options: Options) -> list[Result]:
    """Every probe against ``endpoint``, in order; a probe that cannot reach it raises OSError."""
    state = Probe(endpoint, options)
    return [found for each in probes() for found in each(state)]


def findings(site: Site) -> list[Finding]:
    """Every rule's findings in ``site``'s config, read without running nginx."""
    return [finding for each in rules() for finding in each(site)]
