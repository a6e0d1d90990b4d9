"""1 GiB (LAB_BENCH_UPLOAD_MIB) PUT through nginx TLS with request buffering off (the baseline
/upload) and on, against nginx TLS reading and discarding the body, and straight to gunicorn.

The client is a plain socket (TLS verified against the lab's CA) that streams one random
1 MiB block over and over: nothing is read from disk and nothing is held whole in memory, and
its own CPU share is recorded to show it is not what limits the rate.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass

from .. import endpoints, paths
from . import bench_stack

MIB = 1024 * 1024
BLOCK = MIB


@dataclass(frozen=True)
class Target:
    """Where one variant sends its PUT."""

    name: str
    tls: bool
    host: str  # Host header, without the port
    path: str
    expect_status: int

    @property
    def port(self) -> int:
        return endpoints.https_port() if self.tls else endpoints.app_port()


TARGETS = (
    Target("direct", tls=False, host="127.0.0.1", path="/upload/bench-direct.bin", expect_status=201),
    Target("unbuffered", tls=True, host="localhost", path="/upload/bench-unbuffered.bin", expect_status=201),
    Target(
        "buffered",
        tls=True,
        host=bench_stack.BENCH_HOST,
        path="/upload/bench-buffered.bin",
        expect_status=201,
    ),
    Target("discard", tls=True, host=bench_stack.BENCH_HOST, path="/discard", expect_status=204),
)


@dataclass(frozen=True)
class UploadResult:
    seconds: float
    mib_per_s: float
    app_rss_growth_mib: float
    # CPU used during the upload, in cores (1.0 = one core busy throughout): which side limits.
    client_cpu_share: float
    app_cpu_share: float
    nginx_cpu_share: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class RssSampler:
    """Peak RSS of one process, sampled from /proc every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline_kib = bench_stack.rss_kib(pid)
        self.peak_kib = self.baseline_kib
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kib = max(self.peak_kib, bench_stack.rss_kib(self.pid))

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join()

    @property
    def growth_mib(self) -> float:
        return round((self.peak_kib - self.baseline_kib) / 1024, 1)


def expected_sha256(block: bytes, size: int) -> str:
    digest = hashlib.sha256()
    for offset in range(0, size, len(block)):
        digest.update(block[: min(len(block), size - offset)])
    return digest.hexdigest()


def _read_response(conn: socket.socket) -> tuple[int, bytes]:
    """Status and body of the one response on a Connection: close socket."""
    data = b""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        return int(head.split(b" ", 2)[1]), body
    except (IndexError, ValueError):
        return 0, data[:300]


def send(target: Target, block: bytes, size: int) -> tuple[float, float, int, bytes]:
    """PUT ``size`` bytes; (seconds, client CPU share, status, body). Stops early on an error."""
    conn: socket.socket = socket.create_connection(("127.0.0.1", target.port), timeout=120)
    if target.tls:
        context = ssl.create_default_context(cafile=str(paths.CA))
        conn = context.wrap_socket(conn, server_hostname="localhost")
    head = (
        f"PUT {target.path} HTTP/1.1\r\nHost: {target.host}:{target.port}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    view = memoryview(block)
    with conn:
        started, cpu_started = time.perf_counter(), time.thread_time()
        conn.sendall(head.encode())
        sent = 0
        with contextlib.suppress(ConnectionError):  # the server answered early: its status says why
            while sent < size:
                piece = view[: min(len(view), size - sent)]
                conn.sendall(piece)
                sent += len(piece)
        status, body = _read_response(conn)
        seconds = time.perf_counter() - started
        cpu = time.thread_time() - cpu_started
    return seconds, cpu / seconds, status, body


def check(target: Target, status: int, body: bytes, size: int, sha256: str) -> None:
    if status != target.expect_status:
        raise RuntimeError(
            f"upload {target.name}: HTTP {status} {body[:300]!r}, expected {target.expect_status}"
        )
    if target.expect_status == 201:
        stored = json.loads(body)
        if (stored.get("size"), stored.get("sha256")) != (size, sha256):
            raise RuntimeError(f"upload {target.name}: stored {stored}, expected size {size} sha256 {sha256}")


def measure(target: Target, block: bytes, size: int, sha256: str, worker: int) -> UploadResult:
    servers = {"app": [worker], "nginx": bench_stack.nginx_worker_pids()}
    cpu_before = {name: bench_stack.cpu_seconds(pids) for name, pids in servers.items()}
    try:
        with RssSampler(worker).running() as sampler:
            seconds, cpu_share, status, body = send(target, block, size)
        server_share = {
            name: (bench_stack.cpu_seconds(pids) - cpu_before[name]) / seconds
            for name, pids in servers.items()
        }
        check(target, status, body, size, sha256)
    finally:
        with contextlib.suppress(FileNotFoundError):  # up to a GiB per variant: never left behind
            (paths.UPLOADS / target.path.rsplit("/", 1)[1]).unlink()
    return UploadResult(
        seconds=round(seconds, 3),
        mib_per_s=round(size / MIB / seconds, 1),
        app_rss_growth_mib=sampler.growth_mib,
        client_cpu_share=round(cpu_share, 2),
        app_cpu_share=round(server_share["app"], 2),
        nginx_cpu_share=round(server_share["nginx"], 2),
    )


def run(upload_mib: int) -> dict[str, UploadResult]:
    block = os.urandom(BLOCK)
    worker = bench_stack.app_worker_pid()
    # A small upload first: the worker's one-off allocations are not charged to the big ones.
    warm_size = 4 * MIB
    measure(TARGETS[1], block, warm_size, expected_sha256(block, warm_size), worker)
    size = upload_mib * MIB
    sha256 = expected_sha256(block, size)
    return {target.name: measure(target, block, size, sha256, worker) for target in TARGETS}
