"""The likely cause of each broken behaviour, worded once: test failure messages and `make doctor`
name the same nginx or app line. A behaviour's hint lives on its object (labctl.behaviours); a
scenario's is its behaviour's, or its own in its scenario.toml; the few causes the suites name
that neither holds are here."""

from __future__ import annotations

from . import catalogue


def scenario(name: str) -> str:
    """The hint of scenario ``name`` (nginx/scenarios/<name>/scenario.toml)."""
    return catalogue.hint(name)


UPLOAD_STREAMING = (
    "a large upload was cut or altered: check client_max_body_size, proxy_request_buffering off "
    "on /upload, and the app's streaming upload path"
)
