"""Every error reaches the client as the JSON envelope: from the app or from nginx itself."""

from __future__ import annotations

import httpx
import pytest

from labctl import hints
from support.lab import assert_json_error


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/errors/crash", 500),
        ("GET", "/errors/validation", 400),
        ("GET", "/errors/teapot", 418),
        ("GET", "/no/such/page", 404),
        ("DELETE", "/healthz", 405),
        ("GET", "/ws/echo", 400),
        ("GET", "/files/never-uploaded.bin", 404),
        ("POST", "/bugs/early-reject", 403),
    ],
)
def test_app_errors_are_json(lab, http, method, path, status):
    response = http.request(method, lab.url + path)
    body = assert_json_error(response, status, hints.scenario("html-errors"))
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_crash_leaks_no_traceback(lab, http):
    response = http.get(lab.url + "/errors/crash")
    assert "deliberate crash" not in response.text and "Traceback" not in response.text


def test_nginx_own_errors_are_json(lab, http):
    too_big = http.put(lab.url + "/upload/x.bin", headers={"Content-Length": str(2**50)}, data=b"")
    assert_json_error(too_big, 413)
    if lab.endpoint.is_local_lab:  # elsewhere a refusal may just close the connection (444)
        unknown_host = http.get(lab.url + "/", headers={"Host": "nope.example"})
        assert_json_error(unknown_host, 421)


def test_nginx_413_is_json_over_http2_too(lab):
    """Over HTTP/2 (and HTTP/3) nginx skips a refused body without marking it discarded, so the
    redirect to the error location met the size check again: nginx's HTML 413 came back."""
    with httpx.Client(http2=True, verify=lab.ssl_context(), trust_env=False) as client:
        response = client.put(
            lab.url + "/upload/h2-too-big.bin", headers={"Content-Length": str(2**50)}, content=b""
        )
    assert response.http_version == "HTTP/2", f"the server spoke {response.http_version}, not HTTP/2"
    assert response.status_code == 413 and response.headers["content-type"] == "application/json", (
        f"{response.status_code} {response.headers.get('content-type')}: {response.text[:200]!r}. The error "
        "location needs `client_max_body_size 0` (snippets/json-errors.conf)"
    )
    body = response.json()
    assert set(body) == {"code", "msg", "request_id"} and body["code"] == 413, body
