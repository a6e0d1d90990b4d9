"""Query parameters read within bounds: a value out of them is a 400 JSON naming the range."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import abort, request

N = TypeVar("N", int, float)


def bounded(name: str, parse: Callable[[str], N], default: N, low: N, high: N) -> N:
    """``request.args[name]`` parsed, between ``low`` and ``high`` inclusive; else 400."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = parse(raw)
    except ValueError:
        abort(400, f"{name} must be a number between {low:g} and {high:g}, not {raw!r}")
    if not low <= value <= high:  # also refuses nan
        abort(400, f"{name} must be between {low:g} and {high:g}, not {raw!r}")
    return value
