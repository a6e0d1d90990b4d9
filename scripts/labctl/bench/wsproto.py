"""A minimal asyncio WebSocket client (RFC 6455), standard library only.

websocket-client needs a thread per socket; holding thousands of wss connections from one
process needs an event loop. Only what the bench uses: the handshake, masked text frames out,
unmasked frames in, close.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(RuntimeError):
    pass


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def handshake_request(path: str, host: str, key: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def check_handshake(head: bytes, key: str) -> None:
    """Raise unless ``head`` is a 101 that accepts ``key``."""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    if status_line.split(" ", 2)[1:2] != ["101"]:
        raise HandshakeError(f"handshake answered {status_line!r}, not 101")
    headers = {
        name.strip().lower(): value.strip()
        for name, sep, value in (line.partition(":") for line in header_lines)
        if sep
    }
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise HandshakeError(f"bad Sec-WebSocket-Accept in {status_line!r}")


def apply_mask(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return payload
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def encode_frame(opcode: int, payload: bytes, mask: bytes) -> bytes:
    """A final frame, masked as every client frame must be."""
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


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(
        cls, port: int, path: str, context: ssl.SSLContext | None, host: str = "localhost"
    ) -> WebSocket:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname=host if context else None
        )
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(handshake_request(path, f"{host}:{port}", key))
        try:
            check_handshake(await reader.readuntil(b"\r\n\r\n"), key)
        except BaseException:
            writer.close()
            raise
        return cls(reader, writer)

    async def send_text(self, text: str) -> None:
        self.writer.write(encode_frame(OP_TEXT, text.encode(), os.urandom(4)))
        await self.writer.drain()

    async def recv(self) -> tuple[int, bytes]:
        first = await self.reader.readexactly(2)
        head = first + await self.reader.readexactly(extra_header_size(first[1]))
        opcode, length, mask = parse_header(head)
        payload = await self.reader.readexactly(length)
        return opcode, apply_mask(payload, mask) if mask else payload

    async def recv_text(self) -> str:
        """The next data frame's text; a close frame ends it with an error."""
        while True:
            opcode, payload = await self.recv()
            if opcode == OP_CLOSE:
                raise ConnectionError(f"server closed the websocket: {payload[2:]!r}")
            if opcode in (OP_TEXT, OP_BINARY):
                return payload.decode()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (fast teardown of thousands)."""
        self.writer.transport.abort()
