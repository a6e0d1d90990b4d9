"""Socket.IO at /socket.io/ (labapp/realtime.py) through nginx, with the python-socketio client:
every transport on every worker and replica, acks, a broadcast across workers, what the app saw,
origins, and the answers to bad input."""

from __future__ import annotations

import uuid

import pytest
import socketio
import websocket

from labctl import hints
from labctl import sioclient as sio
from support.lab import assert_json_error

# Websocket clients (they need no routing: one connection holds the session) that find the
# workers nginx hashes sessions to; each transport must then reach every one of them.
DISCOVERY_CLIENTS = 16


@pytest.fixture(scope="module")
def every_worker(lab) -> set[tuple[str, int]]:
    # In batches: one after another, a loaded machine's first worker can accept them all.
    batches = [sio.connect_batch(lab.endpoint, "websocket") for _ in range(DISCOVERY_CLIENTS // sio.BATCH)]
    clients = [client for batch in batches for client in batch]
    sio.close_all(clients)
    found = sio.workers(clients)
    assert len(found) >= 2, (
        f"{DISCOVERY_CLIENTS} Socket.IO clients all sat on {found}: the baseline runs at least 2 "
        "workers, each with its own /socket.io/ port (nginx's lab_socketio upstream, docs/SOCKETIO.md)"
    )
    return found


@pytest.mark.parametrize("transport", list(sio.TRANSPORTS))
def test_every_transport_reaches_every_worker(lab, every_worker, transport):
    try:
        clients = sio.spread(lab.endpoint, transport, every_worker)
    except socketio.exceptions.ConnectionError as error:
        pytest.fail(
            f"a {transport} client could not connect ({error}): its polls reached a worker that does "
            "not hold its session? " + hints.scenario("socketio-no-sticky"),
            pytrace=False,
        )
    try:
        missing = every_worker - sio.workers(clients)
        assert not missing, f"{len(clients)} {transport} clients never sat on {missing}"
        for client in clients:
            # Several round trips each: every poll of the session must reach its worker.
            for n in range(3):
                payload = {"n": n, "text": "é" * n, "list": [1, 2.5, None]}
                assert client.call("echo", payload) == payload, f"{client.worker}: echo's ack"
            assert client.current_transport() == sio.TRANSPORTS[transport][-1]
    finally:
        sio.close_all(clients)


def test_info_shows_what_the_client_used(lab):
    client = sio.connect(lab.endpoint)
    try:
        info = client.info()
    finally:
        client.close()
    assert info["scheme"] == "https", (
        f"info: {info}: the app saw {info['scheme']}: X-Forwarded-Proto lost on /socket.io/ "
        "(a location that sets its own proxy_set_header?)"
    )
    assert info["host"] == lab.host, f"info: {info}: the Host lost its port? (proxy_set_header Host)"
    assert info["remote_addr"], info
    assert set(info["served_by"]) - {"node"} == {"host", "pid"}, info  # the node: on Swarm


def test_chat_reaches_every_other_client_on_every_worker(lab, every_worker):
    clients = sio.spread(lab.endpoint, "websocket", every_worker)
    clients.append(sio.connect(lab.endpoint, "polling"))
    try:
        sender, receivers = clients[0], clients[1:]
        text = f"to every worker {uuid.uuid4().hex[:8]}"
        relayed = sio.chat_relayed(sender, receivers, text)
        missed = [client.worker for client, got in relayed if got is None]
        assert all(got == {"from": sender.sid, "msg": text} for _, got in relayed if got), [
            (client.worker, got) for client, got in relayed
        ]
        assert not missed, (
            f"chat from {sender.worker} missed clients on {sorted(set(missed))}: no message queue "
            "between the workers? " + hints.scenario("socketio-no-message-queue")
        )
        assert sender.chat.empty(), "the sender got its own message back"
    finally:
        sio.close_all(clients)


def test_origin_of_the_public_url_is_accepted_a_foreign_one_refused(lab):
    # websocket-client sends the public URL's Origin on every upgrade of this suite; polling
    # sends none unless asked, as here.
    client = sio.connect(lab.endpoint, "polling", headers={"Origin": lab.origin})
    client.close()
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(lab.endpoint, "polling", headers={"Origin": "https://evil.example"})


def test_foreign_origin_websocket_closed_with_the_reason(lab):
    # gevent-websocket answers 101 before the app sees the Origin: the refusal is a close frame.
    conn = lab.ws("/socket.io/?EIO=4&transport=websocket", origin="https://evil.example")
    try:
        opcode, data = conn.recv_data(control_frame=True)
    finally:
        conn.close()
    assert opcode == websocket.ABNF.OPCODE_CLOSE, f"a foreign Origin got {opcode} {data!r}, not a close"
    assert (int.from_bytes(data[:2], "big"), data[2:].decode()) == (1008, "Not an accepted origin.")


def test_foreign_origin_gets_a_json_400(lab, http):
    response = http.get(
        lab.url + "/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"}
    )
    body = assert_json_error(response, 400)
    assert body["msg"] == "Not an accepted origin.", body


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("EIO=4&transport=polling&sid=no-such-session", "Invalid session no-such-session"),
        ("EIO=3&transport=polling", "unsupported version of the Socket.IO or Engine.IO protocols"),
        ("EIO=4&transport=carrier-pigeon", "Invalid transport"),
    ],
)
def test_malformed_engineio_request_gets_a_clear_400(lab, http, query, says):
    body = assert_json_error(http.get(f"{lab.url}/socket.io/?{query}"), 400)
    assert says in body["msg"], body


def test_message_over_the_cap_disconnects_that_client_only(lab, http):
    cap = http.get(lab.url + "/debug/settings").json()["socketio_max_message_bytes"]
    big, bystander = sio.connect(lab.endpoint, "websocket"), sio.connect(lab.endpoint, "websocket")
    try:
        big.emit("echo", "x" * (cap + 1))
        reason = big.disconnects.get(timeout=sio.TIMEOUT_S)
        assert reason, "disconnected without a reason"
        assert bystander.call("echo", "still here") == "still here"
        assert bystander.connected
    finally:
        sio.close_all([big, bystander])
