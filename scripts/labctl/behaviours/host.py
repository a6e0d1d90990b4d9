"""The Host a client sends: an unknown one is refused (never reflected in a URL or a page), and
an absolute-form request line (``GET https://site/ HTTP/1.1`` with another Host) cannot smuggle
it past nginx's choice of server."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator

from .. import probe as http_probe
from ..diagnose.config import Directive, default_server, listens, proxy_headers, proxying_location
from ..probe import Reply
from .core import (
    BROKEN,
    CLIENT_HOST,
    EVIL_HOST,
    HIGH,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Routes,
    Site,
    at,
    header_value,
    probe,
    result,
    rule,
)

ORDER = 30

UNKNOWN_HOST = Behaviour(
    "unknown-host",
    "an unknown Host is refused, never reflected",
    "a default server that refuses other Hosts (`listen ... default_server;` with `return 444;`, or "
    "`ssl_reject_handshake on;` for TLS)",
    HIGH,
)
ABSOLUTE_FORM_HOST = Behaviour(
    "absolute-form-host",
    "an absolute-form request line cannot smuggle another Host",
    "`$http_host` is the client's raw header: use `$host` (the name that matched), plus the port when it "
    "is not the default",
    HIGH,
)


def _reflects(reply: Reply) -> bool:
    return EVIL_HOST in reply.location or EVIL_HOST.encode() in reply.body


@probe(UNKNOWN_HOST)
def probe_unknown_host(p: Probe) -> Iterator[Result]:
    path = p.options.routes.debug or p.options.routes.redirect or "/"
    try:
        reply = p.get(path, headers={"Host": EVIL_HOST})
    except (ConnectionError, http.client.HTTPException) as error:
        yield result(
            UNKNOWN_HOST, OK, f"Host: {EVIL_HOST}: the connection was closed ({type(error).__name__})"
        )
        return
    except ssl.SSLError as error:
        yield result(UNKNOWN_HOST, OK, f"Host: {EVIL_HOST}: TLS refused ({error.reason})")
        return
    if _reflects(reply):
        where = f" in Location: {reply.location}" if EVIL_HOST in reply.location else " in the answer"
        yield result(UNKNOWN_HOST, BROKEN, f"Host: {EVIL_HOST} -> {reply.describe()}, reflected{where}")
    else:
        yield result(UNKNOWN_HOST, OK, f"Host: {EVIL_HOST} -> {reply.describe()}, not reflected")


@probe(ABSOLUTE_FORM_HOST)
def probe_absolute_form(p: Probe) -> Iterator[Result]:
    path = p.options.routes.redirect or p.options.routes.debug or "/"
    request = (
        f"GET {p.endpoint.url}{path} HTTP/1.1\r\nHost: {EVIL_HOST}\r\nConnection: close\r\n"
        "User-Agent: lab-probe\r\n\r\n"
    ).encode()
    try:
        answer = http_probe.raw_exchange(p.endpoint, request)
    except OSError as error:
        yield result(ABSOLUTE_FORM_HOST, OK, f"the connection was refused or closed ({type(error).__name__})")
        return
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    reflected = EVIL_HOST.encode() in head or EVIL_HOST.encode() in body
    seen = f"GET {p.endpoint.url}{path} + Host: {EVIL_HOST} -> {status_line}"
    yield result(
        ABSOLUTE_FORM_HOST,
        BROKEN if reflected else OK,
        seen + (", and the forged Host came back" if reflected else ""),
    )


def _reflects_host(location: Directive | None) -> bool:
    if location is None:
        return False
    headers = proxy_headers(location)
    values = [header_value(headers, "host"), header_value(headers, "x-forwarded-host")]
    return any(v is not None and any(var in v for var in CLIENT_HOST) for v in values)


@rule(UNKNOWN_HOST)
def rule_unknown_host(site: Site) -> Iterator[Finding]:
    port = site.tls_port if site.tls else site.http_port
    if port is None:
        return
    server = default_server(site.config, port)
    if server is None or not _reflects_host(proxying_location(server, Routes().debug or "/")):
        return
    listen = next((lst.directive for lst in listens(server) if lst.port == port), server)
    yield at(
        listen,
        UNKNOWN_HOST,
        f"a default server for :{port} that refuses other Hosts: `listen {port} default_server;`"
        + (" `ssl_reject_handshake on;`" if site.tls else " `return 444;`"),
    )


@rule(ABSOLUTE_FORM_HOST)
def rule_absolute_form(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.redirect)
    if location is None:
        return
    headers = proxy_headers(location)
    for header in ("host", "x-forwarded-host"):
        if "$http_host" in (header_value(headers, header) or ""):
            yield at(
                headers[header],
                ABSOLUTE_FORM_HOST,
                "use `$host` (the name that matched; plus the port off the default): `$http_host` is the "
                "client's raw header",
            )
