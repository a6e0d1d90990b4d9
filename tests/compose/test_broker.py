"""`docker compose stop redis`: chat's clients are told (close 1013), the app stays healthy for
Docker and nginx, everything else serves; `docker compose start redis` brings chat back on every
worker with no restart of the app."""

from __future__ import annotations

from labctl import compose
from reliability.stackctl import wait_for
from reliability.wsclient import close_frame
from support import chat

SETTLE_S = 30


def test_stopping_redis_stops_chat_only_and_starting_it_brings_chat_back(stack, lab, http):
    app_started = stack.inspect("app")["State"]["StartedAt"]
    clients = chat.spread(lab)
    try:
        stack.compose("stop", "redis")
        closes = {client.worker: close_frame(client.conn, SETTLE_S) for client in clients}
        refused = close_frame(lab.ws("/ws/chat"), SETTLE_S)
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
    assert set(closes.values()) == {chat.BROKER_DOWN}, f"chat clients on {len(closes)} workers got {closes}"
    assert refused == chat.BROKER_DOWN, f"a new chat client with redis stopped got {refused}"
    assert health == {"status": "ok", "broker": "unreachable"}, health
    assert echo == "broker down"
    assert probe.returncode == 0, f"with redis stopped the app's healthcheck fails: {probe.stderr}"

    def chat_works() -> bool:
        try:
            covered, missed = chat.reaches_everyone(lab, "after docker compose start redis")
        except chat.Refused:
            return False
        return covered >= 2 and missed == []

    wait_for(
        chat_works, SETTLE_S, "chat to work on every worker again after `docker compose start redis`", 0.3
    )
    assert stack.inspect("app")["State"]["StartedAt"] == app_started, "the app container was restarted"
