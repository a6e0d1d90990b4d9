"""labapp.patches.wsupgrade against gevent-websocket's own upgrade, on the same handshakes, through
its real handler over a socket pair (no network)."""

from __future__ import annotations

import gevent
import pytest
from gevent import pywsgi
from gevent import socket as gsocket
from geventwebsocket.handler import WebSocketHandler

from labapp import patches
from labapp.patches import wsdeflate, wsupgrade

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def handshake(path: str, *extra: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: test",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer_head(app, request: bytes) -> bytes:
    """The response head gevent-websocket's handler sends for ``request`` (then the client leaves)."""
    server = pywsgi.WSGIServer(
        ("127.0.0.1", 0),
        app,
        handler_class=WebSocketHandler,
        log=None,
        environ={"SERVER_NAME": "test", "SERVER_PORT": "80"},
    )
    ours, client = gsocket.socketpair()
    client.sendall(request)
    handling = gevent.spawn(WebSocketHandler(ours, ("127.0.0.1", 1), server).handle)
    head = b""
    with gevent.Timeout(5):
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
    client.close()
    handling.join(5)
    ours.close()
    return head.split(b"\r\n\r\n")[0]


@pytest.mark.parametrize(
    "path, stock_status, patched_status",
    [("/ws/echo", b"101", b"101"), ("/nope", b"101", b"404"), ("/debug/request", b"101", b"400")],
)
def test_only_websocket_routes_are_upgraded_where_stock_upgrades_any(
    app, monkeypatch, path, stock_status, patched_status
):
    stock = patches.stock(wsupgrade.UPGRADE)
    for upgrade, status in ((stock, stock_status), (wsupgrade.upgrade_websocket_routes_only, patched_status)):
        monkeypatch.setattr(WebSocketHandler, "upgrade_websocket", upgrade)
        assert answer_head(app, handshake(path)).split(b" ")[1] == status


@pytest.mark.parametrize("upgrade", ["stock", "routes only"])
@pytest.mark.parametrize("setting, agreed", [("0", False), ("1", True)])
def test_permessage_deflate_is_agreed_only_when_on_whichever_upgrade(
    app, monkeypatch, upgrade, setting, agreed
):
    """LAB_WS_DEFLATE is its own patch (wsdeflate's, of the handler's start_response), read as the
    patches are installed: on or off whether LAB_FIX_WS_UPGRADE's upgrade answers the handshake."""
    upgrades = {
        "stock": patches.stock(wsupgrade.UPGRADE),
        "routes only": wsupgrade.upgrade_websocket_routes_only,
    }
    monkeypatch.setattr(WebSocketHandler, "upgrade_websocket", upgrades[upgrade])
    monkeypatch.setenv("LAB_WS_DEFLATE", setting)
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"
    try:
        patches.install(wsdeflate.PATCHES)
        stock = WebSocketHandler.start_response is patches.stock(wsdeflate.START_RESPONSE)
        head = answer_head(app, handshake("/ws/echo", offer))
        unoffered = answer_head(app, handshake("/ws/echo"))
    finally:
        monkeypatch.undo()
        patches.install(wsdeflate.PATCHES)
    assert stock is not agreed, "off: the handler's own start_response"
    assert head.startswith(b"HTTP/1.1 101")
    assert (b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n" in head + b"\r\n") is agreed
    assert b"Sec-WebSocket-Extensions" not in unoffered  # no offer, no answer
