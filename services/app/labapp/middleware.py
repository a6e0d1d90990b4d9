"""WSGI layers around the Flask app, outermost first: the request log (adopting nginx's
X-Request-ID or making one), body draining (LAB_FIX_DRAIN_BODY), the whole body's deadline
(LAB_UPLOAD_BODY_S), ProxyFix for one hop (LAB_FIX_PROXY); and CloseWhenStopping, which closes
each keep-alive connection after its response once the worker is told to stop. (The bounded
body behind a constant Connection: upgrade is labapp/patches/wsupgrade.py's: a patch of
gevent-websocket's handler, not a layer.)

gevent-websocket's worker bypasses gunicorn's HTTP layer (no forwarded-header handling, no
access log), so these live in the app where every worker class gets them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

import labsettings as lab
from labsettings import AppSettings

from . import envelope
from .body import TimedInput

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

REQUEST_ID_KEY = "lab.request_id"
# What gevent adds to the head the app hands it (Date, Connection, Transfer-Encoding), with room.
HEAD_ADDED_BY_SERVER = 256
# Set in the environ by a view that sends an oversized head on purpose (/bugs/big-header).
UNBOUNDED_HEAD = "lab.unbounded_head"
DRAIN_CHUNK = 256 * 1024

access_log = logging.getLogger("labapp.access")


def _has_body(environ: Environ) -> bool:
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return True
    try:
        return int(environ.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False


class _ClosingIterable:
    """Yields the app's body, then runs ``on_close`` once the server has sent it."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._on_close()


def request_log(app: WSGIApp) -> WSGIApp:
    """Adopts nginx's X-Request-ID (or makes one), echoes it, and logs one JSON line per request."""

    def wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request_id = environ.get("HTTP_X_REQUEST_ID") or uuid.uuid4().hex
        environ[REQUEST_ID_KEY] = request_id
        started = time.perf_counter()
        seen: dict[str, str] = {}

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seen["status"] = status.split(" ", 1)[0]
            headers = [h for h in headers if h[0].lower() != "x-request-id"]
            headers.append(("X-Request-ID", request_id))
            return start_response(status, headers, exc_info)

        def log_line() -> None:
            access_log.info(
                json.dumps(
                    {
                        "request_id": request_id,
                        "method": environ.get("REQUEST_METHOD"),
                        "path": environ.get("PATH_INFO"),
                        "status": int(seen.get("status", "0") or 0),
                        "websocket": "wsgi.websocket" in environ,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                )
            )

        body = app(environ, start)
        if "wsgi.websocket" in environ:
            # gevent-websocket runs the whole socket session inside the app call and then
            # list()s the body without calling close(): log now, as a 101.
            seen["status"] = "101"
            log_line()
            return body
        return _ClosingIterable(body, log_line)

    return wsgi


def drain_body(app: WSGIApp, limit_bytes: int) -> WSGIApp:
    """Reads whatever request body the view left unread before the connection closes.

    Without it, a view that answers early (403 before reading a large upload) makes the worker
    close a socket with unread data: the kernel sends RST, nginx logs "writev() failed (104)"
    and the client gets 502 instead of the 403 (sync and gevent workers; early-reject scenario).
    """

    def drain(environ: Environ) -> None:
        # Bounded by Content-Length or the chunked framing: gevent's Input. A request saying
        # "Connection: upgrade" without a handshake gets that too, not the socket itself
        # (patches/wsupgrade.py, LAB_FIX_UPGRADE_INPUT).
        stream = environ["wsgi.input"]
        remaining = limit_bytes
        try:
            while remaining > 0:
                chunk = stream.read(min(DRAIN_CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
        except Exception:  # noqa: BLE001 - the peer went away: nothing left to protect
            return

    def wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if "wsgi.websocket" in environ or not _has_body(environ):
            return app(environ, start_response)
        return _ClosingIterable(app(environ, start_response), lambda: drain(environ))

    return wsgi


def body_deadline(app: WSGIApp, deadline_s: float) -> WSGIApp:
    """Every request's wsgi.input read within ``deadline_s`` of the request's start, whichever
    view (or the drain above) reads it: past it 408 (labapp.body.TimedInput)."""

    def wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if "wsgi.websocket" not in environ and _has_body(environ):
            environ["wsgi.input"] = TimedInput(environ["wsgi.input"], deadline_s)
        return app(environ, start_response)

    return wsgi


def head_size(status: str, headers: list[tuple[str, str]]) -> int:
    """The bytes of a response head as HTTP/1.1 writes it (status line, "Name: value" lines, end)."""
    return len(f"HTTP/1.1 {status}\r\n") + sum(len(n) + len(v) + 4 for n, v in headers) + 2


def bounded_response_head(app: WSGIApp, limit_bytes: int) -> WSGIApp:
    """Answers 500 JSON, naming the app, instead of sending a head over nginx's proxy_buffer_size.

    nginx reads the upstream's whole head into that one buffer: a larger one (a session cookie
    grown past it) is "upstream sent too big header" and a 502 that blames nobody
    (header-size-layers). Both limits are LAB_MAX_HEADER_KIB.
    """

    def wsgi(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        over: list[int] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            size = head_size(status, headers)
            if size <= limit_bytes or environ.get(UNBOUNDED_HEAD):
                return start_response(status, headers, exc_info)
            over.append(size)
            return lambda data: None  # write() of a refused response goes nowhere

        body = app(environ, start)
        if not over:
            return body
        close = getattr(body, "close", None)
        if close is not None:
            close()
        msg = (
            f"the app refused to send a response head of {over[0]} bytes: over {limit_bytes} bytes "
            "(LAB_MAX_HEADER_KIB, nginx's proxy_buffer_size, less what the app server adds)"
        )
        return envelope.answer(
            start_response, "500 INTERNAL SERVER ERROR", msg, environ.get(REQUEST_ID_KEY, "")
        )

    return wsgi


class CloseWhenStopping:
    """Answers with ``Connection: close`` once the worker has been told to stop.

    gunicorn's graceful stop (``kill -HUP``, TERM) lets a gevent worker go on serving nginx's
    pooled keep-alive connections until graceful_timeout, then kills whatever is in flight:
    GETs under load got 500s across a reload (tests/reliability/test_faults.py). Closing each
    connection after its current response hands new requests to the new workers.
    gunicornhooks' post_worker_init calls ``stop()`` from the worker's SIGTERM handler.
    """

    stopping = False

    @classmethod
    def stop(cls) -> None:
        cls.stopping = True

    @classmethod
    def after_request(cls, response: Response) -> Response:
        if cls.stopping:
            response.headers["Connection"] = "close"
        return response


def install(app: Flask, settings: AppSettings) -> None:
    @app.before_request
    def _adopt_request_id() -> None:
        g.request_id = request.environ.get(REQUEST_ID_KEY, "")

    # A Flask hook, not a WSGI layer: see the note on C stack depth below.
    app.after_request(CloseWhenStopping.after_request)

    # Each layer is a plain function or a bound method, never an object with __call__: CPython
    # (3.11+) runs Python-to-Python calls inline, but calling an object recurses in C, and gevent
    # copies that C stack out for every parked greenlet. With three object layers an idle websocket
    # cost the worker 37 KiB, as functions 29.6 (make bench: ws.kib_per_connection).
    wsgi: WSGIApp = app.wsgi_app
    if settings[lab.FIX_PROXY]:
        # Exactly one trusted hop (nginx): the last X-Forwarded-For value is the one nginx added.
        # x_prefix: nginx serves the app under /sub/ too and names the prefix it stripped.
        wsgi = ProxyFix(wsgi, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1).__call__
    # Inside the drain: its reads (after the view's answer) get the deadline too.
    wsgi = body_deadline(wsgi, settings[lab.UPLOAD_BODY_S])
    if settings[lab.FIX_DRAIN_BODY]:
        wsgi = drain_body(wsgi, settings.max_upload_bytes + 1024 * 1024)
    if settings[lab.FIX_JSON_ERRORS]:
        wsgi = bounded_response_head(wsgi, settings[lab.MAX_HEADER_KIB] * 1024 - HEAD_ADDED_BY_SERVER)
    app.wsgi_app = request_log(wsgi)  # type: ignore[method-assign,assignment]
    _configure_logging()


def _configure_logging() -> None:
    root = logging.getLogger("labapp")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
