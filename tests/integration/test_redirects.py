"""Redirects through the proxy keep scheme, host and port (or stay relative)."""

from __future__ import annotations

import hashlib

import pytest

from labctl import hints


@pytest.mark.parametrize(
    ("path", "status", "location_path"),
    [
        ("/redirect/external", 302, "/landing"),
        ("/redirect/status/301", 301, "/landing"),
        ("/redirect/status/302", 302, "/landing"),
        ("/redirect/status/303", 303, "/landing"),
        ("/redirect/status/307", 307, "/landing"),
        ("/redirect/status/308", 308, "/landing"),
        ("/dir", 308, "/dir/"),
    ],
)
def test_absolute_location_keeps_scheme_host_and_port(lab, http, path, status, location_path):
    response = http.get(lab.url + path, allow_redirects=False)
    assert response.status_code == status, response.text
    location = response.headers["Location"]
    expected = lab.url + location_path
    if location.startswith("http://"):
        pytest.fail(f"{path}: Location {location!r} is http://. {hints.scenario('scheme-lost')}")
    if location.startswith(f"https://{lab.host.split(':')[0]}/"):
        pytest.fail(f"{path}: Location {location!r} has no port. {hints.scenario('host-drops-port')}")
    assert location == expected, (
        f"{path}: Location {location!r}, expected {expected!r}. {hints.scenario('upstream-host')}"
    )


def test_relative_redirect_stays_relative(lab, http):
    response = http.get(lab.url + "/redirect/relative", allow_redirects=False)
    assert response.status_code == 302
    assert response.headers["Location"] == lab.endpoint.prefix + "/landing"
    assert http.get(lab.url + "/redirect/relative").url == lab.url + "/landing"


@pytest.mark.parametrize(
    ("code", "method_after"),
    [(301, "GET"), (302, "GET"), (303, "GET"), (307, "POST"), (308, "POST")],
)
def test_each_code_keeps_its_method_semantics(lab, http, code, method_after):
    payload = b"body that 307/308 must resend " * 1000
    response = http.post(lab.url + f"/redirect/status/{code}", data=payload)
    assert response.status_code == 200, response.text
    assert [r.status_code for r in response.history] == [code]
    landed = response.json()
    assert landed["url"] == lab.url + "/landing"
    assert landed["method"] == method_after
    expected = hashlib.sha256(payload if method_after == "POST" else b"").hexdigest()
    assert landed["sha256"] == expected, f"{code}: the body did not arrive intact after the redirect"


@pytest.mark.parametrize("path", ["/landing", "/debug/request?a=1&b=two", "/dir/?x=%2F"])
def test_http_redirects_to_https_keeping_port_path_and_query(lab, http, path):
    response = http.get(lab.http_url + lab.endpoint.prefix + path, allow_redirects=False)
    assert response.status_code == 301
    location = response.headers["Location"]
    assert location == lab.url + path, f"{location!r}: {hints.scenario('https-redirect-drops-port')}"


def test_trailing_slash_redirect_is_followed_to_the_directory(lab, http):
    response = http.get(lab.url + "/dir")
    assert response.url == lab.url + "/dir/"
    assert response.json() == {"path": "/dir/"}
