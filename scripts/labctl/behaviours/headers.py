"""Header sizes across the layers: a large request header (a cookie, a token) passes nginx's
large_client_header_buffers and the app server's limit, and a large response head (a session
cookie grown after a login) fits nginx's proxy_buffer_size, up to what the app declares.
Beyond it, nginx refuses a request header line with 400 "Request Header Or Cookie Too Large"
(494 inside nginx), and a response head with 502 "upstream sent too big header" (weblate #9437,
gunicorn #2878).

The request probe is a bounded search: the Cookie doubles from 1 KiB until a size is refused,
then bisects to the byte, and names the layer that refused the next size from the answer."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from dataclasses import dataclass

from ..diagnose.config import effective, size_mib
from .core import (
    BROKEN,
    LOW,
    MEDIUM,
    NOT_PROBED,
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

ORDER = 55
COOKIE = "lab_probe="
LINE_EXTRA = len("Cookie: ") + len(COOKIE) + len("\r\n")  # a header line's bytes beyond the value
START_BYTES = 1024
CAP_BYTES = 128 * 1024  # past every default and the lab's limit: a larger header is no one's need
MAX_REQUESTS = 26  # 8 doublings to CAP_BYTES, then 17 halvings to the byte, and one to spare
# What a header line may take when the app declares nothing: nginx's default 8k buffer (less the
# line's end) and gunicorn's limit_request_field_size 8190; a config below it refuses what most
# apps expect to pass (a hardening guide's `large_client_header_buffers 2 1k`).
DEFAULT_LINE_BYTES = 8000
NGINX_REQUEST_BUFFER_KIB = 8  # large_client_header_buffers' default size
NGINX_RESPONSE_BUFFER_KIB = 4  # proxy_buffer_size's default (one memory page)
# With no declared limit, a Set-Cookie that fits nginx's default proxy_buffer_size with the rest
# of a head: a config that shrinks the buffer below it turns ordinary logins into 502.
DEFAULT_SET_COOKIE_BYTES = 2048
HEAD_SLACK_BYTES = 1024  # what the app and its server add to a head beyond the cookie
SET_COOKIE_ROUTE = "/debug/set-cookie?bytes={bytes}"  # the lab's: a Set-Cookie of that many bytes

REQUEST_HEADER = Behaviour(
    "header-size",
    "request headers up to the app's limit pass every layer",
    "a request header line outgrew one layer: nginx refuses a line over large_client_header_buffers (default "
    '4 8k) with 400 "Request Header Or Cookie Too Large", the app server its own (gunicorn\'s '
    "limit_request_field_size, 8190): raise nginx's to what the app takes, e.g. "
    "`large_client_header_buffers 4 16k;`, and the app server's to match",
    MEDIUM,
    ("header-size-layers",),
    route="debug",
)
RESPONSE_HEAD = Behaviour(
    "response-head-size",
    "response heads up to the app's limit pass nginx (no 502)",
    "nginx reads the app's whole response head into proxy_buffer_size (default 4k): a larger one (a "
    'session cookie after a login) is "upstream sent too big header" and 502; raise it, e.g. '
    "`proxy_buffer_size 16k; proxy_buffers 4 16k; proxy_busy_buffers_size 16k;`",
    LOW,
    route="debug",
)
ALL = (REQUEST_HEADER, RESPONSE_HEAD)


@dataclass(frozen=True)
class Search:
    """What the bounded search found: the largest Cookie value that passed (bytes), the smallest
    refused (None: none up to the cap) and who refused it, in how many requests."""

    passed: int
    refused: int | None
    by: str
    requests: int


def refused_by(status: int, body: object, html: bytes, server: str) -> str:
    """The layer that refused, from its answer: the JSON envelope's message names it (the lab's
    nginx pages say "nginx refused", the app server's patch "the app server"); nginx's own
    HTML page or 494; else the status as it came."""
    msg = str(body.get("msg", "")) if isinstance(body, dict) else ""
    if status == 502:  # nginx's own, whatever its page says: the app's head or the app itself
        return (
            f"nginx (502: a response head over proxy_buffer_size, or the app failed: {msg[:60] or 'no JSON'})"
        )
    if msg.startswith("nginx"):
        return f"nginx ({status}: {msg[:80]})"
    if msg.startswith("the app server"):
        return f"the app server ({status}: {msg[:80]})"
    if msg:
        return f"the app ({status}: {msg[:80]})"
    if status == 494 or b"nginx" in html or server.startswith("nginx"):
        return f"nginx ({status}, its HTML page)" if status != 494 else "nginx (494)"
    return f"an unnamed layer ({status}, no JSON error)"


def _attempt(p: Probe, route: str, size: int) -> tuple[bool, str]:
    try:
        reply = p.get(route, headers={"Cookie": COOKIE + "c" * size})
    except (OSError, http.client.HTTPException) as error:
        return False, f"the connection closed ({type(error).__name__})"
    if reply.status == 200:
        return True, ""
    return False, refused_by(reply.status, reply.json(), reply.body[:2048], reply.headers.get("server", ""))


def search(p: Probe, route: str) -> Search:
    """Double from START_BYTES until refused (or CAP_BYTES), then bisect to the byte."""
    passed, refused, by, requests = 0, None, "", 0
    size = START_BYTES
    while size <= CAP_BYTES and requests < MAX_REQUESTS:
        ok, why = _attempt(p, route, size)
        requests += 1
        if not ok:
            refused, by = size, why
            break
        passed, size = size, size * 2
    while refused is not None and refused - passed > 1 and requests < MAX_REQUESTS:
        middle = (passed + refused) // 2
        ok, why = _attempt(p, route, middle)
        requests += 1
        if ok:
            passed = middle
        else:
            refused, by = middle, why
    return Search(passed, refused, by, requests)


def _declared_bytes(p: Probe) -> int | None:
    kib = p.options.declared_header_kib
    return kib * 1024 if kib else None


@probe(REQUEST_HEADER, RESPONSE_HEAD)
def probe_header_sizes(p: Probe) -> Iterator[Result]:
    route = p.options.routes.debug
    if route is None or p.seen_by_app is None:
        for behaviour in ALL:
            yield result(behaviour, NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
        return
    declared = _declared_bytes(p)
    found = search(p, route)
    line = found.passed + LINE_EXTRA
    wanted = f"the app declares {declared} bytes" if declared else f"{DEFAULT_LINE_BYTES} bytes expected"
    if found.refused is None:
        seen = f"every Cookie up to {found.passed} bytes passed ({found.requests} requests)"
    else:
        seen = (
            f"the largest Cookie that passed: {found.passed} bytes (a {line}-byte header line; {wanted}); "
            f"{found.refused} bytes refused by {found.by} ({found.requests} requests)"
        )
    short = found.refused is not None and line < (declared or DEFAULT_LINE_BYTES)
    yield result(REQUEST_HEADER, BROKEN if short else OK, seen)
    cookie = declared - HEAD_SLACK_BYTES if declared else DEFAULT_SET_COOKIE_BYTES
    path = SET_COOKIE_ROUTE.format(bytes=cookie)
    try:
        reply = p.get(path)
    except (OSError, http.client.HTTPException) as error:
        yield result(RESPONSE_HEAD, BROKEN, f"GET {path}: the connection closed ({type(error).__name__})")
        return
    if reply.status == 404:
        yield result(RESPONSE_HEAD, NOT_PROBED, f"GET {path}: 404 (needs the lab's /debug/set-cookie)")
        return
    yield result(
        RESPONSE_HEAD,
        OK if reply.status == 200 else BROKEN,
        f"a {cookie}-byte Set-Cookie (GET {path}): {reply.status}"
        + (
            ""
            if reply.status == 200
            else f" from {refused_by(reply.status, reply.json(), reply.body[:2048], '')}"
        ),
    )


@rule(REQUEST_HEADER, RESPONSE_HEAD)
def rule_header_sizes(site: Site) -> Iterator[Finding]:
    """Buffers set below nginx's own defaults: what apps send (a cookie, a login's Set-Cookie) no
    longer fits. The defaults themselves are judged by the probes against what the app declares."""
    location = site.location(site.routes.debug)
    # (where it is in force, the directive, which argument is the size, nginx's default, why, the fix)
    limits = (
        (site.app_server, "large_client_header_buffers", 1, NGINX_REQUEST_BUFFER_KIB, REQUEST_HEADER,
         "a header line over {size:g}k (a cookie, a token) gets 400: `large_client_header_buffers 4 "
         "{default}k;` at least, up to what the app takes"),
        (location, "proxy_buffer_size", 0, NGINX_RESPONSE_BUFFER_KIB, RESPONSE_HEAD,
         "a response head over {size:g}k (a login's Set-Cookie) is 502 \"upstream sent too big header\": "
         "`proxy_buffer_size {default}k;` at least, more for big cookies"),
    )  # fmt: skip
    for block, name, index, default, behaviour, fix in limits:
        for directive in effective(block, name)[-1:] if block is not None else []:
            size = size_mib(directive.args[index]) * 1024 if len(directive.args) > index else None
            if size is not None and size < default:
                yield at(directive, behaviour, fix.format(size=size, default=default))
