"""The edge, the app's side: /debug/set-cookie and the bound on the head it sends (never
nginx's 502), gevent's refusals of a head it cannot parse as the JSON envelope, the prefix, the
balancer's listener."""

from __future__ import annotations

import io
import json

import pytest
from gevent import pywsgi

import labsettings
from labapp.patches import clienterrors


def test_set_cookie_sets_a_cookie_of_that_many_bytes(client):
    response = client.get("/debug/set-cookie?bytes=6144")
    assert response.status_code == 200 and response.get_json() == {"cookie_bytes": 6144}
    (cookie,) = response.headers.getlist("Set-Cookie")
    assert cookie.startswith("lab_big=" + "c" * 6144 + ";") and "Secure" in cookie


@pytest.mark.parametrize("query", ["", "?bytes=", "?bytes=-1", "?bytes=1.5", "?bytes=1048577"])
def test_set_cookie_refuses_sizes_out_of_bounds(client, query):
    response = client.get("/debug/set-cookie" + query)
    assert response.status_code == 400 and response.get_json()["msg"].startswith("bytes:")


def test_a_head_over_the_limit_is_the_app_s_json_500(make_app):
    client = make_app(max_header_kib=8).test_client()
    assert client.get("/debug/set-cookie?bytes=7000").status_code == 200
    response = client.get("/debug/set-cookie?bytes=9000", headers={"X-Request-ID": "req-1"})
    assert response.status_code == 500 and "Set-Cookie" not in response.headers
    body = response.get_json()
    assert body["request_id"] == "req-1" and body["msg"].startswith("the app refused to send a response head")


def test_without_json_errors_the_head_is_not_bounded(make_app):
    client = make_app(max_header_kib=8, fix_json_errors=False).test_client()
    assert client.get("/debug/set-cookie?bytes=9000").status_code == 200


def test_an_unparsable_head_gets_the_envelope_naming_the_app_server(app):
    # create_app installed it; gevent's own answer was an empty 400.
    handler = object.__new__(pywsgi.WSGIHandler)
    handler.client_address = ("127.0.0.1", 1)
    handler.server = type("Server", (), {"error_log": io.StringIO()})()
    status, raw = pywsgi.WSGIHandler._handle_client_error(handler, ValueError("got more than 100 headers"))
    head, _, body = raw.partition(b"\r\n\r\n")
    assert status == "400" and head.startswith(b"HTTP/1.1 400 ")
    assert b"Content-Type: application/json" in head and f"Content-Length: {len(body)}".encode() in head
    envelope = json.loads(body)
    assert envelope["code"] == 400 and envelope["msg"] == clienterrors.UNPARSED and envelope["request_id"]
    assert pywsgi.MAX_REQUEST_LINE == 65536


def test_the_prefix_nginx_names_is_the_app_s_root(client, proxied):
    headers = {**proxied, "X-Forwarded-Prefix": "/sub"}
    assert (
        client.get("/debug/request", headers=headers).get_json()["url_root"] == "https://localhost:8443/sub/"
    )
    location = client.get("/redirect/external", headers=headers).headers["Location"]
    assert location == "https://localhost:8443/sub/landing"
    assert client.get("/redirect/relative", headers=headers).headers["Location"] == "/sub/landing"


def test_the_balancer_s_listener_defaults_beside_the_lab_s_ports(monkeypatch):
    monkeypatch.setenv("LAB_HTTPS_PORT", "27443")
    monkeypatch.delenv("LAB_BEHIND_BALANCER_PORT", raising=False)
    assert labsettings.behind_balancer_port() == 27445
    monkeypatch.setenv("LAB_BEHIND_BALANCER_PORT", "9081")
    assert labsettings.behind_balancer_port() == 9081


def test_the_deliberate_big_header_bug_passes_the_bound_to_reach_nginx(make_app):
    response = make_app(max_header_kib=8).test_client().get("/bugs/big-header")
    assert response.status_code == 200 and len(response.headers["X-Lab-Padding"]) == 8 * 1024
