"""The app server's own refusals (gevent's pywsgi, which parses requests for gevent-websocket's
worker, bypassing gunicorn's parser) as the lab's JSON error naming that layer
(header-size-layers).

1. A request head gevent cannot parse (a header line over 65536 bytes, more than 100 header lines:
   http.client's limits, kept by labapp.inputfix; a malformed line) gets 400 with an empty body,
   which nginx passes through as it is: a bare 400 that names no layer. ``_handle_client_error``
   (gevent's hook for exactly this) now answers the envelope, with a request id of its own: the
   head that would carry nginx's X-Request-ID is what failed to parse.
2. A request line of ``MAX_REQUEST_LINE`` (8192) bytes or more gets 414, also empty. Raised to
   the header lines' 65536, above nginx's large_client_header_buffers (LAB_MAX_HEADER_KIB): through
   nginx, the request line is nginx's to refuse, with its JSON 414. Module globals, read by
   pywsgi at each request.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from gevent import pywsgi

from .inputfix import MAX_LINE

SERVER = "the app server (gevent's pywsgi in gunicorn's worker)"
UNPARSED = (
    f"{SERVER} could not parse the request head: a header line over {MAX_LINE} bytes, more than "
    "100 header lines, or a malformed line"
)

_stock_handle_client_error = pywsgi.WSGIHandler._handle_client_error


def response(code: int, reason: str, msg: str) -> bytes:
    """A whole HTTP/1.1 answer carrying the envelope, closing the connection as gevent's do."""
    body = json.dumps({"code": code, "msg": msg, "request_id": uuid.uuid4().hex}).encode() + b"\n"
    head = (
        f"HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _handle_client_error(self: Any, ex: BaseException) -> tuple[str, bytes]:
    status, _empty = _stock_handle_client_error(self, ex)  # gevent's logging, its status
    return status, response(int(status), "Bad Request", UNPARSED)


def install() -> None:
    pywsgi.WSGIHandler._handle_client_error = _handle_client_error
    pywsgi.MAX_REQUEST_LINE = MAX_LINE
