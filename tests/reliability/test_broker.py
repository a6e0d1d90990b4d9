"""The chat's broker (the native stack's redis-server) killed, stalled, and fed what it must not
get: chat clients are told at once (close 1013 and a reason), everything else keeps serving,
chat recovers by itself once Redis is back, and `make native-up` brings back only what is gone."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
import socketio
import websocket

import labsettings
from labapp import chat as app_chat
from labctl import broker, native, runstate, sioclient
from support import chat
from support.lab import Lab

from . import report, stackctl
from .load import background_load
from .wsclient import assert_echoes, close_code, close_frame, masked_frame_header, open_echo

SETTLE_S = 15


def broker_state(lab: Lab, http: requests.Session) -> str:
    body = http.get(lab.url + "/healthz", timeout=5).json()
    assert body["status"] == "ok", f"/healthz must stay ok whatever the broker does: {body}"
    return body["broker"]


def wait_broker(lab: Lab, http: requests.Session, state: str) -> None:
    """Until several answers in a row (from whichever workers nginx picks) report ``state``."""
    stackctl.wait_for(
        lambda: all(broker_state(lab, http) == state for _ in range(6)),
        SETTLE_S,
        f'/healthz to say "broker": "{state}"',
        interval=0.1,
    )


@pytest.fixture
def broker_restored(lab: Lab, http: requests.Session) -> Iterator[None]:
    """Whatever the test did to redis-server, it runs and is subscribed to afterwards."""
    yield
    if broker.running() is None:
        broker.start()
    wait_broker(lab, http, "ok")


def test_redis_killed_chat_is_told_the_rest_serves_and_native_up_restarts_only_redis(
    lab: Lab, http: requests.Session, upload_dir: Path, broker_restored: None
) -> None:
    clients = chat.spread(lab)
    master, nginx_master = stackctl.gunicorn_master(), stackctl.nginx_master()
    app_workers = stackctl.children(master)
    try:
        with background_load(lab, 30) as load:
            pid = broker.running()
            assert pid is not None, "the native stack has no redis-server running"
            os.kill(pid, signal.SIGKILL)
            closes = {client.worker: close_frame(client.conn) for client in clients}
            newcomer = lab.ws("/ws/chat")
            refused = close_frame(newcomer)
            wait_broker(lab, http, "unreachable")
            stored = http.put(lab.url + "/upload/broker-down.bin", data=b"x" * 4096, timeout=10)
            redirect = http.get(lab.url + "/redirect/external", allow_redirects=False, timeout=10)
            open_echo(lab, "while the broker is down").close()
            time.sleep(2)  # the load goes on with the broker down: the rest must keep serving
    finally:
        chat.close_all(clients)
    report.note("redis-server SIGKILLed under load", load.recording.summary())
    assert set(closes.values()) == {chat.BROKER_DOWN}, (
        f"chat clients on {chat.workers(clients)} workers should each get close {chat.BROKER_DOWN}: {closes}"
    )
    assert refused == chat.BROKER_DOWN, f"a new chat client while the broker is down got {refused}"
    assert stored.status_code == 201 and stored.json()["size"] == 4096, stored.text
    http.delete(lab.url + "/files/broker-down.bin")
    assert redirect.status_code == 302, redirect.text
    assert load.recording.failed == 0, f"GETs failed with the broker down: {load.recording.summary()}"

    with contextlib.redirect_stdout(io.StringIO()) as said:
        native.up()
    assert "started redis-server" in said.getvalue(), said.getvalue()
    assert (stackctl.gunicorn_master(), stackctl.children(master), stackctl.nginx_master()) == (
        master,
        app_workers,
        nginx_master,
    ), "`make native-up` with only redis-server gone restarted the app or nginx"
    # Each worker's relay resubscribes after its own backoff: until then it refuses with 1013, and
    # a client tries again, as the lab page does.
    tries: list[str] = []

    def chat_works() -> bool:
        try:
            covered, missed = chat.reaches_everyone(lab, "after the broker came back")
        except chat.Refused as refused:
            tries.append(str(refused))
            return False
        tries.append(f"{covered} workers, missed on {missed}")
        return covered >= 2 and missed == []

    try:
        stackctl.wait_for(chat_works, SETTLE_S, "chat to work on every worker again", interval=0.5)
    except AssertionError as error:
        raise AssertionError(f"{error}; the last tries: {tries[-3:]}") from None


def _told(client: sioclient.SioClient, state: str) -> dict:
    """The client's next ``broker`` event saying ``state`` (a worker that saw the broker come back
    from an earlier test a moment late may say "ok" first)."""
    end = time.monotonic() + SETTLE_S
    while (news := client.broker.get(timeout=max(end - time.monotonic(), 0.1)))["state"] != state:
        pass
    return news


def _chat_reaches_everyone(clients: list[sioclient.SioClient]) -> bool:
    """One chat from the first client: whether every other one got it (within a few seconds)."""
    text = f"back {time.monotonic()}"
    if clients[0].call("chat", {"msg": text}) != {"ok": True}:
        return False
    got = []
    for client in clients[1:]:
        with contextlib.suppress(queue.Empty):
            while client.chat.get(timeout=3)["msg"] != text:
                pass
            got.append(client)
    return len(got) == len(clients) - 1


def test_redis_killed_socketio_clients_are_told_and_recover_by_themselves(
    lab: Lab, http: requests.Session, broker_restored: None
) -> None:
    # In batches: one after another, a loaded machine's first worker can accept them all.
    clients = sioclient.spread(lab.endpoint, "websocket", over=2, at_least=sioclient.MAX_CLIENTS // 5)
    try:
        assert len(sioclient.workers(clients)) >= 2, f"all Socket.IO clients on {sioclient.workers(clients)}"
        pid = broker.running()
        assert pid is not None, "the native stack has no redis-server running"
        os.kill(pid, signal.SIGKILL)
        told = [_told(client, "unreachable") for client in clients]
        assert all(t["msg"] == app_chat.BROKER_DOWN_REASON for t in told), told
        assert clients[0].call("chat", {"msg": "anyone?"}) == {
            "ok": False,
            "error": app_chat.BROKER_DOWN_REASON,
        }
        with pytest.raises(socketio.exceptions.ConnectionError, match="broker unreachable"):
            sioclient.connect(lab.endpoint, "websocket")
        # Socket.IO itself, and the rest of the app, keep serving.
        assert all(client.call("echo", "still here") == "still here" for client in clients)
        assert http.get(lab.url + "/debug/request", timeout=5).status_code == 200
        broker.start()
        wait_broker(lab, http, "ok")
        assert all(_told(client, "ok") for client in clients)
        # python-socketio's Redis manager reconnects on its own backoff (1 s, doubling).
        stackctl.wait_for(lambda: _chat_reaches_everyone(clients), 30, "a chat across workers again")
    finally:
        sioclient.close_all(clients)


def test_a_stalled_redis_stalls_chat_only(lab: Lab, http: requests.Session, broker_restored: None) -> None:
    sender = chat.join(lab)
    echoes = [open_echo(lab, f"before the stall {n}") for n in range(6)]
    pid = broker.running()
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # alive, accepting connections, answering nothing: a hung Redis
    try:
        sender.conn.send("into a stalled broker")
        for n, conn in enumerate(echoes):
            assert_echoes(conn, f"during the stall {n}", "an echo waited behind the stalled broker")
        assert http.get(lab.url + "/debug/request", timeout=5).status_code == 200
        # Those answers came while the chat sender's publish was still waiting on Redis.
        assert not select.select([sender.conn.sock], [], [], 0)[0], "the chat sender was answered first"
        told = close_frame(sender.conn, timeout=SETTLE_S)
    finally:
        os.kill(pid, signal.SIGCONT)
        sender.close()
        for conn in echoes:
            conn.close()
    assert told == chat.BROKER_DOWN, (
        f"a chat message into a stalled broker should end in {chat.BROKER_DOWN}: {told}"
    )


def test_a_chat_message_over_the_cap_is_refused_and_never_published(lab: Lab, http: requests.Session) -> None:
    limit = labsettings.WS_MAX_MESSAGE.value(runstate.read())
    tap = redis.Redis(unix_socket_path=str(broker.SOCKET), socket_timeout=5, decode_responses=True)
    pubsub = tap.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(app_chat.CHANNEL)
    listener, sender, polite = chat.join(lab), chat.join(lab), chat.join(lab)
    try:
        sender.conn.sock.sendall(masked_frame_header(websocket.ABNF.OPCODE_TEXT, limit + 1) + b"z" * 1024)
        refused = close_code(sender.conn)
        published = []
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            if message := pubsub.get_message(timeout=0.1):
                published.append(message["data"])
        # The tap works: a message under the cap is on the channel, and the listener gets it first.
        polite.conn.send("under the cap")
        seen = None
        while seen is None:
            seen = pubsub.get_message(timeout=5)
        first = json.loads(listener.conn.recv())
    finally:
        pubsub.close()
        tap.close()
        chat.close_all([listener, sender, polite])
    report.tally("websocket frames refused", refused)
    assert refused == 1009, f"a chat frame over LAB_WS_MAX_MESSAGE should be refused with 1009, got {refused}"
    assert published == [], f"the refused frame reached the broker: {published}"
    assert json.loads(seen["data"]) == {"from": polite.id, "msg": "under the cap"}, seen
    assert first == {"from": polite.id, "msg": "under the cap"}, f"the listener got {first} first"


def test_a_malformed_broker_url_is_a_one_line_start_up_error(tmp_path: Path) -> None:
    env = {
        **native.app_env(),
        "LAB_BROKER_URL": "redis//typo:6379",
        "GUNICORN_BIND": "127.0.0.1:0",
        "GUNICORN_PIDFILE": str(tmp_path / "gunicorn.pid"),
    }
    result = subprocess.run(
        native.gunicorn_command(), env=env, capture_output=True, text=True, timeout=60, check=False
    )
    said = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0, f"gunicorn started with a malformed LAB_BROKER_URL: {said}"
    assert said == ["lab: bad setting LAB_BROKER_URL: 'redis//typo:6379': want redis://, rediss://, unix://"]
