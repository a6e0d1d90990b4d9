"""1 GiB (LAB_BENCH_UPLOAD_MIB) PUTs: the app's baseline /upload through nginx TLS (request
buffering off) against the ideal receiver behind the same nginx with the same settings
(bench/ideal_receiver.py: the same work, hash and store, in the least Python), alternated
LAB_BENCH_UPLOAD_ROUNDS times; then, once each, for information: nginx buffering on, nginx TLS
reading and discarding the body (what TLS and nginx alone allow), and the app and the ideal
receiver straight, without nginx.

The client is a plain socket (TLS verified against the lab's CA) that streams one random
1 MiB block over and over: nothing is read from disk and nothing is held whole in memory. Its
own CPU share is recorded beside each rate, as are the app's, the ideal receiver's and nginx's:
a side at 1.0 is the one that limits.

Every upload starts from the same memory state. On this VM, memory freed by the kernel is handed
back to the hypervisor a moment later (virtio-balloon free page reporting), and writing into such
pages is slow: 1 GiB written into the page cache cost 0.2 s of system time when the pages had been
freed just before (the last upload's file deleted) and 1.3-1.6 s when 3 s or more had passed
(perf: copy_folio_from_iter_atomic). Run back to back, the faster receiver would get the warm
pages and the slower one the cold ones; so each upload waits LAB_BENCH_UPLOAD_SETTLE_S first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import ssl
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from .. import endpoints, paths, procs
from . import bench_stack

MIB = 1024 * 1024
BLOCK = MIB
APP, IDEAL = "app", "ideal"


@dataclass(frozen=True)
class Target:
    """Where one variant sends its PUT."""

    name: str
    tls: bool
    host: str  # Host header, without the port
    path: str
    expect_status: int
    receiver: str = APP  # who stores the body: the app or the ideal receiver (none: discard)

    @property
    def port(self) -> int:
        if self.tls:
            return endpoints.https_port()
        return bench_stack.ideal_port() if self.receiver == IDEAL else endpoints.app_port()

    @property
    def file_name(self) -> str:
        return self.path.rsplit("/", 1)[1]


UNBUFFERED = Target("unbuffered", True, "localhost", "/upload/bench-unbuffered.bin", 201)
IDEAL_PROXIED = Target("ideal", True, bench_stack.BENCH_HOST, "/ideal/bench-ideal.bin", 201, IDEAL)
# Measured once each, after the alternated pair: what nginx and TLS cost, and what they allow.
REFERENCES = (
    Target("buffered", True, bench_stack.BENCH_HOST, "/upload/bench-buffered.bin", 201),
    Target("discard", True, bench_stack.BENCH_HOST, "/discard", 204, receiver=""),
    Target("direct", False, "127.0.0.1", "/upload/bench-direct.bin", 201),
    Target("ideal_direct", False, "127.0.0.1", "/ideal/bench-ideal-direct.bin", 201, IDEAL),
)
TARGETS = (UNBUFFERED, IDEAL_PROXIED, *REFERENCES)


@dataclass(frozen=True)
class UploadResult:
    seconds: float
    mib_per_s: float
    app_rss_growth_mib: float
    # CPU used during the upload, in cores (1.0 = one core busy throughout): which side limits.
    client_cpu_share: float
    app_cpu_share: float
    ideal_cpu_share: float
    nginx_cpu_share: float
    # The receiver's split: system time is the kernel's copies (recv, write to the page cache).
    receiver_user_share: float
    receiver_system_share: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class UploadRun:
    """The alternated rounds of app and ideal receiver, and the references measured once."""

    rounds: list[dict[str, UploadResult]] = field(default_factory=list)
    references: dict[str, UploadResult] = field(default_factory=dict)

    def round_ratios(self) -> list[float]:
        return [
            round(one[UNBUFFERED.name].mib_per_s / one[IDEAL_PROXIED.name].mib_per_s, 3)
            for one in self.rounds
        ]

    @property
    def app_vs_ideal_ratio(self) -> float | None:
        ratios = self.round_ratios()
        return round(statistics.median(ratios), 3) if ratios else None

    def median_rate(self, name: str) -> float:
        if name in self.references:
            return self.references[name].mib_per_s
        return statistics.median(one[name].mib_per_s for one in self.rounds)

    @property
    def app_rss_growth_mib(self) -> float:
        return max(one[UNBUFFERED.name].app_rss_growth_mib for one in self.rounds)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rounds": [{name: r.as_dict() for name, r in one.items()} for one in self.rounds],
            "round_ratios": self.round_ratios(),
            "references": {name: r.as_dict() for name, r in self.references.items()},
        }


class RssSampler:
    """Peak RSS of one process, sampled from /proc every 20 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.baseline_kib = procs.rss_kib(pid)
        self.peak_kib = self.baseline_kib
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak_kib = max(self.peak_kib, procs.rss_kib(self.pid))

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


def measure(target: Target, block: bytes, size: int, sha256: str, pids: dict[str, int]) -> UploadResult:
    servers = {APP: [pids[APP]], IDEAL: [pids[IDEAL]], "nginx": bench_stack.nginx_worker_pids()}
    cpu_before = {name: procs.cpu_times(group) for name, group in servers.items()}
    try:
        with RssSampler(pids[APP]).running() as sampler:
            seconds, cpu_share, status, body = send(target, block, size)
        used = {
            name: [
                (after - before) / seconds
                for after, before in zip(procs.cpu_times(group), cpu_before[name], strict=True)
            ]
            for name, group in servers.items()
        }
        check(target, status, body, size, sha256)
    finally:
        with contextlib.suppress(FileNotFoundError):  # up to a GiB per variant: never left behind
            (paths.UPLOADS / target.file_name).unlink()
    receiver = used.get(target.receiver, [0.0, 0.0])
    return UploadResult(
        seconds=round(seconds, 3),
        mib_per_s=round(size / MIB / seconds, 1),
        app_rss_growth_mib=sampler.growth_mib,
        client_cpu_share=round(cpu_share, 2),
        app_cpu_share=round(sum(used[APP]), 2),
        ideal_cpu_share=round(sum(used[IDEAL]), 2),
        nginx_cpu_share=round(sum(used["nginx"]), 2),
        receiver_user_share=round(receiver[0], 2),
        receiver_system_share=round(receiver[1], 2),
    )


def run(upload_mib: int, rounds: int, settle_s: float) -> UploadRun:
    """``rounds`` of the app and the ideal receiver one after the other (the order swapped each
    round, so neither always goes first), then each reference once; ``settle_s`` before each."""
    block = os.urandom(BLOCK)
    size = upload_mib * MIB
    sha256 = expected_sha256(block, size)
    outcome = UploadRun()
    with bench_stack.ideal_receiver() as ideal_pid:
        pids = {APP: bench_stack.app_worker_pid(), IDEAL: ideal_pid}
        # A small upload to each first: one-off allocations are not charged to the big ones.
        warm_size = 4 * MIB
        for target in (UNBUFFERED, IDEAL_PROXIED):
            measure(target, block, warm_size, expected_sha256(block, warm_size), pids)

        def settled(target: Target) -> UploadResult:
            time.sleep(settle_s)
            return measure(target, block, size, sha256, pids)

        for number in range(rounds):
            pair = (UNBUFFERED, IDEAL_PROXIED) if number % 2 else (IDEAL_PROXIED, UNBUFFERED)
            outcome.rounds.append({target.name: settled(target) for target in pair})
        for target in REFERENCES:
            outcome.references[target.name] = settled(target)
    return outcome
