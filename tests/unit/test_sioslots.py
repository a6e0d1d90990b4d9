"""A worker's Socket.IO slot port (labapp/sioslots.py) when another worker boots at the same time."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from labapp import sioslots


def _free_ports(count: int) -> list[int]:
    probes = [socket.socket() for _ in range(count)]
    for probe in probes:
        probe.bind(("127.0.0.1", 0))
    ports = [probe.getsockname()[1] for probe in probes]
    for probe in probes:
        probe.close()
    return ports


def test_a_slot_taken_between_bind_and_listen_moves_on_to_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both workers bind the first port (SO_REUSEADDR, nobody listening yet), the other listens
    first: this one's listen is refused, and it must take the next port rather than fail."""
    first, second = _free_ports(2)
    other = socket.socket()
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.1", first))

    class Racing(socket.socket):
        def listen(self, *args: Any) -> None:
            if self.getsockname()[1] == first and other.fileno() != -1:
                other.listen(1)  # the other worker gets there first
            super().listen(*args)

    monkeypatch.setattr(sioslots.socket, "socket", Racing)
    try:
        sock = sioslots._bind_first_free("127.0.0.1", [first, second])
        assert sock is not None
        assert sock.getsockname()[1] == second
        sock.close()
    finally:
        other.close()
