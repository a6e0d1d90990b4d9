"""How gevent's pywsgi (the baseline worker's HTTP server) reads requests and writes responses,
made cheaper; each change keeps gevent's behaviour (tests/unit/test_patches_pywsgi.py compares them).
Speed-ups, not fixes: none is turned off by a setting; each would suit gevent itself.

1. ``pywsgi.Input`` (wsgi.input) given a ``readinto``. Werkzeug's request stream
   (``LimitedStream``) reads with ``readinto`` when its input has one, and otherwise calls
   ``read`` and copies the bytes into the caller's buffer. gevent's Input has only ``read``: each
   1 MiB of an upload was received into a new bytes object by the socket's BufferedReader, then
   copied once more by Werkzeug (py-spy: 18% of the worker's upload time in
   ``LimitedStream.readinto``). With this, a body of known length is received straight into the
   caller's buffer (``BufferedReader.readinto`` takes what it had buffered, then ``recv_into``s
   the rest in place); a chunked body goes through ``read``, as before.
2. A 1 KiB read buffer per connection instead of 8 KiB. The handler reads each request head
   through a BufferedReader (``sock.makefile("rb")``), which keeps its buffer for the connection's
   life: for every idle websocket too. nginx's request heads are under 1 KiB (one recv either
   way) and bodies bypass the buffer (readinto above, Werkzeug's large reads); an idle websocket
   costs 3 KiB less (make bench: ws.kib_per_connection, 32.5 -> 29.1 with the headers released
   after the upgrade, labapp.patches.wsupgrade).
3. Request headers parsed without the email package when they are plain ``Name: value`` lines.
   gevent parses every request's headers with ``http.client.parse_headers``, which runs
   ``email.parser`` (a feed parser, made for mail) over them: 18 us for the eight header lines
   nginx sends, 9 us for a bare client's one, the largest single cost nginx adds to a request
   (make bench: proxy.tls_vs_direct_rps_ratio). A block of plain lines (an RFC 9110 token, a
   colon, a value without CR or LF) becomes the same message, header by header, as
   ``email.message.Message.set_raw`` with what the email parser would have stored (compat32:
   value without its leading blanks and line end); anything else (folded lines, a line without
   a colon, a bare CR, a head cut off mid-line) goes to the email parser exactly as before. The limits
   stay http.client's: 65536 bytes a line, 100 lines.
4. The environ's HTTP_* keys from the parsed (name, value) pairs. gevent formats each header back
   into a "Name: value" line (``OldMessage.headers``) only to split it again: 6.4 us for nginx's
   nine header lines, 2.2 us this way. Same keys and values, the same skipped names (with ``_``,
   Content-Type and Content-Length, which get_environ sets itself).
5. A small response's head and body in one send. gevent sends the head, then the body, to save
   copying a large body: two syscalls per response, each waking nginx on a keep-alive upstream
   connection (or the client), and gevent's sendall asks the kernel for SO_SNDBUF each time. A
   body up to 64 KiB now goes out with its head, framed exactly as gevent frames it.
"""

from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any

from gevent import pywsgi

from . import Patch

# http.client's limits (its _MAXLINE and _MAXHEADERS), which gevent's parsing inherited.
MAX_LINE = 65536
MAX_HEADERS = 100
PLAIN_HEADER = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([^\r\n]*)\r?\n")


def _readinto(self: Any, buffer: Any) -> int:
    if self.chunked_input or self.content_length is None:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
    self._send_100_continue()  # what read() does first: a client that sent Expect waits for it
    view = memoryview(buffer)[: max(0, self.content_length - self.position)]
    if not view:
        return 0
    got = self.rfile.readinto(view)
    self.position += got  # gevent discards the unread rest after the response from here
    if got < len(view):
        # As read() does: Werkzeug turns it into ClientDisconnected (400), the view discards the file.
        raise OSError(f"unexpected end of file while reading request at position {self.position}")
    return got


READ_BUFFER = 1024
_stock_handler_init = pywsgi.WSGIHandler.__init__


def _init_with_small_read_buffer(self: Any, sock: Any, address: Any, server: Any, rfile: Any = None) -> None:
    # What the stock __init__ makes when given no rfile, with a smaller buffer.
    _stock_handler_init(self, sock, address, server, rfile or sock.makefile("rb", READ_BUFFER))


def parse_headers(fp: Any) -> Any:
    """The request's header lines from ``fp`` as gevent's message (``pywsgi.OldMessage``)."""
    lines = []
    while True:
        line = fp.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:  # what gevent makes of http.client's LineTooLong
            message = pywsgi.OldMessage()
            message.status = "Line too long"
            return message
        lines.append(line)
        if len(lines) > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            break
    message = pywsgi.OldMessage()
    for line in lines[:-1]:
        plain = PLAIN_HEADER.fullmatch(line)
        if plain is None:
            head = b"".join(lines).decode("iso-8859-1")
            return email.parser.Parser(_class=pywsgi.OldMessage).parsestr(head)
        message.set_raw(plain[1].decode("latin-1"), plain[2].decode("latin-1").lstrip(" \t"))
    return message


def _message_class(self: Any, fp: Any, *_args: Any) -> Any:
    return parse_headers(fp)


# What gevent's WSGIHandler._headers leaves out: names it sets itself, and "_" names (a forged
# HTTP_X_FORWARDED_FOR must not be made from "X_Forwarded_For").
_SET_BY_GEVENT = ("CONTENT_TYPE", "CONTENT_LENGTH")


_stock_environ_headers = pywsgi.WSGIHandler._headers


def _environ_headers(self: Any) -> Any:
    pairs = getattr(self.headers, "_headers", None)
    if pairs is None:  # not an email message: gevent's own way
        yield from _stock_environ_headers(self)
        return
    for name, value in pairs:
        if "_" in name:
            continue
        key = name.replace("-", "_").upper()
        if key not in _SET_BY_GEVENT:
            yield "HTTP_" + key, value.strip()


# A response body up to this size goes out in the same send as its head (a bigger one is not copied).
COALESCE_MAX = 64 * 1024
_stock_write_with_headers = pywsgi.WSGIHandler._write_with_headers


def _write_with_headers_in_one_send(self: Any, data: bytes) -> None:
    if not isinstance(data, bytes) or not data or len(data) > COALESCE_MAX:
        # A str is gevent-websocket's error body (its 402/426): gevent sends the head, then fails
        # on it, as it always has (the scenarios and the doctor recognise the cut-off answer).
        _stock_write_with_headers(self, data)
        return
    parts: list[bytes] = []
    self._sendall = parts.append  # the head and the body (chunked or not) as gevent frames them
    try:
        _stock_write_with_headers(self, data)
    finally:
        del self._sendall
    self._sendall(b"".join(parts))


GEVENT = "26.9.0"  # the version these patches were written against


def _of_pywsgi(attribute: str, replacement: Any, why: str, fix: str, digest: str) -> Patch:
    return Patch(
        target=f"gevent.pywsgi:{attribute}",
        replacement=replacement,
        why=why,
        upstream=f"gevent (gevent/gevent, src/gevent/pywsgi.py): {fix}",
        distribution="gevent",
        version=GEVENT,
        digest=digest,
    )


PATCHES = (
    _of_pywsgi(
        "Input.readinto",
        _readinto,
        "Werkzeug copies each read of an upload once more when wsgi.input has no readinto",
        "give Input a readinto (io.RawIOBase's protocol)",
        "",  # added: gevent's Input has none
    ),
    _of_pywsgi(
        "WSGIHandler.__init__",
        _init_with_small_read_buffer,
        "an 8 KiB read buffer kept for every idle websocket's life",
        "a smaller default rfile buffer (request heads fit in 1 KiB)",
        "c3d9e1009c3a",
    ),
    _of_pywsgi(
        "WSGIHandler.MessageClass",
        _message_class,
        "every request's headers parsed by the email package: the largest cost nginx adds",
        "parse plain header lines without email.parser",
        "638ffd7781c4",
    ),
    _of_pywsgi(
        "WSGIHandler._headers",
        _environ_headers,
        "each header formatted back into a line only to be split again for the environ",
        "build HTTP_* keys from the parsed pairs",
        "5575828695b5",
    ),
    _of_pywsgi(
        "WSGIHandler._write_with_headers",
        _write_with_headers_in_one_send,
        "a small response's head and body in two sends (two wake-ups of nginx)",
        "coalesce head and a small body into one send",
        "5ccb48bf841c",
    ),
)
