"""A proxy chain: nginx behind a balancer, CDN or second proxy that ends TLS. nginx must take the
client's address and scheme from that balancer alone (set_real_ip_from + real_ip_header; the
incoming X-Forwarded-Proto kept only from it), never from anyone (`set_real_ip_from 0.0.0.0/0`),
and must not overwrite the balancer's X-Forwarded-Proto with its own `$scheme`, which is `http`
on the plain hop (nginx-proxy #133, permanent-colandr #225, natlas #346)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from ..diagnose.config import effective, plain_listens, proxy_headers
from ..probe import FORGED_ADDR
from .core import (
    BROKEN,
    HIGH,
    NOT_PROBED,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Site,
    at,
    header_value,
    probe,
    result,
    rule,
)

ORDER = 25  # after forwarded: reads the app's plain view the forwarded probe got
EVERYONE = {"0.0.0.0/0", "::/0", "0/0"}
# Headers real_ip_header names in the wild (nginx's default X-Real-IP, CDNs' own): forged at once.
CLIENT_ADDRESS_HEADERS = ("X-Real-IP", "CF-Connecting-IP", "True-Client-IP")

REAL_IP = Behaviour(
    "real-ip",
    "only a trusted proxy sets the client's address",
    "nginx's realip module must trust the balancer's addresses only: `set_real_ip_from <balancer>` (never "
    "0.0.0.0/0) with `real_ip_header X-Forwarded-For` (or the header it sets); without set_real_ip_from "
    "the header is ignored and every client shows the balancer's address",
    HIGH,
    route="debug",
    # The probes come from loopback, not from the config's balancer: what it trusts is read.
    config_decides=True,
)
CHAIN_PROTO = Behaviour(
    "chain-proto",
    "behind a balancer that ends TLS, the app sees the client's scheme",
    "behind a balancer that ends TLS nginx's own $scheme is http: send the balancer's X-Forwarded-Proto "
    "(a map on $realip_remote_addr that keeps it from the balancer only, $scheme for everyone else), "
    "and have the app trust as many hops as there are proxies (ProxyFix x_proto)",
    HIGH,
    ("proxy-chain-scheme",),
    route="debug",
    # The probes reach nginx directly, not through the config's balancer: its text is what tells.
    config_decides=True,
)
ALL = (REAL_IP, CHAIN_PROTO)


@probe(REAL_IP, CHAIN_PROTO)
def probe_chain(p: Probe) -> Iterator[Result]:
    """A forged client address in the headers realip modules read; the X-Forwarded-Proto the app
    got against the scheme the client used (through a balancer, nginx's own $scheme is http)."""
    route, plain = p.options.routes.debug, p.seen_by_app
    if route is None or plain is None:
        for behaviour in ALL:
            yield result(behaviour, NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
        return
    forged = p.get(route, headers=dict.fromkeys(CLIENT_ADDRESS_HEADERS, FORGED_ADDR)).json()
    seen_addr = forged.get("remote_addr") if isinstance(forged, dict) else None
    yield result(
        REAL_IP,
        BROKEN if seen_addr == FORGED_ADDR else OK,
        f"{', '.join(CLIENT_ADDRESS_HEADERS)}: {FORGED_ADDR} -> remote_addr {seen_addr}",
    )
    # nginx's own X-Forwarded-Proto said another scheme than the client's: $scheme on a plain hop
    # behind a balancer. No header at all is redirect-scheme's (scheme-lost), not a chain's.
    used = urlsplit(p.endpoint.url).scheme
    sent = _header(plain, "x-forwarded-proto")
    seen = f"the client used {used}; X-Forwarded-Proto reaching the app: {sent or 'none'}"
    if sent is None:
        yield result(CHAIN_PROTO, NOT_PROBED, seen + " (no header: see redirect-scheme)")
    else:
        yield result(CHAIN_PROTO, OK if sent.split(",")[-1].strip() == used else BROKEN, seen)


def _header(view: dict[str, object], name: str) -> str | None:
    """A request header's value as the app saw it (the lab's /debug/request), by lower-case name."""
    headers = view.get("headers")
    if not isinstance(headers, dict):
        return None
    return next((str(v) for k, v in headers.items() if str(k).lower() == name), None)


@rule(REAL_IP, CHAIN_PROTO)
def rule_chain(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.debug) or site.app_server
    trusted = effective(location, "set_real_ip_from")
    for directive in trusted:
        if directive.args[:1] and directive.args[0] in EVERYONE:
            yield at(
                directive,
                REAL_IP,
                "trust your balancer's addresses only (`set_real_ip_from <balancer address or range>;`): "
                "any client now sets its own address",
            )
    if not trusted:
        for directive in effective(location, "real_ip_header"):
            yield at(
                directive,
                REAL_IP,
                "add `set_real_ip_from <balancer address>;`: without it nginx believes no one and every "
                "client shows the balancer's address",
            )
        return
    # A balancer in front (the config trusts one) that reaches a plain listener of this server:
    # there nginx's $scheme is http whatever the client used.
    if location is site.app_server or not plain_listens(site.app_server):
        return
    headers = proxy_headers(location)
    if (header_value(headers, "x-forwarded-proto") or "").strip() == "$scheme":
        yield at(
            headers["x-forwarded-proto"],
            CHAIN_PROTO,
            "behind the balancer this is nginx's own http: pass the balancer's value from the balancer only "
            "(`map $realip_remote_addr` ... `$http_x_forwarded_proto`, default `$scheme`)",
        )
