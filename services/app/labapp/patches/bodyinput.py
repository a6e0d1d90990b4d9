"""Two methods gevent's ``pywsgi.Input`` (wsgi.input) lacks, for a body read as it arrives within
a deadline (labapp.body); each keeps gevent's own reading (tests/unit/test_patches_bodyinput.py
compares them with the stock Input on the same bodies).

1. ``Input.bytes_ready()``: waits until part of the body can be read without waiting, and says how
   much at most, holding no buffer while the client is slow (the connection's 1 KiB read buffer
   only: labapp.patches.pywsgi). gevent's ``read`` waits inside a read of the size asked for,
   into a buffer of that size: 300 uploads trickling 2 B/s held 1 MiB each (issue 28).
2. ``Input.abandon()``: the rest of the body left unread. gevent's ``_discard`` (after the
   response) would read it to its end, for as long as a slow client cares to trickle; after
   ``abandon`` a read returns b"" and the discard reads nothing, as for a body read to its end.
   The response must close the connection (what is left of the body is still on it).

Both read and set only gevent's own state (``position``, ``content_length``, ``chunk_length``,
``_chunked_input_error``, ``_send_100_continue``), which is why they live here, pinned to the
version they were written against.
"""

from __future__ import annotations

import array
import fcntl
import termios
from typing import Any

from . import Patch
from .pywsgi import GEVENT

CHUNK = 1024 * 1024  # at most this much is said to be readable at once


def waiting_on_socket(rfile: Any) -> int:
    """Bytes the kernel holds for ``rfile``'s connection (Linux FIONREAD), read without waiting."""
    count = array.array("i", [0])
    fcntl.ioctl(rfile.fileno(), termios.FIONREAD, count)
    return count[0]


def bytes_ready(self: Any) -> int:
    """How much of the body can be read now without waiting, after waiting for some (0: the body
    is over; 1 at an early end of file: the read says so)."""
    if self.chunked_input:
        if self.chunk_length == 0:
            return 0
        # Inside a chunk: its rest; between chunks: 1, which reads the size line as well.
        in_chunk = max(1, self.chunk_length - self.position)
    else:
        in_chunk = (self.content_length or 0) - self.position
        if in_chunk <= 0:
            return 0
    self._send_100_continue()  # a client that sent Expect: 100-continue waits for it
    buffered = len(self.rfile.peek(1))
    if not buffered:
        return 1
    return min(in_chunk, CHUNK, buffered + waiting_on_socket(self.rfile))


def abandon(self: Any) -> None:
    """The rest of the body left unread: reads return b"", gevent's discard reads nothing."""
    self._chunked_input_error = True  # gevent's _discard: nothing left to read
    self.content_length = self.position
    self.chunk_length = 0


def _added(name: str, replacement: Any, why: str) -> Patch:
    return Patch(
        target=f"gevent.pywsgi:Input.{name}",
        replacement=replacement,
        why=why,
        upstream="gevent (gevent/gevent, src/gevent/pywsgi.py): a wait for body bytes without a "
        "buffer, and a way to give up on the rest of a body",
        distribution="gevent",
        version=GEVENT,
        digest="",  # added: gevent's Input has neither
    )


PATCHES = (
    _added("bytes_ready", bytes_ready, "a wait for a slow body's bytes held a buffer of the size asked for"),
    _added("abandon", abandon, "gevent's discard reads a slow body to its end after the response"),
)
