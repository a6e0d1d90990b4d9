"""gevent's ``pywsgi.Input`` (the wsgi.input of the baseline worker), given a ``readinto``.

Werkzeug's request stream (``LimitedStream``) reads with ``readinto`` when its input has one,
and otherwise calls ``read`` and copies the bytes into the caller's buffer. gevent's Input has only
``read``: each 1 MiB of an upload was received into a new bytes object by the socket's
BufferedReader, then copied once more by Werkzeug (py-spy: 18% of the worker's upload time in
``LimitedStream.readinto``). With this, a body of known length is received straight into the
caller's buffer (``BufferedReader.readinto`` takes what it had buffered, then ``recv_into``s
the rest in place); a chunked body goes through ``read``, as before.
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


def install() -> None:
    pywsgi.Input.readinto = _readinto
