"""labapp.patches.bodyinput: gevent's wsgi.input given ``bytes_ready`` and ``abandon``, compared
with the stock Input on the same bodies; the whole-body deadline on every route, and a chunked
body's chunks gathered into one buffer (labapp.body)."""

from __future__ import annotations

import io
import time

import gevent
import pytest
from gevent import pywsgi
from gevent import socket as gsocket

from labapp import patches
from labapp.body import Body, BufferPool, TimedInput
from labapp.patches import bodyinput
from labapp.patches.pywsgi import READ_BUFFER

BODY = bytes(range(256)) * 64  # 16 KiB


def framed(*parts: bytes) -> bytes:
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in parts)


def chunked(data: bytes) -> bytes:
    return framed(data[:5000], data[5000:]) + b"0\r\n\r\n"


def arriving(wire: bytes, declared: int | None) -> tuple[pywsgi.Input, gsocket.socket]:
    """gevent's Input over a socket the client has sent ``wire`` to; the client end, still open."""
    patches.install(bodyinput.PATCHES)
    server, client = gsocket.socketpair()
    client.sendall(wire)
    rfile = server.makefile("rb", READ_BUFFER)  # the worker's read buffer (patches.pywsgi)
    return pywsgi.Input(rfile, declared, chunked_input=declared is None), client


@pytest.mark.parametrize("declared", [len(BODY), None], ids=["content-length", "chunked"])
def test_reading_what_bytes_ready_says_gets_the_body_stock_read_gets(declared):
    wire = BODY if declared else chunked(BODY)
    stock, _client = arriving(wire, declared)
    expected = stock.read()
    body, client = arriving(wire, declared)
    got = b""
    while size := body.bytes_ready():
        got += body.read(size)
    assert got == expected == BODY
    client.close()


def test_bytes_ready_waits_for_a_byte_with_no_buffer_then_says_what_is_there():
    body, client = arriving(b"", 100)
    waiter = gevent.spawn(body.bytes_ready)
    gevent.sleep(0.05)
    assert not waiter.ready(), "it said something was readable before a byte came"
    client.sendall(b"x" * 30)
    assert waiter.get(timeout=5) == 30
    client.close()


@pytest.mark.parametrize("declared", [len(BODY), None], ids=["content-length", "chunked"])
def test_an_abandoned_body_reads_as_one_read_to_its_end(declared):
    """After abandon: read() gives b"" and gevent's discard takes nothing more from the socket,
    as for a stock Input whose body was read whole."""
    wire = BODY if declared else chunked(BODY)
    whole, _client = arriving(wire + b"NEXT", declared)
    whole.read()
    body, client = arriving(wire + b"NEXT", declared)
    body.read(100)
    body.abandon()
    for done in (whole, body):
        assert done.read() == b""
        done._discard()
    assert whole.rfile.read(4) == b"NEXT"
    assert body.rfile.read(4) != b"NEXT", "the abandoned rest is left on the socket, unread"
    client.close()


class Trickling(io.RawIOBase):
    """A body that comes a byte every 0.2 s."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        gevent.sleep(0.2)
        buffer[:1] = b"x"
        return 1


@pytest.mark.parametrize(
    "path, headers",
    [
        ("/landing", {"Content-Type": "application/json"}),
        ("/landing", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("/upload/slow.bin", {}),
    ],
    ids=["json", "form", "upload"],
)
def test_a_slow_body_on_any_route_is_408_json_at_its_deadline(make_app, path, headers):
    client = make_app(upload_body_s=0.5).test_client()
    with gevent.Timeout(5):
        response = client.put(
            path, headers=headers, environ_overrides={"wsgi.input": Trickling(), "CONTENT_LENGTH": "1000000"}
        )
    assert response.status_code == 408 and response.headers["Connection"] == "close"
    assert "LAB_UPLOAD_BODY_S" in response.get_json()["msg"]


def test_the_drain_after_an_early_answer_stops_at_the_deadline(make_app):
    """/bugs/early-reject answers 403 unread; the drain (LAB_FIX_DRAIN_BODY) then reads the
    body, within the same deadline."""
    client = make_app(upload_body_s=0.5).test_client()
    started = time.monotonic()
    with gevent.Timeout(5):
        response = client.post(
            "/bugs/early-reject", environ_overrides={"wsgi.input": Trickling(), "CONTENT_LENGTH": "1000000"}
        )
        response.close()
    assert response.status_code == 403 and time.monotonic() - started < 2


def taken(body: Body, pool: BufferPool) -> list[tuple[bytes, bool]]:
    """What each take gives while the socket holds bytes (as PendingUpload.receive reads a body),
    and whether it lay in a buffer of the pool; every take within a second, or the test fails."""
    found = []
    with gevent.Timeout(1):
        while bodyinput.waiting_on_socket(body._input.rfile) and (size := body.ready()):
            data, buffer = body.take(size, pool)
            found.append((bytes(data), buffer is not None))
            if buffer is not None:
                pool.give(buffer)
    return found


def chunked_body(wire: bytes) -> tuple[Body, gsocket.socket]:
    raw, client = arriving(wire, None)
    timed = TimedInput(raw, 60)
    return Body({"wsgi.input": timed}, timed), client  # type: ignore[arg-type]


def test_the_chunks_already_here_are_taken_in_one_buffer():
    """nginx forwards a chunked body in chunks of 16 KiB or less: those already here come in one
    take, one write (they came in two per chunk: the size line's byte, then the rest)."""
    parts = [bytes([n]) * 8192 for n in range(12)]
    body, client = chunked_body(framed(*parts) + b"0\r\n\r\n")
    assert taken(body, BufferPool(keep=1)) == [(b"".join(parts), True)]
    client.close()


@pytest.mark.parametrize(
    "sent, rest",
    [
        (framed(b"a" * 8192) + b"2000\r\n" + b"b" * 3000, b"b" * 5192 + b"\r\n"),
        (b"2000\r\n" + b"a" * 8192, b"\r\n"),  # gevent reads a chunk's CRLF with its last byte
        (framed(b"a" * 8192) + b"20", b"00\r\n" + b"b" * 8192 + b"\r\n"),  # half a size line
    ],
    ids=["mid-chunk", "before-crlf", "mid-size-line"],
)
def test_a_sender_that_stalls_gets_what_is_here_without_a_wait(sent, rest):
    """What is here is gathered, and the take returns rather than wait for the framing's next
    bytes holding a buffer; the body reads whole once the sender goes on."""
    body, client = chunked_body(sent)
    pool = BufferPool(keep=2)
    first = taken(body, pool)
    assert any(pooled for _, pooled in first), f"nothing gathered: {[len(d) for d, _ in first]}"
    assert pool.kept == 1, "the buffer is back in the pool while the sender stalls"
    client.sendall(rest + b"0\r\n\r\n")
    second = taken(body, pool)
    whole, _client = arriving(sent + rest + b"0\r\n\r\n", None)
    assert b"".join(data for data, _ in first + second) == whole.read()
    client.close()


@pytest.mark.parametrize("size_line", [b"1", b"1;ext=v"], ids=["plain", "extension"])
def test_a_one_byte_chunk_is_taken_only_once_its_crlf_is_here(size_line):
    """A one-byte chunk's byte is its last, and gevent reads the CRLF after it in the same read:
    the gather stops there rather than read it and wait for the CRLF. The chunk comes while the
    gather waits FILL_WAIT_S for a fast sender's next bytes (after 16 KiB)."""
    body, client = chunked_body(framed(b"a" * 16384))
    gevent.spawn_later(0.003, client.sendall, size_line + b"\r\nX")
    pool = BufferPool(keep=2)
    with gevent.Timeout(1):
        data, buffer = body.take(body.ready(), pool)
    assert len(data) == 16384 and buffer is not None
    first = bytes(data)
    pool.give(buffer)
    client.sendall(b"\r\n0\r\n\r\n")
    assert first + b"".join(data for data, _ in taken(body, pool)) == b"a" * 16384 + b"X"
    client.close()
