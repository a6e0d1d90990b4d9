"""cgrouplimits on the two layouts Docker mounts at /sys/fs/cgroup: v1 (a directory per
controller, Debian 12's engine) and v2 (one directory), written out as the kernel writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

import capacity
import cgrouplimits

pytestmark = pytest.mark.no_stack

MIB = 1024 * 1024


def v1(root: Path, memory: str, oom_kills: int, pids_max: str, refused: int, quota: str = "-1") -> Path:
    files = {
        "memory/memory.limit_in_bytes": memory,
        "memory/memory.max_usage_in_bytes": str(300 * MIB),
        "memory/memory.oom_control": f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_kills}\n",
        "pids/pids.max": pids_max,
        "pids/pids.current": "7",
        "pids/pids.events": f"max {refused}\n",
        "cpu/cpu.cfs_quota_us": quota,
        "cpu/cpu.cfs_period_us": "100000",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


def v2(root: Path, memory: str, oom_kills: int, pids_max: str, refused: int, cpu: str = "max 100000") -> Path:
    files = {
        "cgroup.controllers": "cpuset cpu io memory pids",
        "memory.max": memory,
        "memory.peak": str(300 * MIB),
        "memory.events": f"low 0\nhigh 0\nmax 12\noom 1\noom_kill {oom_kills}\noom_group_kill 0\n",
        "pids.max": pids_max,
        "pids.current": "7",
        "pids.events": f"max {refused}\n",
        "cpu.max": cpu,
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (root / name).write_text(text + "\n")
    return root


def test_v1_limits_and_no_limits(tmp_path: Path) -> None:
    limited = v1(tmp_path / "a", str(320 * MIB), 0, "32", 0, quota="150000")
    assert cgrouplimits.memory_limit(limited) == 320 * MIB
    assert cgrouplimits.pids_limit(limited) == 32
    assert cgrouplimits.cpu_quota(limited) == 1.5
    free = v1(tmp_path / "b", str(9223372036854771712), 0, "max", 0)
    assert cgrouplimits.memory_limit(free) is None
    assert cgrouplimits.pids_limit(free) is None
    assert cgrouplimits.cpu_quota(free) is None


def test_v2_limits_and_no_limits(tmp_path: Path) -> None:
    limited = v2(tmp_path / "a", str(320 * MIB), 0, "32", 0, cpu="200000 100000")
    assert (cgrouplimits.memory_limit(limited), cgrouplimits.pids_limit(limited)) == (320 * MIB, 32)
    assert cgrouplimits.cpu_quota(limited) == 2.0
    free = v2(tmp_path / "b", "max", 0, "max", 0)
    assert (cgrouplimits.memory_limit(free), cgrouplimits.pids_limit(free), cgrouplimits.cpu_quota(free)) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("layout", [v1, v2])
def test_a_hit_is_named_by_its_limit(tmp_path: Path, layout) -> None:
    before = cgrouplimits.hits(layout(tmp_path, str(320 * MIB), 2, "32", 5))
    assert before == cgrouplimits.Hits(oom_kills=2, pids_refused=5)
    assert cgrouplimits.hit_since(before, tmp_path) is None
    layout(tmp_path, str(320 * MIB), 3, "32", 5)
    assert cgrouplimits.hit_since(before, tmp_path) == (
        "memory limit hit: the kernel killed 1 process(es) of this container for memory "
        "(limit 320 MiB, peak 300 MiB)"
    )
    layout(tmp_path, str(320 * MIB), 2, "32", 9)
    assert cgrouplimits.hit_since(before, tmp_path) == (
        "pids limit hit: the kernel refused 4 fork(s) or thread start(s) (limit 32, 7 tasks now)"
    )


def test_no_cgroup_files_no_hits(tmp_path: Path) -> None:
    assert cgrouplimits.hits(tmp_path) is None


@pytest.mark.parametrize(
    ("available", "quota", "cores"), [(16, "200000", 2), (16, "150000", 2), (2, "800000", 2)]
)
def test_the_cores_a_quota_allows(tmp_path: Path, available: int, quota: str, cores: int) -> None:
    root = v1(tmp_path, "1", 0, "max", 0, quota=quota)
    assert cgrouplimits.cores(available, root) == cores
    assert cgrouplimits.cores(available, v1(tmp_path / "none", "1", 0, "max", 0)) == available


@pytest.mark.parametrize(
    ("raw", "size"), [("1145m", 1145 * MIB), ("1g", 1024 * MIB), ("512k", 512 * 1024), ("4096", 4096)]
)
def test_memory_sizes_as_compose_writes_them(raw: str, size: int) -> None:
    assert capacity.byte_size(raw) == size


@pytest.mark.parametrize("raw", ["", "m", "1.5g", "0m", "12x"])
def test_a_malformed_memory_size_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="want a size like"):
        capacity.byte_size(raw)


def test_cpu_limits_parse_and_zero_is_refused() -> None:
    assert capacity.cpu_cores("1.5") == 1.5
    with pytest.raises(ValueError, match="more than 0 cores"):
        capacity.cpu_cores("0")
