"""One large websocket message: how long the app takes to echo it against the `websockets`
library's echo server (reference_echo.py), the same client for both, straight to each (no nginx),
and how long another client of the same worker waits meanwhile."""

from __future__ import annotations

import asyncio
import random
import statistics
import string
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets import __version__ as client_version
from websockets.asyncio.client import connect as async_connect
from websockets.sync.client import ClientConnection, connect

from .. import endpoints, procs
from . import bench_stack

REFERENCE = Path(__file__).resolve().parent / "reference_echo.py"
TIMEOUT_S = 60.0
PROBER = Path(__file__).resolve().parent / "ws_prober.py"
# What each client of kib_per_connection echoes once: text worth compressing.
DEFLATE_PROBE = "a message worth compressing " * 40
IDLE_S = 0.5  # the prober alone before each echo: its worst round trip then is the machine's noise


CLIENT = f"websockets {client_version}"


@dataclass
class LargeMessageResult:
    size: int = 0
    app_s: list[float] = field(default_factory=list)
    reference_s: list[float] = field(default_factory=list)
    # The other client's longest round trip while the large message was being echoed.
    app_stall_ms: list[float] = field(default_factory=list)
    reference_stall_ms: list[float] = field(default_factory=list)
    idle_round_trip_ms: float = 0.0  # the other client's median before the app's last echo
    # Its longest round trip in the same time just before each app echo: the machine's noise.
    idle_worst_ms: list[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return round(statistics.median(self.app_s) / statistics.median(self.reference_s), 2)

    @property
    def stall_ms(self) -> float:
        return max(self.app_stall_ms)


def message(size: int) -> str:
    """About ``size`` bytes of UTF-8 text (a multiple of 64): ASCII and one two-byte character
    in every 64 bytes."""
    rng = random.Random(26)
    unit = "".join(rng.choices(string.ascii_letters + string.digits + " ", k=62)) + "\u00e9"
    return unit * (size // 64)


def _open(url: str) -> ClientConnection:
    return connect(url, compression=None, max_size=None, open_timeout=10, close_timeout=2)


class Prober:
    """Another client of the same server (ws_prober.py, a process of its own): small echoes back
    to back, each round trip timed."""

    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(PROBER), url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        if self.process.stdout.readline().strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the prober did not connect to {url}")
        self.samples: list[tuple[float, float]] = []  # (sent at, round trip s)

    def finish(self) -> None:
        out, _ = self.process.communicate("", timeout=TIMEOUT_S)
        self.samples = [
            (float(sent), float(rtt)) for sent, rtt in (line.split() for line in out.splitlines())
        ]

    def worst_ms_between(self, start: float, end: float) -> float:
        """The longest round trip of a probe in flight at any time between ``start`` and ``end``."""
        waits = [rtt for sent, rtt in self.samples if sent < end and sent + rtt > start]
        return round(max(waits, default=0.0) * 1000, 1)

    def idle_ms_before(self, start: float) -> tuple[float, float]:
        """The median and the longest round trip (ms) of the probes done before ``start``."""
        idle = [rtt for sent, rtt in self.samples if sent + rtt < start]
        return round(statistics.median(idle) * 1000, 2), round(max(idle) * 1000, 1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


def _echo_once(url: str, text: str) -> tuple[float, float, tuple[float, float]]:
    """Seconds to echo ``text``, the prober's worst round trip meanwhile (ms), and its median and
    worst in IDLE_S before it."""
    prober = Prober(url)
    try:
        time.sleep(IDLE_S)  # the prober's idle round trips
        with _open(url) as client:
            start = time.monotonic()
            client.send(text)
            back = client.recv(TIMEOUT_S)
            end = time.monotonic()
        time.sleep(0.05)  # the probe in flight at the end comes back
        prober.finish()
    finally:
        prober.stop()
    if back != text:
        raise RuntimeError(f"{url} echoed {len(back)} characters, not the {len(text)} sent")
    return end - start, prober.worst_ms_between(start, end), prober.idle_ms_before(start)


def run(size: int, rounds: int) -> LargeMessageResult:
    """On the running one-worker stack: ``rounds`` echoes of a ``size``-byte text message by the
    app and by the reference, alternated, each with a prober on the same server."""
    result = LargeMessageResult(size=size)
    text = message(size)
    app = f"ws://127.0.0.1:{endpoints.app_port()}/ws/echo"
    reference_port = bench_stack.bench_port(1)
    with bench_stack.listening_script(REFERENCE, reference_port):
        reference = f"ws://127.0.0.1:{reference_port}/"
        for _ in range(rounds):
            for url, seconds, stalls in (
                (app, result.app_s, result.app_stall_ms),
                (reference, result.reference_s, result.reference_stall_ms),
            ):
                took, stall, idle = _echo_once(url, text)
                seconds.append(round(took, 3))
                stalls.append(stall)
                if url == app:
                    result.idle_round_trip_ms, worst = idle
                    result.idle_worst_ms.append(worst)
    return result


async def _hold(url: str, count: int, deflate: bool, ready: asyncio.Event, done: asyncio.Event) -> None:
    """``count`` clients of ``url``, each having echoed one message (so that a connection that
    compresses has made its zlib streams); held until ``done``."""
    compression = "deflate" if deflate else None
    clients = []
    try:
        for _ in range(count):
            client = await async_connect(url, compression=compression, max_size=None, open_timeout=10)
            clients.append(client)
            await client.send(DEFLATE_PROBE)
            await client.recv()
        ready.set()
        await done.wait()
    finally:
        for client in clients:
            await client.close()


def kib_per_connection(count: int, deflate: bool) -> float:
    """On the running one-worker stack: the worker's RSS growth per /ws/echo client that has
    echoed one message, the clients offering permessage-deflate or not."""
    url = f"ws://127.0.0.1:{endpoints.app_port()}/ws/echo"
    worker = bench_stack.app_worker_pid()

    async def measure() -> float:
        ready, done = asyncio.Event(), asyncio.Event()
        # Warm the code paths first, so their one-off allocations are not charged to connections.
        warm = asyncio.create_task(_hold(url, 4, deflate, ready, done))
        await ready.wait()
        done.set()
        await warm
        await asyncio.sleep(0.5)
        before = procs.rss_kib(worker)
        ready, done = asyncio.Event(), asyncio.Event()
        held = asyncio.create_task(_hold(url, count, deflate, ready, done))
        await ready.wait()
        await asyncio.sleep(0.5)
        after = procs.rss_kib(worker)
        done.set()
        await held
        return round((after - before) / count, 1)

    return asyncio.run(measure())
