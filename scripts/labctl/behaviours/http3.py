"""HTTP/3: advertised (Alt-Svc on an HTTPS answer), answering (a QUIC handshake and a request on
the advertised port), and the host the app builds URLs from, the same as over TCP.

Its client (aioquic, labctl.h3) is imported only where .venv provides it."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from urllib.parse import urlsplit

from .. import probe as http_probe
from .core import (
    BROKEN,
    LOW,
    MEDIUM,
    NOT_PROBED,
    NOTE,
    OK,
    REDIRECT_STATUSES,
    Behaviour,
    Probe,
    Result,
    probe,
    result,
)

ORDER = 90

H3_ADVERTISED = Behaviour(
    "h3-advertised",
    "HTTP/3 is advertised (Alt-Svc: h3)",
    "browsers use HTTP/3 only once told: `listen 443 quic reuseport;` beside the TCP listen and "
    "`add_header Alt-Svc 'h3=\":443\"; ma=86400' always;` (nginx 1.25+, --with-http_v3_module)",
    LOW,
)
H3_ANSWERS = Behaviour(
    "h3-answers",
    "HTTP/3 answers where Alt-Svc says (QUIC over UDP)",
    "Alt-Svc promises h3 but no QUIC answer came: the UDP port must be open and published too "
    "(Docker: `127.0.0.1:443:443/udp`), with `listen <port> quic` on it",
    MEDIUM,
)
H3_HOST = Behaviour(
    "h3-host",
    "over HTTP/3 the app still sees the public host and port",
    "HTTP/3 has no Host header (only :authority) and nginx leaves `$http_host` empty there: send "
    "`proxy_set_header Host $host:<public port>` (or `$host` on 443), never `$http_host`",
    MEDIUM,
    ("h3-http-host",),
)


@probe(H3_ADVERTISED, H3_ANSWERS, H3_HOST)
def probe_http3(p: Probe) -> Iterator[Result]:
    """The three in turn (the module's opening says each); each needs the one before."""
    if not p.endpoint.tls:
        return
    if p.options.http3_unjudged:
        for behaviour in (H3_ADVERTISED, H3_ANSWERS, H3_HOST):
            yield result(behaviour, NOT_PROBED, p.options.http3_unjudged)
        return
    route = p.options.routes.redirect
    tcp = p.get(route or "/")
    port = http_probe.alt_svc_h3(tcp.headers.get("alt-svc", ""), p.endpoint.port)
    if port is None:
        yield result(H3_ADVERTISED, NOTE, f"no h3 in Alt-Svc ({tcp.headers.get('alt-svc') or 'none'})")
        return
    yield result(H3_ADVERTISED, OK, f"Alt-Svc: {tcp.headers['alt-svc']}")
    if importlib.util.find_spec("aioquic") is None:
        yield result(H3_ANSWERS, NOT_PROBED, "needs aioquic (in .venv: `scripts/lab` uses it once it exists)")
        return
    from .. import h3  # aioquic: only in .venv

    try:
        over_h3 = h3.request(p.endpoint, "GET", route or "/", port=port)
    except OSError as error:
        seen = f"UDP {port}: {type(error).__name__}: {error or 'no QUIC handshake'}"
        yield result(H3_ANSWERS, BROKEN, seen)
        return
    yield result(H3_ANSWERS, OK, f"UDP {port}: GET {route or '/'} over HTTP/3 answered {over_h3.describe()}")
    if route is None or tcp.status not in REDIRECT_STATUSES or not tcp.location:
        yield result(H3_HOST, NOT_PROBED, "no route that redirects to compare (--redirect-path)")
        return
    tcp_host, h3_host = urlsplit(tcp.location).netloc, urlsplit(over_h3.location).netloc
    seen = f"Location over HTTP/1.1: {tcp.location}; over HTTP/3: {over_h3.location or '(none)'}"
    yield result(H3_HOST, OK if h3_host == tcp_host else BROKEN, seen)
