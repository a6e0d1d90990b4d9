"""socketio-no-message-queue's check: Socket.IO clients on both workers, one chat, who heard it."""

from __future__ import annotations

import queue
import uuid

from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

WAIT_S = 3.0


def observe(endpoint: Endpoint) -> Observation:
    # Here, not at the top: the catalogue loads this file on any python3, before .venv exists.
    import socketio

    from labctl import sioclient

    clients: list[sioclient.SioClient] = []
    try:
        while len(clients) < sioclient.MAX_CLIENTS and (
            len(clients) < 6 or len(sioclient.workers(clients)) < 2
        ):
            clients.extend(sioclient.connect_batch(endpoint, "websocket"))
        if len(sioclient.workers(clients)) < 2:
            return Observation(None, f"all {len(clients)} Socket.IO clients landed on one worker")
        sender, others = clients[0], clients[1:]
        text = f"no-queue probe {uuid.uuid4().hex[:8]}"
        sender.call("chat", {"msg": text})
        heard = []
        for client in others:
            try:
                got = client.chat.get(timeout=WAIT_S if not heard else 0.2)
            except queue.Empty:
                got = {}
            heard.append((client.worker == sender.worker, got.get("msg") == text))
    except (OSError, AssertionError, socketio.exceptions.SocketIOError) as error:
        return Observation(None, f"the Socket.IO clients failed: {type(error).__name__}: {error}")
    finally:
        sioclient.close_all(clients)
    near = [got for same, got in heard if same]
    far = [got for same, got in heard if not same]
    seen = (
        f"a chat from 1 of {len(clients)} clients on 2 workers reached {sum(near) + sum(far)} of "
        f"{len(others)} ({sum(near)} of {len(near)} on the sender's worker, {sum(far)} of {len(far)} "
        "on the other)"
    )
    return Observation(classify(all(near) and not any(far), all(near) and all(far)), seen)
