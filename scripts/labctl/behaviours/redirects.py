"""Redirects: the app's absolute redirects keep the public scheme, host and port (what nginx
tells it in Host and X-Forwarded-*), and plain HTTP redirects to the same URL on HTTPS."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from ..diagnose.config import Directive, proxy_headers, proxying_location
from .core import (
    BROKEN,
    CLIENT_HOST,
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
    for_any_client,
    header_value,
    missing,
    probe,
    result,
    rule,
    same_url,
)

ORDER = 10  # first: the doctor's report reads in this order
REDIRECT_RETURN = {"301", "302", "303", "307", "308"}

REDIRECT_SCHEME = Behaviour(
    "redirect-scheme",
    "the app's absolute redirects keep the scheme",
    "nginx must send `proxy_set_header X-Forwarded-Proto $scheme` and the app trust one hop of it "
    "(Werkzeug's ProxyFix x_proto=1)",
    HIGH,
    ("scheme-lost",),
    route="redirect",
)
REDIRECT_HOST = Behaviour(
    "redirect-host",
    "the app's absolute redirects keep the public host",
    "nginx sends the proxy_pass host unless told: `proxy_set_header Host $host` (plus the port when it is "
    "not the scheme's default)",
    HIGH,
    ("upstream-host",),
    route="redirect",
)
REDIRECT_PORT = Behaviour(
    "redirect-port",
    "the app's absolute redirects keep the public port",
    "`Host $host` has no port: behind a non-default port send `$host:<public port>` and "
    "`X-Forwarded-Port <public port>` (the client's raw `$http_host` keeps the port but lets a forged "
    "Host through)",
    MEDIUM,
    ("host-drops-port",),
    route="redirect",
)
HTTPS_REDIRECT = Behaviour(
    "https-redirect",
    "plain HTTP redirects to the same host, port, path and query on HTTPS",
    "redirect with `return 301 https://$host$request_uri` (add `:<public https port>` after $host when "
    "HTTPS is not on 443)",
    MEDIUM,
    ("https-redirect-drops-port",),
)


def _location_parts(location: str, want_scheme: str) -> tuple[str, str, int]:
    """Scheme, host and port of an absolute Location; a port left out counts as the default of
    the scheme it should have had, so a lost scheme is not blamed on the port as well."""
    parts = urlsplit(location)
    return parts.scheme, parts.hostname or "", parts.port or (443 if want_scheme == "https" else 80)


@probe(REDIRECT_SCHEME, REDIRECT_HOST, REDIRECT_PORT)
def probe_redirects(p: Probe) -> Iterator[Result]:
    judged = (REDIRECT_SCHEME, REDIRECT_HOST, REDIRECT_PORT)
    route = p.options.routes.redirect
    if route is None:
        yield from (result(b, NOT_PROBED, "no route that redirects (--redirect-path)") for b in judged)
        return
    reply = p.get(route)
    location = reply.location
    if reply.status not in REDIRECT_STATUSES or not location:
        seen = f"{route} answered {reply.describe()}, not a redirect"
        yield from (result(b, NOT_PROBED, seen) for b in judged)
        return
    if not urlsplit(location).scheme:
        yield from (result(b, OK, f"{reply.status} relative Location: {location}") for b in judged)
        return
    want_scheme = "https" if p.endpoint.tls else "http"
    scheme, hostname, port = _location_parts(location, want_scheme)
    seen = f"{reply.status} Location: {location}"
    yield result(REDIRECT_SCHEME, OK if scheme == want_scheme else BROKEN, seen)
    # urlsplit lower-cases the hostname; nginx's $host is lower-cased too: names compare so.
    yield result(REDIRECT_HOST, OK if hostname == p.endpoint.hostname.lower() else BROKEN, seen)
    yield result(REDIRECT_PORT, OK if port == p.endpoint.port else BROKEN, seen)


@probe(HTTPS_REDIRECT)
def probe_https_redirect(p: Probe) -> Iterator[Result]:
    if not p.endpoint.tls:
        yield result(HTTPS_REDIRECT, NOT_PROBED, "the site has no TLS: nothing to redirect to")
        return
    if p.endpoint.http_url is None:
        yield result(HTTPS_REDIRECT, NOT_PROBED, "no plain-HTTP entry point known (LAB_HTTP_URL)")
        return
    path = "/lab-probe/redirect?from=http&x=%2F"
    try:
        reply = p.get(path, base=p.endpoint.http_url)
    except OSError as error:
        yield result(HTTPS_REDIRECT, NOT_PROBED, f"{p.endpoint.http_url}: {error}")
        return
    want = f"https://{p.endpoint.host}{p.endpoint.prefix}{path}"
    if reply.status not in REDIRECT_STATUSES:
        seen = f"HTTP answered {reply.describe()} itself: the site is served in clear"
        yield result(HTTPS_REDIRECT, BROKEN, seen)
        return
    verdict = OK if same_url(reply.location, want) else BROKEN
    seen = f"{reply.status} Location: {reply.location or '(none)'}" + (
        "" if verdict == OK else f" (want {want})"
    )
    yield result(HTTPS_REDIRECT, verdict, seen)


def _has_port(value: str) -> bool:
    return bool(re.search(r":(\d+|\$server_port|\$request_port)\b", value)) or "$http_host" in value


def _port_value_right(value: str, site: Site) -> bool:
    public = site.public_https_port if site.tls else site.public_http_port
    if value.strip() == "$server_port":
        listen = site.tls_port if site.tls else site.http_port
        return listen == public
    return value.strip() == str(public)


@rule(REDIRECT_SCHEME, REDIRECT_HOST, REDIRECT_PORT)
def rule_redirects(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.redirect)
    if location is None:
        return
    headers = proxy_headers(location)
    # Judged as nginx fills them for any client (not a trusted balancer's own values).
    host = for_any_client(site, header_value(headers, "host"))
    forwarded_host = for_any_client(site, header_value(headers, "x-forwarded-host"))
    source = forwarded_host if forwarded_host is not None else host
    proto = for_any_client(site, header_value(headers, "x-forwarded-proto"))
    if site.tls and proto is None:
        yield missing(
            location,
            "proxy_set_header X-Forwarded-Proto $scheme",
            REDIRECT_SCHEME,
            "add `proxy_set_header X-Forwarded-Proto $scheme;` in this location",
        )
    elif site.tls and proto not in ("$scheme", "https"):
        yield at(
            headers["x-forwarded-proto"], REDIRECT_SCHEME, "`proxy_set_header X-Forwarded-Proto $scheme;`"
        )
    public_port = site.public_https_port if site.tls else site.public_http_port
    default_port = 443 if site.tls else 80
    if source is None:
        yield missing(
            location,
            "proxy_set_header Host",
            REDIRECT_HOST,
            "add `proxy_set_header Host $host;` (nginx sends the proxy_pass target's name otherwise)",
        )
        if public_port != default_port:
            yield missing(
                location,
                "proxy_set_header Host",
                REDIRECT_PORT,
                f"add `proxy_set_header Host $host:{public_port};`",
            )
        return
    if not any(variable in source for variable in CLIENT_HOST) and site.host not in source:
        yield at(
            headers["x-forwarded-host" if forwarded_host is not None else "host"],
            REDIRECT_HOST,
            "send the public name: `$host`",
        )
    # With X-Forwarded-Port set, the app (ProxyFix x_port) takes its port from it, whatever the Host says.
    port_header = for_any_client(site, header_value(headers, "x-forwarded-port"))
    port_kept = _port_value_right(port_header, site) if port_header is not None else _has_port(source)
    if public_port != default_port and not port_kept:
        blamed = (
            "x-forwarded-port"
            if port_header is not None
            else "x-forwarded-host"
            if forwarded_host
            else "host"
        )
        directive = headers[blamed]
        yield at(
            directive,
            REDIRECT_PORT,
            f"`$host` has no port: send `$host:{public_port}` and `X-Forwarded-Port {public_port}`",
        )


@rule(HTTPS_REDIRECT)
def rule_https_redirect(site: Site) -> Iterator[Finding]:
    server = site.http_server
    if not site.tls or server is None:
        return
    returns = [d for d in server.walk() if _redirect_url(d) is not None]
    if not returns:
        location = proxying_location(server, "/")
        if location is not None and location.children("proxy_pass"):
            yield Finding(
                HTTPS_REDIRECT,
                server.where,
                "missing: return 301 https://$host$request_uri",
                "the HTTP server proxies the app in clear: redirect instead",
            )
        return
    want_port = "" if site.public_https_port == 443 else f":{site.public_https_port}"
    fix = f"`return 301 https://$host{want_port}$request_uri;`"
    # Certbot's shape: the redirect inside `if ($host = name)`, then `return 404;` for the rest,
    # which answers every other name the server lists (www.) in clear, unredirected.
    for directive in server.children("return"):
        if _redirect_url(directive) is None:
            yield at(directive, HTTPS_REDIRECT, f"{fix} for every name this server lists")
    for directive in returns:
        url = _redirect_url(directive) or ""
        # A rewrite's captures ($1 of `rewrite ^(.*)$ https://$host$1 permanent;`) carry the path,
        # and nginx appends the query itself; without either the redirect drops them.
        keeps_path = "$request_uri" in url or (directive.name == "rewrite" and re.search(r"\$\d", url))
        if "$server_name" in url or not keeps_path or (want_port and want_port not in url):
            yield at(directive, HTTPS_REDIRECT, fix)


def _redirect_url(directive: Directive) -> str | None:
    """Where a `return 301 URL` or an external `rewrite REGEX URL [permanent]` sends the client."""
    args = directive.args
    if directive.name == "return" and len(args) > 1 and args[0] in REDIRECT_RETURN:
        return args[1]
    if directive.name == "rewrite" and len(args) > 1 and args[1].startswith(("http://", "https://")):
        return args[1]
    return None
