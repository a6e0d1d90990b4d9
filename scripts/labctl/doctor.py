"""`scripts/lab doctor`: probe any deployment of the app (LAB_URL, LAB_CA, LAB_HTTP_URL), even one
behind the user's own nginx, and print a checklist where each failure names its likely cause.

Standard library only (it runs before .venv exists): http.client over verified TLS, and a
minimal websocket handshake on an ssl socket.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from . import hints, paths

TIMEOUT = 10
FORGED_ADDR = "203.0.113.66"  # TEST-NET-3: never a real client
UPLOAD_PROBE_BYTES = 2 * 1024 * 1024  # over nginx's default client_max_body_size of 1m
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: could not be probed here
    seen: str
    hints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "-").split(";")[0]

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Target:
    url: str
    ca: Path | None  # None: the system's trust store
    http_url: str | None  # the plain-HTTP entry point, when known

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 443

    @property
    def host(self) -> str:
        """The Host header a client sends: the port only when it is not 443."""
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The path the app is mounted under ('' at the root)."""
        return urlsplit(self.url).path.rstrip("/")

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca) if self.ca else None)

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        base: str | None = None,
    ) -> Reply:
        parts = urlsplit(base or self.url)
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, context=self.ssl_context(), timeout=TIMEOUT
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
        try:
            conn.request(method, parts.path.rstrip("/") + path, body=body, headers=headers or {})
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            conn.close()


def target_from_env() -> Target:
    url = paths.lab_url().rstrip("/")
    ca: Path | None = paths.lab_ca()
    if "LAB_CA" in os.environ and not paths.lab_ca().is_file():
        raise SystemExit(f"lab doctor: LAB_CA={paths.lab_ca()} is not a file")
    if not paths.lab_ca().is_file():
        ca = None  # no lab CA here: a deployment with a publicly trusted certificate
    http_url = os.environ.get("LAB_HTTP_URL")
    hostname, port = urlsplit(url).hostname or "", urlsplit(url).port or 443
    if http_url is None and hostname in LOOPBACK:
        http_url = f"http://{hostname}:{paths.http_port()}"
    elif http_url is None and port == 443:
        http_url = f"http://{hostname}"
    return Target(url, ca, http_url)


def _against(seen: str, got: str, wanted: str) -> str:
    return seen if got == wanted else f"{seen} (want {wanted})"


def _is_envelope(reply: Reply, status: int) -> bool:
    body = reply.json()
    return (
        reply.status == status
        and reply.content_type == "application/json"
        and isinstance(body, dict)
        and set(body) == {"code", "msg", "request_id"}
        and body["code"] == status
    )


def _host_hints(target: Target, seen_host: str) -> tuple[str, ...]:
    if seen_host == target.hostname and target.host != target.hostname:
        return (hints.HOST_DROPS_PORT,)
    return (hints.UPSTREAM_HOST,)


def probe_external_redirect(target: Target) -> Iterator[Check]:
    reply = target.request("GET", "/redirect/external")
    location = reply.headers.get("location", "")
    wanted = f"https://{target.host}{target.prefix}/landing"
    causes: list[str] = []
    if location.startswith("http://"):
        causes.append(hints.SCHEME_LOST)
    if urlsplit(location).netloc != target.host:
        causes.extend(_host_hints(target, urlsplit(location).netloc))
    yield Check(
        "external redirect keeps https, host and port",
        location == wanted,
        _against(f"{reply.status} Location: {location or '(none)'}", location, wanted),
        tuple(causes),
    )


def probe_https_redirect(target: Target) -> Iterator[Check]:
    name = "plain HTTP redirects to the same URL on HTTPS"
    if target.http_url is None:
        yield Check(name, None, "no HTTP entry point known: set LAB_HTTP_URL=http://host:port")
        return
    path = "/landing?from=doctor"
    try:
        reply = target.request("GET", path, base=target.http_url)
    except OSError as error:
        yield Check(name, None, f"{target.http_url}: {error}")
        return
    location = reply.headers.get("location", "")
    wanted = f"https://{target.host}{target.prefix}{path}"
    redirected = reply.status in {301, 302, 307, 308}
    yield Check(
        name,
        redirected and location == wanted,
        _against(f"{reply.status} Location: {location or '(none)'}", location, wanted),
        (hints.HTTPS_REDIRECT_DROPS_PORT,) if redirected else (),
    )


def probe_forwarded_headers(target: Target) -> Iterator[Check]:
    reply = target.request("GET", "/debug/request", headers={"X-Forwarded-For": FORGED_ADDR})
    seen = reply.json()
    if reply.status != 200 or not isinstance(seen, dict):
        yield Check("GET /debug/request answers", False, f"{reply.status} {reply.content_type}")
        return
    headers = {k.lower() for k in seen.get("headers", {})}
    yield Check(
        "the app sees https", seen["scheme"] == "https", f"scheme {seen['scheme']}", (hints.SCHEME_LOST,)
    )
    yield Check(
        "the app sees the Host the client sent",
        seen["host"] == target.host,
        _against(f"host {seen['host']!r}", seen["host"], target.host),
        _host_hints(target, seen["host"]),
    )
    yield Check(
        "a forged X-Forwarded-For is ignored",
        seen["remote_addr"] != FORGED_ADDR,
        f"X-Forwarded-For: {FORGED_ADDR} -> remote_addr {seen['remote_addr']}",
        (hints.XFF_SPOOFING,),
    )
    yield Check(
        "the app gets nginx's X-Request-ID",
        "x-request-id" in headers,
        f"request_id {seen.get('request_id')}",
        (hints.REQUEST_ID,),
    )


@dataclass
class WsReply:
    status: int
    frame_opcode: int | None = None  # first frame after a 101: 1 text, 8 close
    payload: bytes = b""
    accept_ok: bool = False


def _read_exact(sock: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return data


def websocket_probe(target: Target, path: str, read_frame: bool = True) -> WsReply:
    """Handshake over TLS (RFC 6455), then (``read_frame``) read the server's first frame.

    Reports the handshake's status line even when the server cuts the error body short, which
    gevent-websocket does for its 400/402 answers (a full client only says "connection lost").
    """
    key = base64.b64encode(os.urandom(16)).decode()
    path = target.prefix + path
    handshake = (
        f"GET {path} HTTP/1.1\r\nHost: {target.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with (
        socket.create_connection((target.hostname, target.port), timeout=TIMEOUT) as raw,
        target.ssl_context().wrap_socket(raw, server_hostname=target.hostname) as sock,
    ):
        sock.sendall(handshake.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {head!r}")
            head += chunk
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        reply = WsReply(int(status_line.split()[1]))
        if reply.status != 101 or not read_frame:
            return reply
        digest = hashlib.sha1((key + WS_GUID).encode()).digest()
        reply.accept_ok = headers.get("sec-websocket-accept") == base64.b64encode(digest).decode()
        first, second = _read_exact(sock, 2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(_read_exact(sock, 2), "big")
        elif length == 127:
            length = int.from_bytes(_read_exact(sock, 8), "big")
        reply.frame_opcode, reply.payload = first & 0x0F, _read_exact(sock, length)
        return reply


def _ws_status_hints(status: int) -> tuple[str, ...]:
    if status == 400:
        return (hints.WS_NO_UPGRADE,)
    if status in {402, 426, 505}:
        return (hints.WS_HTTP10,)
    return (hints.WS_NO_UPGRADE, hints.WS_HTTP10)


def probe_websocket(target: Target, app_sees_https: bool) -> Iterator[Check]:
    try:
        reply = websocket_probe(target, "/ws/info")
    except OSError as error:
        yield Check("websocket /ws/info upgrades (101)", False, str(error), (hints.WS_NO_UPGRADE,))
        return
    yield Check(
        "websocket /ws/info upgrades (101)",
        reply.status == 101 and reply.accept_ok,
        f"handshake answered {reply.status}",
        _ws_status_hints(reply.status),
    )
    if reply.status != 101:
        return
    if reply.frame_opcode != 1:
        yield Check(
            "the websocket stays open after 101",
            False,
            f"first frame has opcode {reply.frame_opcode} (8 = close)",
            (hints.WS_NO_FLAG,),
        )
        return
    scheme = json.loads(reply.payload).get("scheme")
    yield Check(
        "/ws/info reports wss",
        scheme == "wss",
        f'"scheme": "{scheme}"',
        (hints.LOCATION_DROPS_HEADERS if app_sees_https else hints.SCHEME_LOST,),
    )


def probe_upload_limit(target: Target) -> Iterator[Check]:
    reply = target.request("PUT", "/upload/lab-doctor-probe.bin", body=b"\0" * UPLOAD_PROBE_BYTES)
    body = reply.json()
    stored = isinstance(body, dict) and body.get("size") == UPLOAD_PROBE_BYTES
    yield Check(
        "a 2 MiB upload is accepted",
        reply.status == 201 and stored,
        f"{reply.status} {reply.content_type}",
        (hints.BODY_LIMIT,) if reply.status == 413 else (hints.UPLOAD_STREAMING,),
    )


def probe_error_format(target: Target) -> Iterator[Check]:
    for path, status, what in (
        ("/lab-doctor/no-such-page", 404, "the app's 404"),
        ("/errors/crash", 500, "the app's 500"),
        ("/bugs/big-header", 502, "nginx's 502"),
    ):
        reply = target.request("GET", path)
        name = f"{what} is the JSON error envelope"
        if status == 502 and reply.status == 200:
            yield Check(name, None, "the proxy accepted a 32 kB response header: no 502 to look at")
            continue
        yield Check(
            name,
            _is_envelope(reply, status),
            f"{path}: {reply.status} {reply.content_type}",
            (hints.HTML_ERRORS,),
        )


def run(target: Target) -> list[Check]:
    checks: list[Check] = []
    probes: list[Callable[[Target], Iterator[Check]]] = [
        probe_external_redirect,
        probe_https_redirect,
        probe_forwarded_headers,
    ]
    for probe in probes:
        checks.extend(probe(target))
    app_sees_https = any(c.name == "the app sees https" and c.ok for c in checks)
    checks.extend(probe_websocket(target, app_sees_https))
    checks.extend(probe_upload_limit(target))
    checks.extend(probe_error_format(target))
    return checks


def failed_hints(checks: list[Check]) -> set[str]:
    return {hint for check in checks if check.ok is False for hint in check.hints}


def report(target: Target, checks: list[Check]) -> str:
    lines = [f"lab doctor: {target.url} (CA: {target.ca or 'system trust store'})"]
    for check in checks:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[check.ok]
        lines.append(f"  [{mark}] {check.name}: {check.seen}")
        if check.ok is False:
            lines.extend(f"         likely cause: {hint}" for hint in check.hints)
    failed = sum(c.ok is False for c in checks)
    skipped = sum(c.ok is None for c in checks)
    lines.append(
        f"{len(checks)} checks: {len(checks) - failed - skipped} ok, {failed} failed, {skipped} skipped"
    )
    return "\n".join(lines)


def main() -> int:
    target = target_from_env()
    try:
        checks = run(target)
    except (OSError, http.client.HTTPException) as error:
        print(f"lab doctor: cannot reach {target.url}: {error}\n  start a stack or set LAB_URL / LAB_CA")
        return 2
    print(report(target, checks))
    return 1 if any(c.ok is False for c in checks) else 0
