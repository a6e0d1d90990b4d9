"""The balancer in front of the lab's nginx, natively: a second nginx on its own prefix
(.lab/balancer) and ports (LAB_BALANCER_PORT, LAB_BALANCER_HTTP_PORT), ending TLS and proxying
plain HTTP to the lab nginx's listener for it (LAB_BEHIND_BALANCER_PORT), as a cloud load
balancer or CDN edge does. Its config is nginx/balancer.conf, rendered by nginx-ctl.sh like
the lab's own; the lab's nginx trusts it by its address (snippets/balancer-trust.conf).

Independent of the stack behind it: `make balancer-up` in front of a running native stack,
`make balancer-down` (compose: the "balancer" profile, compose.yaml).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import labsettings

from . import health, nginx, paths, procs

PREFIX = paths.LAB / "balancer"
PID = PREFIX / "run" / "nginx.pid"
MAIN = "balancer.conf"


def url() -> str:
    return f"https://localhost:{labsettings.BALANCER_PORT.value()}"


def env() -> dict[str, str]:
    """nginx-ctl.sh's inputs: the lab's (its ports, certificates, limits), this prefix and file."""
    return {**nginx.native_env(), "LAB_NGINX_PREFIX": str(PREFIX), "LAB_NGINX_MAIN": MAIN, "LAB_SCENARIO": ""}


def pid() -> int | None:
    return procs.pid_from_file(PID, str(PREFIX))


def up() -> str:
    """Start (or restart) the balancer; its URL once /healthz answers through it."""
    down(quiet=True)
    nginx.run("start", env=env())
    try:
        health.wait_healthy(url() + "/healthz", paths.CA if paths.CA.is_file() else None, 10)
    except RuntimeError as error:
        down(quiet=True)
        raise SystemExit(
            f"lab: the balancer started but {error} (is the lab's stack up? `make native-up`)\n"
            f"  logs: {PREFIX / 'logs'}"
        ) from error
    return url()


def down(quiet: bool = False) -> None:
    running = pid()
    procs.stop(running, signal.SIGTERM, 10)
    if not quiet:
        print("lab: balancer stopped" if running else "lab: no balancer was running")


@contextlib.contextmanager
def running() -> Iterator[str]:
    """The balancer for the length of a block (a scenario's check): one already running is used
    and left running; one started here is stopped after it."""
    if pid() is not None:
        yield url()
        return
    started = up()
    try:
        yield started
    finally:
        down(quiet=True)
