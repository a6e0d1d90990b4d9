"""labapp.patches.bodyinput: gevent's wsgi.input given ``bytes_ready`` and ``abandon``, compared
with the stock Input on the same bodies; and the whole-body deadline on every route (labapp.body)."""

from __future__ import annotations

import io
import time

import gevent
import pytest
from gevent import pywsgi
from gevent import socket as gsocket

from labapp import patches
from labapp.patches import bodyinput

BODY = bytes(range(256)) * 64  # 16 KiB


def chunked(data: bytes) -> bytes:
    return (
        b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (data[:5000], data[5000:])) + b"0\r\n\r\n"
    )


def arriving(wire: bytes, declared: int | None) -> tuple[pywsgi.Input, gsocket.socket]:
    """gevent's Input over a socket the client has sent ``wire`` to; the client end, still open."""
    patches.install(bodyinput.PATCHES)
    server, client = gsocket.socketpair()
    client.sendall(wire)
    return pywsgi.Input(server.makefile("rb"), declared, chunked_input=declared is None), client


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
