"""Forged forwarding headers from the client never change what the app believes: nginx
overwrites X-Forwarded-Proto/Host/Port and X-Request-ID, appends to X-Forwarded-For, and the
app's ProxyFix trusts exactly one hop (nginx)."""

from __future__ import annotations

import pytest
import requests

from labctl import hints
from support.lab import Lab

from . import report

FORGERIES = {
    "x-forwarded-for": {"X-Forwarded-For": "6.6.6.6"},
    "x-forwarded-for-chain": {"X-Forwarded-For": "6.6.6.6, 7.7.7.7"},
    "x-real-ip": {"X-Real-IP": "6.6.6.6"},
    "x-forwarded-proto": {"X-Forwarded-Proto": "http"},
    "x-forwarded-host": {"X-Forwarded-Host": "evil.example"},
    "x-forwarded-port": {"X-Forwarded-Port": "1"},
    "x-forwarded-prefix": {"X-Forwarded-Prefix": "/evil"},
    "forwarded-rfc7239": {"Forwarded": "for=6.6.6.6;proto=http;host=evil.example"},
    "all-at-once": {
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Port": "1",
    },
}


@pytest.mark.parametrize("forged", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_forwarding_headers_change_nothing(lab: Lab, http: requests.Session, forged: dict) -> None:
    seen = http.get(lab.url + "/debug/request", headers=forged, timeout=10).json()
    report.tally("forged forwarding headers", "ignored")
    assert seen["remote_addr"] == "127.0.0.1", f"remote_addr {seen['remote_addr']}: {hints.XFF_SPOOFING}"
    assert seen["scheme"] == "https", f"scheme {seen['scheme']}: {hints.SCHEME_LOST}"
    assert seen["host"] == lab.host, f"host {seen['host']}: proxy.conf must overwrite X-Forwarded-Host"
    assert seen["url_root"] == f"https://{lab.host}/", f"url_root {seen['url_root']} (prefix or port forged)"
    redirect = http.get(lab.url + "/redirect/external", headers=forged, timeout=10, allow_redirects=False)
    location = redirect.headers["Location"]
    assert location == f"https://{lab.host}/landing", f"a forged header reached a Location: {location}"


def test_forged_request_id_is_replaced(lab: Lab, http: requests.Session) -> None:
    response = http.get(lab.url + "/debug/request", headers={"X-Request-ID": "forged"}, timeout=10)
    assert response.json()["request_id"] not in {"", "forged"}, hints.REQUEST_ID
    assert response.headers["X-Request-ID"] == response.json()["request_id"], hints.REQUEST_ID
