"""socketio-stuck-polling's check: a client with the default transports (polling first, then the
upgrade): which transport it uses once it has had time to upgrade."""

from __future__ import annotations

import time

from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

UPGRADE_S = 3.0  # an upgrade takes milliseconds here


def observe(endpoint: Endpoint) -> Observation:
    # Here, not at the top: the catalogue loads this file on any python3, before .venv exists.
    import socketio

    from labctl import sioclient

    try:
        client = sioclient.connect(endpoint, "default", upgraded=False)
    except (OSError, AssertionError, socketio.exceptions.SocketIOError) as error:
        return Observation(None, f"the Socket.IO client failed to connect: {type(error).__name__}: {error}")
    try:
        deadline = time.monotonic() + UPGRADE_S
        while client.current_transport() != "websocket" and time.monotonic() < deadline:
            time.sleep(0.05)
        transport = client.current_transport()
        answered = client.call("echo", "on which transport?") == "on which transport?"
    except (OSError, socketio.exceptions.SocketIOError) as error:
        return Observation(None, f"the Socket.IO client failed: {type(error).__name__}: {error}")
    finally:
        client.close()
    seen = f"after {UPGRADE_S:g} s the client is on {transport} (echo answered: {answered})"
    return Observation(
        classify(transport == "polling" and answered, transport == "websocket" and answered), seen
    )
