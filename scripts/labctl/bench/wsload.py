"""How many wss /ws/chat connections the default gunicorn workers hold between them through nginx,
what each costs, how fast one chat message reaches every other client through Redis pub/sub
(each worker's relay writes to its own clients), and how fast they echo meanwhile."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from .. import procs
from . import bench_stack
from .settings import BenchSettings
from .wsfleet import Fleet

RECEIVE_TIMEOUT_S = 60.0
# Give up the ramp after this many failed handshakes: a limit was hit, and it is the finding.
MAX_FAILURES = 20


@dataclass
class WsResult:
    held: int = 0  # the sender plus every client that got every broadcast
    attempted: int = 0
    failures: int = 0
    first_error: str = ""
    ramp_s: float = 0.0
    clients_per_worker: dict[str, int] = field(default_factory=dict)  # "host/pid" -> clients
    rss_before_kib: dict[str, int] = field(default_factory=dict)  # per worker pid, summed below
    rss_after_kib: dict[str, int] = field(default_factory=dict)
    kib_per_connection: float | None = None
    # nginx's workers, the same way: not in kib_per_connection (the app's), beside socketio's, which
    # counts both (same TLS server, the same websocket buffers: the two nginx shares compare).
    nginx_rss_before_kib: dict[str, int] = field(default_factory=dict)
    nginx_rss_after_kib: dict[str, int] = field(default_factory=dict)
    nginx_kib_per_connection: float | None = None
    echo_p50_ms: float | None = None
    echo_p99_ms: float | None = None
    reached: int = 0  # the fewest other clients any one broadcast reached
    broadcast_ms: float | None = None
    broadcast_runs_ms: list[float] = field(default_factory=list)
    # CPU milliseconds each side spent per broadcast (mean): the app's workers, nginx, Redis, this client.
    broadcast_cpu_ms: dict[str, float] = field(default_factory=dict)
    limits: dict[str, int] = field(default_factory=dict)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def cpu_now(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds used so far by each group of processes, and by this client (``client``)."""
    used = {name: procs.cpu_seconds(pids) for name, pids in groups.items()}
    used["client"] = time.process_time()
    return used


def cpu_ms_each(before: dict[str, float], after: dict[str, float], runs: int) -> dict[str, float]:
    """CPU milliseconds per run of each group between two ``cpu_now``."""
    return {name: round((after[name] - before[name]) * 1000 / runs, 1) for name in after}


def _echo_round_trips(settings: BenchSettings) -> list[float]:
    with Fleet() as echo:
        ramp = echo.open("/ws/echo", settings.ws_echo_clients, settings.ws_echo_clients, 30, 1, hello=False)
        if ramp.failures:
            raise RuntimeError(f"/ws/echo clients failed to connect: {ramp.first_error}")
        return echo.round_trips(settings.ws_echo_messages, RECEIVE_TIMEOUT_S)


def _measure(settings: BenchSettings, fleet: Fleet, result: WsResult) -> None:
    workers = bench_stack.app_worker_pids()
    result.limits = {
        "nginx_worker_connections": bench_stack.nginx_worker_connections(),
        "app_open_files": min(bench_stack.open_files_limit(pid) for pid in workers),
        "bench_open_files": bench_stack.open_files_limit(os.getpid()),
    }
    # Warm the code paths first, so their one-off allocations are not charged to connections.
    _echo_round_trips(BenchSettings(ws_echo_clients=4, ws_echo_messages=2))
    time.sleep(0.5)
    nginx = bench_stack.nginx_worker_pids()
    result.rss_before_kib = procs.rss_by_pid(workers)
    result.nginx_rss_before_kib = procs.rss_by_pid(nginx)
    ramp = fleet.open(
        "/ws/chat?whoami=1",
        settings.ws_max_connections,
        settings.ws_handshake_concurrency,
        settings.ws_ramp_timeout_s,
        MAX_FAILURES,
        hello=True,
    )
    result.attempted, result.failures, result.first_error = ramp.attempted, ramp.failures, ramp.first_error
    result.ramp_s = ramp.seconds
    time.sleep(1.0)
    result.rss_after_kib = procs.rss_by_pid(workers)
    result.nginx_rss_after_kib = procs.rss_by_pid(nginx)
    result.clients_per_worker = dict(Counter(member.worker for member in fleet.members))
    if len(fleet.members) < 2:
        return
    groups = {"app": workers, "nginx": nginx, "redis": bench_stack.broker_pids()}
    before = cpu_now(groups)
    reached = len(fleet.members) - 1
    for run in range(settings.ws_broadcasts):
        elapsed, got = fleet.broadcast(f"bench broadcast {run}", RECEIVE_TIMEOUT_S)
        result.broadcast_runs_ms.append(elapsed)
        reached = min(reached, got)
    after = cpu_now(groups)
    result.broadcast_cpu_ms = cpu_ms_each(before, after, settings.ws_broadcasts)
    result.reached = reached
    result.held = 1 + reached
    result.broadcast_ms = statistics.median(result.broadcast_runs_ms)
    count = len(fleet.members)
    result.kib_per_connection = bench_stack.kib_each(result.rss_before_kib, result.rss_after_kib, count)
    result.nginx_kib_per_connection = bench_stack.kib_each(
        result.nginx_rss_before_kib, result.nginx_rss_after_kib, count
    )
    samples = _echo_round_trips(settings)
    result.echo_p50_ms = round(percentile(samples, 0.50), 2)
    result.echo_p99_ms = round(percentile(samples, 0.99), 2)


def run(settings: BenchSettings) -> WsResult:
    """On a stack of the default workers: how many /ws/chat clients they hold between them, what
    each costs, one message through Redis to all of them, and echo latency meanwhile."""
    result = WsResult()
    with Fleet() as fleet:
        _measure(settings, fleet, result)
    return result
