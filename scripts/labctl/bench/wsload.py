"""How many wss connections one gevent-websocket worker holds through nginx, what each costs and
how fast it echoes while holding them; and how fast one chat message reaches every other client
when they are spread over several workers, through Redis pub/sub."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .. import endpoints, paths
from ..wsclient import AsyncWebSocket
from . import bench_stack
from .settings import BenchSettings

CONNECT_TIMEOUT_S = 15.0
RECEIVE_TIMEOUT_S = 60.0
# Give up the ramp after this many failed handshakes: a limit was hit, and it is the finding.
MAX_FAILURES = 20
T = TypeVar("T")


@dataclass
class WsResult:
    held: int = 0
    attempted: int = 0
    failures: int = 0
    first_error: str = ""
    ramp_s: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    kib_per_connection: float | None = None
    echo_p50_ms: float | None = None
    echo_p99_ms: float | None = None
    # Broadcasts that prove each held connection alive (one worker: see BroadcastResult for ws.broadcast_ms).
    liveness_broadcasts_ms: list[float] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)


@dataclass
class BroadcastResult:
    clients: int = 0
    attempted: int = 0
    failures: int = 0
    first_error: str = ""
    ramp_s: float = 0.0
    clients_per_worker: dict[str, int] = field(default_factory=dict)  # "host/pid" -> clients
    reached: int = 0  # the fewest other clients any one broadcast reached
    broadcast_ms: float | None = None
    broadcast_runs_ms: list[float] = field(default_factory=list)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def _connect(path: str, context: ssl.SSLContext) -> AsyncWebSocket:
    return await asyncio.wait_for(
        AsyncWebSocket.connect(endpoints.https_port(), path, context), CONNECT_TIMEOUT_S
    )


async def _connect_chat(context: ssl.SSLContext) -> AsyncWebSocket:
    return await _connect("/ws/chat", context)


async def _connect_placed(context: ssl.SSLContext) -> tuple[AsyncWebSocket, str]:
    """A /ws/chat client and the worker holding it ("host/pid", from its ?whoami=1 hello)."""
    client = await _connect("/ws/chat?whoami=1", context)
    try:
        hello = json.loads(await asyncio.wait_for(client.recv_text(), CONNECT_TIMEOUT_S))
    except BaseException:
        client.abort()
        raise
    return client, f"{hello['served_by']['host']}/{hello['served_by']['pid']}"


async def _ramp(
    settings: BenchSettings, connect: Callable[[], Awaitable[T]], outcome: WsResult | BroadcastResult
) -> list[T]:
    """Open connections in waves until the configured max, the deadline or failures; the ramp's
    attempts, failures, first error and duration go into ``outcome``."""
    held: list[T] = []
    started = time.monotonic()
    deadline = started + settings.ws_ramp_timeout_s
    while len(held) < settings.ws_max_connections and outcome.failures < MAX_FAILURES:
        if time.monotonic() > deadline:
            outcome.first_error = (
                outcome.first_error or f"ramp deadline ({settings.ws_ramp_timeout_s:g} s) reached"
            )
            break
        wave = min(settings.ws_handshake_concurrency, settings.ws_max_connections - len(held))
        opened = await asyncio.gather(*(connect() for _ in range(wave)), return_exceptions=True)
        outcome.attempted += wave
        for one in opened:
            if isinstance(one, BaseException):
                outcome.failures += 1
                outcome.first_error = outcome.first_error or f"{type(one).__name__}: {one}"
            else:
                held.append(one)
    outcome.ramp_s = round(time.monotonic() - started, 2)
    return held


async def _broadcast(clients: list[AsyncWebSocket], token: str) -> tuple[float, int]:
    """Milliseconds until every other client got ``token`` from the first one, and how many did."""
    sender, receivers = clients[0], clients[1:]

    async def arrival(client: AsyncWebSocket) -> float:
        while token not in await client.recv_text():
            pass
        return time.perf_counter()

    started = time.perf_counter()
    await sender.send_text(token)
    arrivals = await asyncio.gather(
        *(asyncio.wait_for(arrival(c), RECEIVE_TIMEOUT_S) for c in receivers), return_exceptions=True
    )
    times = [a for a in arrivals if isinstance(a, float)]
    return round((max(times, default=started) - started) * 1000, 1), len(times)


async def _echo_round_trips(settings: BenchSettings, context: ssl.SSLContext) -> list[float]:
    clients = await asyncio.gather(*(_connect("/ws/echo", context) for _ in range(settings.ws_echo_clients)))

    async def client_round_trips(client: AsyncWebSocket, client_no: int) -> list[float]:
        samples = []
        for n in range(settings.ws_echo_messages):
            text = f"echo {client_no}/{n}"
            started = time.perf_counter()
            await client.send_text(text)
            if await client.recv_text() != text:
                raise RuntimeError("/ws/echo answered something else than the message sent")
            samples.append((time.perf_counter() - started) * 1000)
        return samples

    try:
        per_client = await asyncio.gather(*(client_round_trips(c, i) for i, c in enumerate(clients)))
    finally:
        for client in clients:
            client.abort()
    return [sample for samples in per_client for sample in samples]


async def _measure(settings: BenchSettings, result: WsResult) -> None:
    context = ssl.create_default_context(cafile=str(paths.CA))
    worker = bench_stack.app_worker_pid()
    result.limits = {
        "nginx_worker_connections": bench_stack.nginx_worker_connections(),
        "app_open_files": bench_stack.open_files_limit(worker),
        "bench_open_files": bench_stack.open_files_limit(os.getpid()),
    }
    # Warm the code paths first, so their one-off allocations are not charged to connections.
    await _echo_round_trips(BenchSettings(ws_echo_clients=2, ws_echo_messages=2), context)
    await asyncio.sleep(0.5)
    result.rss_before_kib = bench_stack.rss_kib(worker)
    clients = await _ramp(settings, lambda: _connect_chat(context), result)
    try:
        await asyncio.sleep(1.0)
        result.rss_after_kib = bench_stack.rss_kib(worker)
        if len(clients) < 2:
            return
        reached = len(clients) - 1
        for run in range(settings.ws_broadcasts):
            elapsed, got = await _broadcast(clients, f"bench broadcast {run}")
            result.liveness_broadcasts_ms.append(elapsed)
            reached = min(reached, got)
        # Held means proven alive: the sender plus every client that got every broadcast.
        result.held = 1 + reached
        result.kib_per_connection = round((result.rss_after_kib - result.rss_before_kib) / len(clients), 1)
        samples = await _echo_round_trips(settings, context)
        result.echo_p50_ms = round(percentile(samples, 0.50), 2)
        result.echo_p99_ms = round(percentile(samples, 0.99), 2)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.abort()


async def _measure_broadcast(settings: BenchSettings, result: BroadcastResult) -> None:
    context = ssl.create_default_context(cafile=str(paths.CA))
    placed = await _ramp(settings, lambda: _connect_placed(context), result)
    clients = [client for client, _ in placed]
    try:
        result.clients = len(clients)
        result.clients_per_worker = dict(Counter(worker for _, worker in placed))
        if len(result.clients_per_worker) < 2:
            raise RuntimeError(f"the clients did not spread over the workers: {result.clients_per_worker}")
        reached = len(clients) - 1
        for run in range(settings.ws_broadcasts):
            elapsed, got = await _broadcast(clients, f"bench broadcast across workers {run}")
            result.broadcast_runs_ms.append(elapsed)
            reached = min(reached, got)
        result.reached = reached
        result.broadcast_ms = statistics.median(result.broadcast_runs_ms)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                client.abort()


def run(settings: BenchSettings) -> WsResult:
    """On a one-worker stack: connections held, their cost, echo latency."""
    result = WsResult()
    asyncio.run(_measure(settings, result))
    return result


def run_broadcast(settings: BenchSettings) -> BroadcastResult:
    """On a stack of several workers: one chat message to every other client, through Redis."""
    result = BroadcastResult()
    asyncio.run(_measure_broadcast(settings, result))
    return result
