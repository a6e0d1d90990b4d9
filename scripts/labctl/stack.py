"""The running stack, whichever mode started it: one interface (`Stack`), three implementations
(the modules native, compose and swarm), and the only module that branches on the mode.

Callers ask here (start, reload, config dump, logs, deploy, the bench's processes) and never look
at the mode themselves; tests/unit/test_layers.py fails on a comparison with a mode's name
anywhere else in labctl.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from . import compose, native, runstate, swarm
from .health import StartFailed

# The log lines a failed start shows, per log.
FAILED_START_TAIL = 40


class Stack(Protocol):
    """A way to run the lab's stack. Implemented by the modules native, compose and swarm (mypy
    checks each against this, in DRIVERS)."""

    MODE: str  # its name, which runstate records: native, compose, swarm
    UP: str  # the command that starts it (`make native-up`), for the messages
    DOWN: str  # the command that stops it

    def up(self) -> None:
        """Start it and wait until nginx answers over TLS; health.StartFailed when it did not
        come up (start() reports that), SystemExit for what the user must fix first."""

    def down(self) -> None: ...

    def reload(self) -> int:
        """nginx -t the re-rendered config, then reload it; nginx's exit status."""

    def dump_config(self) -> str:
        """nginx -T, with its messages."""

    def log_tail(self, lines: int = 60) -> dict[str, str]:
        """The last lines of each log, by name ("nginx access", "nginx error", "app", ...)."""

    def logs_written(self) -> AbstractContextManager[dict[str, str]]:
        """For a block: what each log got meanwhile, by name as log_tail (filled when it ends)."""

    def nginx_container(self) -> str | None:
        """nginx's container (on this node); None when nginx runs on the host."""

    def nginx_source(self) -> Path:
        """The nginx/ directory its config is rendered from."""

    def nginx_has_http3(self) -> bool:
        """Whether its nginx has the HTTP/3 module (`nginx -V`), so its renderer turned QUIC on."""

    def deploy(self, note: Callable[[str], None]) -> None:
        """Replace every app process under traffic (`make deploy`), saying each step to ``note``."""

    def process_groups(self) -> dict[str, list[int]]:
        """The host PIDs of nginx's workers ("nginx") and the app's workers ("app"): what the
        bench charges CPU time to."""


DRIVERS: tuple[Stack, ...] = (native, compose, swarm)
BY_MODE = {driver.MODE: driver for driver in DRIVERS}


def current() -> Stack | None:
    """The stack started by this checkout that is up: `make native-up`, `make up` and `make
    swarm-up` record it (runstate); a compose stack started with plain `docker compose up` is
    found by its containers' labels (this project, this checkout). The latter asks docker: call
    once."""
    if recorded := runstate.mode():
        return BY_MODE[recorded]
    return compose if compose.running_here() else None


def require(driver: Stack | None = None) -> Stack:
    """The running stack (``driver``'s, when given); SystemExit saying how to start one."""
    running = current()
    if driver is not None and running is not driver:
        raise SystemExit(f"lab: no {driver.MODE} stack is running here: `{driver.UP}` first")
    if running is None:
        raise SystemExit(
            "lab: no stack is running here: `make native-up`, `make up` or `make swarm-up` first"
        )
    return running


def running_mode() -> str | None:
    """The running stack's name (native, compose, swarm), None when none runs."""
    running = current()
    return running.MODE if running else None


def start(driver: Stack) -> None:
    """Bring ``driver``'s stack up (`make native-up`, `make up`, `make swarm-up`): refused while
    another mode's stack from this checkout runs; when it does not come up, the last lines of
    each log, and what was left behind."""
    if other := runstate.other_than(driver.MODE):
        raise SystemExit(f"lab: a {other} stack is running from this checkout: `{BY_MODE[other].DOWN}` first")
    try:
        driver.up()
    except StartFailed as failed:
        for name, tail in driver.log_tail(FAILED_START_TAIL).items():
            print(f"--- {name} (last lines)\n{tail}", file=sys.stderr)
        raise SystemExit(f"lab: the {driver.MODE} stack failed to start: {failed}\n  {failed.left}") from None


# nginx starts the new config's workers within milliseconds of the signal: a bound, not a wait.
RELOAD_APPLIED_S = 10.0
# The master tells the old workers to stop accepting right after their replacements start.
RELOAD_SETTLE_S = 0.2


def reload() -> int:
    """nginx -t the re-rendered config, then reload it, in the running stack. Returns once nginx
    runs the new config (workers it did not have before), so that what probes the stack next (the
    lab page's verdict) sees it: `nginx -s reload` only signals the master."""
    driver = require()
    before = set(driver.process_groups()["nginx"])
    code = driver.reload()
    if code == 0:
        deadline = time.monotonic() + RELOAD_APPLIED_S
        while not set(driver.process_groups()["nginx"]) - before and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(RELOAD_SETTLE_S)
    return code


def nginx_source() -> Path:
    """The nginx/ directory the running stack renders its config from: compose mounts the
    checkout's (swarm too, one node); native mode reads LAB_NGINX_SRC (a copy, in tests)."""
    return require().nginx_source()


def nginx_container() -> str | None:
    """The running stack's nginx container (compose, or the swarm task's on this node); None
    natively or when none runs."""
    running = current()
    return running.nginx_container() if running else None


def nginx_has_http3() -> bool | None:
    """Whether the running stack's nginx has the HTTP/3 module; None when no stack started from
    this checkout runs."""
    running = current()
    return running.nginx_has_http3() if running else None


def dump_config() -> str:
    """nginx -T of the running stack, or a note saying why there is none."""
    running = current()
    return running.dump_config() if running else "(no stack started from this checkout is running)"


def log_tail(lines: int = 60) -> dict[str, str]:
    """The last lines of each log of the running stack, by name; {} when none runs."""
    running = current()
    return running.log_tail(lines) if running else {}


def access_log_entries(lines: int = 2000) -> list[str]:
    """Recent raw lines of nginx's JSON access log."""
    return log_tail(lines).get("nginx access", "").splitlines()


def deploy(note: Callable[[str], None]) -> None:
    """Replace every app process of the running stack under traffic (`make deploy`): natively
    gunicorn's graceful reload, in compose new replicas before the old ones stop, in Swarm a
    start-first rolling update of the app service."""
    require().deploy(note)
