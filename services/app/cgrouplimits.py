"""The container's resource limits and the kernel's counts of hitting them, from its cgroup.

Docker mounts the container's own cgroup at /sys/fs/cgroup: one directory per controller under
cgroup v1 (Debian 12's engine here: memory/, pids/, cpu/), one directory for all of them under
v2. Both are read, the same way:

- memory: the limit, and how many processes the kernel's OOM killer has killed in this cgroup
  (v1 ``memory.oom_control`` ``oom_kill``, v2 ``memory.events`` ``oom_kill``);
- pids: the limit, the tasks (processes and threads) counted against it, and how many forks or
  thread starts it refused (``pids.events`` ``max``, both versions);
- cpu: the quota, as a number of cores (v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, v2
  ``cpu.max``).

Standard library only: gunicorn.conf.py reads it in gunicorn's master, labsettings for
GUNICORN_WORKERS=auto. Outside a container (native mode) the same paths are the host's root
cgroup, which has no limits: every limit reads as None.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
# cgroup v1 writes "no limit" as the largest page-aligned int64 (memory) or -1 (cpu quota).
V1_NO_MEMORY_LIMIT = 1 << 62
MIB = 1024 * 1024


@dataclass(frozen=True)
class Hits:
    """How often the kernel has enforced a limit on this cgroup so far."""

    oom_kills: int  # processes killed because the cgroup was at its memory limit
    pids_refused: int  # forks and thread starts refused at the pids limit


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _keyed(path: Path, key: str) -> int | None:
    """The value of ``key`` in a file of "key value" lines (memory.events, pids.events)."""
    text = _read(path)
    if text is None:
        return None
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return None


def _unified(root: Path) -> bool:
    return (root / "cgroup.controllers").is_file()


def _limit(text: str | None) -> int | None:
    """A limit or counter as cgroup files write it: a number, or "max" for none."""
    if text is None or text == "max":
        return None
    return int(text)


def memory_limit(root: Path = ROOT) -> int | None:
    """The memory limit in bytes, None when there is none."""
    if _unified(root):
        return _limit(_read(root / "memory.max"))
    value = _limit(_read(root / "memory" / "memory.limit_in_bytes"))
    return None if value is None or value >= V1_NO_MEMORY_LIMIT else value


def memory_peak(root: Path = ROOT) -> int | None:
    """The most memory the cgroup has used, in bytes (v2 needs kernel 5.19 for memory.peak)."""
    name = "memory.peak" if _unified(root) else "memory/memory.max_usage_in_bytes"
    return _limit(_read(root / name))


def pids_limit(root: Path = ROOT) -> int | None:
    return _limit(_read(root / ("pids.max" if _unified(root) else "pids/pids.max")))


def pids_current(root: Path = ROOT) -> int | None:
    return _limit(_read(root / ("pids.current" if _unified(root) else "pids/pids.current")))


def cpu_quota(root: Path = ROOT) -> float | None:
    """The CPU quota in cores (``cpus: 1.5`` -> 1.5), None when there is none."""
    if _unified(root):
        text = _read(root / "cpu.max")
        if text is None:
            return None
        quota, _, period = text.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100_000)
    quota_us = _read(root / "cpu" / "cpu.cfs_quota_us")
    period_us = _read(root / "cpu" / "cpu.cfs_period_us")
    if quota_us is None or period_us is None or int(quota_us) < 0:
        return None
    return int(quota_us) / int(period_us)


def cores(available: int, root: Path = ROOT) -> int:
    """The cores a process here may keep busy: ``available`` (the CPUs it sees), fewer when a
    CPU quota caps the container below that (a quota of 1.5 keeps 2 busy, each part-time)."""
    quota = cpu_quota(root)
    return available if quota is None else max(1, min(available, math.ceil(quota)))


def hits(root: Path = ROOT) -> Hits | None:
    """The kernel's counts so far; None where this cgroup has neither counter (no cgroup here)."""
    if _unified(root):
        oom, refused = _keyed(root / "memory.events", "oom_kill"), _keyed(root / "pids.events", "max")
    else:
        oom = _keyed(root / "memory" / "memory.oom_control", "oom_kill")
        refused = _keyed(root / "pids" / "pids.events", "max")
    if oom is None and refused is None:
        return None
    return Hits(oom_kills=oom or 0, pids_refused=refused or 0)


def _mib(value: int | None) -> str:
    return "none" if value is None else f"{value / MIB:.0f} MiB"


def hit_since(before: Hits, root: Path = ROOT) -> str | None:
    """One line naming each limit the kernel has enforced since ``before``, None if none was."""
    now = hits(root)
    if now is None:
        return None
    said = []
    if now.oom_kills > before.oom_kills:
        said.append(
            f"memory limit hit: the kernel killed {now.oom_kills - before.oom_kills} process(es) of "
            f"this container for memory (limit {_mib(memory_limit(root))}, peak {_mib(memory_peak(root))})"
        )
    if now.pids_refused > before.pids_refused:
        said.append(
            f"pids limit hit: the kernel refused {now.pids_refused - before.pids_refused} fork(s) or "
            f"thread start(s) (limit {pids_limit(root)}, {pids_current(root)} tasks now)"
        )
    return "; ".join(said) or None
