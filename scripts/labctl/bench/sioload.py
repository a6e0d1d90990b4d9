"""How many Socket.IO clients (websocket transport) the default workers hold between them through
nginx, what each costs the app and nginx, and how fast one `chat` event reaches all of them
through the message queue (Flask-SocketIO's Redis manager).

The clients are raw sockets of the ws section's selector fleet speaking Engine.IO 4 by hand: the
open packet, "40" connect, "42[...]" events, "3" to the server's "2" pings (answered between
ramp batches, long before pingInterval + pingTimeout runs out). python-socketio's client costs a
thread or a task and a parser per client: 5,000 of them would measure the client."""

from __future__ import annotations

import json
import ssl
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field

from .. import endpoints, procs, wsclient
from . import bench_stack
from .settings import BenchSettings
from .wsfleet import CONNECT_TIMEOUT_S, Fleet, Member
from .wsload import MAX_FAILURES, RECEIVE_TIMEOUT_S, cpu_ms_each, cpu_now

PATH = "/socket.io/?EIO=4&transport=websocket"
BATCH = 500  # clients opened between two rounds of answering pings


@dataclass
class SioResult:
    held: int = 0  # the sender plus every client that got every broadcast
    attempted: int = 0
    failures: int = 0
    first_error: str = ""
    ramp_s: float = 0.0
    pings_answered: int = 0
    clients_per_worker: dict[str, int] = field(default_factory=dict)
    app_pids: list[str] = field(default_factory=list)  # which of the pids below are the app's workers
    rss_before_kib: dict[str, int] = field(default_factory=dict)  # app workers and nginx workers
    rss_after_kib: dict[str, int] = field(default_factory=dict)
    kib_per_connection: float | None = None  # both
    # Each share alone: the app's is what ws.kib_per_connection counts, nginx's what ws's
    # nginx_kib_per_connection does.
    app_kib_per_connection: float | None = None
    nginx_kib_per_connection: float | None = None
    broadcast_ms: float | None = None
    broadcast_runs_ms: list[float] = field(default_factory=list)
    # CPU milliseconds per broadcast (mean), as ws.broadcast_cpu_ms: app workers, nginx, Redis, client.
    broadcast_cpu_ms: dict[str, float] = field(default_factory=dict)


def _packet(ws: wsclient.WebSocket, prefix: bytes) -> bytes:
    """The next Engine.IO packet starting with ``prefix``, answering pings meanwhile."""
    while True:
        _opcode, payload = ws.recv()
        if payload == b"2":
            ws.send_text("3")
        elif payload.startswith(prefix):
            return payload


def open_sio_client(context: ssl.SSLContext) -> Member:
    """One Socket.IO client over wss through nginx: open packet, connect, and an acked `info`
    whose answer names the worker."""
    port = endpoints.https_port()
    answer, ws = wsclient.connect(
        ("127.0.0.1", port), PATH, f"localhost:{port}", context, timeout=CONNECT_TIMEOUT_S
    )
    if ws is None:
        raise wsclient.HandshakeError(f"handshake answered {answer.status} {answer.reason}, not 101")
    try:
        _packet(ws, b"0{")
        ws.send_text("40")
        _packet(ws, b"40")
        ws.send_text('420["info"]')
        info = json.loads(_packet(ws, b"430")[3:])[0]
    except BaseException:
        ws.sock.close()
        raise
    return Member(ws, f"{info['served_by']['host']}/{info['served_by']['pid']}")


def _measure(settings: BenchSettings, fleet: Fleet, result: SioResult) -> None:
    app = bench_stack.app_worker_pids()
    result.app_pids = [str(pid) for pid in app]
    pids = app + bench_stack.nginx_worker_pids()
    # Warm the code paths first, so their one-off allocations are not charged to connections.
    with Fleet() as warm:
        warm.open(PATH, 4, 4, 30, 1, hello=False, opener=open_sio_client)
        warm.broadcast("bench warm-up", RECEIVE_TIMEOUT_S, '42["chat",{"msg":"bench warm-up"}]')
    time.sleep(0.5)
    result.rss_before_kib = procs.rss_by_pid(pids)
    started = time.monotonic()
    while result.attempted < settings.socketio_max_connections and result.failures < MAX_FAILURES:
        left = settings.socketio_ramp_timeout_s - (time.monotonic() - started)
        if left <= 0:
            result.first_error = result.first_error or "ramp deadline reached"
            break
        count = min(BATCH, settings.socketio_max_connections - result.attempted)
        ramp = fleet.open(
            PATH,
            count,
            settings.ws_handshake_concurrency,
            left,
            MAX_FAILURES - result.failures,
            hello=False,
            opener=open_sio_client,
        )
        result.attempted += ramp.attempted
        result.failures += ramp.failures
        result.first_error = result.first_error or ramp.first_error
        result.pings_answered += fleet.answer(b"2", "3")
    result.ramp_s = round(time.monotonic() - started, 2)
    time.sleep(1.0)
    result.pings_answered += fleet.answer(b"2", "3")
    result.rss_after_kib = procs.rss_by_pid(pids)
    result.clients_per_worker = dict(Counter(member.worker for member in fleet.members))
    if len(fleet.members) < 2:
        return
    reached = len(fleet.members) - 1
    groups = {"app": app, "nginx": bench_stack.nginx_worker_pids(), "redis": bench_stack.broker_pids()}
    before = cpu_now(groups)
    for run in range(settings.ws_broadcasts):
        token = f"bench sio broadcast {run}"
        elapsed, got = fleet.broadcast(token, RECEIVE_TIMEOUT_S, f'42["chat",{{"msg":"{token}"}}]')
        result.broadcast_runs_ms.append(elapsed)
        reached = min(reached, got)
        result.pings_answered += fleet.answer(b"2", "3")
    after = cpu_now(groups)
    result.broadcast_cpu_ms = cpu_ms_each(before, after, settings.ws_broadcasts)
    result.held = 1 + reached
    result.broadcast_ms = statistics.median(result.broadcast_runs_ms)
    count_shares(result, len(fleet.members))


def count_shares(result: SioResult, count: int) -> None:
    """The RSS growth per one of ``count`` clients: app and nginx together, and each alone."""
    result.kib_per_connection = bench_stack.kib_each(result.rss_before_kib, result.rss_after_kib, count)
    app_pids = set(result.app_pids)

    def share(of_app: bool) -> float:
        before = {pid: kib for pid, kib in result.rss_before_kib.items() if (pid in app_pids) == of_app}
        after = {pid: kib for pid, kib in result.rss_after_kib.items() if (pid in app_pids) == of_app}
        return bench_stack.kib_each(before, after, count)

    result.app_kib_per_connection, result.nginx_kib_per_connection = share(True), share(False)


def run(settings: BenchSettings) -> SioResult:
    """On a stack of the default workers: Socket.IO clients held, their cost, one broadcast."""
    result = SioResult()
    with Fleet() as fleet:
        _measure(settings, fleet, result)
    return result
