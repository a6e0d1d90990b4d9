"""Processes and environment, shared by the stack drivers, the bench and the test suites."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name, from its state on: stat(5)'s field N is [N - 3].
    ("pid (comm) state ppid ..."; comm may hold spaces and parentheses.)"""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU seconds the processes (all their threads) have used so far
    (/proc/PID/stat utime, stime)."""
    user = system = 0
    for pid in pids:
        fields = stat_fields(pid)
        user += int(fields[11])  # fields 14 and 15 of stat(5)
        system += int(fields[12])
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far."""
    return sum(cpu_times(pids))


def rss_kib(pid: int) -> int:
    match = re.search(r"^VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no VmRSS for pid {pid}")
    return int(match.group(1))


def rss_by_pid(pids: list[int]) -> dict[str, int]:
    """VmRSS in KiB of each process, by pid (as the bench's details.json keeps them)."""
    return {str(pid): rss_kib(pid) for pid in pids}


def is_zombie(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] == "Z"
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
                if int(stat_fields(int(entry.name))[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set env vars (read by native.up, nginx-ctl.sh and gunicorn.conf.py) for the block only;
    None unsets one."""
    saved = {key: os.environ.get(key) for key in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pid_from_file(path: Path, marker: str) -> int | None:
    """The pid in ``path`` if that process is still ours (``marker`` in its command line): after a
    crash or a reboot the number may belong to any other process, and the stack is stopped as root
    in CI."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return pid  # no /proc (not Linux): being alive is all we can check
    return pid if marker in command else None


def exited(pid: int) -> bool:
    try:
        # Reap it when this process started it (up() then down() in one process, as `lab test`
        # and the browser suite do): a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass  # not our child: its own parent reaps it, maybe much later (`lab test` runs pytest)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return is_zombie(pid)


def stop(pid: int | None, sig: signal.Signals, wait_s: float) -> None:
    """Signal ``pid`` and wait until it has exited; SIGKILL it after ``wait_s``."""
    if pid is None:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        if exited(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # it may exit between the last look and now
        os.kill(pid, signal.SIGKILL)
