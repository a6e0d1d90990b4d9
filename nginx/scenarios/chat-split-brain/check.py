"""chat-split-brain's check: chat clients on both workers, one message, who heard it.

Each client asks for its hello (``/ws/chat?whoami=1``: its id and the worker holding it), and
clients are added until both workers hold some: which worker accepts a connection is the
kernel's choice, so a fixed count could land them all on one and prove nothing.
"""

from __future__ import annotations

import json
import time
import uuid

from labctl import probe, wsclient
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

CLIENTS = 8  # at least; more until two workers hold some
MAX_CLIENTS = 40
WAIT_S = 3.0
# Once WAIT_S has passed, whatever was relayed is already in each socket's buffer.
LAST_LOOK_S = 0.2

Worker = tuple[str, int]


def connect(endpoint: Endpoint) -> tuple[wsclient.WebSocket, Worker]:
    handshake, conn = probe.websocket(endpoint, "/ws/chat?whoami=1")
    if conn is None:
        raise ConnectionError(f"/ws/chat answered {handshake.status} {handshake.reason}, not 101")
    conn.settimeout(WAIT_S)
    opcode, payload = conn.recv()
    if opcode != wsclient.OP_TEXT:
        conn.close()
        raise ConnectionError(f"/ws/chat closed before its hello (close {wsclient.close_code(payload)})")
    where = json.loads(payload)["served_by"]
    return conn, (where["host"], where["pid"])


def hears(conn: wsclient.WebSocket, text: str, deadline: float) -> bool:
    """Whether ``text`` arrives on ``conn`` by ``deadline`` (the clients are read one after another,
    so once it has passed each still gets a last look at what arrived meanwhile)."""
    try:
        while True:
            conn.settimeout(max(deadline - time.monotonic(), LAST_LOOK_S))
            opcode, payload = conn.recv()
            if opcode == wsclient.OP_CLOSE:
                return False
            if opcode == wsclient.OP_TEXT and json.loads(payload).get("msg") == text:
                return True
    except OSError:  # the timeout, or the connection dropped
        pass
    return False


def observe(endpoint: Endpoint) -> Observation:
    clients: list[tuple[wsclient.WebSocket, Worker]] = []
    try:
        while len(clients) < MAX_CLIENTS and (
            len(clients) < CLIENTS or len({worker for _, worker in clients}) < 2
        ):
            clients.append(connect(endpoint))
        workers = {worker for _, worker in clients}
        if len(workers) < 2:
            return Observation(None, f"all {len(clients)} chat clients landed on one worker {workers}")
        (sender, home), others = clients[0], clients[1:]
        text = f"split-brain probe {uuid.uuid4().hex[:8]}"
        sender.send_text(text)
        deadline = time.monotonic() + WAIT_S
        heard = [(worker == home, hears(conn, text, deadline)) for conn, worker in others]
    except (OSError, ValueError, KeyError) as error:
        return Observation(None, f"the chat clients failed: {type(error).__name__}: {error}")
    finally:
        for conn, _ in clients:
            conn.close()
    near = [got for same, got in heard if same]
    far = [got for same, got in heard if not same]
    seen = (
        f"a message from 1 of {len(clients)} clients on {len(workers)} workers reached "
        f"{sum(near) + sum(far)} of {len(others)} ({sum(near)} of {len(near)} on the sender's "
        f"worker, {sum(far)} of {len(far)} on the other)"
    )
    return Observation(classify(all(near) and not all(far), all(near) and all(far)), seen)
