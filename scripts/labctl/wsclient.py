"""The lab's one raw WebSocket client (RFC 6455), standard library only: the doctor, `lab check`,
the scenario checks and the bench all speak websocket through this module.

Raw on purpose: a diagnosis needs the handshake's status line and headers even when the server
cuts its error body short (gevent-websocket's 400/402 answers), which full clients report only
as "connection lost"; and the bench holds thousands of sockets in one process
(bench/wsfleet.py opens them with ``connect``, then reads them without blocking).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA
NO_STATUS = 1005  # a close frame without a code (RFC 6455, section 7.4.1)


class HandshakeError(RuntimeError):
    pass


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def handshake_request(path: str, host: str, key: str, headers: Mapping[str, str] | None = None) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


@dataclass(frozen=True)
class Handshake:
    """The server's answer to the upgrade request: its status line and headers (lower-case)."""

    status: int
    reason: str
    headers: dict[str, str] = field(default_factory=dict)
    accepted: bool = False  # 101 with the right Sec-WebSocket-Accept

    @classmethod
    def parse(cls, head: bytes, key: str) -> Handshake:
        status_line, *lines = head.decode("latin-1").split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HandshakeError(f"not an HTTP status line: {status_line!r}")
        headers = {
            name.strip().lower(): value.strip()
            for name, sep, value in (ln.partition(":") for ln in lines)
            if sep
        }
        status = int(parts[1])
        accepted = status == 101 and headers.get("sec-websocket-accept") == accept_key(key)
        return cls(status, parts[2] if len(parts) > 2 else "", headers, accepted)


def check_handshake(head: bytes, key: str) -> Handshake:
    """Raise unless ``head`` is a 101 that accepts ``key``."""
    answer = Handshake.parse(head, key)
    if answer.status != 101:
        raise HandshakeError(f"handshake answered {answer.status} {answer.reason}, not 101")
    if not answer.accepted:
        raise HandshakeError("bad Sec-WebSocket-Accept in the 101")
    return answer


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def encode_frame(opcode: int, payload: bytes, mask: bytes | None = None) -> bytes:
    """A final frame, masked as every client frame must be (a fresh mask unless given)."""
    mask = mask or os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + mask + apply_mask(payload, mask)


def extra_header_size(second_byte: int) -> int:
    """Bytes that follow the first two of a frame header: extended length, then mask key."""
    length_code = second_byte & 0x7F
    extended = 2 if length_code == 126 else 8 if length_code == 127 else 0
    return extended + (4 if second_byte & 0x80 else 0)


def parse_header(head: bytes) -> tuple[int, int, bytes]:
    """(opcode, payload length, mask key or b"") from a complete frame header."""
    opcode, length_code = head[0] & 0x0F, head[1] & 0x7F
    offset = 2
    if length_code == 126:
        (length,) = struct.unpack_from("!H", head, 2)
        offset = 4
    elif length_code == 127:
        (length,) = struct.unpack_from("!Q", head, 2)
        offset = 10
    else:
        length = length_code
    return opcode, length, head[offset : offset + 4] if head[1] & 0x80 else b""


def close_code(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else NO_STATUS


class WebSocket:
    """A blocking client connection, after a 101 (see ``connect``)."""

    def __init__(self, sock: socket.socket, handshake: Handshake) -> None:
        self.sock = sock
        self.handshake = handshake

    def _read_exact(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError(f"closed after {len(data)} of {size} bytes")
            data += chunk
        return bytes(data)

    def recv(self) -> tuple[int, bytes]:
        """The next frame: (opcode, payload); a close frame is returned, not raised."""
        first = self._read_exact(2)
        opcode, length, mask = parse_header(first + self._read_exact(extra_header_size(first[1])))
        payload = self._read_exact(length)
        return opcode, apply_mask(payload, mask) if mask else payload

    def send_text(self, text: str) -> None:
        self.sock.sendall(encode_frame(OP_TEXT, text.encode()))

    def settimeout(self, seconds: float) -> None:
        self.sock.settimeout(seconds)

    def close(self, code: int = 1000) -> None:
        with contextlib.suppress(OSError):  # already gone: nothing to say goodbye to
            self.sock.sendall(encode_frame(OP_CLOSE, struct.pack("!H", code)))
        self.sock.close()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def connect(
    address: tuple[str, int],
    path: str,
    host_header: str,
    context: ssl.SSLContext | None,
    server_name: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 10,
) -> tuple[Handshake, WebSocket | None]:
    """Send the upgrade request to ``address``; the handshake as answered, and the open socket
    when it is a 101. TLS (``context``) names ``server_name`` (default: the Host's name).

    The status is read even when the server closes right after it (a cut-off error body)."""
    key = new_key()
    raw = socket.create_connection(address, timeout=timeout)
    name = server_name or host_header.rsplit(":", 1)[0].strip("[]")
    try:
        sock: socket.socket = context.wrap_socket(raw, server_hostname=name) if context else raw
    except BaseException:
        raw.close()
        raise
    try:
        sock.sendall(handshake_request(path, host_header, key, headers))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)  # byte by byte: what follows the head is the first frame
            if not chunk:
                if head:
                    break  # answered, then closed mid-head: parse what came
                raise ConnectionError("closed before any answer to the handshake")
            head += chunk
        answer = Handshake.parse(head, key)
    except BaseException:
        sock.close()
        raise
    if answer.status != 101:
        sock.close()
        return answer, None
    return answer, WebSocket(sock, answer)
