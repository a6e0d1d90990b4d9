"""`docker compose stop redis`: chat's clients are told (close 1013), the app stays healthy for
Docker and nginx, everything else serves; `docker compose start redis` brings chat back on every
worker with no restart of the app."""

from __future__ import annotations

import time

import websocket

from labapp import chat as app_chat
from labctl import compose
from support import chat

BROKER_DOWN = (app_chat.CLOSE_TRY_AGAIN_LATER, app_chat.BROKER_DOWN_REASON)
SETTLE_S = 30


def close_frame(conn: websocket.WebSocket, timeout: float = SETTLE_S) -> tuple[int, str]:
    conn.settimeout(timeout)
    opcode, frame = conn.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE, f"expected a close frame, got opcode {opcode}"
    return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()


def wait(predicate, what: str, timeout: float = SETTLE_S) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def test_stopping_redis_stops_chat_only_and_starting_it_brings_chat_back(stack, lab, http):
    app_started = stack.inspect("app")["State"]["StartedAt"]
    clients = chat.spread(lab)
    try:
        stack.compose("stop", "redis")
        closes = {client.worker: close_frame(client.conn) for client in clients}
        refused = close_frame(lab.ws("/ws/chat"))
        health = http.get(lab.url + "/healthz", timeout=5).json()
        echoed = lab.ws("/ws/echo")
        echoed.send("broker down")
        echo = echoed.recv()
        echoed.close()
        # Docker's own probe (the image's HEALTHCHECK) reads "status" only: it passes.
        probe = compose.docker("exec", stack.container("app"), "python3", "/app/healthcheck.py", check=False)
    finally:
        chat.close_all(clients)
        stack.compose("start", "redis")
    assert set(closes.values()) == {BROKER_DOWN}, f"chat clients on {len(closes)} workers got {closes}"
    assert refused == BROKER_DOWN, f"a new chat client with redis stopped got {refused}"
    assert health == {"status": "ok", "broker": "unreachable"}, health
    assert echo == "broker down"
    assert probe.returncode == 0, f"with redis stopped the app's healthcheck fails: {probe.stderr}"

    def chat_works() -> bool:
        try:
            covered, missed = chat.reaches_everyone(lab, "after docker compose start redis")
        except chat.Refused:
            return False
        return covered >= 2 and missed == []

    wait(chat_works, "chat to work on every worker again after `docker compose start redis`")
    assert stack.inspect("app")["State"]["StartedAt"] == app_started, "the app container was restarted"
