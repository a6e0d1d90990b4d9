"""What the app believes about the request, whatever the client forges."""

from __future__ import annotations

import socket

import pytest
import requests

from labctl import hints
from labctl.behaviours.host import ABSOLUTE_FORM_HOST, UNKNOWN_HOST
from support import causes
from support.lab import access_log_entry

FORGED = [
    {},
    {"X-Forwarded-For": "6.6.6.6"},
    {"X-Forwarded-For": "6.6.6.6, 7.7.7.7"},
    {"X-Forwarded-Proto": "http"},
    {"X-Forwarded-Host": "evil.example"},
    {"X-Forwarded-Port": "1"},
    {"X-Real-IP": "6.6.6.6"},
    {"X-Request-ID": "forged-id"},
    {"Forwarded": "for=6.6.6.6;proto=http;host=evil.example"},
    {"X-Forwarded-Prefix": "/evil"},
    {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "1",
    },
]


@pytest.mark.parametrize("forged", FORGED, ids=lambda h: ",".join(h) or "none")
def test_app_sees_the_real_request(lab, http, forged):
    seen = http.get(lab.url + "/debug/request", headers=forged).json()
    assert seen["scheme"] == "https", (
        f"scheme {seen['scheme']!r}: {causes.location_cause(lab, 'http://', forged)}"
    )
    assert seen["host"] == lab.host, f"host {seen['host']!r}: {causes.host_cause(lab, seen['host'], forged)}"
    assert seen["url_root"] == lab.url + "/"
    assert seen["remote_addr"] not in {"6.6.6.6", "7.7.7.7"}, (
        f"{seen['remote_addr']!r}: {hints.scenario('xff-spoofing')}"
    )
    assert seen["request_id"] != "forged-id", causes.REQUEST_ID
    redirect = http.get(lab.url + "/redirect/external", headers=forged, allow_redirects=False)
    location = redirect.headers["Location"]
    assert location == lab.url + "/landing", (
        f"Location {location!r}: {causes.location_cause(lab, location, forged)}"
    )


def test_remote_addr_is_the_client_not_nginx_or_a_forgery(lab, http):
    seen = http.get(lab.url + "/debug/request", headers={"X-Forwarded-For": "6.6.6.6"}).json()
    # The client is on loopback: nginx appended 127.0.0.1 (or the compose gateway) after the forgery.
    assert seen["remote_addr"] != "6.6.6.6", hints.scenario("xff-spoofing")
    assert seen["headers"]["X-Forwarded-For"].endswith(seen["remote_addr"])


def test_request_id_is_one_id_for_client_app_and_nginx_log(lab, http):
    response = http.get(lab.url + "/debug/request")
    echoed = response.headers["X-Request-ID"]
    assert echoed == response.json()["request_id"], causes.REQUEST_ID
    assert len(echoed) == 32
    entry = access_log_entry(echoed)
    assert entry["uri"] == lab.endpoint.prefix + "/debug/request" and entry["status"] == 200
    assert entry["upstream_status"] == "200"


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "127.0.0.2"])
def test_unknown_host_is_refused_and_never_reflected(lab, http, host):
    # A refusal is a 421 (the lab's) or, as many deployments do it, a closed connection (return 444).
    try:
        response = http.get(lab.url + "/redirect/external", headers={"Host": host}, allow_redirects=False)
    except requests.ConnectionError:
        return
    assert response.status_code == 421, (
        f"Host {host!r} was served ({response.status_code}): {UNKNOWN_HOST.hint}"
    )
    assert "Location" not in response.headers
    assert host not in response.text


def test_a_forged_host_behind_an_absolute_request_line_never_reaches_location(lab):
    # nginx picks the server by the request line's host, while $http_host is still the raw
    # Host header: only $host (what matched server_name) is safe to build URLs from.
    request = f"GET {lab.url}/redirect/external HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    host, port = lab.host.rsplit(":", 1)
    with (
        socket.create_connection((host, int(port)), timeout=10) as raw,
        lab.ssl_context().wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(request.encode())
        head = b"".join(iter(lambda: tls.recv(65536), b"")).split(b"\r\n\r\n", 1)[0].decode()
    assert "evil.example" not in head, (
        f"the forged Host reached the response: {head!r}. {ABSOLUTE_FORM_HOST.hint}"
    )
    assert f"Location: {lab.url}/landing" in head, head
