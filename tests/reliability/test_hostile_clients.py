"""Clients that cost memory by being slow or by not reading (issue 28): each costs the workers a
bounded, declared amount, the stack keeps answering /healthz, and nothing partial is stored.

Memory is the gunicorn workers' VmRSS (/proc/PID/status). The clients come from several loopback
addresses (127.0.0.N), as clients behind different addresses would: nginx's per-address limits
(LAB_LIMIT_CONN_UPLOAD, LAB_LIMIT_CONN_WS) are not what these tests measure."""

from __future__ import annotations

import contextlib
import ssl
import time
from pathlib import Path

import requests

from labctl.bench.bench_stack import rss_kib
from support.lab import Lab

from . import report, stackctl
from .rawhttp import tls_socket

MIB = 1024 * 1024


def workers_rss_mib() -> dict[int, float]:
    return {pid: rss_kib(pid) / 1024 for pid in stackctl.children(stackctl.gunicorn_master())}


def growth_mib(before: dict[int, float], now: dict[int, float]) -> float:
    """The workers' VmRSS now less before, summed (a worker that was not there before: all of it)."""
    return sum(rss - before.get(pid, 0.0) for pid, rss in now.items())


def healthz_seconds(lab: Lab) -> float:
    """Seconds /healthz took on a fresh connection; fails the test if it did not answer 200."""
    started = time.monotonic()
    try:
        response = requests.get(lab.url + "/healthz", verify=str(lab.ca), timeout=5)
    except requests.RequestException as error:
        raise AssertionError(
            f"/healthz did not answer within 5 s under the hostile clients: {error}"
        ) from None
    assert response.status_code == 200, f"/healthz answered {response.status_code} under the hostile clients"
    return time.monotonic() - started


TRICKLERS = 300
SOURCES = 10  # 30 uploads from each address
TRICKLE_S = 8  # a byte a second each: below client_body_timeout (10 s) between two reads
DECLARED = 4096  # each upload's Content-Length: never reached
GROWTH_LIMIT_MIB = 32


def test_trickling_uploads_cost_kilobytes_and_leave_nothing(lab: Lab, upload_dir: Path) -> None:
    before = workers_rss_mib()
    peak = 0.0
    slowest_healthz = 0.0
    clients: list[ssl.SSLSocket] = []
    try:
        for n in range(TRICKLERS):
            sock = tls_socket(lab, timeout=10, source=f"127.0.0.{2 + n % SOURCES}")
            clients.append(sock)
            sock.sendall(
                f"PUT /upload/trickle-{n}.bin HTTP/1.1\r\nHost: {lab.host}\r\n"
                f"Content-Length: {DECLARED}\r\n\r\n".encode()
            )
        for _ in range(TRICKLE_S):
            tick = time.monotonic()
            for sock in clients:
                sock.sendall(b"x")
            slowest_healthz = max(slowest_healthz, healthz_seconds(lab))
            peak = max(peak, growth_mib(before, workers_rss_mib()))
            time.sleep(max(0.0, 1 - (time.monotonic() - tick)))
        answered = [sock for sock in clients if _answered(sock)]
    finally:
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.close()
    report.note(
        "trickling uploads",
        f"{TRICKLERS} for {TRICKLE_S}s: workers grew {peak:.1f} MiB at the peak "
        f"({peak * 1024 / TRICKLERS:.0f} KiB each), slowest /healthz {slowest_healthz:.2f}s",
    )
    assert not answered, f"{len(answered)} trickling uploads were answered early (refused by a limit?)"
    assert peak < GROWTH_LIMIT_MIB, (
        f"{TRICKLERS} trickling uploads grew the workers by {peak:.1f} MiB (limit {GROWTH_LIMIT_MIB}): "
        "an upload holds buffers while it waits for bytes (labapp.body, labapp.storage)"
    )
    stackctl.wait_for(
        lambda: not stackctl.partial_files(upload_dir), 15, "the aborted uploads' temp files to go"
    )
    assert not list(upload_dir.glob("trickle-*")), "an aborted trickling upload was stored"


def _answered(sock: ssl.SSLSocket) -> bool:
    """Whether the server has said anything on ``sock`` yet (it should not: the body is not done)."""
    sock.settimeout(0.001)
    try:
        return bool(sock.recv(1))
    except (TimeoutError, ssl.SSLWantReadError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(10)
