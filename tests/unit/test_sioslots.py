"""A worker's Socket.IO slot port (labapp/sioslots.py): when another worker boots at the same
time, while a stopping one still holds it, and when it is told to stop."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from gevent.pywsgi import WSGIHandler, WSGIServer
from gunicorn.config import Config

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


class _Worker:
    """What sioslots.serve reads of a gunicorn worker: a real gunicorn config, gevent's server."""

    def __init__(self, workers: int) -> None:
        self.cfg = Config()
        self.cfg.set("bind", "127.0.0.1:0")
        self.cfg.set("workers", workers)
        self.server_class = WSGIServer
        self.wsgi_handler = WSGIHandler
        self.worker_connections = 10
        self.log = logging.getLogger("test_sioslots")
        self.pid = os.getpid()
        self.alive = True

    @staticmethod
    def wsgi(_environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slot"]


@pytest.fixture
def slots(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Two free slot ports (LAB_SOCKETIO_PORT), this module's state as a fresh worker's; whatever a
    test served is closed at the end."""
    first = _two_free_ports_in_a_row()
    monkeypatch.setenv("LAB_SOCKETIO_PORT", str(first))
    monkeypatch.setattr(sioslots, "_state", sioslots.State.NONE)
    monkeypatch.setattr(sioslots, "_stopping", False)
    monkeypatch.setattr(sioslots, "_announced", None)
    monkeypatch.setattr(sioslots, "_server", None)
    monkeypatch.setattr(sioslots, "RETRY_S", 0.01)
    yield [first, first + 1]
    if sioslots._server is not None:
        sioslots._server.close()


def _two_free_ports_in_a_row() -> int:
    """A port that, with the next one, nothing uses (an outgoing connection's local port counts)."""
    for _ in range(50):
        first = _free_ports(1)[0]
        try:
            _listen_on(first + 1).close()
        except OSError:
            continue
        return first
    raise AssertionError("no two free ports in a row")


def _listen_on(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", port))
    sock.listen(1)
    return sock


def _wait_until(predicate: Any, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        gevent.sleep(0.01)


def test_a_worker_serves_the_first_free_slot_and_names_it(slots: list[int]) -> None:
    sioslots.serve(_Worker(workers=2))
    assert sioslots.state() is sioslots.State.SERVING and not sioslots.refuses_new_sessions()
    assert sioslots.announced() == f"127.0.0.1:{slots[0]}"


def test_a_worker_whose_slot_is_held_refuses_new_sessions_until_it_is_freed(slots: list[int]) -> None:
    held = [_listen_on(port) for port in slots]  # the stopping workers still hold both
    try:
        sioslots.serve(_Worker(workers=2))
        assert sioslots.state() is sioslots.State.WAITING
        assert sioslots.refuses_new_sessions() and sioslots.announced() is None
        held[1].close()
        _wait_until(lambda: sioslots.state() is sioslots.State.SERVING)
        assert sioslots.announced() == f"127.0.0.1:{slots[1]}" and not sioslots.refuses_new_sessions()
    finally:
        for sock in held:
            sock.close()


def test_a_worker_that_gave_up_waiting_serves_without_a_cookie(
    slots: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sioslots, "GIVE_UP_S", 0.05)
    held = [_listen_on(port) for port in slots]
    try:
        sioslots.serve(_Worker(workers=2))
        _wait_until(lambda: sioslots.state() is sioslots.State.GAVE_UP)
        assert not sioslots.refuses_new_sessions() and sioslots.announced() is None
    finally:
        for sock in held:
            sock.close()


def test_a_stopping_worker_frees_its_slot_at_once_and_refuses_new_sessions(slots: list[int]) -> None:
    sioslots.serve(_Worker(workers=2))
    port = slots[0]
    sioslots.stop()
    assert sioslots.state() is sioslots.State.STOPPING
    assert sioslots.refuses_new_sessions() and sioslots.announced() is None
    # Free for the worker replacing this one while this one still runs (not only not accepting).
    _listen_on(port).close()


def test_a_worker_told_to_stop_while_waiting_leaves_the_freed_slot_to_its_successor(
    slots: list[int],
) -> None:
    held = [_listen_on(port) for port in slots]
    try:
        sioslots.serve(_Worker(workers=2))
        sioslots.stop()
        held[0].close()
        gevent.sleep(0.1)  # ten of its retries
        assert sioslots.state() is sioslots.State.STOPPING
        _listen_on(slots[0]).close()
    finally:
        for sock in held:
            sock.close()


def test_a_stop_signal_while_the_slot_is_being_served_frees_it_all_the_same(slots: list[int]) -> None:
    class SignalledWhileStarting(WSGIServer):
        def start(self) -> None:
            super().start()
            sioslots.stop()  # SIGTERM's handler runs between two of serve's lines

    worker = _Worker(workers=2)
    worker.server_class = SignalledWhileStarting
    sioslots.serve(worker)
    assert sioslots.state() is sioslots.State.STOPPING and sioslots.announced() is None
    _listen_on(slots[0]).close()
