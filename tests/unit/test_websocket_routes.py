"""Which handshakes the app lets gevent-websocket upgrade (labapp.patches.wsupgrade, LAB_FIX_WS_UPGRADE), and
what a refused one is told. The upgrade itself needs the worker: tests/integration covers it."""

from __future__ import annotations

import pytest
from werkzeug.test import EnvironBuilder

from labapp.errors import HANDSHAKE_SEEN_HEADER
from labapp.patches import wsupgrade

HANDSHAKE = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13"}


@pytest.mark.parametrize(
    ("path", "upgraded"),
    [
        ("/ws/echo", True),
        ("/ws/chat", True),
        ("/nope", False),
        ("/debug/request", False),
        ("/bugs/ws-no-flag", False),
    ],
)
def test_only_websocket_routes_are_upgraded(app, path, upgraded):
    environ = EnvironBuilder(path=path, headers=HANDSHAKE).get_environ()
    assert wsupgrade.is_websocket_route(app.url_map, environ) is upgraded


def test_a_handshake_for_no_route_is_a_json_404(client):
    response = client.get("/nope", headers=HANDSHAKE)
    assert response.status_code == 404 and response.get_json()["code"] == 404


def test_a_handshake_for_a_plain_route_says_it_is_not_a_websocket(client):
    response = client.get("/debug/request", headers=HANDSHAKE)
    assert response.status_code == 400 and "not a websocket" in response.get_json()["msg"]


def test_a_websocket_route_says_what_of_the_handshake_arrived(client):
    # What a proxy that drops Upgrade and Connection (hop-by-hop) hands the app.
    response = client.get("/ws/echo", headers={"Connection": "close"})
    assert response.status_code == 400 and "is a websocket" in response.get_json()["msg"]
    assert response.headers[HANDSHAKE_SEEN_HEADER] == "protocol=HTTP/1.1; upgrade=(none); connection=close"


@pytest.mark.parametrize("path", ["/socket.io/", "/api/live/", "/", "/ws/echo", "/debug/request"])
def test_lab_check_s_app_upgrades_a_handshake_on_any_path(make_app, path):
    # LAB_WS_ANY_PATH: a user's own websocket location (/socket.io, /api/live/) reaches an echo.
    app = make_app(ws_any_path=True)
    environ = EnvironBuilder(path=path, headers=HANDSHAKE).get_environ()
    assert wsupgrade.is_websocket_route(app.url_map, environ) is True


def test_off_by_default_a_handshake_for_an_unknown_path_is_not_upgraded(app):
    # (/socket.io/ is the app's own Socket.IO endpoint now: a user's path that is not the lab's.)
    environ = EnvironBuilder(path="/api/live/", headers=HANDSHAKE).get_environ()
    assert wsupgrade.is_websocket_route(app.url_map, environ) is False


def test_with_any_path_plain_requests_keep_their_routes_and_a_lost_upgrade_says_what_arrived(make_app):
    client = make_app(ws_any_path=True).test_client()
    assert client.get("/").status_code == 200  # the lab page
    assert client.get("/debug/request").status_code == 200
    # The proxy dropped Upgrade/Connection on the way to /live/: the app says what arrived.
    response = client.get("/live/", headers={"Sec-WebSocket-Version": "13"})
    assert response.status_code == 400
    assert "upgrade=(none)" in response.headers[HANDSHAKE_SEEN_HEADER]
    # Upgrade forwarded but Connection dropped (nginx's default "close"): the same, not "a plain route".
    response = client.get("/api/live/", headers={"Upgrade": "websocket", "Connection": "close"})
    assert response.status_code == 400 and "is a websocket" in response.get_json()["msg"]
    assert "connection=close" in response.headers[HANDSHAKE_SEEN_HEADER]
