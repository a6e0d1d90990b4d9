"""Hand-written HTTP/1.x over a verified TLS socket: for requests no well-behaved client sends."""

from __future__ import annotations

import json
import socket
import ssl
from contextlib import suppress
from dataclasses import dataclass, field

from support.lab import Lab


@dataclass
class RawResponse:
    status: int | None  # None: the server closed without answering
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    raw: bytes = b""

    def json(self) -> dict:
        return json.loads(self.body)

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")

    def describe(self) -> str:
        return repr(self.raw[:400])


def parse_response(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return RawResponse(status=None, raw=raw)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return RawResponse(status=int(parts[1]), headers=headers, body=body, raw=raw)


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def tls_socket(
    lab: Lab, timeout: float = 10, host: str = "localhost", alpn: str = "http/1.1", source: str = ""
) -> ssl.SSLSocket:
    """A TLS connection to nginx's HTTPS port, the certificate verified for ``host``; from the
    loopback address ``source`` (127.0.0.N: another client address to nginx) when given."""
    context = lab.ssl_context()
    context.set_alpn_protocols([alpn])
    port = int(lab.host.rsplit(":", 1)[1])
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0) if source else None
    )
    return context.wrap_socket(sock, server_hostname=host)


def read_until_close(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes (or stops talking for the socket timeout)."""
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionError, ssl.SSLError):
        pass
    return data


def exchange(lab: Lab, request: bytes, timeout: float = 10, source: str = "") -> RawResponse:
    """Send ``request`` (which should ask for Connection: close) and parse the one answer."""
    with tls_socket(lab, timeout, source=source) as sock:
        # The server may answer and close before the whole request is sent.
        with suppress(ConnectionError, ssl.SSLError):
            sock.sendall(request)
        return parse_response(read_until_close(sock))


def plain_exchange(port: int, request: bytes, timeout: float = 10) -> RawResponse:
    """The same over plain TCP: for the HTTP port, or plain HTTP sent to the HTTPS port."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with suppress(ConnectionError):
            sock.sendall(request)
        return parse_response(read_until_close(sock))
