"""Socket.IO in the app (labapp/realtime.py, labapp/sioslots.py) through Flask's test client:
Engine.IO's own 400s in the lab's envelope, and a new session's answer naming its worker's port."""

from __future__ import annotations

import json
import socket

import pytest

from labapp import sioslots

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("EIO=4&transport=polling&sid=nope", "Invalid session nope"),
        (
            "EIO=3&transport=polling",
            "The client is using an unsupported version of the Socket.IO or Engine.IO protocols",
        ),
        ("EIO=4&transport=pigeon", "Invalid transport"),
    ],
)
def test_engineio_400s_come_in_the_envelope(client, query, says):
    response = client.get(f"/socket.io/?{query}", headers={"X-Request-ID": "abc123"})
    assert response.status_code == 400
    assert response.content_type == "application/json"
    assert response.get_json() == {"code": 400, "msg": says, "request_id": "abc123"}


def test_without_json_errors_engineio_answers_its_own_way(make_app):
    response = (
        make_app(fix_json_errors=False).test_client().get("/socket.io/?EIO=4&transport=polling&sid=nope")
    )
    assert response.status_code == 400
    assert (response.content_type, response.data) == ("text/plain", b'"Invalid session nope"')


def test_a_new_session_names_its_workers_slot_and_its_requests_do_not(make_app, monkeypatch):
    # No Redis manager: its listener needs gevent's patching, which a worker has and pytest has not.
    client = make_app(fix_broker=False).test_client()
    monkeypatch.setattr(sioslots, "_announced", "127.0.0.1:8001")
    hello = client.get(HANDSHAKE)
    assert hello.status_code == 200 and hello.data.startswith(b"0{"), hello.data
    assert hello.headers[sioslots.SLOT_HEADER] == "127.0.0.1:8001"
    assert json.loads(hello.data[1:])["sid"]
    # A request of a session (sid=...) is routed by the cookie already: no header.
    assert sioslots.SLOT_HEADER not in client.get(f"{HANDSHAKE}&sid=nope").headers


def test_no_slot_no_header(make_app):
    assert sioslots.SLOT_HEADER not in make_app(fix_broker=False).test_client().get(HANDSHAKE).headers


def test_a_worker_on_every_interface_is_reached_by_its_host_name():
    assert sioslots._reachable_host("0.0.0.0") == socket.gethostname()
    assert sioslots._reachable_host("127.0.0.1") == "127.0.0.1"
