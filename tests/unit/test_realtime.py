"""Socket.IO in the app (labapp/realtime.py, labapp/sioslots.py) through Flask's test client:
Engine.IO's own 400s in the lab's envelope, and a new session's answer naming its worker's port."""

from __future__ import annotations

import json
import socket
from types import SimpleNamespace

import gevent
import pytest
from werkzeug.test import EnvironBuilder

from labapp import chat, realtime, sioslots

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


@pytest.mark.parametrize(
    ("state", "stopping", "announced"),
    [
        (sioslots.State.WAITING, False, None),  # its slot still a stopping worker's
        (sioslots.State.NONE, True, "127.0.0.1:8001"),  # a stopping worker's slot, freed
    ],
)
def test_a_worker_that_cannot_keep_a_session_refuses_a_new_polling_one(
    make_app, monkeypatch, state, stopping, announced
):
    client = make_app(fix_broker=False).test_client()
    monkeypatch.setattr(sioslots, "_state", state)
    monkeypatch.setattr(sioslots, "_stopping", stopping)
    monkeypatch.setattr(sioslots, "_announced", announced)
    assert sioslots.state() is (sioslots.State.STOPPING if stopping else state)
    refused = client.get(HANDSHAKE, headers={"X-Request-ID": "abc123"})
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert sioslots.SLOT_HEADER not in refused.headers
    assert refused.get_json() == {"code": 503, "msg": realtime.NO_SLOT_MSG, "request_id": "abc123"}
    # A session's own requests are Engine.IO's as before (its cookie routed them).
    assert client.get(f"{HANDSHAKE}&sid=nope").status_code == 400


@pytest.mark.parametrize("state", [sioslots.State.NONE, sioslots.State.GAVE_UP])
def test_a_worker_without_slots_makes_sessions_without_a_cookie(make_app, monkeypatch, state):
    # No slots at all (a single process, a worker class without gevent's servers) or none freed
    # within GIVE_UP_S: the worker serves as it can rather than refusing for ever.
    monkeypatch.setattr(sioslots, "_state", state)
    hello = make_app(fix_broker=False).test_client().get(HANDSHAKE)
    assert hello.status_code == 200 and hello.data.startswith(b"0{"), hello.data
    assert sioslots.SLOT_HEADER not in hello.headers


def test_a_worker_on_every_interface_is_reached_by_its_host_name():
    assert sioslots._reachable_host("0.0.0.0") == socket.gethostname()
    assert sioslots._reachable_host("127.0.0.1") == "127.0.0.1"


def test_lab_check_s_app_keeps_socketio_for_engineio_and_echoes_a_plain_websocket_there(make_app):
    # LAB_WS_ANY_PATH (lab check): a user's /socket.io location is probed with a plain websocket
    # (the echo) and with Engine.IO; each must reach its own, not the other.
    from werkzeug.test import EnvironBuilder

    from labapp.patches import wsupgrade

    app = make_app(ws_any_path=True, fix_broker=False)  # no Redis in a unit test
    handshake = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}
    environ = EnvironBuilder(path="/socket.io/", headers=handshake).get_environ()
    assert wsupgrade.is_websocket_route(app.url_map, environ) is True
    client = app.test_client()
    polling = client.get("/socket.io/?EIO=4&transport=polling")
    assert polling.status_code == 200 and polling.get_data(as_text=True).startswith("0{"), polling.data
    plain = client.get("/socket.io/", headers={"Sec-WebSocket-Version": "13"})
    assert plain.status_code == 400 and "is a websocket" in plain.get_json()["msg"]


class _RefusedSocket:
    """gevent-websocket's socket as far as a refused Engine.IO websocket uses it."""

    version, origin, protocol, closed = "13", None, None, False

    def __init__(self, path: str) -> None:
        self.path = path
        self.handler = SimpleNamespace()  # where the lab's patches keep their per-socket state
        self.sent: list[str] = []
        self.closed_with: tuple[int, str] | None = None

    def send(self, message: str) -> None:
        self.sent.append(message)

    def receive(self) -> None:
        return None

    def close(self, code: int, reason: str) -> None:
        self.closed_with = (code, reason)


@pytest.mark.parametrize(
    ("query", "sent_first"),
    [
        # The upgrade of a polling session that reached another worker: a packet that is not the
        # probe's pong first (python-engineio's client crashed on a close frame there).
        ("EIO=4&transport=websocket&sid=nope", ["1"]),
        # A websocket session of its own refused: the close frame alone.
        ("EIO=3&transport=websocket", []),
    ],
)
def test_a_refused_websocket_says_why_in_its_close_frame(make_app, query, sent_first):
    app = make_app(fix_broker=False)
    ws = _RefusedSocket(f"/socket.io/?{query}")
    environ = EnvironBuilder(path="/socket.io/", query_string=query, environ_base={"wsgi.websocket": ws})
    # As gevent-websocket runs it: the handshake is answered already, the app's body is the session.
    assert list(app.wsgi_app(environ.get_environ(), lambda *_: None)) == []
    assert ws.sent == sent_first
    assert ws.closed_with is not None and ws.closed_with[0] == 1008, ws.closed_with


@pytest.fixture
def broker_news(app, monkeypatch) -> list[tuple[str, dict, dict]]:
    """What ``realtime.start`` tells this worker's Socket.IO clients (``sio.server.emit``), with
    the chat relay's Redis calls answered in place (the relay itself is never started)."""
    told: list[tuple[str, dict, dict]] = []
    monkeypatch.setattr(chat.room_of(app), "_reserve_ids", lambda count: count)
    monkeypatch.setattr(
        app.extensions[realtime.EXTENSION].server, "emit", lambda *args, **kw: told.append((*args, kw))
    )
    realtime.start(app)
    return told


def test_a_broker_lost_within_a_moment_of_its_return_is_told(app, broker_news):
    room = chat.room_of(app)
    room._subscribed()
    room._lost(ConnectionError("redis-server killed again"))  # a watcher that looked every 0.5 s missed this
    gevent.sleep(0.05)
    assert broker_news == [
        ("broker", {"state": "ok", "msg": ""}, {"ignore_queue": True}),
        ("broker", {"state": "unreachable", "msg": chat.BROKER_DOWN_REASON}, {"ignore_queue": True}),
    ]


def test_a_failed_telling_does_not_end_the_next(app, broker_news, monkeypatch):
    room = chat.room_of(app)
    server = app.extensions[realtime.EXTENSION].server
    emit = server.emit

    def fails_once(*args, **kw):
        monkeypatch.setattr(server, "emit", emit)
        raise RuntimeError("a client's socket went away mid-emit")

    monkeypatch.setattr(server, "emit", fails_once)
    room._subscribed()
    gevent.sleep(0.05)
    room._lost(ConnectionError("redis-server killed"))
    gevent.sleep(0.05)
    assert [news[1]["state"] for news in broker_news] == ["unreachable"]
