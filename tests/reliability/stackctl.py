"""The processes of the native stack, for tests that kill, signal and restart them."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from labctl import endpoints, native
from labctl.health import wait_healthy
from labctl.procs import alive, children

T = TypeVar("T")


def read_pid(pidfile: Path) -> int:
    pid = int(pidfile.read_text().strip())
    os.kill(pid, 0)  # raises if the process is gone
    return pid


def gunicorn_master() -> int:
    return read_pid(native.GUNICORN_PID)


def nginx_master() -> int:
    return read_pid(native.NGINX_PID)


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` otherwise."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if result := predicate():
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_for_new_workers(master: int, old: set[int], timeout: float = 30) -> set[int]:
    """The master's workers that were not in ``old``, once the app answers directly again."""
    new = wait_for(lambda: children(master) - old, timeout, f"gunicorn {master} to start a new worker")
    wait_healthy(f"http://127.0.0.1:{endpoints.app_port()}/healthz", None, timeout)
    return new


def stop_gunicorn() -> None:
    master = gunicorn_master()
    os.kill(master, signal.SIGTERM)
    wait_for(lambda: not alive(master), 20, f"gunicorn master {master} to exit after SIGTERM")


def start_gunicorn() -> int:
    """Start gunicorn the way `scripts/lab native-up` does; returns the master's pid."""
    process = native.start_gunicorn()
    wait_healthy(f"http://127.0.0.1:{endpoints.app_port()}/healthz", None, 30, lambda: process.poll() is None)
    return process.pid


def partial_files(upload_dir: Path) -> list[str]:
    return sorted(p.name for p in upload_dir.glob(".partial-*"))


def log_offset(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def log_lines_since(log: Path, offset: int) -> list[str]:
    with log.open("rb") as handle:
        handle.seek(offset)
        return [line.decode(errors="replace") for line in handle]


def nginx_entries_since(offset: int) -> list[dict]:
    """nginx's JSON access log entries written after ``offset``."""
    return [
        json.loads(line) for line in log_lines_since(native.NGINX_ACCESS_LOG, offset) if line.startswith("{")
    ]


def reload_nginx() -> None:
    """`scripts/lab reload` (nginx -t, then reload), returning once the new workers run."""
    master = nginx_master()
    old_workers = children(master)
    assert native.reload() == 0, "nginx -t or reload failed"
    wait_for(lambda: children(master) - old_workers, 10, "nginx's new workers")
