"""Websocket client helpers: frames no polite client sends, and the close frames that answer."""

from __future__ import annotations

import websocket

from support.lab import Lab


def masked_frame_header(opcode: int, length: int) -> bytes:
    """A client frame header announcing ``length`` bytes, with an all-zero mask (payload as is)."""
    return bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big") + b"\0\0\0\0"


def close_frame(conn: websocket.WebSocket, timeout: float = 10) -> tuple[int | None, str]:
    """The status code (None: no code, i.e. 1005) and reason of the close frame the server sends next."""
    conn.settimeout(timeout)
    opcode, frame = conn.recv_data_frame(True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE, f"expected a close frame, got opcode {opcode}"
    if len(frame.data) < 2:
        return None, ""
    return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode(errors="replace")


def close_code(conn: websocket.WebSocket, timeout: float = 10) -> int | None:
    """The status code of the close frame the server sends next (None: no code, i.e. 1005)."""
    return close_frame(conn, timeout)[0]


def assert_echoes(conn: websocket.WebSocket, text: str, broke: str) -> None:
    conn.send(text)
    assert conn.recv() == text, f"/ws/echo did not echo {text!r}: {broke}"


def open_echo(lab: Lab, text: str) -> websocket.WebSocket:
    """A /ws/echo connection that has echoed ``text`` once."""
    conn = lab.ws("/ws/echo")
    assert_echoes(conn, text, "on a new connection")
    return conn
