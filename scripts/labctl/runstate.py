"""The one record of a running stack, for both modes: .lab/run/stack.env, KEY=VALUE.

`make native-up` and `make up` write it once the stack answers: LAB_MODE (native or compose) and
the settings the stack was started with (ports, scenario, upload limit, the renderer's inputs).
`make reload` renders with them, the suites find the stack's ports in it, and the tests that
recreate a container use the same values. `down` of the same mode removes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import labsettings

from . import paths

STATE = paths.RUN / "stack.env"
MODE_KEY = "LAB_MODE"
PREFIXES = ("LAB_", "GUNICORN_")
T = TypeVar("T")


def _kept(mode: str, values: Mapping[str, str]) -> dict[str, str]:
    kept = {k: v.strip() for k, v in values.items() if k.startswith(PREFIXES) and "\n" not in v}
    kept[MODE_KEY] = mode
    return kept


def record(mode: str, values: Mapping[str, str]) -> None:
    paths.RUN.mkdir(parents=True, exist_ok=True)
    kept = _kept(mode, values)
    STATE.write_text("".join(f"{key}={value}\n" for key, value in sorted(kept.items())))


def started_with(mode: str, values: Mapping[str, str]) -> bool:
    """Whether the recorded stack is of ``mode`` and was started with exactly these settings."""
    return read() == _kept(mode, values)


def read() -> dict[str, str]:
    """What the running stack was started with ({} when no stack was started from here)."""
    return labsettings.read_env_file(STATE) if STATE.is_file() else {}


def value(setting: labsettings.Setting[T]) -> T:
    """``setting`` as the environment gives it where it is set there (a port from another shell),
    else as the running stack was started with."""
    return setting.value(None if setting.is_set() else read())


def mode() -> str | None:
    """The mode recorded by `up`; None when none was (a bare `docker compose up` writes nothing:
    labctl.stack looks for its containers)."""
    return read().get(MODE_KEY) or None


def recorded(mode_asked: str) -> bool:
    """Whether the recorded stack is of ``mode_asked``."""
    return mode() == mode_asked


def other_than(mode_asked: str) -> str | None:
    """The recorded stack's mode when it is not ``mode_asked``; None when none or that one is."""
    found = mode()
    return found if found != mode_asked else None


def clear(mode_stopped: str) -> None:
    """Forget the stack, if the recorded one is of the mode that was just stopped."""
    if recorded(mode_stopped):
        STATE.unlink(missing_ok=True)
