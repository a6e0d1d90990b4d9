"""The native stacks the bench starts (and always stops), and what it reads from them."""

from __future__ import annotations

import contextlib
import io
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from labsettings import GUNICORN_WORKERS

from .. import broker, endpoints, native, paths, procs, runstate
from ..procs import children, environment

OVERLAY = Path(__file__).resolve().parent / "nginx"
RENDERED_OVERLAY = paths.LAB / "bench" / "nginx-overlay"
IDEAL_RECEIVER = Path(__file__).resolve().parent / "ideal_receiver.py"
BASELINE_WORKER = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
# The bench-only nginx server (overlay conf.d/bench.conf) answers this Host on the lab's HTTPS port.
BENCH_HOST = "bench.localhost"


def bench_port(offset: int) -> int:
    """A port of the bench's own servers (0: the ideal receiver, 1: the websocket reference): right
    below the app's port, so each checkout's ports stay its own. Above it are the workers' own
    /socket.io/ ports (nginx.socketio_ports), as many as the stack has workers: at the app's port
    + 1 the ideal receiver found a worker's taken ("Address already in use") and the upload
    section failed."""
    return endpoints.app_port() - 1 - offset


def ideal_port() -> int:
    return bench_port(0)


def render_overlay() -> Path:
    """The bench overlay with the ideal receiver's address in (nginx-ctl.sh renders the rest)."""
    shutil.rmtree(RENDERED_OVERLAY, ignore_errors=True)
    shutil.copytree(OVERLAY, RENDERED_OVERLAY)
    for conf in RENDERED_OVERLAY.rglob("*.conf"):
        conf.write_text(conf.read_text().replace("{{BENCH_IDEAL_RECEIVER}}", f"127.0.0.1:{ideal_port()}"))
    return RENDERED_OVERLAY


@contextlib.contextmanager
def ideal_receiver() -> Iterator[int]:
    """bench/ideal_receiver.py on ideal_port() with the same Python as the app; its pid. Stopped after."""
    with listening_script(IDEAL_RECEIVER, ideal_port(), str(paths.UPLOADS)) as pid:
        yield pid


@contextlib.contextmanager
def listening_script(script: Path, port: int, *args: str, deadline_s: float = 10.0) -> Iterator[int]:
    """``script PORT ARGS...`` run with the bench's Python until it listens on 127.0.0.1:PORT;
    its pid. Stopped after."""
    process = subprocess.Popen(
        [sys.executable, str(script), str(port), *args],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + deadline_s
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if process.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"{script.name} did not listen on 127.0.0.1:{port} (port in use?)")
            time.sleep(0.05)
        yield process.pid
    finally:
        procs.stop(process.pid, signal.SIGTERM, 5)
        process.wait(5)


@contextlib.contextmanager
def native_stack(worker_class: str = BASELINE_WORKER, workers: int | None = 1) -> Iterator[None]:
    """The baseline native stack plus the bench overlay, with ``workers`` of ``worker_class``
    (None: the baseline's default, one per core and at least 2); down afterwards. One worker
    unless asked: what the proxy and upload figures measure is one worker's capacity (its CPU
    bounds them), and the worker classes are compared one worker each."""
    with environment(
        GUNICORN_WORKER_CLASS=worker_class,
        GUNICORN_WORKERS=None if workers is None else str(workers),
        LAB_NGINX_OVERLAY=str(render_overlay()),
        LAB_SCENARIO="",
        # The bench's thousands of clients all come from 127.0.0.1: the per-address limits are
        # for hostile clients, not for its load.
        LAB_LIMIT_CONN_UPLOAD="65535",  # nginx's largest
        LAB_LIMIT_CONN_WS="65535",
        LAB_LIMIT_WS_HANDSHAKES="100000",
    ):
        quiet = contextlib.redirect_stdout(io.StringIO())  # the up/down banners, once per restart
        with quiet:
            native.up()
        try:
            yield
        finally:
            with quiet:
                native.down()


def app_worker_pid(deadline_s: float = 10.0) -> int:
    """The one gunicorn worker (native_stack() pins GUNICORN_WORKERS=1): the master's child."""
    return app_worker_pids(deadline_s, wanted=1)[0]


def app_worker_pids(deadline_s: float = 10.0, wanted: int | None = None) -> list[int]:
    """Every gunicorn worker of the stack, once ``wanted`` (default: as many as it was started
    with) run."""
    master = int(native.GUNICORN_PID.read_text().strip())
    wanted = wanted or GUNICORN_WORKERS.value(runstate.read())
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        workers = children(master)
        if len(workers) == wanted:
            return sorted(workers)
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn master {master} has {len(children(master))} workers, expected {wanted}")


def children_cpu_seconds() -> float:
    """CPU seconds of this process's children that have exited and been waited for (wrk, h2load)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def broker_pids() -> list[int]:
    pid = broker.running()
    return [pid] if pid else []


def nginx_worker_pids() -> list[int]:
    return sorted(children(int(native.NGINX_PID.read_text().strip())))


def kib_each(before: dict[str, int], after: dict[str, int], count: int) -> float:
    """The processes' summed RSS growth, in KiB per one of ``count`` (connections)."""
    return round((sum(after.values()) - sum(before.values())) / count, 1)


def open_files_limit(pid: int) -> int:
    """The soft RLIMIT_NOFILE a running process got (what caps its sockets)."""
    match = re.search(r"^Max open files\s+(\d+)", Path(f"/proc/{pid}/limits").read_text(), re.MULTILINE)
    return int(match.group(1)) if match else -1


def nginx_worker_connections() -> int:
    rendered = (paths.NGINX_PREFIX / "conf" / "nginx.conf").read_text()
    match = re.search(r"^\s*worker_connections\s+(\d+);", rendered, re.MULTILINE)
    return int(match.group(1)) if match else 512
