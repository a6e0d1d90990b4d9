"""Server-Sent Events: one event per interval, each written to the socket as it is made.

Whether the client sees them one by one is the proxy's business: nginx buffers a proxied
response by default and hands a stream over all at once at its end (stream-buffered); the
baseline turns buffering off on this location (nginx/snippets/stream.conf).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from flask import Blueprint, Response, g

from .debug import served_by
from .params import bounded

bp = Blueprint("stream", __name__, url_prefix="/stream")

MAX_EVENTS = 1000
MAX_INTERVAL_S = 30.0


@bp.get("/events")
def events() -> Response:
    count = bounded("count", int, 5, 1, MAX_EVENTS)
    interval = bounded("interval", float, 1.0, 0.0, MAX_INTERVAL_S)
    request_id = g.get("request_id", "")
    origin = served_by()

    def generate() -> Iterator[str]:
        started = time.monotonic()
        for n in range(1, count + 1):
            if n > 1:
                time.sleep(interval)  # gevent-patched: the worker serves others meanwhile
            data = {
                "n": n,
                "of": count,
                "elapsed_s": round(time.monotonic() - started, 3),
                "request_id": request_id,
                "served_by": origin,
            }
            yield f"id: {n}\nevent: tick\ndata: {json.dumps(data)}\n\n"

    return Response(
        generate(),
        mimetype="text/event-stream",
        # no-cache: a cache in between must not keep a stream; the first event goes at once.
        headers={"Cache-Control": "no-cache"},
    )
