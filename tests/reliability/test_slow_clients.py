"""Slow clients (slowloris): a header or a body trickled slower than nginx's timeouts
(snippets/client-timeouts.conf, 10 s each) is cut with 408 or a close, within the timeout plus a
margin. The three run side by side, so the whole test takes one timeout, not three."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from labctl import paths
from support.lab import Lab

from . import report
from .rawhttp import parse_response, tls_socket

TIMEOUT_S = 10  # client_header_timeout and client_body_timeout in snippets/client-timeouts.conf
MARGIN_S = 5
TRICKLE_EVERY_S = 1.0

SLOW_CLIENTS = {
    # The header timer covers the whole header: one byte a second never completes it in time.
    "header-trickle": ("GET /healthz HTTP/1.1\r\nHost: {host}\r\n", b"X-Slow: " + b"a" * 60),
    # The body timer runs between two reads: the body stalls after its first bytes.
    "body-stall-buffered": (
        "POST /landing HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\nfirst",
        b"",
    ),
    "body-stall-upload": (
        "PUT /upload/slow.bin HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\nfirst",
        b"",
    ),
}


def slow_client(lab: Lab, head: str, trickle: bytes) -> tuple[float, int | None]:
    """Seconds until nginx cut the connection, and the status it sent (None: closed silently)."""
    with tls_socket(lab, timeout=TIMEOUT_S + 3 * MARGIN_S) as sock:
        sock.sendall(head.replace("{host}", lab.host).encode())
        started = time.monotonic()
        sock.settimeout(TRICKLE_EVERY_S)
        received = b""
        pending = list(trickle)
        while time.monotonic() - started < TIMEOUT_S + 3 * MARGIN_S:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                if pending:
                    sock.sendall(bytes([pending.pop(0)]))
                continue
            except (ConnectionError, OSError):
                break
            if not chunk:
                break
            received += chunk
        return time.monotonic() - started, parse_response(received).status if received else None


def test_slow_clients_are_cut_within_the_timeout(lab: Lab) -> None:
    with ThreadPoolExecutor(len(SLOW_CLIENTS)) as pool:
        futures = {name: pool.submit(slow_client, lab, *args) for name, args in SLOW_CLIENTS.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, (seconds, status) in results.items():
        report.note(f"slow client {name}", f"cut after {seconds:.1f}s with {status or 'a silent close'}")
    assert not (paths.UPLOADS / "slow.bin").exists(), "a stalled upload was stored"
    for name, (seconds, status) in results.items():
        assert status in (None, 408), f"{name}: nginx answered {status}, expected 408 or a close"
        assert TIMEOUT_S - 1 <= seconds <= TIMEOUT_S + MARGIN_S, (
            f"{name}: cut after {seconds:.1f}s, expected about {TIMEOUT_S}s: check "
            "client_header_timeout / client_body_timeout in snippets/client-timeouts.conf"
        )
