"""Connection capacity, read from the outside: how many websockets a deployment holds open before
a new request hangs (each one holds an app-server slot and two nginx connections). It opens
sockets, so it runs only when asked (--hold-websockets N), bounded in count and time."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from .. import probe as http_probe
from .core import BROKEN, MEDIUM, NOT_PROBED, OK, Behaviour, Probe, Result, probe, result

ORDER = 76
MAX_SOCKETS = 2000  # the most the probe ever opens
BUDGET_S = 60.0  # and for no longer than this, all sockets together
HANG_S = 3.0  # a free server answers a plain GET in milliseconds

CAPACITY = Behaviour(
    "capacity",
    "a new request is answered while websockets are held open",
    "new requests hang while the CPU idles once N websockets (or streams, long-polls) are open: the app "
    "server's worker_connections x workers, or nginx's worker_connections (2 per proxied socket), is the "
    "cap; raise it above the sockets you hold",
    MEDIUM,
    ("connection-capacity",),
)


def _answers(p: Probe, path: str) -> str:
    """A plain GET's status and time, or how it hung."""
    started = time.monotonic()
    try:
        reply = http_probe.request(p.endpoint, "GET", path, timeout=HANG_S)
    except TimeoutError:
        return ""
    return f"{reply.status} in {time.monotonic() - started:.2f} s"


@probe(CAPACITY)
def probe_capacity(p: Probe) -> Iterator[Result]:
    wanted = min(p.options.hold_websockets, MAX_SOCKETS)
    route = p.options.routes.ws
    if not wanted or route is None:
        why = "no websocket route (--ws-url)" if wanted else "not asked (--hold-websockets N)"
        yield result(CAPACITY, NOT_PROBED, why)
        return
    plain = p.options.routes.body or "/"
    deadline = time.monotonic() + BUDGET_S
    stopped = ""
    with contextlib.ExitStack() as sockets:
        opened = 0
        while opened < wanted and time.monotonic() < deadline:
            try:
                handshake, conn = http_probe.websocket(p.endpoint, route, timeout=HANG_S)
            except TimeoutError:
                stopped = f"websocket {opened + 1}'s handshake hung ({HANG_S:g} s)"
                break
            except OSError as error:
                stopped = f"websocket {opened + 1}: {type(error).__name__}"
                break
            if conn is None:
                stopped = f"websocket {opened + 1} answered {handshake.status}"
                break
            sockets.enter_context(conn)
            opened += 1
        if not opened:
            yield result(CAPACITY, NOT_PROBED, f"{route}: no websocket opened ({stopped or 'no time'})")
            return
        answered = _answers(p, plain)
    held = f"{opened} of {wanted} websockets held open" + (f", then {stopped}" if stopped else "")
    if not answered:
        yield result(
            CAPACITY, BROKEN, f"{held}; then GET {plain} hung ({HANG_S:g} s): about {opened} is the cap"
        )
    elif stopped:
        yield result(CAPACITY, BROKEN, f"{held}; GET {plain} still answered {answered}")
    else:
        yield result(CAPACITY, OK, f"{held}; then GET {plain} answered {answered}")
