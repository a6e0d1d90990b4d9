"""Which line of the user's config makes a behaviour break, read the way nginx applies it: the
proxy_set_header set in force in the location that proxies (a location's own set replaces every
inherited one), the server that takes an unknown Host, the limits in force where uploads go.

Each rule returns findings: the behaviour, the directive as written (or "missing: ..." at the
block where it belongs), its file and line in the user's own file, and the fix. `lab check`
pairs them with what its probes saw; a finding no probe could confirm is shown as static.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..behaviours import Routes
from .adapt import line_of
from .config import (
    Config,
    Directive,
    default_server,
    effective,
    listens,
    proxy_headers,
    proxying_location,
    seconds,
    server_for,
    size_mib,
)

# Variables a client controls, or that nginx fills from what the client sent.
CLIENT_HOST = ("$host", "$http_host", "$server_name")
REDIRECT_RETURN = {"301", "302", "303", "307", "308"}
# nginx proxies with HTTP/1.1 by default from this version on.
HTTP11_DEFAULT = (1, 29, 7)
UPLOAD_MIB = 16
IDLE_S = 65
DEFAULT_READ_TIMEOUT_S = 60


@dataclass(frozen=True)
class Finding:
    behaviour: str
    where: tuple[str, int]
    directive: str  # as written, or "missing: ..."
    fix: str


@dataclass(frozen=True)
class Site:
    """The config as the probes see it: the server that proxies the app (the TLS one when there
    is one), its public host and ports, and the routes the probes request."""

    config: Config
    host: str
    app_server: Directive
    tls_port: int | None  # the listen port of the TLS server that serves the host
    http_port: int | None
    public_https_port: int
    public_http_port: int
    nginx_version: tuple[int, ...]
    routes: Routes = field(default_factory=Routes)

    @property
    def http_server(self) -> Directive | None:
        return server_for(self.config, self.http_port, self.host) if self.http_port is not None else None

    def location(self, uri: str | None) -> Directive | None:
        return proxying_location(self.app_server, uri) if uri is not None else None

    @property
    def tls(self) -> bool:
        return self.tls_port is not None

    def websocket_locations(self) -> list[Directive]:
        """The locations of the app server that forward an Upgrade header: its websocket ones."""
        return [
            d
            for d in self.app_server.walk()
            if d.name == "location"
            and any(h.args[:1] and h.args[0].lower() == "upgrade" for h in d.children("proxy_set_header"))
        ]

    def probes_miss_the_websocket_location(self) -> bool:
        """The lab's websocket routes (/ws/*) land elsewhere than the config's websocket
        location (say /socket.io): the config is then judged by that location's text."""
        dedicated = self.websocket_locations()
        return bool(dedicated) and self.location(self.routes.ws) not in dedicated


def missing(block: Directive, text: str, behaviour: str, fix: str) -> Finding:
    return Finding(behaviour, block.where, f"missing: {text}", fix)


def at(directive: Directive, behaviour: str, fix: str) -> Finding:
    file, line = directive.where
    shown = line_of(directive)
    if directive.via is not None:  # from a system file: say which, at the user's include line
        shown = f"{line_of(directive.via)} (its {directive.file}:{directive.line}: {line_of(directive)})"
    return Finding(behaviour, (file, line), shown, fix)


def _value(headers: dict[str, Directive], name: str) -> str | None:
    directive = headers.get(name)
    return " ".join(directive.args[1:]) if directive is not None else None


def _has_port(value: str) -> bool:
    return bool(re.search(r":(\d+|\$server_port|\$request_port)\b", value)) or "$http_host" in value


def rule_redirects(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.redirect)
    if location is None:
        return
    headers = proxy_headers(location)
    host, forwarded_host = _value(headers, "host"), _value(headers, "x-forwarded-host")
    source = forwarded_host if forwarded_host is not None else host
    proto = _value(headers, "x-forwarded-proto")
    if site.tls and proto is None:
        yield missing(
            location,
            "proxy_set_header X-Forwarded-Proto $scheme",
            "redirect-scheme",
            "add `proxy_set_header X-Forwarded-Proto $scheme;` in this location",
        )
    elif site.tls and proto not in ("$scheme", "https"):
        yield at(
            headers["x-forwarded-proto"], "redirect-scheme", "`proxy_set_header X-Forwarded-Proto $scheme;`"
        )
    public_port = site.public_https_port if site.tls else site.public_http_port
    default_port = 443 if site.tls else 80
    if source is None:
        yield missing(
            location,
            "proxy_set_header Host",
            "redirect-host",
            "add `proxy_set_header Host $host;` (nginx sends the proxy_pass target's name otherwise)",
        )
        if public_port != default_port:
            yield missing(
                location,
                "proxy_set_header Host",
                "redirect-port",
                f"add `proxy_set_header Host $host:{public_port};`",
            )
        return
    if not any(variable in source for variable in CLIENT_HOST) and site.host not in source:
        yield at(
            headers["x-forwarded-host" if forwarded_host is not None else "host"],
            "redirect-host",
            "send the public name: `$host`",
        )
    # With X-Forwarded-Port set, the app (ProxyFix x_port) takes its port from it, whatever the Host says.
    port_header = _value(headers, "x-forwarded-port")
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
            "redirect-port",
            f"`$host` has no port: send `$host:{public_port}` and `X-Forwarded-Port {public_port}`",
        )


def _port_value_right(value: str, site: Site) -> bool:
    public = site.public_https_port if site.tls else site.public_http_port
    if value.strip() == "$server_port":
        listen = site.tls_port if site.tls else site.http_port
        return listen == public
    return value.strip() == str(public)


def rule_forwarded(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.debug)
    if location is None:
        return
    headers = proxy_headers(location)
    xff = _value(headers, "x-forwarded-for")
    if xff is None:
        for behaviour in ("client-addr", "forged-for"):
            yield missing(
                location,
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for",
                behaviour,
                "add `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`",
            )
    elif "$http_x_forwarded_for" in xff:
        yield at(
            headers["x-forwarded-for"],
            "forged-for",
            "append: `X-Forwarded-For $proxy_add_x_forwarded_for` (the client's value passes through)",
        )
    for behaviour, header, value in (
        ("forged-proto", "x-forwarded-proto", "$scheme"),
        ("forged-host", "x-forwarded-host", "$host"),
        ("forged-port", "x-forwarded-port", "<public port>"),
    ):
        set_to = _value(headers, header)
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


def _reflects_host(location: Directive | None) -> bool:
    if location is None:
        return False
    headers = proxy_headers(location)
    values = [_value(headers, "host"), _value(headers, "x-forwarded-host")]
    return any(v is not None and any(var in v for var in CLIENT_HOST) for v in values)


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
        "unknown-host",
        f"a default server for :{port} that refuses other Hosts: `listen {port} default_server;`"
        + (" `ssl_reject_handshake on;`" if site.tls else " `return 444;`"),
    )


def rule_absolute_form(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.redirect)
    if location is None:
        return
    headers = proxy_headers(location)
    for header in ("host", "x-forwarded-host"):
        if "$http_host" in (_value(headers, header) or ""):
            yield at(
                headers[header],
                "absolute-form-host",
                "use `$host` (the name that matched; plus the port off the default): `$http_host` is the "
                "client's raw header",
            )


def rule_https_redirect(site: Site) -> Iterator[Finding]:
    server = site.http_server
    if not site.tls or server is None:
        return
    returns = [d for d in server.walk() if d.name == "return" and d.args and d.args[0] in REDIRECT_RETURN]
    if not returns:
        location = proxying_location(server, "/")
        if location is not None and location.children("proxy_pass"):
            yield Finding(
                "https-redirect",
                server.where,
                "missing: return 301 https://$host$request_uri",
                "the HTTP server proxies the app in clear: redirect instead",
            )
        return
    want_port = "" if site.public_https_port == 443 else f":{site.public_https_port}"
    fix = f"`return 301 https://$host{want_port}$request_uri;`"
    for directive in returns:
        url = directive.args[1] if len(directive.args) > 1 else ""
        if "$server_name" in url or "$request_uri" not in url or (want_port and want_port not in url):
            yield at(directive, "https-redirect", fix)


def rule_websocket(site: Site) -> Iterator[Finding]:
    """The websocket location(s): the config's own (those that forward Upgrade) when the lab's
    /ws/* requests do not reach them, else where those requests land."""
    if site.probes_miss_the_websocket_location():
        for location in site.websocket_locations():
            yield from _websocket_location(site, location)
    elif (probed := site.location(site.routes.ws)) is not None:
        yield from _websocket_location(site, probed)


def _websocket_location(site: Site, location: Directive) -> Iterator[Finding]:
    headers = proxy_headers(location)
    upgrade, connection = _value(headers, "upgrade"), _value(headers, "connection")
    if upgrade is None or "$http_upgrade" not in upgrade:
        yield missing(
            location,
            "proxy_set_header Upgrade $http_upgrade",
            "ws-upgrade",
            "add `proxy_set_header Upgrade $http_upgrade;` (hop-by-hop: not forwarded unless set)",
        )
    if connection is None or not ("upgrade" in connection.lower() or "$connection_upgrade" in connection):
        yield missing(
            location,
            'proxy_set_header Connection "upgrade"',
            "ws-upgrade",
            'add `proxy_set_header Connection $connection_upgrade;` (or "upgrade")',
        )
    versions = effective(location, "proxy_http_version")
    version = versions[-1].args[0] if versions and versions[-1].args else None
    if version != "1.1" and site.nginx_version < HTTP11_DEFAULT:
        fix = "add `proxy_http_version 1.1;` (nginx speaks HTTP/1.0 upstream before 1.29.7)"
        yield (
            at(versions[-1], "ws-upgrade", fix)
            if versions
            else missing(location, "proxy_http_version 1.1", "ws-upgrade", fix)
        )
    if site.tls and _value(headers, "x-forwarded-proto") is None:
        yield missing(
            location,
            "proxy_set_header X-Forwarded-Proto $scheme",
            "ws-scheme",
            "add `proxy_set_header X-Forwarded-Proto $scheme;` to the websocket location",
        )
    timeouts = effective(location, "proxy_read_timeout")
    read_timeout = seconds(timeouts[-1].args[0]) if timeouts and timeouts[-1].args else DEFAULT_READ_TIMEOUT_S
    if read_timeout < IDLE_S:
        fix = "`proxy_read_timeout 1h;` in the websocket location (or pings more often than it)"
        yield (
            at(timeouts[-1], "ws-idle", fix)
            if timeouts
            else missing(location, "proxy_read_timeout", "ws-idle", fix)
        )


def body_limit_mib(location: Directive) -> float:
    """client_max_body_size in force at ``location`` (nginx's default 1m; 0 means no limit)."""
    limits = effective(location, "client_max_body_size")
    return size_mib(limits[-1].args[0]) if limits and limits[-1].args else 1.0


def rule_request_body(site: Site) -> Iterator[Finding]:
    location = site.location(site.routes.body)
    if location is None:
        return
    headers = proxy_headers(location)
    connection = _value(headers, "connection") or ""
    if "upgrade" in connection.lower() and "$" not in connection:
        yield at(
            headers["connection"],
            "request-body",
            "`proxy_set_header Connection $connection_upgrade;` with `map $http_upgrade $connection_upgrade "
            "{ default upgrade; '' ''; }`: a constant \"upgrade\" makes every request one",
        )


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
            at(limits[-1], "upload-limit", fix)
            if limits
            else missing(server, "client_max_body_size", "upload-limit", fix)
        )


def rule_tls_versions(site: Site) -> Iterator[Finding]:
    server = site.app_server
    if server is None or not site.tls:
        return
    for directive in effective(server, "ssl_protocols"):
        if {"TLSv1", "TLSv1.1", "SSLv3"} & set(directive.args):
            yield at(directive, "tls-versions", "`ssl_protocols TLSv1.2 TLSv1.3;` (RFC 8996)")


def rule_error_format(site: Site, answered: int | None) -> Iterator[Finding]:
    """The error_page that sent nginx's 502 somewhere answering ``answered`` (from the probe)."""
    location = site.location(site.routes.bad_gateway)
    if location is None or answered in (None, 502):
        return
    for directive in effective(location, "error_page"):
        if "502" in directive.args:
            target = directive.args[-1]
            yield at(
                directive, "error-format", f"`{target}` answered {answered}: give it a location that exists"
            )


RULES: tuple[Callable[[Site], Iterator[Finding]], ...] = (
    rule_redirects,
    rule_forwarded,
    rule_unknown_host,
    rule_absolute_form,
    rule_https_redirect,
    rule_websocket,
    rule_request_body,
    rule_upload_limit,
    rule_tls_versions,
)


def findings(site: Site, bad_gateway_answered: int | None = None) -> list[Finding]:
    found = [finding for rule in RULES for finding in rule(site)]
    found.extend(rule_error_format(site, bad_gateway_answered))
    return found
