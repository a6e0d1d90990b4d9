"""The upstream keep-alive race's mechanism, made deterministic (upstream-keepalive-race, and
`lab check --gunicorn`): nginx's workers are paused (SIGSTOP) while a request arrives and the app
server's keepalive runs out on the connection nginx pooled, then resumed (SIGCONT). nginx then reads
the request before the close, takes the pooled connection the app has closed, and answers what it
answers when the race is lost: 502 for a POST (not retried), a GET retried on a new connection."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import time
from collections.abc import Iterator, Sequence

from . import probe
from .endpoints import Endpoint

PATH = "/landing"  # the lab's app answers a GET and a POST there
BODY = b"x" * 1024


def send(conn: http.client.HTTPConnection, method: str, path: str = PATH) -> None:
    body = BODY if method == "POST" else None
    conn.request(method, path, body=body, headers={"Content-Type": "application/octet-stream"})


def status(conn: http.client.HTTPConnection) -> int:
    response = conn.getresponse()
    response.read()
    return response.status


@contextlib.contextmanager
def nginx_paused(workers: Sequence[int]) -> Iterator[None]:
    """nginx's ``workers`` stopped for the block."""
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)


def paused(endpoint: Endpoint, nginx_workers: Sequence[int], keepalive_s: float, method: str) -> int:
    """``method`` sent while ``nginx_workers`` are paused across the app's close (after its
    ``keepalive_s``) of the pooled connection nginx will take for it: the status nginx answers."""
    conn = probe.connection(endpoint, endpoint.url, probe.TIMEOUT + keepalive_s)
    try:
        send(conn, "POST")
        status(conn)  # nginx now pools an upstream connection
        time.sleep(keepalive_s / 2)  # the app still holds it
        with nginx_paused(nginx_workers):
            send(conn, method)
            time.sleep(keepalive_s)  # the request waits in nginx's socket while the keepalive runs out
        return status(conn)
    finally:
        conn.close()
