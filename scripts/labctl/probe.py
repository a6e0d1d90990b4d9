"""HTTP requests the way the lab's diagnostics make them: one request per connection, over TLS
verified against the endpoint's CA, redirects never followed, any body streamed. Standard library
only (the doctor and `lab check` run before the virtualenv exists). Websockets: wsclient.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import ssl
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import wsclient
from .endpoints import Endpoint

TIMEOUT = 10
MIB = 1024 * 1024
FORGED_ADDR = "203.0.113.66"  # TEST-NET-3: never a real client


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "-").split(";")[0]

    @property
    def location(self) -> str:
        return self.headers.get("location", "")

    def json(self) -> object:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def describe(self) -> str:
        return f"{self.status} {self.content_type}"


def pattern_body(size: int, seed: bytes = b"proxylab") -> Iterator[bytes]:
    """``size`` deterministic bytes in 1 MiB pieces, never held whole in memory."""
    block = hashlib.sha256(seed).digest() * (MIB // 32)
    sent = 0
    while sent < size:
        piece = block[: min(MIB, size - sent)]
        sent += len(piece)
        yield piece


class _HTTPConnection(http.client.HTTPConnection):
    """http.client that connects to ``address`` while Host stays the URL's (see Endpoint.address)."""

    def __init__(self, host: str, port: int | None, address: tuple[str, int], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection(self.address, self.timeout)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(
        self, host: str, port: int | None, address: tuple[str, int], context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(host, port, context=context, timeout=timeout)
        self.address = address
        self.tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection(self.address, self.timeout)
        self.sock = self.tls_context.wrap_socket(raw, server_hostname=self.host)


def connection(endpoint: Endpoint, url: str, timeout: float) -> http.client.HTTPConnection:
    """A connection for ``url`` through the endpoint's address override and TLS context."""
    parts = urlsplit(url)
    address = endpoint.address(url)
    context = endpoint.context_for(url)
    if context is None:
        return _HTTPConnection(parts.hostname or "", parts.port, address, timeout)
    return _HTTPSConnection(parts.hostname or "", parts.port, address, context, timeout)


def request(
    endpoint: Endpoint,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | Iterable[bytes] | None = None,
    length: int | None = None,
    base: str | None = None,
    timeout: float = TIMEOUT,
) -> Reply:
    """One request to ``endpoint`` (or to ``base``, e.g. its plain-HTTP entry point).

    An iterable body is sent with Content-Length ``length``, or chunked without one."""
    parts = urlsplit(base or endpoint.url)
    conn = connection(endpoint, base or endpoint.url, timeout)
    sent = dict(headers or {})
    if length is not None:
        sent["Content-Length"] = str(length)
    try:
        # http.client sends an iterable chunked by itself when no Content-Length is given.
        conn.request(method, parts.path.rstrip("/") + path, body=body, headers=sent)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def open_socket(endpoint: Endpoint, url: str | None = None, timeout: float = TIMEOUT) -> socket.socket:
    """A connected socket (TLS for https://) to ``url``'s server, for requests written by hand."""
    raw = socket.create_connection(endpoint.address(url), timeout=timeout)
    context = endpoint.context_for(url)
    if context is None:
        return raw
    try:
        return context.wrap_socket(raw, server_hostname=urlsplit(url or endpoint.url).hostname)
    except BaseException:
        raw.close()
        raise


def raw_exchange(endpoint: Endpoint, data: bytes, url: str | None = None, timeout: float = TIMEOUT) -> bytes:
    """Send ``data`` as it is and read until the server closes (requests no client library lets
    you write: an absolute-form request line with another Host)."""
    with open_socket(endpoint, url, timeout) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass  # a reset after the answer (nginx's 444, a refusal): keep what came
        return b"".join(chunks)


def websocket(
    endpoint: Endpoint, path: str, headers: Mapping[str, str] | None = None, timeout: float = TIMEOUT
) -> tuple[wsclient.Handshake, wsclient.WebSocket | None]:
    """The upgrade request to ``path`` (wss:// or ws:// as the endpoint is): the handshake, and
    the open socket after a 101."""
    return wsclient.connect(
        endpoint.address(),
        endpoint.prefix + path,
        endpoint.host,
        endpoint.context_for(),
        endpoint.hostname,
        headers=headers,
        timeout=timeout,
    )


def alt_svc_h3(value: str, default_port: int) -> int | None:
    """The UDP port an Alt-Svc header offers HTTP/3 on (RFC 7838: ``h3=":8443"; ma=86400``, a
    list of alternatives, or ``clear``), None when it offers none. An alternative on another host
    counts too: the probes still connect to the endpoint's own address, on that port."""
    for alternative in value.split(","):
        protocol, _, rest = alternative.strip().partition("=")
        if protocol.strip() != "h3":
            continue
        authority = rest.split(";", 1)[0].strip().strip('"')
        port = authority.rpartition(":")[2]
        return int(port) if port.isdigit() else default_port
    return None


def is_envelope(reply: Reply, status: int) -> bool:
    """The lab's JSON error envelope with this status."""
    body = reply.json()
    return (
        reply.status == status
        and reply.content_type == "application/json"
        and isinstance(body, dict)
        and set(body) == {"code", "msg", "request_id"}
        and body["code"] == status
    )
