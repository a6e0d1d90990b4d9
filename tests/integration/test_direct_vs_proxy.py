"""The same request straight to gunicorn and through nginx: the difference is the proxy's doing.

Needs the app's own port, which only native mode exposes (compose keeps it off the host).
"""

from __future__ import annotations

import pytest
import requests


@pytest.fixture
def direct(lab) -> str:
    if lab.direct_url is None:
        pytest.skip("the app port is not reachable from here (compose mode keeps it private)")
    return lab.direct_url


def test_direct_request_sees_plain_http_and_the_app_port(direct):
    seen = requests.get(direct + "/debug/request", timeout=5).json()
    assert seen["scheme"] == "http" and seen["host"] == direct.removeprefix("http://")


def test_proxy_turns_the_same_redirect_into_the_public_url(lab, http, direct):
    straight = requests.get(direct + "/redirect/external", allow_redirects=False, timeout=5)
    proxied = http.get(lab.url + "/redirect/external", allow_redirects=False)
    assert straight.headers["Location"] == direct + "/landing"
    assert proxied.headers["Location"] == lab.url + "/landing"


def test_direct_download_gets_only_the_accel_header(direct, lab, http):
    http.put(lab.url + "/upload/accel.bin", data=b"served by nginx")
    straight = requests.get(direct + "/files/accel.bin", timeout=5)
    assert straight.headers["X-Accel-Redirect"] == "/_lab_files/accel.bin" and straight.content == b""
    assert http.get(lab.url + "/files/accel.bin").content == b"served by nginx"
