"""A request that sleeps cooperatively: timeouts, and proof that contexts never mix."""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, g, jsonify, request

from .debug import served_by

bp = Blueprint("slow", __name__)

MAX_SECONDS = 600.0
_in_flight = 0


@bp.get("/slow")
def slow() -> Response:
    global _in_flight
    try:
        seconds = float(request.args.get("seconds", "1"))
    except ValueError:
        abort(400, "seconds must be a number")
    if not 0 <= seconds <= MAX_SECONDS:
        abort(400, f"seconds must be between 0 and {MAX_SECONDS:g}")
    token = request.args.get("token", "")
    _in_flight += 1
    in_flight_at_start = _in_flight
    try:
        time.sleep(seconds)  # gevent-patched in gevent workers, so other requests keep running
    finally:
        _in_flight -= 1
    # Read request state only after the sleep: if contexts leaked between greenlets, it shows here.
    return jsonify(
        token=request.args.get("token", ""),
        token_at_start=token,
        request_id=g.get("request_id", ""),
        # Counted per worker process: with several, a client needs to know whose count it is.
        in_flight_at_start=in_flight_at_start,
        served_by=served_by(),
    )
