"""WebSockets over wss through nginx, with a real client verifying the lab's CA."""

from __future__ import annotations

import json
import os
from contextlib import closing

import pytest
import websocket

from labctl import hints, probe
from support.lab import assert_json_error, ws_json


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 70_000, 1024 * 1024])
def test_echo_text(lab, size):
    message = ("proxylab-" * (size // 9 + 1))[:size]
    with closing(lab.ws("/ws/echo")) as conn:
        conn.send(message)
        assert conn.recv() == message


@pytest.mark.parametrize("size", [1, 65536, 200_000])
def test_echo_binary(lab, size):
    payload = os.urandom(size)
    with closing(lab.ws("/ws/echo")) as conn:
        conn.send_binary(payload)
        opcode, data = conn.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY
        assert data == payload


def test_many_messages_on_one_socket_keep_their_order(lab):
    with closing(lab.ws("/ws/echo")) as conn:
        for i in range(200):
            conn.send(f"m{i}")
        assert [conn.recv() for _ in range(200)] == [f"m{i}" for i in range(200)]


def test_chat_relays_to_every_other_client(lab):
    clients = [lab.ws("/ws/chat") for _ in range(3)]
    try:
        for conn in clients:  # the server registers a client on connect; make sure all are in
            conn.ping()
        for index, sender in enumerate(clients):
            sender.send(f"hello from {index}")
            others = [c for c in clients if c is not sender]
            received = [ws_json(c) for c in others]
            assert {r["msg"] for r in received} == {f"hello from {index}"}
            assert len({r["from"] for r in received}) == 1, "all receivers must see the same sender id"
        sender_ids = set()
        clients[0].send("who am I")
        sender_ids |= {ws_json(c)["from"] for c in clients[1:]}
        clients[1].send("and me")
        sender_ids |= {ws_json(c)["from"] for c in (clients[0], clients[2])}
        assert len(sender_ids) == 2, "two different senders must have two different ids"
        clients[0].settimeout(0.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            clients[0].recv()  # a sender never gets its own message back
    finally:
        for conn in clients:
            conn.close()


def test_info_reports_wss_and_the_public_host(lab):
    conn = lab.ws("/ws/info")
    info = json.loads(conn.recv())
    assert info["scheme"] == "wss", (
        f"/ws/info says {info['scheme']!r}: {hints.scenario('location-drops-headers')}"
    )
    assert info["host"] == lab.host, hints.scenario("host-drops-port")
    assert info["remote_addr"] and info["request_id"]
    opcode, frame = conn.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1000, "the server must close normally (1000)"
    conn.close()


def test_handshake_through_nginx_is_101(lab):
    conn = lab.ws("/ws/echo")
    try:
        assert conn.getstatus() == 101, hints.scenario("ws-no-upgrade")
        assert conn.getheaders()["upgrade"].lower() == "websocket"
    finally:
        conn.close()


@pytest.mark.parametrize("path", ["/ws/echo", "/ws/chat", "/ws/info"])
def test_plain_get_to_a_websocket_route_is_a_json_400(lab, http, path):
    body = assert_json_error(http.get(lab.url + path), 400)
    assert "websocket" in body["msg"]


def test_client_close_with_a_reason_gets_a_clean_close_back(lab):
    # gevent-websocket 0.10.1 echoes str(reason) where the status belongs; labapp.patches.wsclose repairs it.
    conn = lab.ws("/ws/echo")
    conn.send_close(1000, b"bye now")
    opcode, frame = conn.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE
    assert int.from_bytes(frame.data[:2], "big") == 1000
    conn.shutdown()


@pytest.mark.parametrize(("path", "status"), [("/nope", 404), ("/ws/nope", 404), ("/debug/request", 400)])
def test_a_handshake_for_anything_but_a_websocket_route_gets_the_app_s_answer(lab, path, status):
    # Stock gevent-websocket answers 101 to any path, then closes: a typo "connects, then drops".
    handshake, conn = probe.websocket(lab.endpoint, path)
    if conn is not None:
        conn.close()
    assert handshake.status == status, (
        f"a handshake for {path} got {handshake.status}: only websocket routes may be upgraded "
        "(labapp/patches/wsupgrade.py, LAB_FIX_WS_UPGRADE)"
    )
    assert handshake.headers.get("content-type", "").startswith("application/json"), handshake.headers
