"""Waiting for a stack to answer, over TLS verified against the lab's CA."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path


def get_json(url: str, ca: Path | None = None, timeout: float = 3.0) -> tuple[int, object]:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            return error.code, json.loads(body or b"null")
        except ValueError:
            return error.code, body.decode(errors="replace")


def is_healthy(status: int, body: object) -> bool:
    """200 with "status": "ok". The other fields (the chat broker's state) are reported, not
    health: with the broker down the app serves everything but chat, and must stay in rotation."""
    return status == 200 and isinstance(body, dict) and body.get("status") == "ok"


def wait_healthy(
    url: str, ca: Path | None, deadline_s: float, alive: Callable[[], bool] = lambda: True
) -> None:
    """Poll ``url`` until it answers 200 "status": "ok"; raise with the last failure if not."""
    last = "no answer yet"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if not alive():
            raise RuntimeError(f"{url}: the process serving it exited ({last})")
        try:
            status, body = get_json(url, ca, timeout=2)
            if is_healthy(status, body):
                return
            last = f"HTTP {status}: {body}"
        except (OSError, ValueError) as error:
            last = str(error)
        time.sleep(0.1)
    raise RuntimeError(f"{url} not healthy after {deadline_s:.0f}s: {last}")


class StartFailed(RuntimeError):
    """A stack that did not come up and was left as it is for its logs: why (the message), and
    what is left and how to remove it (``left``). labctl.stack.start reports it, with the logs."""

    def __init__(self, why: str, left: str) -> None:
        super().__init__(why)
        self.left = left
