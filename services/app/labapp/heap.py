"""The worker's memory as the system counts it, and glibc's free pages given back on demand.

glibc's malloc keeps what the app frees: it moves its mmap threshold up to each large block freed
(up to 32 MiB), so after a worker's first burst of large messages the next ones land on its heap,
whose free middle it never returns by itself. A fresh worker kept 53 MiB of 128 after one
Socket.IO client's 48 unread 768 KiB echoes had been freed (one run in six here, one CI run).
``malloc_trim(0)`` returns those free pages: whatever RSS is left after it is memory the app
still holds. Not done after every burst: fixing the threshold instead (every block of 128 KiB or
more mapped on its own, given back when freed) made a 16 MiB websocket echo 1.4x slower
(0.177 -> 0.244 s, `make bench` ws.large_echo_vs_reference_ratio 1.06 -> 1.67)."""

from __future__ import annotations

import ctypes
import resource

_PAGE_KIB = resource.getpagesize() // 1024


def rss_kib() -> int:
    """This process's resident memory, as ps and the kernel's OOM killer count it."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_KIB


def trim() -> bool:
    """glibc's free pages given back to the system (malloc_trim(0): every arena, its free chunks
    anywhere, not only the top). False where the C library has no malloc_trim (musl)."""
    malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)
    if malloc_trim is None:
        return False
    malloc_trim(0)
    return True
