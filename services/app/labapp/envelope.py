"""The lab's error body, ``{"code", "msg", "request_id"}``, declared once: Flask's errors
(errors.py) and the layers that answer without Flask (the WSGI middleware, Socket.IO's wrapper in
realtime.py, the app server's own refusals in patches/clienterrors.py) all build it here."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any


def fields(code: int, msg: str, request_id: str) -> dict[str, object]:
    return {"code": code, "msg": msg, "request_id": request_id}


def body(code: int, msg: str, request_id: str) -> bytes:
    return json.dumps(fields(code, msg, request_id)).encode()


def answer(
    start_response: Callable[..., Any],
    status: str,
    msg: str,
    request_id: str,
    headers: Sequence[tuple[str, str]] = (),
    exc_info: Any = None,
) -> list[bytes]:
    """A WSGI answer of ``status`` ("503 Service Unavailable") carrying the envelope, with
    ``headers`` besides its own Content-Type and Content-Length."""
    data = body(int(status.split(" ", 1)[0]), msg, request_id)
    own = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    start_response(status, [*own, *headers], exc_info)
    return [data]
