"""Websocket frames the app must refuse with the right close code, and big ones it must keep
echoing. The cap is LAB_WS_MAX_MESSAGE (default 16 MiB) in labapp/views/websockets.py."""

from __future__ import annotations

import os

import pytest
import websocket

from support.lab import Lab

from . import report
from .wsclient import close_code, masked_frame_header

DEFAULT_LIMIT = 16 * 1024 * 1024


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


REFUSED = {
    # Announce one byte over the cap and send only a little: the app must refuse on the frame
    # header, without reading (or buffering) the announced length.
    "binary-over-limit": (
        "/ws/echo",
        masked_frame_header(websocket.ABNF.OPCODE_BINARY, DEFAULT_LIMIT + 1) + b"y" * 65536,
        1009,
    ),
    "chat-text-over-limit": (
        "/ws/chat",
        masked_frame_header(websocket.ABNF.OPCODE_TEXT, DEFAULT_LIMIT + 1) + b"z" * 1024,
        1009,
    ),
    # gevent-websocket 0.10.1 drops close() status codes; labapp.patches.wsclose repairs them.
    "invalid-utf8-text": (
        "/ws/echo",
        masked_frame_header(websocket.ABNF.OPCODE_TEXT, 13) + b"valid then \xff\xfe",
        1007,
    ),
}


@pytest.mark.parametrize("case", REFUSED.values(), ids=REFUSED.keys())
def test_refused_frame_gets_its_close_code(lab: Lab, case: tuple[str, bytes, int]) -> None:
    path, frame, expected = case
    conn = lab.ws(path)
    conn.sock.sendall(frame)
    code = close_code(conn)
    report.tally("websocket frames refused", code)
    assert code == expected, f"{path}: expected close {expected}, got {code} (labapp/views/websockets.py)"
    again = lab.ws(path)  # and the next client is served
    again.ping()
    again.close()
