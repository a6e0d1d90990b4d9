"""A request body read as it arrives: no buffer is held while the client is slow, and the whole
body has a deadline.

An upload used to receive into 1 MiB buffers of its own, allocated when it started and held while
it waited for bytes: 300 clients trickling 2 B/s pinned 600 MiB of the workers (issue 28). Here
the wait (``ready``) costs only the connection's 1 KiB read buffer (labapp.patches.pywsgi): it peeks
until a byte is there, then asks the kernel how many more wait on the socket (FIONREAD;
labapp.patches.bodyinput), and only what is already there is read into a buffer lent by the
worker's pool (``BufferPool``), which gets it back once the chunk is hashed and written. A fast
upload still gets 1 MiB chunks: the kernel holds that much when the sender is faster than the
worker, which is when chunk size counts.

nginx's ``client_body_timeout`` is per read, so a byte every 59 s holds a connection for ever.
Every request's body, whichever view reads it (an upload, a form, JSON, the drain after an early
answer), is read within ``LAB_UPLOAD_BODY_S`` (labsettings) of the request's start:
``labapp.middleware.body_deadline`` puts a ``TimedInput`` in front of wsgi.input. Past it the read raises 408
(in the JSON envelope, with ``Connection: close``) and the rest of the body is left unread.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from typing import Any

import gevent
from gevent import pywsgi
from gevent.socket import wait_read
from werkzeug.exceptions import RequestTimeout

from .patches.bodyinput import CHUNK, waiting_on_socket

# A chunk keeps filling, past what the kernel had, only for a sender that gave this much at once,
# and only while the next bytes come within FILL_WAIT_S: a trickling client never holds a buffer
# while it waits, one that sends a burst and stalls holds it FILL_WAIT_S.
FAST_BYTES = 16 * 1024
FILL_WAIT_S = 0.01


class BodyTimeout(RequestTimeout):
    """408, and the connection closes: the rest of the body is never read."""

    def get_headers(self, *args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        return [*super().get_headers(*args, **kwargs), ("Connection", "close")]


class TimedInput:
    """wsgi.input (``raw``) read within what is left of the whole body's deadline: a read past it
    raises ``BodyTimeout`` (408) and leaves the rest of the body unread (``Input.abandon``)."""

    def __init__(self, raw: Any, deadline_s: float) -> None:
        self.raw = raw
        self.deadline_s = deadline_s
        self._deadline = time.monotonic() + deadline_s

    @contextlib.contextmanager
    def within_deadline(self) -> Iterator[None]:
        """The block (a wait for bytes, a read) within what is left of the deadline."""
        try:
            with gevent.Timeout(max(0.0, self._deadline - time.monotonic()), BodyTimeout):
                yield
        except BodyTimeout:
            if isinstance(self.raw, pywsgi.Input):
                self.raw.abandon()  # labapp.patches.bodyinput
            raise BodyTimeout(
                f"the request body took longer than {self.deadline_s:g} s (LAB_UPLOAD_BODY_S)"
            ) from None

    def read(self, size: int | None = -1) -> bytes:
        with self.within_deadline():
            return self.raw.read(size)

    def readline(self, size: int | None = -1) -> bytes:
        with self.within_deadline():
            return self.raw.readline(size)

    def readinto(self, buffer: Any) -> int:
        with self.within_deadline():
            return self.raw.readinto(buffer)

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


class BufferPool:
    """The worker's CHUNK-sized buffers: lent to an upload while a chunk is received and stored,
    then kept for the next one (allocating and faulting in 1 MiB per chunk cost throughput)."""

    def __init__(self, keep: int) -> None:
        self._free: list[memoryview] = []
        self._keep = keep

    def take(self) -> memoryview:
        return self._free.pop() if self._free else memoryview(bytearray(CHUNK))

    def give(self, buffer: memoryview) -> None:
        if len(self._free) < self._keep:
            self._free.append(buffer)

    @property
    def kept(self) -> int:
        return len(self._free)


# Two uploads at full speed hold two buffers each (one received into, one stored); more in flight
# at once allocate and drop theirs.
POOL = BufferPool(keep=4)


class Body:
    """``stream`` (Werkzeug's request.stream: limits and 413 stay its own) over ``environ``'s
    wsgi.input (a ``TimedInput``: labapp.middleware.body_deadline). ``ready`` waits for bytes with
    no buffer held; ``take`` reads what is there."""

    def __init__(self, environ: dict[str, Any], stream: io.RawIOBase) -> None:
        self._timed: TimedInput = environ["wsgi.input"]
        self._input = self._timed.raw
        self._stream = stream
        # Werkzeug's test client and other servers: the body is in memory, read it in chunks.
        self._arriving = isinstance(self._input, pywsgi.Input)
        self.chunked = self._arriving and self._input.chunked_input
        self._fast = False  # the last chunk had FAST_BYTES: the next one may wait to fill up

    def ready(self) -> int:
        """Waits until part of the body can be read without waiting; how much at most (0: the
        body is over). Raises 408 once the whole body took longer than its deadline."""
        if not self._arriving:
            return CHUNK
        with self._timed.within_deadline():
            return self._input.bytes_ready()  # labapp.patches.bodyinput

    def take(self, size: int, pool: BufferPool) -> tuple[memoryview, memoryview | None]:
        """Up to ``size`` bytes (what ``ready`` said), and more while the kernel has them, up to
        a CHUNK: the data, and the pool's buffer it lies in (None: bytes of its own)."""
        if self.chunked:
            return self._gather(size, pool)
        if size < FAST_BYTES and not self._fast:
            # A few bytes of a slow sender: a buffer of their size. A pooled 1 MiB buffer would
            # be faulted in (glibc serves it from the heap once one was freed) for each of them.
            small = bytearray(size)
            return memoryview(small)[: self._stream.readinto(small) or 0], None
        buffer = pool.take()
        got = 0
        try:
            while size:
                got += self._stream.readinto(buffer[got : got + size]) or 0
                size = self._more(got)
        except BaseException:
            pool.give(buffer)
            raise
        self._fast = got >= FAST_BYTES
        return buffer[:got], buffer

    def _gather(self, size: int, pool: BufferPool) -> tuple[memoryview, memoryview | None]:
        """A chunked body: gevent parses the framing inside read(), one of the sender's chunks at
        a time (nginx forwards 16 KiB or less, and the read at a chunk's start takes its size line
        and one byte). The chunks already here are gathered into one buffer, up to a CHUNK, so that
        storage gets them in one write, not two per chunk (a 64 MiB upload made 3,444 one-byte
        writes; through a FUSE mount each write is a request to its daemon). Only bytes already
        here are read: a slow sender holds no buffer while it waits."""
        first = self._stream.read(size) or b""
        got = len(first)
        more = self._chunked_here(got) if got else 0
        if not more:
            self._fast = got >= FAST_BYTES
            return memoryview(first), None
        buffer = pool.take()
        buffer[:got] = first
        try:
            while more:
                data = self._stream.read(more) or b""
                buffer[got : got + len(data)] = data
                got += len(data)
                more = self._chunked_here(got) if data else 0
        except BaseException:
            pool.give(buffer)
            raise
        self._fast = got >= FAST_BYTES
        return buffer[:got], buffer

    def _chunked_here(self, got: int) -> int:
        """How much more of a chunked body read() gives without waiting on the sender, for a chunk
        that holds ``got`` bytes: the rest of the sender's chunk under way as far as it is here
        (short of its last byte until the CRLF after it is here too: gevent reads that CRLF in
        the same read); at a chunk's start 1 (the size line and one byte) once both are here, and
        the CRLF too for a one-byte chunk, and the chunk is not the last (``_waiting``: a fast
        sender's next bytes are waited for FILL_WAIT_S, as in ``_more``)."""
        body = self._input
        if got >= CHUNK or body.chunk_length == 0:
            return 0
        if not self._waiting(got):
            return 0  # what the read buffer may hold is left to ready(): a peek could wait
        buffered = body.rfile.peek(1)  # no wait: bytes are on the socket
        here = len(buffered) + waiting_on_socket(body.rfile)
        rest = body.chunk_length - body.position
        if rest > 0:
            return min(CHUNK - got, rest if here >= rest + 2 else min(rest - 1, here))
        line, newline, _ = buffered.partition(b"\n")
        try:
            size = int(line.split(b";", 1)[0], 16)
        except ValueError:
            return 0  # a malformed size line: the next read says so, with no buffer held
        # The size line, its first byte, and for a one-byte chunk the CRLF read with that byte.
        needed = len(line) + 1 + 1 + (2 if size == 1 else 0)
        return 1 if newline and size > 0 and here >= needed else 0

    def _more(self, got: int) -> int:
        """How much more to read into a chunk that holds ``got`` bytes: what the kernel has; for a
        sender that proved fast (FAST_BYTES in this chunk or the last), what arrives within
        FILL_WAIT_S too.
        Without the wait a fast upload went in 36 KiB chunks (nginx forwards 16 KiB at a time,
        the worker keeps up), one pool-thread hand-off each: 18% less throughput."""
        if not self._arriving or got == CHUNK:
            return 0
        body = self._input
        left = min(CHUNK - got, (body.content_length or 0) - body.position)
        if left <= 0:
            return 0
        return min(left, self._waiting(got))

    def _waiting(self, got: int) -> int:
        """Bytes the kernel holds for the body now; for a sender that proved fast (FAST_BYTES in
        this chunk, of ``got`` bytes, or the last), those that arrive within FILL_WAIT_S."""
        rfile = self._input.rfile
        if not (waiting := waiting_on_socket(rfile)) and (self._fast or got >= FAST_BYTES):
            try:
                wait_read(rfile.fileno(), FILL_WAIT_S)
            except TimeoutError:
                return 0
            waiting = waiting_on_socket(rfile)
        return waiting
