"""labapp.patches.pywsgi: gevent's request reading made cheaper, with the same results as gevent's own."""

from __future__ import annotations

import http.client
import io
from types import SimpleNamespace

import gevent
import pytest
from gevent import pywsgi
from gevent import socket as gsocket

from labapp import patches
from labapp.patches import pywsgi as gevent_patches

NGINX_HEAD = (
    b"Host: localhost:8443\r\nX-Forwarded-Proto: https\r\nX-Forwarded-For: 127.0.0.1\r\n"
    b"X-Real-IP: 127.0.0.1\r\nX-Request-ID: 5d4c2f0e\r\nX-Forwarded-Host: localhost:8443\r\n"
    b"X-Forwarded-Port: 8443\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"
)
HEADS = {
    "nginx's forwarded headers": NGINX_HEAD,
    "one header, LF line ends": b"Host: a\n\n",
    "no headers": b"\r\n",
    "blanks around values": b"Host:   a  \r\nX-Empty:\r\nX-Tab:\tv\r\n\r\n",
    "the same name twice": b"Cookie: a=1\r\nCookie: b=2\r\n\r\n",
    "a folded line": b"Host: a\r\nX-Long: one\r\n two\r\n\r\n",
    "a line without a colon": b"Host: a\r\nnot a header\r\nX-After: b\r\n\r\n",
    "an empty name": b"Host: a\r\n: no name\r\n\r\n",
    "a space before the colon": b"Host : a\r\n\r\n",
    "a bare CR in a value": b"Host: a\rX-Smuggled: b\r\n\r\n",
    "a From line": b"From nobody\r\nHost: a\r\n\r\n",
    "a head cut off": b"Host: a\r\nX-Cut: b",
    "latin-1 bytes": b"X-Name: caf\xe9\r\n\r\n",
    "an underscore name (dropped)": b"X_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n",
    "a multipart content type": b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: 5\r\n\r\n",
}


def gevent_stock(head: bytes):
    return pywsgi.headers_factory(io.BufferedReader(io.BytesIO(head)), 0)


def fast(head: bytes):
    return gevent_patches.parse_headers(io.BufferedReader(io.BytesIO(head)))


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_headers_parse_to_what_gevent_made_of_them(head):
    stock, ours = gevent_stock(head), fast(head)
    assert ours._headers == stock._headers
    assert (ours.status, list(ours.headers), ours.typeheader) == (
        stock.status,
        list(stock.headers),
        stock.typeheader,
    )
    assert ours.get("host") == stock.get("host") and ours.getheader("X-None", "-") == "-"


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
def test_environ_keys_are_what_gevent_made_of_the_headers(head):
    handler = SimpleNamespace(headers=fast(head))
    assert list(gevent_patches._environ_headers(handler)) == list(
        gevent_patches._stock_environ_headers(handler)
    )


def test_what_follows_the_head_is_left_to_read():
    reader = io.BufferedReader(io.BytesIO(NGINX_HEAD + b"body"))
    gevent_patches.parse_headers(reader)
    assert reader.read() == b"body"


def test_limits_stay_http_clients():
    too_long = b"X-Big: " + b"x" * gevent_patches.MAX_LINE + b"\r\n\r\n"
    assert fast(too_long).status == gevent_stock(too_long).status == "Line too long"
    too_many = b"".join(b"X-%d: v\r\n" % n for n in range(gevent_patches.MAX_HEADERS + 1)) + b"\r\n"
    for parse in (fast, gevent_stock):
        with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
            parse(too_many)


class RecordingSocket:
    """A socket-pair end that records each sendall: what the handler makes of a response."""

    def __init__(self, sock: gsocket.socket) -> None:
        self.inner = sock
        self.sends: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.sends.append(bytes(data))
        self.inner.sendall(data)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def served(body: bytes | str, streamed: bool = False, **headers: str) -> list[bytes]:
    """The sends of gevent's handler (patched by labapp.patches.pywsgi) answering one GET with ``body``
    (``streamed``: from a generator, which gevent sends chunked)."""
    patches.install(gevent_patches.PATCHES)

    def app(environ, start_response):
        start_response("200 OK", [*headers.items()])
        return iter([body]) if streamed else [body]

    server = pywsgi.WSGIServer(("127.0.0.1", 0), app, log=None)
    server.environ = {"SERVER_NAME": "test", "SERVER_PORT": "80"}
    ours, client = gsocket.socketpair()
    recording = RecordingSocket(ours)
    client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    reader = gevent.spawn(client.makefile("rb").read)
    pywsgi.WSGIHandler(recording, ("127.0.0.1", 1), server).handle()
    ours.close()
    answer = reader.get(timeout=5)
    assert isinstance(body, str) or body in answer
    return recording.sends


def test_a_small_response_goes_out_in_one_send_with_its_head():
    sends = served(b'{"status": "ok"}\n', **{"Content-Length": "17"})
    assert len(sends) == 1 and sends[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert sends[0].endswith(b'\r\n\r\n{"status": "ok"}\n')


def test_a_large_response_is_not_copied_into_its_head():
    body = b"x" * (gevent_patches.COALESCE_MAX + 1)
    sends = served(body, **{"Content-Length": str(len(body))})
    assert [len(s) for s in sends[1:]] == [len(body)] and sends[0].endswith(b"\r\n\r\n")


def test_a_chunked_response_keeps_its_framing():
    sends = served(b"hello", streamed=True)  # no length known: gevent frames it chunked
    assert b"Transfer-Encoding: chunked" in sends[0] and sends[0].endswith(b"\r\n\r\n5\r\nhello\r\n")
    assert sends[1:] == [b"0\r\n\r\n"]


def test_a_str_body_still_gets_its_head_alone_as_from_gevent():
    # gevent-websocket's error paths (402 for a non-HTTP/1.1 handshake) hand gevent a str: the head
    # goes out, the body fails; the ws-http10 scenario and the doctor recognise that answer.
    sends = served("Bad protocol version")
    assert len(sends) == 1 and sends[0].startswith(b"HTTP/1.1 200 OK\r\n") and sends[0].endswith(b"\r\n\r\n")
