"""Processes and environment, shared by the stack drivers, the bench and the test suites."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces and parentheses.
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def is_zombie(pid: int) -> bool:
    try:
        return _stat_fields(pid)[0] == "Z"
    except (OSError, IndexError):
        return False  # gone, or no /proc (not Linux)


def alive(pid: int) -> bool:
    """Running: a zombie (exited, not yet reaped by its parent) still answers kill(pid, 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not is_zombie(pid)


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int(_stat_fields(int(entry.name))[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set env vars (read by native.up, nginx-ctl.sh and gunicorn.conf.py) for the block only."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
