"""Forwarded headers: the app sees the client's address, and no forged X-Forwarded-* (or RFC
7239 Forwarded) header a client sends reaches what the app believes or the URLs it builds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from ..diagnose.config import proxy_headers
from ..probe import FORGED_ADDR
from .core import (
    BROKEN,
    EVIL_HOST,
    HIGH,
    MEDIUM,
    NOT_PROBED,
    OK,
    REDIRECT_STATUSES,
    Behaviour,
    Finding,
    Probe,
    Result,
    Site,
    at,
    header_names,
    header_value,
    missing,
    probe,
    result,
    rule,
)

ORDER = 20
FORGED_PORT_NUMBER = "1"

CLIENT_ADDR = Behaviour(
    "client-addr",
    "the app sees the client's address",
    "nginx must send `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`",
    MEDIUM,
)
FORGED_FOR = Behaviour(
    "forged-for",
    "a forged X-Forwarded-For is not believed",
    "append, never pass through: `X-Forwarded-For $proxy_add_x_forwarded_for`, and trust exactly one hop "
    "in the app",
    HIGH,
    ("xff-spoofing",),
)
FORGED_PROTO = Behaviour(
    "forged-proto",
    "a forged X-Forwarded-Proto is not believed",
    "set it, so the client's value never passes through: `proxy_set_header X-Forwarded-Proto $scheme`",
    HIGH,
)
FORGED_HOST = Behaviour(
    "forged-host",
    "a forged X-Forwarded-Host does not reach the app's URLs",
    "set it, so the client's value never passes through: `proxy_set_header X-Forwarded-Host $host`",
    HIGH,
)
FORGED_PORT = Behaviour(
    "forged-port",
    "a forged X-Forwarded-Port does not reach the app's URLs",
    "set it, so the client's value never passes through: `proxy_set_header X-Forwarded-Port <public port>`",
    MEDIUM,
)
FORGED_FORWARDED = Behaviour(
    "forged-forwarded",
    "a forged Forwarded header does not reach the app's URLs",
    'clear or set the RFC 7239 header too: `proxy_set_header Forwarded ""`',
    HIGH,
)


def _app_view(p: Probe, headers: dict[str, str] | None = None) -> dict[str, object] | None:
    """What the app saw (the lab's debug route), or None when there is no such route."""
    route = p.options.routes.debug
    if route is None:
        return None
    reply = p.get(route, headers=headers)
    seen = reply.json()
    return seen if reply.status == 200 and isinstance(seen, dict) and "remote_addr" in seen else None


def _forged_location(p: Probe, headers: dict[str, str]) -> str | None:
    route = p.options.routes.redirect
    if route is None:
        return None
    reply = p.get(route, headers=headers)
    return reply.location if reply.status in REDIRECT_STATUSES and reply.location else None


@probe(CLIENT_ADDR, FORGED_FOR, FORGED_PROTO, FORGED_HOST, FORGED_PORT, FORGED_FORWARDED)
def probe_forwarded(p: Probe) -> Iterator[Result]:
    """Forged forwarded headers, one at a time: does the app believe any of them?"""
    plain = _app_view(p)
    p.seen_by_app = plain
    if plain is None:
        yield result(CLIENT_ADDR, NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
        yield result(FORGED_FOR, NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
    else:
        got_xff = "x-forwarded-for" in header_names(plain)
        yield result(
            CLIENT_ADDR,
            OK if got_xff else BROKEN,
            f"the app got {'an' if got_xff else 'no'} X-Forwarded-For; remote_addr {plain['remote_addr']}",
        )
        forged = _app_view(p, {"X-Forwarded-For": FORGED_ADDR}) or {}
        believed = forged.get("remote_addr") == FORGED_ADDR
        yield result(
            FORGED_FOR,
            BROKEN if believed else OK,
            f"X-Forwarded-For: {FORGED_ADDR} -> remote_addr {forged.get('remote_addr')}",
        )
    # Forge the opposite of what the app believes now: a proxy that sets nothing already lets it
    # see http behind TLS, and a forged "http" would change nothing there.
    app_scheme = urlsplit(_forged_location(p, {}) or "").scheme or ("https" if p.endpoint.tls else "http")
    other_scheme = "http" if app_scheme == "https" else "https"
    forgeries: list[tuple[Behaviour, dict[str, str], Callable[[str], bool]]] = [
        (FORGED_PROTO, {"X-Forwarded-Proto": other_scheme}, lambda loc: loc.startswith(other_scheme + ":")),
        (FORGED_HOST, {"X-Forwarded-Host": EVIL_HOST}, lambda loc: EVIL_HOST in urlsplit(loc).netloc),
        (FORGED_PORT, {"X-Forwarded-Port": FORGED_PORT_NUMBER}, lambda loc: urlsplit(loc).port == 1),
        (
            FORGED_FORWARDED,
            {"Forwarded": f"for={FORGED_ADDR};proto={other_scheme};host={EVIL_HOST}"},
            lambda loc: EVIL_HOST in loc or loc.startswith(f"{other_scheme}://"),
        ),
    ]
    for behaviour, sent, reached_url in forgeries:
        header, value = next(iter(sent.items()))
        location = _forged_location(p, sent)
        if location is None:
            yield result(behaviour, NOT_PROBED, "no route that redirects to observe (--redirect-path)")
            continue
        verdict = BROKEN if urlsplit(location).scheme and reached_url(location) else OK
        yield result(behaviour, verdict, f"{header}: {value} -> Location: {location}")


@rule(CLIENT_ADDR, FORGED_FOR, FORGED_PROTO, FORGED_HOST, FORGED_PORT)
def rule_forwarded(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.debug)
    if location is None:
        return
    headers = proxy_headers(location)
    xff = header_value(headers, "x-forwarded-for")
    if xff is None:
        for behaviour in (CLIENT_ADDR, FORGED_FOR):
            yield missing(
                location,
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
                behaviour,
                "add `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`",
            )
    elif "$http_x_forwarded_for" in xff:
        yield at(
            headers["x-forwarded-for"],
            FORGED_FOR,
            "append: `X-Forwarded-For $proxy_add_x_forwarded_for` (the client's value passes through)",
        )
    for behaviour, header, value in (
        (FORGED_PROTO, "x-forwarded-proto", "$scheme"),
        (FORGED_HOST, "x-forwarded-host", "$host"),
        (FORGED_PORT, "x-forwarded-port", "<public port>"),
    ):
        set_to = header_value(headers, header)
        name = "-".join(part.capitalize() for part in header.split("-"))
        if set_to is None:
            yield missing(
                location,
                f"proxy_set_header {name}",
                behaviour,
                f"add `proxy_set_header {name} {value};`: unset, the client's own passes through",
            )
        elif f"$http_{header.replace('-', '_')}" in set_to:
            yield at(
                headers[header], behaviour, f"`proxy_set_header {name} {value};`, not the client's value"
            )
