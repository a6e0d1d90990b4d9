"""The request id: the one nginx logs reaches the app (and so the app's logs and answers)."""

from __future__ import annotations

from collections.abc import Iterator

from .core import BROKEN, LOW, NOT_PROBED, NOTE, OK, Behaviour, Probe, Result, header_names, probe, result

ORDER = 40

REQUEST_ID = Behaviour(
    "request-id",
    "the request id nginx logs reaches the app and the client",
    "`proxy_set_header X-Request-ID $request_id`, and log $request_id",
    LOW,
)


@probe(REQUEST_ID)
def probe_request_id(p: Probe) -> Iterator[Result]:
    seen = p.seen_by_app
    if seen is None:
        yield result(REQUEST_ID, NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
        return
    got = "x-request-id" in header_names(seen)
    verdict = OK if got else (BROKEN if p.options.lab_contract else NOTE)
    yield result(REQUEST_ID, verdict, f"the app got {'an' if got else 'no'} X-Request-ID")
