"""The app server's own refusals (gevent's pywsgi, which parses requests for gevent-websocket's
worker, bypassing gunicorn's parser) as the lab's JSON error naming that layer
(header-size-layers). Two patches, both off with LAB_FIX_JSON_ERRORS=0:

1. A request head gevent cannot parse (a header line over 65536 bytes, more than 100 header lines:
   http.client's limits, kept by patches.pywsgi; a malformed line) gets 400 with an empty body,
   which nginx passes through as it is: a bare 400 that names no layer. ``_handle_client_error``
   (gevent's hook for exactly this) answers the envelope, with a request id of its own: the head
   that would carry nginx's X-Request-ID is what failed to parse.
2. A request line of ``MAX_REQUEST_LINE`` (8192) bytes or more gets 414, also empty. Raised to
   the header lines' 65536, above nginx's large_client_header_buffers (LAB_MAX_HEADER_KIB): through
   nginx, the request line is nginx's to refuse, with its JSON 414. A module global, read by
   pywsgi at each request.
"""

from __future__ import annotations

import uuid
from typing import Any

import labsettings

from .. import envelope
from . import Patch, stock
from .pywsgi import GEVENT, MAX_LINE

SERVER = "the app server (gevent's pywsgi in gunicorn's worker)"
UNPARSED = (
    f"{SERVER} could not parse the request head: a header line over {MAX_LINE} bytes, more than "
    "100 header lines, or a malformed line"
)
HANDLE_CLIENT_ERROR = "gevent.pywsgi:WSGIHandler._handle_client_error"


def response(code: int, reason: str, msg: str) -> bytes:
    """A whole HTTP/1.1 answer carrying the envelope, closing the connection as gevent's do."""
    body = envelope.body(code, msg, uuid.uuid4().hex) + b"\n"
    head = (
        f"HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _handle_client_error(self: Any, ex: BaseException) -> tuple[str, bytes]:
    status, _empty = stock(HANDLE_CLIENT_ERROR)(self, ex)  # gevent's logging, its status
    return status, response(int(status), "Bad Request", UNPARSED)


_UPSTREAM = "gevent (gevent/gevent, src/gevent/pywsgi.py): "

PATCHES = (
    Patch(
        target=HANDLE_CLIENT_ERROR,
        replacement=_handle_client_error,
        why="gevent answers a head it cannot parse with an empty 400: behind nginx, one naming no layer",
        upstream=_UPSTREAM
        + "let a server give _handle_client_error's answer a body (a hook for the error page)",
        distribution="gevent",
        version=GEVENT,
        digest="a3fbde482b69",
        setting=labsettings.FIX_JSON_ERRORS,
    ),
    Patch(
        target="gevent.pywsgi:MAX_REQUEST_LINE",
        replacement=MAX_LINE,
        why="gevent refuses request lines of 8192 bytes with an empty 414, below nginx's own limit",
        upstream=_UPSTREAM + "MAX_REQUEST_LINE as a server setting",
        distribution="gevent",
        version=GEVENT,
        digest="864a936a3532",  # of repr(8192): the constant's value at that version
        setting=labsettings.FIX_JSON_ERRORS,
    ),
)
