"""HTTP requests the way the lab's diagnostics make them: one request per connection, over TLS
verified against the endpoint's CA, redirects never followed, any body streamed. Standard library
only (the doctor and `lab check` run before the virtualenv exists). Websockets: wsclient.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

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
    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(host, parts.port, context=endpoint.ssl_context(), timeout=timeout)
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
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


def raw_exchange(endpoint: Endpoint, data: bytes, timeout: float = TIMEOUT) -> bytes:
    """Send ``data`` as it is over TLS and read until the server closes (requests no client
    library lets you write: an absolute-form request line with another Host)."""
    with (
        socket.create_connection((endpoint.hostname, endpoint.port), timeout=timeout) as raw,
        endpoint.ssl_context().wrap_socket(raw, server_hostname=endpoint.hostname) as tls,
    ):
        tls.sendall(data)
        return b"".join(iter(lambda: tls.recv(65536), b""))


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
