"""gevent-websocket's message reader at C speed, in bounded steps that let the worker's other
clients run.

gevent-websocket 0.10.1 reads a frame's whole payload at once, unmasks it in a per-byte Python
loop (``Header.mask_payload``) and validates UTF-8 in pure Python (``Utf8Validator``, unless
``wsaccel`` is importable), once per frame and once more over the whole message: one 16 MiB text
message took 3.4 s to echo (the ``websockets`` library: 0.12 s), and every other websocket of the
worker waited that long, as nothing in between yields to gevent's hub. Invalid UTF-8 was noticed
only once the whole frame was in (Autobahn 6.4.3/6.4.4 NON-STRICT).

Here a payload is read as it arrives (at most ``CHUNK`` bytes a read), unmasked with one XOR of
two ints (``int.from_bytes``/``to_bytes``: C loops), decoded by the codec's incremental UTF-8
decoder (C; it raises at the first invalid sequence, before the rest of the frame arrives),
and the reader yields to the hub whenever it has run ``YIELD_EVERY_S`` without a pause. The
largest message is checked against the frame headers before any payload is read
(``limit_messages``, LAB_WS_MAX_MESSAGE: ``MessageTooBig``).
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Iterator

import gevent
from geventwebsocket.exceptions import ProtocolError, WebSocketError
from geventwebsocket.websocket import Header, WebSocket

import labsettings

from . import Patch, wsdeflate

CHUNK = 256 * 1024
YIELD_EVERY_S = 0.002
YIELD_S = 0.0001
# The handler attribute holding the current message cap (WebSocket has __slots__).
_LIMIT = "_lab_max_message"
_DATA = (WebSocket.OPCODE_TEXT, WebSocket.OPCODE_BINARY)
_utf8_decoder = codecs.getincrementaldecoder("utf-8")


class MessageTooBig(WebSocketError):
    """A frame header announced more than the message cap allows; nothing of it was read."""


def limit_messages(ws: WebSocket, max_bytes: int) -> None:
    """Messages read from ``ws`` from now on hold at most ``max_bytes`` (MessageTooBig)."""
    setattr(ws.handler, _LIMIT, max_bytes)


def unmask(data: bytes, mask: bytes, offset: int = 0) -> bytes:
    """``data`` XOR the 4-byte ``mask`` repeated, starting at byte ``offset`` of the payload."""
    size = len(data)
    if not size:
        return b""
    phase = offset % 4
    repeated = (mask * (size // 4 + 2))[phase : phase + size]
    return (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(size, "little")


class Pacer:
    """Yields to gevent's hub once the reader has run YIELD_EVERY_S since its last pause."""

    __slots__ = ("since",)

    def __init__(self) -> None:
        self.since = time.monotonic()

    def tick(self) -> None:
        if time.monotonic() - self.since >= YIELD_EVERY_S:
            # Not sleep(0): that runs the greenlets already runnable, maybe this one again, without
            # polling the sockets; a timer, however short, waits for the loop's next turn, which
            # polls them (the other clients' frames are read then).
            gevent.sleep(YIELD_S)
            self.since = time.monotonic()


def _payload(ws: WebSocket, header: Header, pacer: Pacer) -> Iterator[bytes]:
    """The frame's payload, unmasked, in pieces of at most CHUNK bytes as they arrive."""
    read1 = ws.handler.rfile.read1
    offset = 0
    while offset < header.length:
        data = read1(min(CHUNK, header.length - offset))
        if not data:
            raise WebSocketError("Unexpected EOF reading frame payload")
        yield unmask(data, header.mask, offset) if header.mask else data
        offset += len(data)
        pacer.tick()


def read_message(self: WebSocket) -> str | bytearray | None:
    """What gevent-websocket's ``read_message`` returns for the same frames (a str, a bytearray,
    or None after a close frame), read in bounded pieces."""
    cap = getattr(self.handler, _LIMIT, None)
    pacer = Pacer()
    deflate = wsdeflate.of(self.handler)
    opcode = 0
    compressed = False
    size = 0
    inflated_size = 0
    decoder = None
    text: list[str] = []
    data = bytearray()

    def take(piece: bytes) -> None:
        if decoder is not None:
            text.append(decoder.decode(piece))  # UnicodeDecodeError at the first bad sequence
        else:
            data.extend(piece)

    while True:
        header = Header.decode_header(self.stream)
        if header.flags and not (deflate and header.flags == wsdeflate.RSV1 and header.opcode in _DATA):
            raise ProtocolError(f"reserved bits set without an extension: {header!r}")
        if header.opcode in _DATA:
            if opcode:
                raise ProtocolError(f"a new message (opcode {header.opcode}) inside a fragmented one")
            opcode = header.opcode
            compressed = bool(header.flags)
            if opcode == WebSocket.OPCODE_TEXT:
                decoder = _utf8_decoder()
        elif header.opcode == WebSocket.OPCODE_CONTINUATION:
            if not opcode:
                raise ProtocolError("a continuation frame outside a message")
        elif header.opcode in (WebSocket.OPCODE_PING, WebSocket.OPCODE_PONG, WebSocket.OPCODE_CLOSE):
            control = b"".join(_payload(self, header, pacer))  # at most 125 bytes (decode_header)
            if header.opcode == WebSocket.OPCODE_CLOSE:
                self.handle_close(header, control)
                return None
            if header.opcode == WebSocket.OPCODE_PING:
                self.handle_ping(header, control)
            continue
        else:
            raise ProtocolError(f"reserved opcode {header.opcode}")
        size += header.length
        if cap is not None and size > cap:
            raise MessageTooBig(f"message over {cap} bytes")
        for piece in _payload(self, header, pacer):
            if not compressed:
                take(piece)
                continue
            for inflated in deflate.inflate(piece, CHUNK):  # type: ignore[union-attr]
                inflated_size = _count_inflated(inflated, cap, inflated_size)
                take(inflated)
                pacer.tick()
        if header.fin:
            break
    if compressed:
        for inflated in deflate.end_of_message(CHUNK):  # type: ignore[union-attr]
            inflated_size = _count_inflated(inflated, cap, inflated_size)
            take(inflated)
    if decoder is not None:
        text.append(decoder.decode(b"", final=True))
        return "".join(text)
    return data


def _count_inflated(piece: bytes, cap: int | None, held: int) -> int:
    """The message's inflated size with ``piece``; MessageTooBig past the cap (a deflate bomb)."""
    if cap is not None and held + len(piece) > cap:
        raise MessageTooBig(f"message over {cap} bytes once inflated")
    return held + len(piece)


PATCHES = (
    Patch(
        target="geventwebsocket.websocket:WebSocket.read_message",
        replacement=read_message,
        why="per-byte Python unmasking and UTF-8 validation, whole frames read without yielding: "
        "a 16 MiB message took 3.4 s and stalled the worker's other clients as long",
        upstream="gevent-websocket (jgelens/gevent-websocket): unmask with int.from_bytes or "
        "wsaccel, read payloads in pieces; no release since 0.10.1 (2017)",
        distribution="gevent-websocket",
        version="0.10.1",
        digest="4f7e79b76a8e",
        setting=labsettings.FIX_WS_READ,
    ),
)
