"""upstream-keepalive-race's check: the race counted, and its mechanism shown without luck.

nginx keeps an idle upstream connection for its `keepalive_timeout` (60 s); the app server here
closes it after its own `keepalive` (2 s). A request that takes the connection from nginx's pool
in the instant the app closes it fails, and nginx retries a GET but not a POST: 502. On an idle
machine that instant is microseconds wide (nginx sees the close and drops the connection first),
so a sweep of POSTs around the keepalive counts what it finds, usually none; it widens with
load. The mechanism itself is made deterministic by stretching that instant: nginx's workers
are paused (SIGSTOP) while a POST arrives and the app's keepalive runs out, then resumed
(SIGCONT): nginx reads the POST before the close, takes the pooled connection the app has
closed, and answers what it answers when the race is lost (its error log says why).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import labsettings
from labctl import native, paths, probe, procs, stack
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

KEEPALIVE_S = float(labsettings.read_env_file(Path(__file__).with_name("app.env"))["GUNICORN_KEEPALIVE"])
SWEEP_OFFSETS_S = (-0.004, -0.002, -0.001, 0.0, 0.001, 0.002)  # each POST after this much idle past it
PAUSED_BEFORE_S = KEEPALIVE_S / 2  # idle before nginx is paused: the app still holds the connection
PAUSED_FOR_S = KEEPALIVE_S  # the POST waits in nginx's socket while the app's keepalive runs out
BODY = b"x" * 1024
NGINX_SAYS = ("upstream prematurely closed connection", "recv() failed (104", "writev() failed (32", "(104: ")


def _send(conn: http.client.HTTPConnection, method: str) -> None:
    body = BODY if method == "POST" else None
    conn.request(method, "/landing", body=body, headers={"Content-Type": "application/octet-stream"})


def _status(conn: http.client.HTTPConnection) -> int:
    response = conn.getresponse()
    response.read()
    return response.status


def _post(conn: http.client.HTTPConnection) -> int:
    _send(conn, "POST")
    return _status(conn)


@contextlib.contextmanager
def _nginx_paused() -> Iterator[None]:
    master = procs.pid_from_file(native.NGINX_PID, str(paths.NGINX_PREFIX))
    workers = procs.children(master) if master else set()
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)


def _sweep(endpoint: Endpoint) -> list[int]:
    """POSTs on one kept-alive client connection, each after an idle gap around the keepalive."""
    conn = probe.connection(endpoint, endpoint.url, probe.TIMEOUT)
    try:
        statuses = [_post(conn)]
        for offset in SWEEP_OFFSETS_S:
            time.sleep(KEEPALIVE_S + offset)
            statuses.append(_post(conn))
        return statuses[1:]
    finally:
        conn.close()


def _paused(endpoint: Endpoint, method: str) -> int:
    """``method`` sent while nginx's workers are paused across the app's close of the pooled
    connection nginx will take for it."""
    conn = probe.connection(endpoint, endpoint.url, probe.TIMEOUT + PAUSED_FOR_S)
    try:
        _post(conn)  # nginx now pools an upstream connection
        time.sleep(PAUSED_BEFORE_S)
        with _nginx_paused():
            _send(conn, method)
            time.sleep(PAUSED_FOR_S)
        return _status(conn)
    finally:
        conn.close()


def observe(endpoint: Endpoint) -> Observation:
    if stack.running_mode() != "native":
        return Observation(None, "pausing nginx's workers and reading its error log needs the native stack")
    offset = native.NGINX_ERROR_LOG.stat().st_size
    swept = _sweep(endpoint)
    paused = _paused(endpoint, "POST")
    # The same for a GET: nginx retries an idempotent request that failed on a pooled connection.
    paused_get = _paused(endpoint, "GET")
    with native.NGINX_ERROR_LOG.open("rb") as log:
        log.seek(offset)
        said = [
            line
            for line in log.read().decode(errors="replace").splitlines()
            if any(s in line for s in NGINX_SAYS)
        ]
    why = said[-1].split(": *", 1)[-1].partition(" ")[2].split(", client:", 1)[0] if said else "nothing"
    seen = (
        f"{len(swept)} POSTs after {KEEPALIVE_S:g} s idle (+/- a few ms): {swept.count(502)} got 502; "
        f"a POST on a pooled connection the app closed meanwhile: {paused} (a GET: {paused_get}); "
        f"nginx's error log: {why}"
    )
    symptom = paused == 502 and paused_get == 200 and bool(said)
    healthy = paused == paused_get == 200 and 502 not in swept and not said
    return Observation(classify(symptom, healthy), seen)
