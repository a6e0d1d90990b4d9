"""socketio-ping-timeout's check: one Socket.IO client, quiet for longer than the scenario's read
timeout and far shorter than pingInterval: still connected (and answering), or disconnected."""

from __future__ import annotations

import queue

from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

QUIET_S = 5.0  # above the scenario's 3 s, below pingInterval (25 s) and the baseline's 60 s


def observe(endpoint: Endpoint) -> Observation:
    # Here, not at the top: the catalogue loads this file on any python3, before .venv exists.
    import socketio

    from labctl import sioclient

    try:
        client = sioclient.connect(endpoint, "websocket")
    except (OSError, AssertionError, socketio.exceptions.SocketIOError) as error:
        return Observation(None, f"the Socket.IO client failed to connect: {type(error).__name__}: {error}")
    try:
        try:
            reason = client.disconnects.get(timeout=QUIET_S)
        except queue.Empty:
            reason = ""
        if reason:
            return Observation(True, f"disconnected after less than {QUIET_S:g} s of quiet: {reason!r}")
        answered = client.call("echo", "still there?") == "still there?"
    except (OSError, socketio.exceptions.SocketIOError) as error:
        return Observation(None, f"the Socket.IO client failed: {type(error).__name__}: {error}")
    finally:
        client.close()
    return Observation(
        classify(False, answered), f"still connected after {QUIET_S:g} s of quiet, echo {answered}"
    )
