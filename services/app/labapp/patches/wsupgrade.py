"""gevent-websocket's handshake handling: upgrades for websocket routes only, and plain requests
saying ``Connection: upgrade`` with a body that ends.

1. Upgrades for websocket routes only (LAB_FIX_WS_UPGRADE): its handler answers 101 to a handshake
   for any path before the app routes it, so a mistyped path or a route declared without
   ``websocket=True`` "connects, then drops" (101, then a close). Asked first, the app's URL map
   decides: anything but a websocket route is answered by the app like any other request (404 for
   no route, 400 for a plain one), never upgraded. Once upgraded, the handler drops its parsed
   request headers (an email.message.Message, in the environ anyway): 2.4 KiB of every idle
   websocket (make bench: ws.kib_per_connection).
2. Bounded bodies under ``Connection: upgrade`` (LAB_FIX_UPGRADE_INPUT). gevent's pywsgi takes
   any request saying that header for an upgrade and hands the app the socket itself as
   wsgi.input, with ``wsgi.input_terminated = False``; Werkzeug checks only that the key is
   *present*, trusts the socket as a terminated stream and reads it to its end, which on a
   keep-alive connection never comes: a POST hangs until some timeout. A proxy sends that header
   on every request when it sets ``Connection "upgrade"`` instead of the $connection_upgrade map
   (connection-upgrade-always). Unless the request is a websocket handshake, the app gets the
   handler's own body reader instead (bounded by Content-Length or the chunked framing, the one
   the handler discards the rest of after the response).
"""

from __future__ import annotations

from typing import Any

from geventwebsocket.handler import WebSocketHandler
from werkzeug.exceptions import HTTPException

import labsettings

from . import Patch, stock

UPGRADE = "geventwebsocket.handler:WebSocketHandler.upgrade_websocket"
GET_ENVIRON = "geventwebsocket.handler:WebSocketHandler.get_environ"


def is_websocket_route(url_map: Any, environ: dict[str, Any]) -> bool:
    """Whether the app's URL map routes this request to a rule declared with websocket=True."""
    try:
        rule, _ = url_map.bind_to_environ(environ).match(return_rule=True, websocket=True)
    except HTTPException:  # no route (404), a plain route (WebsocketMismatch), a wrong method
        return False
    return bool(rule.websocket)


def upgrade_websocket_routes_only(self: WebSocketHandler) -> Any:
    if self.environ.get("HTTP_UPGRADE", "").lower() != "websocket":
        return None  # no handshake (the stock check, first): not worth matching the URL for
    url_map = getattr(self.application, "url_map", None)
    if url_map is not None and not is_websocket_route(url_map, self.environ):
        return None  # not upgraded: the app answers it as a plain request
    result = stock(UPGRADE)(self)
    if hasattr(self, "websocket"):
        self.headers = type(self).headers  # upgraded: nothing reads the parsed headers again
    return result


def environ_with_bounded_input(self: WebSocketHandler) -> dict[str, Any]:
    environ: dict[str, Any] = stock(GET_ENVIRON)(self)
    if (
        environ.get("wsgi.input_terminated") is False
        and environ.get("HTTP_UPGRADE", "").lower() != "websocket"
    ):
        environ["wsgi.input"] = self.wsgi_input
        environ["wsgi.input_terminated"] = True
    return environ


PATCHES = (
    Patch(
        target=UPGRADE,
        replacement=upgrade_websocket_routes_only,
        why="101 for a handshake to any path, then a close: a mistyped path 'connects, then drops'",
        upstream="gevent-websocket (jgelens/gevent-websocket): let the app decide before the 101 "
        "(a WSGI server cannot know the routes; Flask-Sock, simple-websocket answer in the view)",
        digest="01f7ee962132",
        setting=labsettings.FIX_WS_UPGRADE,
        distribution="gevent-websocket",
        version="0.10.1",
    ),
    Patch(
        target=GET_ENVIRON,
        replacement=environ_with_bounded_input,
        why="a plain request saying Connection: upgrade gets the socket as wsgi.input with "
        "wsgi.input_terminated False: Werkzeug reads it to EOF, a hang",
        upstream="gevent (gevent/gevent, pywsgi.WSGIHandler.get_environ): set wsgi.input_terminated "
        "only for a request that is upgraded; the handler here inherits it",
        distribution="gevent",  # WebSocketHandler inherits it from gevent's pywsgi
        version="26.9.0",
        digest="fbd39b74e42d",
        setting=labsettings.FIX_UPGRADE_INPUT,
    ),
)
