"""The likely cause of each broken behaviour, worded once: test failure messages and `make doctor`
name the same nginx or app line. A scenario's hint lives in its scenario.toml; the contract's
behaviours that no scenario breaks have theirs here."""

from __future__ import annotations

from . import catalogue


def scenario(name: str) -> str:
    """The hint of scenario ``name`` (nginx/scenarios/<name>/scenario.toml)."""
    return catalogue.hint(name)


UPLOAD_STREAMING = (
    "a large upload was cut or altered: check client_max_body_size, proxy_request_buffering off "
    "on /upload, and the app's streaming upload path"
)
