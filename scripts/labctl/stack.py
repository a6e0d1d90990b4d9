"""The running stack, whichever mode started it: the only module that branches on the mode.

Everything mode-specific lives in native.py, compose.py and swarm.py (compose's file as a Swarm
stack); callers ask here (reload, config dump, logs, deploy) and never look at the mode themselves.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path

from . import compose, native, nginx, paths, runstate, swarm


def running_mode() -> str | None:
    """'native', 'compose' or 'swarm' while a stack started by this checkout is up: `make
    native-up`, `make up` and `make swarm-up` record it (runstate); a compose stack started with
    plain `docker compose up` is found by its containers' labels (this project, this checkout).
    The latter asks docker: call once."""
    return runstate.mode() or ("compose" if compose.running_here() else None)


def require_running() -> str:
    mode = running_mode()
    if mode is None:
        raise SystemExit(
            "lab: no stack is running here: `make native-up`, `make up` or `make swarm-up` first"
        )
    return mode


def reload() -> int:
    """nginx -t the re-rendered config, then reload it, in the running stack."""
    mode = require_running()
    if mode == "swarm":
        return swarm.reload()
    return compose.reload() if mode == "compose" else native.reload()


def nginx_source() -> Path:
    """The nginx/ directory the running stack renders its config from: compose mounts the
    checkout's (swarm too, one node); native mode reads LAB_NGINX_SRC (a copy, in tests)."""
    return compose.NGINX_SOURCE if require_running() in ("compose", "swarm") else paths.NGINX_SRC


def nginx_container() -> str | None:
    """The running stack's nginx container (compose, or the swarm task's on this node); None
    natively."""
    mode = running_mode()
    if mode == "compose":
        return compose.container_id("nginx")
    return swarm.nginx_container() if mode == "swarm" else None


def nginx_has_http3() -> bool | None:
    """Whether the running stack's nginx has the HTTP/3 module (`nginx -V`), so its renderer
    turned QUIC on; None when no stack started from this checkout runs."""
    mode = running_mode()
    if mode == "compose":
        return compose.nginx_has_http3()
    if mode == "swarm":
        return swarm.nginx_has_http3()
    return nginx.nginx_has_http3() if mode == "native" else None


def dump_config() -> str:
    """nginx -T of the running stack, or a note saying why there is none."""
    mode = running_mode()
    if mode == "native":
        return native.dump_config()
    if mode == "compose":
        return compose.dump_config()
    if mode == "swarm":
        return swarm.dump_config()
    return "(no stack started from this checkout is running)"


def log_tail(lines: int = 60) -> dict[str, str]:
    """The last lines of each log, by name ("nginx access", "nginx error", "app")."""
    mode = running_mode()
    if mode == "compose":
        return compose.log_tail(lines)
    if mode == "swarm":
        return swarm.log_tail(lines)
    tails = {}
    if mode == "native":
        for name, path in native.log_files().items():
            try:
                with open(path, errors="replace") as handle:
                    tails[name] = "".join(deque(handle, maxlen=lines))
            except OSError as error:
                tails[name] = f"({error})"
    return tails


def access_log_entries(lines: int = 2000) -> list[str]:
    """Recent raw lines of nginx's JSON access log."""
    return log_tail(lines).get("nginx access", "").splitlines()


def deploy(note: Callable[[str], None]) -> None:
    """Replace every app process of the running stack under traffic (`make deploy`): natively
    gunicorn's graceful reload, in compose new replicas before the old ones stop, in Swarm a
    start-first rolling update of the app service."""
    mode = require_running()
    if mode == "swarm":
        swarm.deploy(note)
    elif mode == "compose":
        compose.deploy(note)
    else:
        native.deploy(note)
