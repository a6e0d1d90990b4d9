"""Socket.IO at /socket.io/: Flask-SocketIO on the same gevent-websocket worker as the raw chat.

Events of the default namespace (DESIGN.md, "The app layer: Socket.IO"):

- ``echo``: the ack returns the data as sent.
- ``info``: the ack returns what the app saw on the handshake, after ProxyFix: scheme, host,
  remote_addr, and which process holds the session (``served_by``).
- ``chat``: ``{"msg"}`` goes to every other client as ``chat`` ``{"from", "msg"}``, across every
  worker and replica through the Redis manager on the chat's broker (LAB_BROKER_URL; its
  ``unix://`` URL natively: python-socketio's RedisManager takes it, Flask-SocketIO's own
  ``message_queue`` would pick kombu for it, so the manager is built here). LAB_FIX_BROKER=0: no
  manager, each worker broadcasts to its own clients only (socketio-no-message-queue).

Limits: origins are python-engineio's default, the request's own origin as the client used it
(scheme, host and port, after ProxyFix), never ``*``; a packet or poll body over
LAB_SOCKETIO_MAX_MESSAGE disconnects that client (a websocket with close 1009 and a reason).
Broker down (the chat relay's state, labapp.chat): connected clients get a ``broker`` event, new
ones are refused with the reason, a chat message gets it in its ack; the Redis manager reconnects
by itself. Engine.IO's own 400s (``"Invalid session"``, the protocol version) come back in the
lab's JSON envelope, their message kept. Which process a session's requests reach is nginx's
job: labapp.sioslots and docs/SOCKETIO.md; a worker that could not keep a new polling session
reachable (waiting for its slot, or stopping) answers its handshake 503 with Retry-After.
"""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Iterable
from typing import Any

import gevent
import gevent.queue
import socketio
from flask import Flask, request
from flask_socketio import SocketIO, emit
from werkzeug.routing import Rule

import labsettings as lab
from labsettings import AppSettings

from . import chat, envelope, sioslots
from .middleware import REQUEST_ID_KEY, Environ, StartResponse, WSGIApp
from .patches.wsclose import Close
from .views.debug import served_by
from .views.websockets import BoundedReceiver, going_away_on_shutdown

log = logging.getLogger("labapp.realtime")

EXTENSION = "lab.socketio"  # the SocketIO object in app.extensions
CHANNEL = "lab:socketio"  # the Redis manager's pub/sub channel (the raw chat's is lab:chat)


def _manager(settings: AppSettings) -> socketio.RedisManager | None:
    if not settings[lab.FIX_BROKER]:
        return None
    # Connect timeout only: a socket timeout would also end the manager's idle subscription.
    return socketio.RedisManager(
        settings[lab.BROKER_URL],
        channel=CHANNEL,
        redis_options={"socket_connect_timeout": chat.REDIS_TIMEOUT_S},
    )


ENGINEIO_CLOSE_PACKET = "1"  # Engine.IO's "close" packet type, no payload


class BoundedSocket:
    """gevent-websocket's socket as Engine.IO's gevent driver uses it, with the lab's bounded
    receive: gevent-websocket would read any announced length into memory before Engine.IO's own
    size check; over the cap the client gets close 1009 and the reason (views.websockets). Its
    sends are the lab's writer's (patches/wssend.py): a client that does not take a packet within
    LAB_WS_SEND_TIMEOUT_S gets close 1008 and the reason, and its session ends."""

    def __init__(self, ws: Any, max_bytes: int) -> None:
        self.version, self.path, self.origin, self.protocol = ws.version, ws.path, ws.origin, ws.protocol
        self.websocket = ws  # the socket itself: patches/eiows.py sends frames to it directly
        self.receive = BoundedReceiver(ws, max_bytes).receive
        self.send = ws.send
        self.close = ws.close


def _json_errors(engineio_app: WSGIApp) -> WSGIApp:
    """Engine.IO's 400s are text/plain holding a JSON string: the lab's envelope instead."""

    def wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        seen: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"], seen["headers"], seen["exc_info"] = status, headers, exc_info
            return lambda _data: None  # never used by Engine.IO: it returns its body

        body = b"".join(engineio_app(environ, start))
        if "status" not in seen:  # a websocket session, over: gevent-websocket answered the handshake
            return [body]
        status, headers = seen["status"], seen["headers"]
        if status.startswith("400"):
            try:
                msg = json.loads(body)
            except ValueError:
                msg = body.decode("utf-8", "replace")
            ws = environ.get("wsgi.websocket")
            if ws is not None:
                # Refused after gevent-websocket's 101 (a foreign Origin): a close frame that says
                # why, rather than the 400's body as a websocket message ("Invalid empty packet").
                if "sid" in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")):
                    # The upgrade of a polling session, refused (it reached another worker than
                    # the session's): first an Engine.IO packet that is not the probe's pong,
                    # which clients take as "no upgrade, stay on polling". python-engineio's
                    # client decodes a close frame there as a packet (TypeError) and its
                    # reconnection ends: seen during a native `make deploy`.
                    ws.send(ENGINEIO_CLOSE_PACKET)
                ws.close(Close.POLICY_VIOLATION, msg)
                return []
            kept = [h for h in headers if h[0].lower() not in ("content-type", "content-length")]
            request_id = environ.get(REQUEST_ID_KEY, "")
            return envelope.answer(start_response, status, str(msg), request_id, kept, seen["exc_info"])
        start_response(status, headers, seen["exc_info"])
        return [body]

    return wsgi


# A new polling session on a worker that cannot keep it reachable (sioslots.refuses_new_sessions):
# 503 in the lab's envelope. A handshake is idempotent: nginx tries it on the next server
# (snippets/socketio.conf), a client on its own once Retry-After has passed (python-socketio and
# socket.io-client reconnect with backoff). A slot is free again within a moment of a reload.
NO_SLOT_RETRY_AFTER_S = 1
NO_SLOT_MSG = (
    "this worker cannot keep a new Socket.IO session (it is starting or stopping): try again, "
    "another worker will take it"
)


def _no_slot(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    retry = [("Retry-After", str(NO_SLOT_RETRY_AFTER_S))]
    request_id = environ.get(REQUEST_ID_KEY, "")
    return envelope.answer(start_response, "503 Service Unavailable", NO_SLOT_MSG, request_id, retry)


def _with_header(start_response: StartResponse, name: str, value: str) -> StartResponse:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [*headers, (name, value)], exc_info)

    return start


def _speaks_engineio(environ: Environ) -> bool:
    return "EIO" in urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))


def install(app: Flask, settings: AppSettings) -> SocketIO:
    """Socket.IO on ``app`` at LAB_SOCKETIO_PATH (/socket.io/); before middleware.install, so
    that ProxyFix and the request log wrap it too."""
    flask_wsgi = app.wsgi_app
    path = settings[lab.SOCKETIO_PATH]
    sio = SocketIO(
        app,
        async_mode="gevent",
        path=path.strip("/"),
        client_manager=_manager(settings),
        ping_interval=settings[lab.SOCKETIO_PING_INTERVAL],
        ping_timeout=settings[lab.SOCKETIO_PING_TIMEOUT],
        max_http_buffer_size=settings[lab.SOCKETIO_MAX_MESSAGE],
        logger=False,
        engineio_logger=False,
    )
    # Engine.IO's request handler itself, with the one key Flask-SocketIO's events read, not
    # Flask-SocketIO's middleware and Engine.IO's WSGIApp under it: those copy the environ and
    # define a class (eventlet's socket holder) per request, which a websocket session keeps for
    # life, and each is an object whose call recurses in C, which every parked greenlet's copied
    # stack pays (middleware.install). The other paths never reach it (dispatch, below).
    eio = sio.server.eio

    def sio_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        environ["flask.app"] = app
        return eio.handle_request(environ, start_response)

    sio_wsgi: WSGIApp = sio_app
    if settings[lab.FIX_JSON_ERRORS]:
        sio_wsgi = _json_errors(sio_wsgi)
    max_bytes = settings[lab.SOCKETIO_MAX_MESSAGE]
    # lab check's app (LAB_WS_ANY_PATH) echoes a plain websocket on any path, /socket.io/ included:
    # there only what speaks Engine.IO (its EIO query) is Socket.IO's.
    any_path = settings[lab.WS_ANY_PATH]

    def dispatch(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith(path) or (any_path and not _speaks_engineio(environ)):
            return flask_wsgi(environ, start_response)
        ws = environ.get("wsgi.websocket")
        if ws is None:
            if "sid" not in urllib.parse.parse_qs(environ.get("QUERY_STRING", "")):  # a new session
                if sioslots.refuses_new_sessions():
                    return _no_slot(environ, start_response)
                slot = sioslots.announced()
                if slot:
                    return sio_wsgi(environ, _with_header(start_response, sioslots.SLOT_HEADER, slot))
            return sio_wsgi(environ, start_response)
        # A websocket: a session of its own (one connection, nothing to route) or the upgrade of
        # a polling one (its cookie routed it); on a stopping worker closed with 1001 at once.
        environ["wsgi.websocket"] = BoundedSocket(ws, max_bytes)
        with going_away_on_shutdown(ws):  # closed with 1001 on the worker's graceful stop
            return sio_wsgi(environ, start_response)

    app.wsgi_app = dispatch  # type: ignore[method-assign]
    # gevent-websocket upgrades only the URL map's websocket routes (patches/wsupgrade.py): this is
    # one (with LAB_WS_ANY_PATH every path is one already, and a plain request there is Flask's).
    if not any_path:
        app.url_map.add(Rule(path, endpoint="socketio", websocket=True))
    _register_events(sio, app)
    app.extensions[EXTENSION] = sio
    return sio


def _register_events(sio: SocketIO, app: Flask) -> None:
    room = chat.room_of(app)

    @sio.on("connect")
    def connect(_auth: Any = None) -> None:
        if not room.reachable():
            raise socketio.exceptions.ConnectionRefusedError(chat.BROKER_DOWN_REASON)

    @sio.on("echo")
    def echo(data: Any) -> Any:
        return data

    @sio.on("info")
    def info(_data: Any = None) -> dict[str, object]:
        return {
            "scheme": request.scheme,
            "host": request.host,
            "remote_addr": request.remote_addr,
            "served_by": served_by(),
        }

    @sio.on("chat")
    def chat_message(data: Any) -> dict[str, object]:
        if not isinstance(data, dict) or not isinstance(data.get("msg"), str):
            return {"ok": False, "error": 'want {"msg": "<text>"}'}
        if room.state == chat.BROKER_UNREACHABLE:
            return {"ok": False, "error": chat.BROKER_DOWN_REASON}
        emit("chat", {"from": request.sid, "msg": data["msg"]}, broadcast=True, include_self=False)  # type: ignore[attr-defined]
        return {"ok": True}


def start(app: Flask) -> None:
    """Per worker (gunicorn.conf.py's post_worker_init): tell this worker's clients each time the
    broker goes and comes back, in order. Locally (``ignore_queue``): the queue is what is down."""
    room = chat.room_of(app)
    if room.state == chat.BROKER_OFF:  # no broker (LocalRoom): nothing to tell, ever
        return
    sio: SocketIO = app.extensions[EXTENSION]
    changes: gevent.queue.Queue[str] = gevent.queue.Queue()
    room.watch(changes.put)

    def tell() -> None:
        for state in changes:
            reason = chat.BROKER_DOWN_REASON if state == chat.BROKER_UNREACHABLE else ""
            log.info("socketio: broker %s, telling this worker's clients", state)
            try:
                sio.server.emit("broker", {"state": state, "msg": reason}, ignore_queue=True)
            except Exception:  # a bug must not end the telling for the worker's life
                log.exception("socketio: telling the broker's state failed")

    gevent.spawn(tell)


def going_away(app: Flask) -> None:
    """From the worker's SIGTERM handler: end this worker's Engine.IO sessions as a transport that
    closed (never a Socket.IO disconnect, after which a client stays away), so each client
    reconnects, to a live worker, at once: a long-poll answered now instead of holding the worker's
    graceful stop for pingInterval. Websockets get 1001 from views.websockets (going_away_on_shutdown).
    In a greenlet of its own: a signal handler may run in gevent's hub, which must never block."""
    sio: SocketIO = app.extensions[EXTENSION]

    def close_each() -> None:
        for session in list(sio.server.eio.sockets.values()):
            if not session.upgraded:  # a websocket's own close (1001) is on its way already
                session.close(wait=False, abort=True)

    gevent.spawn(close_each)
