"""A path prefix: an app mounted under /app/ behind nginx keeps the prefix in the URLs it builds
(redirects, url_for, static files). nginx strips the prefix when proxy_pass carries a URI
(`location /app/ { proxy_pass http://app/; }`) and must then tell the app, which cannot see it:
`proxy_set_header X-Forwarded-Prefix /app` (Werkzeug's ProxyFix x_prefix=1 makes it SCRIPT_NAME).
A `SCRIPT_NAME` header does not do it any more: gunicorn 22 drops header names with an
underscore (gunicorn #3200)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from ..diagnose.config import Directive, location_pattern, proxy_headers, upstream_path
from .core import (
    BROKEN,
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
    header_value,
    probe,
    result,
    rule,
)

ORDER = 15
# Headers an app (or its middleware) reads the stripped prefix from, lower-cased.
PREFIX_HEADERS = ("x-forwarded-prefix", "x-script-name")
UNDERSCORED = "script_name"  # dropped by gunicorn >= 22 (header_map), passed by nginx when set

PREFIX = Behaviour(
    "prefix",
    "an app under a path prefix keeps it in the URLs it builds",
    "nginx strips the prefix (`proxy_pass http://app/;` in `location /app/`) and nothing tells the app: "
    "send `proxy_set_header X-Forwarded-Prefix /app;` and have the app read it (Werkzeug's ProxyFix "
    "x_prefix=1, i.e. SCRIPT_NAME); a SCRIPT_NAME header is dropped by gunicorn 22 and later",
    MEDIUM,
    ("prefix-lost",),
)
ALL = (PREFIX,)


def stripped_prefix(location: Directive) -> tuple[str, Directive] | None:
    """The prefix ``location`` takes off before the app, and the directive that takes it: a
    prefix location whose proxy_pass carries another URI (``location /app/ { proxy_pass
    http://b/; }``), or whose ``rewrite ... break`` cuts its start; None when the app gets the
    path as the client sent it (or the URI is a variable nginx fills at run time)."""
    modifier, pattern = location_pattern(location)
    passes = location.children("proxy_pass")
    if modifier not in ("", "^~") or not pattern.startswith("/") or pattern == "/" or not passes:
        return None
    prefix = pattern.rstrip("/")
    uri = upstream_path(location, pattern)
    if uri is not None:
        return None if uri.rstrip("/") == prefix else (prefix, passes[0])
    for rewrite in location.children("rewrite"):
        cuts = rewrite.args[:1] and rewrite.args[0].startswith(f"^{prefix}")
        if cuts and rewrite.args[-1] == "break":
            return prefix, rewrite
    return None


def stripping_locations(site: Site) -> list[tuple[str, Directive, Directive]]:
    """(prefix, location, the directive that strips it) for every such location of the app server
    but its websocket ones (a websocket service mounted at its root builds no URLs to lose)."""
    found = []
    websockets = site.websocket_locations()
    for location in site.app_server.walk():
        if location.name != "location" or location in websockets:
            continue
        if (stripped := stripped_prefix(location)) is not None:
            found.append((stripped[0], location, stripped[1]))
    return found


def probe_path(site: Site) -> str | None:
    """The prefix `lab check` probes: the first the config strips (None when it strips none)."""
    found = stripping_locations(site)
    return found[0][0] + "/" if found else None


@probe(PREFIX)
def probe_prefix(p: Probe) -> Iterator[Result]:
    """The app's absolute redirect requested under the prefix: its Location keeps the prefix."""
    prefix, route = p.options.routes.prefix, p.options.routes.redirect
    if not prefix or route is None:
        yield result(PREFIX, NOT_PROBED, "no path prefix to probe (the lab's /sub/; a config's stripped one)")
        return
    path = prefix.rstrip("/") + route
    reply = p.get(path)
    if reply.status not in REDIRECT_STATUSES or not reply.location:
        yield result(
            PREFIX, NOT_PROBED, f"{path}: {reply.status}, no redirect (the prefix does not reach the app)"
        )
        return
    kept = urlsplit(reply.location).path.startswith(prefix.rstrip("/") + "/")
    yield result(PREFIX, OK if kept else BROKEN, f"GET {path} -> Location: {reply.location}")


@rule(PREFIX)
def rule_prefix(site: Site) -> Iterator[Finding]:
    for prefix, location, stripping in stripping_locations(site):
        headers = proxy_headers(location)
        if any(header_value(headers, name) for name in PREFIX_HEADERS):
            continue
        fix = (
            f"`proxy_set_header X-Forwarded-Prefix {prefix};` in this location, read by the app "
            "(Werkzeug's ProxyFix x_prefix=1)"
        )
        if header_value(headers, UNDERSCORED):
            yield at(headers[UNDERSCORED], PREFIX, f"gunicorn 22+ drops a header named with '_': {fix}")
        else:
            yield at(stripping, PREFIX, f"the app never learns {prefix}: {fix}")
