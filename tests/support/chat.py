"""/ws/chat clients that know where they landed: each asks for its hello (``?whoami=1``: its id
and the worker holding its socket), so a test can spread them over every worker."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import websocket

from labapp import chat as app_chat
from labapp.patches.wsclose import Close
from support.lab import Lab

# What a chat client is told when the broker is unreachable: its close code and reason.
BROKER_DOWN = (Close.TRY_AGAIN_LATER, app_chat.BROKER_DOWN_REASON)

# Clients to open at least, and at most while they all land on one worker: which worker accepts a
# connection is the kernel's choice.
CLIENTS = 8
MAX_CLIENTS = 40
TIMEOUT_S = 10
# Receivers are read one after another: once TIMEOUT_S has passed since the send, whatever was
# relayed is already in each socket's buffer.
LAST_LOOK_S = 0.5


class Refused(ConnectionError):
    """The server closed the socket instead of saying hello (1013: the broker is unreachable)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"/ws/chat closed the socket at once: {code} {reason!r}")
        self.code, self.reason = code, reason


@dataclass
class ChatClient:
    conn: websocket.WebSocket
    id: int
    worker: tuple[str, int]  # (host, pid) of the process holding the socket

    def close(self) -> None:
        self.conn.close()


def join(lab: Lab) -> ChatClient:
    conn = lab.ws("/ws/chat?whoami=1", timeout=TIMEOUT_S)
    opcode, data = conn.recv_data(control_frame=True)
    if opcode == websocket.ABNF.OPCODE_CLOSE:
        conn.close()
        raise Refused(int.from_bytes(data[:2], "big") if len(data) >= 2 else None, data[2:].decode())
    hello = json.loads(data)
    return ChatClient(conn, hello["you"], (hello["served_by"]["host"], hello["served_by"]["pid"]))


# Clients joined at once: one after another, an idle machine's first worker accepts them all (its
# accept loop is back first: 40 of 40 on one worker in a quiet CI run); joins in flight together
# reach the others too.
BATCH = 4


def spread(lab: Lab, at_least: int = CLIENTS) -> list[ChatClient]:
    """``at_least`` clients, more while they are all on one worker (at most MAX_CLIENTS), BATCH
    joining at a time."""
    clients: list[ChatClient] = []
    try:
        with ThreadPoolExecutor(BATCH) as pool:
            while len(clients) < at_least or (workers(clients) == 1 and len(clients) < MAX_CLIENTS):
                batch = [pool.submit(join, lab) for _ in range(BATCH)]
                errors = [error for error in (f.exception() for f in batch) if error is not None]
                clients.extend(f.result() for f in batch if f.exception() is None)
                if errors:
                    raise errors[0]
    except BaseException:
        close_all(clients)
        raise
    return clients


def workers(clients: list[ChatClient]) -> int:
    return len({client.worker for client in clients})


def close_all(clients: list[ChatClient]) -> None:
    for client in clients:
        client.close()


def who_missed(text: str, sender: ChatClient, receivers: list[ChatClient]) -> list[ChatClient]:
    """Send ``text`` from ``sender``; the receivers that did not get it as ``{"from", "msg"}``."""
    sender.conn.send(text)
    deadline = time.monotonic() + TIMEOUT_S
    missed = []
    for client in receivers:
        client.conn.settimeout(max(deadline - time.monotonic(), LAST_LOOK_S))
        try:
            got = json.loads(client.conn.recv())
        except websocket.WebSocketTimeoutException:
            missed.append(client)
            continue
        finally:
            client.conn.settimeout(TIMEOUT_S)
        assert got == {"from": sender.id, "msg": text}, f"{client.worker} got {got}"
    return missed


def reaches_everyone(lab: Lab, text: str) -> tuple[int, list[tuple[str, int]]]:
    """Spread clients, send ``text`` from one: (workers covered, workers of the clients that missed it)."""
    clients = spread(lab)
    try:
        missed = who_missed(text, clients[0], clients[1:])
        return workers(clients), sorted({client.worker for client in missed})
    finally:
        close_all(clients)
