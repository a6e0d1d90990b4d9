"""A worker that cannot keep a new Socket.IO session makes none (labapp/sioslots.py).

A worker replacing a stopped one takes its slot port, the port nginx sends a session's later
requests to. Until it has it (its predecessor still holds it, or, here, another process does), a
polling session begun on it would get no cookie: its polls and its upgrade would go to any worker
("400 Invalid session"; seen during a native `make deploy`). Such a worker answers a polling
handshake 503 with Retry-After, the client tries again and lands on a worker that has a slot;
websocket-only sessions (one connection, nothing to route) are served there as anywhere, and
once the slot is free the worker takes it and makes sessions again.

Deterministic: one worker is stopped as a reload stops it (SIGTERM), its slot port is taken by
this test the moment it is freed, before the worker replacing it has booted, and held while the
test makes its handshakes (well inside GIVE_UP_S, after which a worker serves without a slot).
"""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress

import requests
import socketio

from labapp import sioslots
from labctl import native, nginx, sioclient
from labctl.procs import children
from support.lab import Lab

from . import report, stackctl

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
HANDSHAKES = 60  # through nginx, each on a connection of its own: both workers take some
COOKIE = "lab_sio"


def _take_a_free_port(ports: list[int]) -> socket.socket | None:
    """As a worker takes its slot: SO_REUSEADDR, so that the stopped worker's connections still
    open or in TIME_WAIT on that port do not keep it; only a listener does."""
    for port in ports:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen(16)
        except OSError:
            sock.close()
            continue
        return sock
    return None


@contextmanager
def slot_held_elsewhere(master: int) -> Iterator[tuple[int, int]]:
    """One worker stopped (SIGTERM, what gunicorn's HUP sends the old ones) and its slot port taken
    by this test as soon as it is free; yields (that port, the worker replacing the stopped one)
    once the new worker answers. The port is given back at the end, even on a failure."""
    old = children(master)
    os.kill(min(old), signal.SIGTERM)
    held = stackctl.wait_for(
        lambda: _take_a_free_port(nginx.socketio_ports()), 20, "the stopped worker's slot port", 0.002
    )
    try:
        new = stackctl.wait_for_new_workers(master, old)
        assert len(new) == 1, f"one worker stopped, {new} started"
        yield held.getsockname()[1], new.pop()
    finally:
        held.close()


def _handshake(lab: Lab) -> requests.Response:
    with lab.session() as session:  # a connection of its own, as a new client's
        return session.get(lab.url + HANDSHAKE, headers={"Connection": "close"}, timeout=10)


def _handshakes(lab: Lab, count: int) -> list[requests.Response]:
    """``count`` handshakes, sioclient.BATCH in flight at once: one after another, an idle
    machine's first worker would accept them all."""
    with ThreadPoolExecutor(sioclient.BATCH) as pool:
        return list(pool.map(lambda _: _handshake(lab), range(count)))


def _without_cookie(answers: list[requests.Response]) -> list[str]:
    return [
        f"{a.status_code} {a.text[:60]}" for a in answers if a.status_code == 200 and COOKIE not in a.cookies
    ]


def _websocket_client_on(lab: Lab, pid: int, timeout: float = 10) -> sioclient.SioClient:
    """A websocket-only client served by worker ``pid``, which may still be loading the app:
    clients sioclient.BATCH at a time until one lands there (the others closed at once). A batch
    refused is tried again: a worker refuses connections until its chat relay has reached the
    broker, a moment after it boots (labapp.chat)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            batch = sioclient.connect_batch(lab.endpoint, "websocket")
        except socketio.exceptions.ConnectionError:
            time.sleep(0.1)
            continue
        keep = next((client for client in batch if client.worker[1] == pid), None)
        sioclient.close_all([client for client in batch if client is not keep])
        if keep is not None:
            return keep
    raise AssertionError(f"no websocket-only client reached worker {pid} in {timeout:g}s")


def _default_client(lab: Lab, tries: int = 20) -> sioclient.SioClient:
    """A default-transport client (polling, then the upgrade), trying again on a refused handshake
    as python-socketio's reconnection does."""
    for _ in range(tries):
        with suppress(socketio.exceptions.ConnectionError):
            return sioclient.connect(lab.endpoint, "default")
        time.sleep(0.1)
    raise AssertionError(f"a default-transport client was refused {tries} times")


def test_a_worker_waiting_for_its_slot_refuses_polling_sessions_and_serves_websockets(lab: Lab) -> None:
    master = stackctl.gunicorn_master()
    started = time.monotonic()
    with slot_held_elsewhere(master) as (port, waiting):
        ws_client = _websocket_client_on(lab, waiting)
        try:
            assert ws_client.call("echo", "on a waiting worker") == "on a waiting worker"
            log_offset = stackctl.log_offset(native.NGINX_ACCESS_LOG)
            answers = _handshakes(lab, HANDSHAKES)
            tries = [
                e["upstream_status"]
                for e in stackctl.nginx_entries_since(log_offset)
                if e["uri"].startswith(HANDSHAKE)
            ]
            lost = _without_cookie(answers)
            assert not lost, (
                f"{len(lost)} of {HANDSHAKES} polling sessions were made without a {COOKIE} cookie "
                f"while a worker waited for its slot: their polls and upgrade reach any worker: {lost[:3]}"
            )
            default = _default_client(lab)
            try:
                assert default.current_transport() == "websocket"
                assert default.worker[1] != waiting, "a polling session was made on the waiting worker"
                assert default.call("echo", "sticky") == "sticky"
            finally:
                default.close()
        finally:
            ws_client.close()
        held_for = time.monotonic() - started
    assert held_for < sioslots.GIVE_UP_S, f"held {held_for:.0f}s: the worker may have given up waiting"

    # nginx tries a refused handshake on its next server (natively the same gunicorn again, where
    # another worker may accept it: nginx.conf's lab_sio_new); a client sees the 503 only when
    # every try met the waiting worker.
    retried = [t for t in tries if "503" in t]
    assert retried, f"no handshake reached the waiting worker {waiting} in {HANDSHAKES}: nothing was proved"
    refused = [a for a in answers if a.status_code == 503]
    assert len(refused) < len(retried), f"nginx never tried a refused handshake again: {tries}"
    for answer in refused:
        assert answer.headers.get("Retry-After") == "1", answer.headers
        body = answer.json()
        assert body["code"] == 503 and "try again" in body["msg"] and "request_id" in body, body
    assert {a.status_code for a in answers} <= {200, 503}, [a.status_code for a in answers]

    # The port given back: the waiting worker takes it (nobody else binds it) and makes sessions.
    stackctl.wait_for(lambda: _listening(port), 5, f"worker {waiting} to take slot port {port}")
    after = _handshakes(lab, 20)
    assert [a.status_code for a in after] == [200] * 20 and not _without_cookie(after), [
        f"{a.status_code} {a.text[:60]}" for a in after
    ]
    report.note(
        "Socket.IO, a worker waiting for its slot",
        f"{len(retried)} of {HANDSHAKES} polling handshakes refused 503 by the waiting worker, "
        f"{len(retried) - len(refused)} of them served on a retry by nginx, {len(refused)} 503 to the "
        f"client; {HANDSHAKES - len(refused)} made with a cookie, 0 without; a websocket-only client "
        "served there",
    )


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
