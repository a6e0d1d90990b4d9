"""Malformed and hostile requests, written byte by byte over verified TLS. Each must get a clear
answer (a 4xx, nearly always the JSON envelope) and leave the stack serving the next connection
(checked after every case by conftest's stack_healthy_after)."""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import labsettings
from labctl import endpoints, paths
from support.lab import Lab

from . import report, stackctl
from .rawhttp import RawResponse, exchange, parse_response, plain_exchange, read_until_close

Check = Callable[[RawResponse], str | None]  # a problem description, or None when fine


@dataclass(frozen=True)
class Case:
    id: str
    request: str  # latin-1; {host} is replaced by host:port
    status: int
    cause: str  # the nginx or app line that makes it so, named in failure messages
    json: bool = True
    check: Check | None = None


def multipart(filename: str, content_type: str = "multipart/form-data; boundary=XB", cut: int = 0) -> str:
    body = (
        f'--XB\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\nhello\r\n--XB--\r\n"
    )
    body = body[: len(body) - cut]
    return (
        f"POST /upload HTTP/1.1\r\nHost: {{host}}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
    )


def get(path: str = "/healthz", headers: str = "", version: str = "HTTP/1.1", method: str = "GET") -> str:
    return f"{method} {path} {version}\r\nHost: {{host}}\r\n{headers}Connection: close\r\n\r\n"


def ws_handshake(version: str = "13", key: str | None = "dGhlIHNhbXBsZSBub25jZQ==") -> str:
    key_line = f"Sec-WebSocket-Key: {key}\r\n" if key is not None else ""
    return get(
        "/ws/echo",
        f"Upgrade: websocket\r\nConnection: Upgrade\r\n{key_line}Sec-WebSocket-Version: {version}\r\n",
    )


def one_response_only(response: RawResponse) -> str | None:
    """Request smuggling shows as a second response (here the 418 of the hidden request)."""
    # The status line, not the bare digits: a random request id or the Date can contain "418".
    if response.raw.count(b"HTTP/1.1 ") != 1 or b"HTTP/1.1 418" in response.raw:
        return f"more than one response: the hidden request was served: {response.describe()}"
    return None


def no_location(response: RawResponse) -> str | None:
    if "location" in response.headers:
        return f"a refused Host was reflected into Location: {response.headers['location']}"
    return None


def saved_as(name: str) -> Check:
    def check(response: RawResponse) -> str | None:
        saved = response.json().get("name")
        if saved != name or not (paths.UPLOADS / name).is_file():
            return f"expected the sanitised name {name!r} inside the upload dir, got {saved!r}"
        return None

    return check


def underscore_header_dropped(response: RawResponse) -> str | None:
    seen = response.json()
    forged = {k: v for k, v in seen["headers"].items() if "6.6.6.6" in v or "_" in k}
    if forged or seen["remote_addr"] != "127.0.0.1":
        return f"a header with an underscore reached the app: {forged}, remote_addr {seen['remote_addr']}"
    return None


SMUGGLED = "GET /errors/teapot HTTP/1.1\r\nHost: {host}\r\n\r\n"
BODY = "POST /landing HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
CHUNKED = BODY + "Transfer-Encoding: chunked\r\n\r\n"
UPLOAD_PUT = (
    "PUT /upload/{name} HTTP/1.1\r\nHost: {{host}}\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
)
TE_CL = "client sent Content-Length and Transfer-Encoding: nginx >= 1.21.1 refuses both (no smuggling)"
NUL_CR = "nginx refuses NUL, bare CR and invalid header lines with 400"
ABOVE_ROOT = "nginx normalises the URI: a path above / is refused with 400"
# LAB_MAX_HEADER_KIB: nginx's large_client_header_buffers (snippets/header-sizes.conf).
HEADER_KIB = labsettings.MAX_HEADER_KIB.value()
LONG = f"large_client_header_buffers (4 x {HEADER_KIB}k): over-long lines get 414 or 494->400 JSON"

CASES = [
    # Framing: Content-Length / Transfer-Encoding / chunks.
    Case(
        "cl-and-te-smuggling",
        BODY + f"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}",
        400,
        TE_CL,
        check=one_response_only,
    ),
    Case(
        "te-and-cl-smuggling",
        BODY + f"Transfer-Encoding: chunked\r\nContent-Length: 50\r\n\r\n0\r\n\r\n{SMUGGLED}",
        400,
        TE_CL,
        check=one_response_only,
    ),
    Case(
        "te-with-http10",
        "POST /landing HTTP/1.0\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "Transfer-Encoding is HTTP/1.1 only: nginx refuses it on 1.0",
    ),
    Case(
        "te-unknown-coding",
        BODY + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        "nginx implements only chunked; 501 is in json-errors.conf's error_page list",
    ),
    Case(
        "two-content-lengths",
        BODY + "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        400,
        "nginx refuses a duplicate Content-Length",
    ),
    Case(
        "content-length-negative",
        BODY + "Content-Length: -1\r\n\r\n",
        400,
        "nginx refuses an invalid Content-Length",
    ),
    Case(
        "content-length-not-a-number",
        BODY + "Content-Length: 1x\r\n\r\nx",
        400,
        "nginx refuses an invalid Content-Length",
    ),
    Case(
        "chunk-size-not-hex",
        CHUNKED + "zz\r\nab\r\n0\r\n\r\n",
        400,
        "nginx: client sent invalid chunked body",
    ),
    Case(
        "chunk-size-overflow",
        CHUNKED + "fffffffffffffffffff\r\nab\r\n0\r\n\r\n",
        400,
        "nginx: client sent invalid chunked body",
    ),
    Case(
        "chunk-longer-than-size",
        CHUNKED + "2\r\nabcdef\r\n0\r\n\r\n",
        400,
        "nginx: client sent invalid chunked body",
    ),
    Case(
        "chunk-bad-unbuffered-upload",
        "PUT /upload/bad-chunk.bin HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n4\r\nabcd\r\nzz\r\n",
        400,
        "nginx checks chunks even with proxy_request_buffering off",
    ),
    # Size limits of the request line and headers.
    Case("request-line-too-long", get("/" + "a" * (HEADER_KIB + 1) * 1024), 414, LONG),
    Case("header-too-long", get(headers=f"X-Big: {'a' * (HEADER_KIB + 1) * 1024}\r\n"), 400, LONG),
    Case(
        "headers-too-many-bytes",
        get(headers="".join(f"X-H{i}: {'a' * (HEADER_KIB - 1) * 1024}\r\n" for i in range(5))),
        400,
        LONG,
    ),
    Case(
        "headers-too-many-lines",
        get("/debug/request", "".join(f"X-H{i}: v\r\n" for i in range(95))),
        400,
        "gevent's pywsgi takes 100 header lines (nginx adds its own): its JSON 400 "
        "(labapp/patches/clienterrors.py)",
    ),
    # Header syntax.
    Case(
        "header-name-with-underscore",
        get("/debug/request", "X_Forwarded_For: 6.6.6.6\r\nMy_Header: x\r\n"),
        200,
        "underscores_in_headers off: nginx drops such headers (and gevent's pywsgi would too)",
        check=underscore_header_dropped,
    ),
    Case("nul-in-header-value", get(headers="X-A: a\x00b\r\n"), 400, NUL_CR),
    Case("nul-in-header-name", get(headers="X-\x00A: b\r\n"), 400, NUL_CR),
    Case("bare-cr-in-header-value", get(headers="X-A: a\rb\r\n"), 400, NUL_CR),
    Case("space-before-colon", get(headers="X-A : b\r\n"), 400, NUL_CR),
    Case("obsolete-line-folding", get(headers="X-A: b\r\n folded\r\n"), 400, NUL_CR),
    # Host.
    Case(
        "host-not-served",
        get("/redirect/external").replace("{host}", "evil.example"),
        421,
        "the default_server refuses unknown Hosts (conf.d/lab.conf)",
        check=no_location,
    ),
    Case(
        "host-not-served-on-redirect-port",
        get("/redirect/status/308").replace("{host}", "evil.example:8443"),
        421,
        "the default_server refuses unknown Hosts (conf.d/lab.conf)",
        check=no_location,
    ),
    Case("two-hosts", get(headers="Host: evil.example\r\n"), 400, "nginx refuses a duplicate Host"),
    Case("host-with-slash", get().replace("{host}", "a/b"), 400, "nginx refuses an invalid Host"),
    Case(
        "absolute-uri-other-host",
        get("https://evil.example/redirect/external"),
        421,
        "the request-target's host wins over Host and is not served",
        check=no_location,
    ),
    Case(
        "http10-without-host",
        "GET /healthz HTTP/1.0\r\n\r\n",
        421,
        "no Host: the default_server answers 421 JSON",
        check=no_location,
    ),
    Case(
        "http11-without-host",
        "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        400,
        "HTTP/1.1 requires Host",
    ),
    # Request line.
    Case(
        "bad-method-characters",
        get(method="G@T"),
        400,
        "unparsable request line: error_page must target a URI, not a @named location",
    ),
    Case("http-version-2-in-text", get(version="HTTP/2.0"), 505, "nginx: 505 JSON via json-errors.conf"),
    Case("http-version-9", get(version="HTTP/9.9"), 505, "nginx: 505 JSON via json-errors.conf"),
    Case("tls-record-inside-tls", "\x16\x03\x01garbage\r\n\r\n", 400, "garbage request line: 400 JSON"),
    # Upload names and bodies.
    Case("upload-path-dotdot", UPLOAD_PUT.format(name="../../etc/x"), 400, ABOVE_ROOT),
    Case("upload-path-encoded-dotdot", UPLOAD_PUT.format(name="..%2F..%2Fetc%2Fx"), 400, ABOVE_ROOT),
    Case("upload-path-encoded-nul", UPLOAD_PUT.format(name="a%00b"), 400, "nginx refuses %00 in the URI"),
    Case(
        "multipart-without-boundary",
        multipart("a.txt", "multipart/form-data"),
        400,
        "no boundary: no file part; the upload view answers 400 JSON",
    ),
    Case(
        "multipart-wrong-boundary",
        multipart("a.txt", "multipart/form-data; boundary=OTHER"),
        400,
        "boundary not found: no file part; the upload view answers 400 JSON",
    ),
    Case(
        "multipart-truncated", multipart("a.txt", cut=12), 400, "no closing boundary: the part is discarded"
    ),
    Case(
        "multipart-name-dotdot",
        multipart("../../etc/passwd"),
        201,
        "secure_filename strips path parts",
        check=saved_as("etc_passwd"),
    ),
    Case(
        "multipart-name-absolute",
        multipart("/etc/passwd"),
        201,
        "secure_filename strips path parts",
        check=saved_as("etc_passwd"),
    ),
    Case("multipart-name-nul", multipart("a\x00.txt"), 400, "uploads.safe_name refuses NUL"),
    Case("multipart-name-only-dots", multipart(".."), 400, "uploads.safe_name: nothing usable is left"),
    # Websocket handshakes.
    Case("ws-version-12", ws_handshake(version="12"), 400, "websocket-handshake-map.conf: only version 13"),
    Case(
        "ws-key-not-base64-16",
        ws_handshake(key="short"),
        400,
        "websocket-handshake-map.conf: key is 16 bytes",
    ),
    Case("ws-key-missing", ws_handshake(key=None), 400, "websocket-handshake-map.conf: key is required"),
    Case(
        "ws-handshake-with-post", ws_handshake().replace("GET ", "POST ", 1), 405, "the ws route is GET only"
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_request_is_refused_clearly(lab: Lab, upload_dir: Path, case: Case) -> None:
    before = stackctl.partial_files(upload_dir)
    response = exchange(lab, case.request.replace("{host}", lab.host).encode("latin-1"))
    report.tally("bad input (raw TLS socket)", response.status)
    assert response.status == case.status, (
        f"{case.id}: expected {case.status}, got {response.status}: {response.describe()}. "
        f"Cause: {case.cause}"
    )
    if case.json:
        assert response.is_json, f"{case.id}: {case.status} is not JSON: {response.describe()}"
        if case.status >= 400:
            body = response.json()
            assert set(body) == {"code", "msg", "request_id"} and body["code"] == case.status, body
    if case.check is not None and (problem := case.check(response)):
        pytest.fail(f"{case.id}: {problem}. Cause: {case.cause}")
    assert stackctl.partial_files(upload_dir) == before, f"{case.id} left a temp upload file behind"


def test_enough_cases() -> None:
    assert len(CASES) >= 30, "issue 5 asks for at least 30 raw-socket cases"


def test_gunicorn_itself_drops_underscore_headers(lab: Lab) -> None:
    """Straight to gunicorn (no nginx): gevent's pywsgi, which parses requests for the
    gevent-websocket worker, skips header names with '_' so X_Forwarded_For cannot pose as
    HTTP_X_FORWARDED_FOR in the WSGI environ. gunicorn's own parser (sync/gevent workers)
    has header_map=drop by default, to the same effect."""
    request = (
        "GET /debug/request HTTP/1.1\r\nHost: localhost\r\nX_Forwarded_Host: evil.example\r\n"
        "Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", endpoints.app_port()), timeout=10) as sock:
        sock.sendall(request.encode())
        seen = parse_response(read_until_close(sock)).json()
    assert seen["host"] == "localhost", f"gunicorn passed an underscore header through: {seen}"


def test_a_body_under_connection_upgrade_ends_where_its_framing_says(lab: Lab) -> None:
    """Straight to gunicorn, as nginx sends every request under `proxy_set_header Connection
    "upgrade"` (connection-upgrade-always): gevent's pywsgi takes each for an upgrade and would
    hand the app the socket as the body. The baseline (labapp/patches/wsupgrade.py, item 2) bounds it by
    Content-Length and by its chunked framing alike, and the keep-alive connection serves the
    next request. A hang here is a TimeoutError."""
    body = bytes(range(256)) * 64  # 16 KiB
    connection = http.client.HTTPConnection("127.0.0.1", endpoints.app_port(), timeout=10)
    try:
        for framing in ("content-length", "chunked"):
            headers = {"Connection": "upgrade", "Content-Type": "application/octet-stream"}
            if framing == "chunked":
                connection.request("POST", "/landing", body=iter([body[:5000], body[5000:]]),
                                   headers=headers, encode_chunked=True)  # fmt: skip
            else:
                connection.request("POST", "/landing", body=body, headers=headers)
            response = connection.getresponse()
            seen = json.loads(response.read())
            assert response.status == 200, f"{framing}: {response.status} {seen}"
            assert (seen["size"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest()), (
                f"{framing} body under Connection: upgrade arrived as {seen['size']} bytes"
            )
    finally:
        connection.close()


PLAIN_CASES = {
    # (port, Host sent, extra headers): status, what the message must mention
    "plain-http-to-tls-port": (endpoints.https_port, "localhost", "", 400, "plain HTTP"),
    "http-port-host-not-served": (endpoints.http_port, "evil.example", "", 421, "Host"),
    "http-port-two-content-lengths": (
        endpoints.http_port,
        "localhost",
        "Content-Length: 1\r\nContent-Length: 2\r\n",
        400,
        "bad request",
    ),
}


@pytest.mark.parametrize("case", PLAIN_CASES.values(), ids=PLAIN_CASES.keys())
def test_plain_tcp_bad_request_is_refused_clearly(lab: Lab, case: tuple) -> None:
    """The HTTPS port's 497 page (json-errors.conf) and the HTTP port's own errors: JSON, never
    a redirect (https-redirect.conf keeps its return inside a location) or HTML."""
    port, host, extra, status, mentions = case
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}:{port()}\r\n{extra}Connection: close\r\n\r\nab"
    response = plain_exchange(port(), request.encode())
    report.tally("bad input (plain TCP)", response.status)
    assert response.status == status and response.is_json, f"expected JSON {status}: {response.describe()}"
    assert mentions in response.json()["msg"], response.json()
