"""Request bodies: a small POST is answered (the proxy does not make the app wait for a body
that never ends), uploads up to the app's limit pass whole, bigger ones are refused by nginx."""

from __future__ import annotations

from collections.abc import Iterator

from .. import probe as http_probe
from ..diagnose.config import Directive, effective, proxy_headers, size_mib
from ..probe import MIB, Reply
from .core import (
    BROKEN,
    HIGH,
    MEDIUM,
    NOT_PROBED,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Site,
    at,
    header_value,
    missing,
    probe,
    result,
    rule,
)
from .errors import error_format

ORDER = 50
UPLOAD_SIZES_MIB = (2, 16)
UPLOAD_MIB = 16  # the rule's upload: the lab's app takes this much
BODY_TIMEOUT_S = 3.0  # a 1 KiB POST on loopback answers in milliseconds
UPLOAD_TIMEOUT_S = 20.0  # a 2 MiB PUT stored on loopback: well under a second on a loaded box

REQUEST_BODY = Behaviour(
    "request-body",
    "a request body reaches the app and the answer comes back",
    '`Connection "upgrade"` on every request makes gevent\'s pywsgi hand the app the raw socket as the '
    "body (Werkzeug reads it to the end): send `Connection $connection_upgrade` (a map)",
    HIGH,
    ("connection-upgrade-always",),
)
UPLOAD_LIMIT = Behaviour(
    "upload-limit",
    "uploads of 2 and 16 MiB are accepted, bigger than the limit refused",
    "`client_max_body_size` (default 1m) at the largest upload the app accepts",
    MEDIUM,
    ("body-limit",),
)


@probe(REQUEST_BODY)
def probe_request_body(p: Probe) -> Iterator[Result]:
    """A small POST: its answer must come back (a proxy can make the app wait for a body forever)."""
    route = p.options.routes.body
    if route is None:
        yield result(REQUEST_BODY, NOT_PROBED, "no route that reads a POST body (the lab's /landing)")
        return
    size = 1024
    try:
        reply = http_probe.request(
            p.endpoint, "POST", route, body=http_probe.pattern_body(size), length=size, timeout=BODY_TIMEOUT_S
        )
    except TimeoutError:
        p.body_unanswered = True
        yield result(REQUEST_BODY, BROKEN, f"1 KiB POST {route}: no answer within {BODY_TIMEOUT_S:g} s")
        return
    if reply.status == 404:
        yield result(REQUEST_BODY, NOT_PROBED, f"{route} answered 404: no such route")
        return
    answered = reply.json()
    whole = not isinstance(answered, dict) or "size" not in answered or answered["size"] == size
    yield result(REQUEST_BODY, OK if whole else BROKEN, f"1 KiB POST {route}: {reply.describe()}")


def _expect_continue(p: Probe, path: str, size: int) -> tuple[int, Reply | None]:
    """Announce a body of ``size`` bytes and send none: nginx answers 100 Continue when it would
    take it, 413 at once when it is over client_max_body_size. The 413's page is read whole."""
    request = (
        f"PUT {p.endpoint.prefix}{path} HTTP/1.1\r\nHost: {p.endpoint.host}\r\nContent-Length: {size}\r\n"
        "Expect: 100-continue\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    ).encode()
    with http_probe.open_socket(p.endpoint) as sock:
        sock.sendall(request)
        sock.settimeout(http_probe.TIMEOUT)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        if status != 413:
            return status, None
        headers_raw, _, body = head.partition(b"\r\n\r\n")
        lines = headers_raw.decode("latin-1").split("\r\n")[1:]
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        # By its length, not until the close: nginx lingers (lingering_timeout, 5 s) for a body.
        length = int(headers.get("content-length", "0") or 0)
        try:
            while len(body) < length and (chunk := sock.recv(65536)):
                body += chunk
        except OSError:
            pass  # nginx may reset after its answer: the page came first
    return status, Reply(status, headers, body)


@probe(UPLOAD_LIMIT)
def probe_upload_limit(p: Probe) -> Iterator[Result]:
    path = p.options.routes.upload or "/lab-probe/upload"
    sizes = [s * MIB for s in UPLOAD_SIZES_MIB]
    declared = p.options.declared_limit_mib
    if declared:
        sizes.append(int(declared * MIB) + MIB)
    answers: dict[int, int] = {}
    refusal: Reply | None = None
    try:
        for size in sizes:
            answers[size], page = _expect_continue(p, path, size)
            refusal = refusal or page
    except OSError as error:
        yield result(UPLOAD_LIMIT, NOT_PROBED, f"PUT with Expect: 100-continue: {error}")
        return
    refused = [size // MIB for size, status in answers.items() if status == 413]
    small_refused = [s for s in refused if s in UPLOAD_SIZES_MIB]
    over = int(declared) + 1 if declared else None
    seen = ", ".join(f"{size // MIB} MiB -> {status}" for size, status in answers.items())
    if small_refused:
        verdict = BROKEN
    elif over is not None and over not in refused:
        verdict = BROKEN
        seen += f" (the declared {declared:g} MiB is not enforced)"
    else:
        verdict = OK
    yield result(UPLOAD_LIMIT, verdict, seen)
    # A real upload only where the route is known to exist: the lab's app answered, or the user
    # named the route. A 2 MiB body sent to an app that answers 404 unread is the early-reject bug.
    if (
        p.options.routes.upload
        and not small_refused
        and not p.body_unanswered
        and (p.seen_by_app or p.options.routes.debug is None)
    ):
        yield from _stored_upload(p, p.options.routes.upload)
    if refusal is not None:
        yield error_format("413", refusal, p.options.lab_contract)


def _stored_upload(p: Probe, path: str) -> Iterator[Result]:
    """A real 2 MiB upload through the proxy: stored whole (the app says its size)."""
    size = UPLOAD_SIZES_MIB[0] * MIB
    try:
        reply = http_probe.request(
            p.endpoint, "PUT", path, body=http_probe.pattern_body(size), length=size, timeout=UPLOAD_TIMEOUT_S
        )
    except OSError as error:  # a timeout too: the app waiting for a body that has ended
        yield result(UPLOAD_LIMIT, BROKEN, f"a 2 MiB PUT {path}: {type(error).__name__}: {error}")
        return
    body = reply.json()
    if reply.status == 404:
        return
    stored = isinstance(body, dict) and body.get("size") == size
    if not stored:
        yield result(UPLOAD_LIMIT, BROKEN, f"a 2 MiB PUT {path}: {reply.describe()}, not stored whole")


@rule(REQUEST_BODY)
def rule_request_body(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.body)
    if location is None:
        return
    headers = proxy_headers(location)
    connection = header_value(headers, "connection") or ""
    if "upgrade" in connection.lower() and "$" not in connection:
        yield at(
            headers["connection"],
            REQUEST_BODY,
            "`proxy_set_header Connection $connection_upgrade;` with `map $http_upgrade $connection_upgrade "
            "{ default upgrade; '' ''; }`: a constant \"upgrade\" makes every request one",
        )


def body_limit_mib(location: Directive) -> float:
    """client_max_body_size in force at ``location`` (nginx's default 1m; 0 means no limit)."""
    limits = effective(location, "client_max_body_size")
    return size_mib(limits[-1].args[0]) if limits and limits[-1].args else 1.0


@rule(UPLOAD_LIMIT)
def rule_upload_limit(site: Site) -> Iterator[Finding]:
    location, server = site.location(site.routes.upload), site.app_server
    if location is None or server is None:
        return
    limits = effective(location, "client_max_body_size")
    limit = body_limit_mib(location)
    if limits and limit == 0:
        return  # 0: no limit at all
    if limit < UPLOAD_MIB:
        fix = f"`client_max_body_size` at the app's own upload limit (a {UPLOAD_MIB} MiB upload gets 413)"
        yield (
            at(limits[-1], UPLOAD_LIMIT, fix)
            if limits
            else missing(server, "client_max_body_size", UPLOAD_LIMIT, fix)
        )
