"""labapp.heap: glibc keeps a burst of large blocks the app has freed; malloc_trim gives it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labapp import heap

pytestmark = pytest.mark.no_stack

# A fresh process as a fresh worker: a large block mapped and freed (glibc then raises its mmap
# threshold to that size), then 48 more of 768 KiB (a client's unread echoes), each followed by a
# smaller block that stays (the heap's top moves past it), then the large ones freed.
BURST = """
from labapp import heap
first = bytearray(768 * 1024)
del first
before = heap.rss_kib()
large, kept = [], []
for n in range(48):
    large.append(b"x" * (768 * 1024))
    kept.append(b"y" * (40 * 1024))
large.clear()
freed = heap.rss_kib()
assert heap.trim()
print(round((freed - before) / 1024, 1), round((heap.rss_kib() - before) / 1024, 1))
"""


def test_glibc_keeps_a_freed_burst_and_trim_gives_it_back():
    run = subprocess.run(
        [sys.executable, "-c", BURST],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(heap.__file__).parent.parent,
    )
    freed, trimmed = map(float, run.stdout.split())
    assert freed >= 24, (
        f"glibc gave back most of the 36 MiB freed by itself ({freed} MiB kept): no heap to trim"
    )
    assert trimmed < 4, f"{trimmed} MiB kept after malloc_trim (the 1.9 MiB of small blocks stay)"


def test_rss_is_this_process_s():
    with open("/proc/self/status") as status:
        vm_rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    assert abs(heap.rss_kib() - vm_rss) < 1024
