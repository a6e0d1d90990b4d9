"""How gevent's pywsgi (the baseline worker's HTTP server) reads requests, made cheaper.

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
   after the upgrade, labapp.wsfix).
"""

from __future__ import annotations

from typing import Any

from gevent import pywsgi


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


def install() -> None:
    pywsgi.Input.readinto = _readinto
    pywsgi.WSGIHandler.__init__ = _init_with_small_read_buffer
