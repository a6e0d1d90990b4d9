"""nginx's own errors (a 413, a 502): they keep their status, and on the lab's stack they are
the lab's JSON envelope; an error_page pointing nowhere turns a 502 into a 404."""

from __future__ import annotations

from collections.abc import Iterator

from .. import probe as http_probe
from ..diagnose.config import effective
from ..probe import Reply
from .core import (
    BROKEN,
    MEDIUM,
    NOT_PROBED,
    NOTE,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Site,
    at,
    probe,
    result,
    rule,
)

ORDER = 60

ERROR_FORMAT = Behaviour(
    "error-format",
    "nginx's own errors keep their status (and are the lab's JSON envelope)",
    "an `error_page` must point at a location that exists; a missing page turns every 502/504 into a 404",
    MEDIUM,
    ("html-errors",),
)


def error_format(status: str, reply: Reply, lab_contract: bool) -> Result:
    """An error page nginx answered with ``status``: the JSON envelope, or a note (a failure
    under the lab's own contract)."""
    if http_probe.is_envelope(reply, int(status)):
        return result(ERROR_FORMAT, OK, f"nginx's {status}: the JSON envelope")
    verdict = BROKEN if lab_contract else NOTE
    return result(ERROR_FORMAT, verdict, f"nginx's {status} is {reply.describe()}, not the JSON envelope")


@probe(ERROR_FORMAT)
def probe_errors(p: Probe) -> Iterator[Result]:
    """nginx's own 502 (a response header bigger than its buffers): still a 502, and its format."""
    route = p.options.routes.bad_gateway
    if route is None or p.seen_by_app is None:
        return  # only the lab's app has a route that makes nginx answer 502
    reply = p.get(route)
    if reply.status == 200:
        seen = f"{route}: the proxy accepted a 32 kB header: no 502 to look at"
        yield result(ERROR_FORMAT, NOT_PROBED, seen)
    elif reply.status != 502:
        yield result(
            ERROR_FORMAT,
            BROKEN,
            f"nginx's 502 ({route}) came back as {reply.describe()}: an error_page sent it somewhere that "
            "does not answer",
            status=reply.status,
        )
    else:
        yield error_format("502", reply, p.options.lab_contract)


@rule(ERROR_FORMAT)
def rule_error_format(site: Site) -> Iterator[Finding]:
    """The error_page that sent nginx's 502 somewhere answering what the probe saw."""
    location = site.location(site.routes.bad_gateway)
    answered = site.bad_gateway_answered
    if location is None or answered in (None, 502):
        return
    for directive in effective(location, "error_page"):
        if "502" in directive.args:
            target = directive.args[-1]
            yield at(
                directive, ERROR_FORMAT, f"`{target}` answered {answered}: give it a location that exists"
            )
