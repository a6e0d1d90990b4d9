"""Websocket frames the app must refuse with the right close code, and big ones it must keep
echoing. The cap is LAB_WS_MAX_MESSAGE (default 16 MiB) in labapp/views/websockets.py."""

from __future__ import annotations

import os

import pytest
import websocket
from support.lab import Lab

from . import report

DEFAULT_LIMIT = 16 * 1024 * 1024


def masked_frame_header(opcode: int, length: int) -> bytes:
    """A client frame header announcing ``length`` bytes, with an all-zero mask (payload as is)."""
    return bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big") + b"\0\0\0\0"


def close_code(conn: websocket.WebSocket) -> int | None:
    """The status code of the close frame the server sends next (None: no code, i.e. 1005)."""
    opcode, frame = conn.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE, f"expected a close frame, got opcode {opcode}"
    return int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None


@pytest.mark.parametrize(
    "size", [64 * 1024 + 1, 1024 * 1024, DEFAULT_LIMIT], ids=["64KiB+1", "1MiB", "exactly-the-limit"]
)
def test_large_frames_under_the_limit_are_echoed(lab: Lab, size: int) -> None:
    payload = os.urandom(size)
    conn = lab.ws("/ws/echo", timeout=30)
    conn.send_binary(payload)
    assert conn.recv() == payload, f"a {size}-byte frame was not echoed intact"
    text = "é" * (size // 4)
    conn.send(text)
    assert conn.recv() == text
    conn.close()


def test_frame_over_the_limit_closes_with_1009(lab: Lab) -> None:
    conn = lab.ws("/ws/echo")
    # Announce one byte over the cap and send only the first 64 KiB: the app must refuse on
    # the header, without reading (or buffering) the announced length.
    conn.sock.sendall(masked_frame_header(websocket.ABNF.OPCODE_BINARY, DEFAULT_LIMIT + 1) + b"y" * 65536)
    code = close_code(conn)
    report.tally("websocket frames refused", code)
    assert code == 1009, f"an over-limit frame should close with 1009 (message too big), got {code}"


def test_invalid_utf8_text_closes_with_1007(lab: Lab) -> None:
    conn = lab.ws("/ws/echo")
    conn.send(b"valid then \xff\xfe", opcode=websocket.ABNF.OPCODE_TEXT)
    code = close_code(conn)
    report.tally("websocket frames refused", code)
    assert code == 1007, (
        f"invalid UTF-8 in a text frame should close with 1007, got {code}: gevent-websocket's own "
        "close() sends no status code; websockets.close_with must"
    )


def test_chat_applies_the_same_limit(lab: Lab) -> None:
    conn = lab.ws("/ws/chat")
    conn.sock.sendall(masked_frame_header(websocket.ABNF.OPCODE_TEXT, DEFAULT_LIMIT + 1) + b"z" * 1024)
    code = close_code(conn)
    report.tally("websocket frames refused", code)
    assert code == 1009, f"/ws/chat should refuse an over-limit message with 1009, got {code}"
