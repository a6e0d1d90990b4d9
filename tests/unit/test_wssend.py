"""labapp.wssend.send_message: the app's bounded send, in fragments built by the patched frame
writer (labapp.patches.wssend: encoding, permessage-deflate, the send lock), over a real socket."""

from __future__ import annotations

import os
import struct
import zlib
from types import SimpleNamespace

import gevent
import pytest
from gevent import socket
from geventwebsocket.websocket import WebSocket

from labapp import patches, wssend
from labapp.patches import wsdeflate

TEXT, BINARY, CONT, CLOSE = 1, 2, 0, 8
patches.install(patches.all_patches())  # as create_app does


def _ws(sock: socket.socket) -> WebSocket:
    handler = SimpleNamespace(socket=sock, logger=SimpleNamespace(debug=lambda *_: None))
    stream = SimpleNamespace(read=sock.recv, write=sock.sendall, handler=handler)
    return WebSocket({}, stream, handler)


def _frames(data: bytes) -> list[tuple[int, int, bytes]]:
    """(first byte's flags and opcode, opcode, payload) of each unmasked server frame in ``data``."""
    frames = []
    at = 0
    while at < len(data):
        first, size = data[at], data[at + 1] & 0x7F
        at += 2
        if size == 126:
            (size,) = struct.unpack("!H", data[at : at + 2])
            at += 2
        elif size == 127:
            (size,) = struct.unpack("!Q", data[at : at + 8])
            at += 8
        frames.append((first & 0xF0, first & 0x0F, data[at : at + size]))
        at += size
    return frames


def _send(message: str | bytes, offer: str | None, max_bytes: int = 1 << 30) -> tuple[bool, list]:
    ours, theirs = socket.socketpair()
    ws = _ws(ours)
    if offer:
        wsdeflate.agree(ws.handler, wsdeflate.negotiate(offer))
    received = bytearray()

    def read() -> None:
        while chunk := theirs.recv(1 << 16):
            received.extend(chunk)

    reader = gevent.spawn(read)
    try:
        ok = wssend.send_message(ws, message, 5.0, max_bytes)
        ours.shutdown(socket.SHUT_WR)
        reader.join(5)
    finally:
        ours.close()
        theirs.close()
    return ok, _frames(bytes(received))


@pytest.mark.parametrize("message", [os.urandom(200 * 1024), "h\u00e9llo " * 40_000, b""])
def test_a_message_goes_out_in_fragments_that_make_it_whole(message):
    ok, frames = _send(message, None)
    assert ok
    opcode = TEXT if isinstance(message, str) else BINARY
    assert [f[1] for f in frames] == [opcode] + [CONT] * (len(frames) - 1)
    assert [f[0] for f in frames] == [0] * (len(frames) - 1) + [0x80]  # FIN on the last only
    assert all(len(f[2]) <= wssend.FRAGMENT for f in frames)
    whole = b"".join(f[2] for f in frames)
    assert whole == (message.encode() if isinstance(message, str) else message)


def test_a_compressed_message_is_fragmented_with_rsv1_on_its_first_frame_only():
    message = "h\u00e9llo " * 40_000 + os.urandom(150 * 1024).hex()
    ok, frames = _send(message, "permessage-deflate")
    assert ok and len(frames) > 1
    assert frames[0][:2] == (wsdeflate.RSV1, TEXT)
    assert all(f[0] & wsdeflate.RSV1 == 0 for f in frames[1:])
    compressed = b"".join(f[2] for f in frames)
    assert zlib.decompressobj(-15).decompress(compressed + b"\x00\x00\xff\xff").decode() == message


def test_a_message_over_the_cap_is_not_sent_but_closed_1009():
    ok, frames = _send(b"x" * 2000, None, max_bytes=1000)
    assert not ok
    assert [(f[1], f[2][:2]) for f in frames] == [(CLOSE, struct.pack("!H", 1009))]
    assert b"LAB_WS_SEND_MAX_BYTES" in frames[0][2]
