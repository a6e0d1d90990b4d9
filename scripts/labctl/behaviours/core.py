"""What every behaviour module is made of: a ``Behaviour`` (id, title, hint worded once, severity,
the scenarios that break it, its probe and its static rule), a probe's ``Result``, a rule's
``Finding``, and what probes and rules are given (``Probe`` state, ``Options``, ``Routes``,
``Site``).

A probe measures a deployment through the proxy and yields Results; a rule reads the user's
nginx config (parsed, never run) the way nginx applies it (the proxy_set_header set in force in
the location that proxies: a location's own set replaces every inherited one; the server that
takes an unknown Host; the limits in force where uploads go) and yields Findings: the directive
as written (or "missing: ..." at the block where it belongs), its file and line in the user's
own file, and the fix. `lab check` pairs them with the probes' Results by their Behaviour; a
finding no probe could confirm is shown as static. One probe or rule may judge several
behaviours of its module (one redirect shows scheme, host and port): the ``@probe`` and
``@rule`` decorators say which, and each Result or Finding carries its Behaviour object.

Standard library only, as the doctor is; the config model is imported for its types, and
crossplane only where a config is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from .. import probe as http_probe
from ..diagnose.config import (
    Config,
    Directive,
    line_of,
    proxying_location,
    server_for,
)
from ..endpoints import Endpoint
from ..probe import Reply

OK, BROKEN, NOTE, NOT_PROBED = "ok", "broken", "note", "not probed"
EVIL_HOST = "evil.example"  # RFC 2606: never a real site
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
# Variables a client controls, or that nginx fills from what the client sent.
CLIENT_HOST = ("$host", "$http_host", "$server_name")
# How bad it is when broken (gixy's scale): a forged header believed is worse than a lost port.
HIGH, MEDIUM, LOW = "high", "medium", "low"

ProbeFunction = Callable[["Probe"], Iterator["Result"]]
RuleFunction = Callable[["Site"], Iterator["Finding"]]
F = TypeVar("F", ProbeFunction, RuleFunction)


@dataclass(eq=False)
class Behaviour:
    """One thing a deployment must do; compared by identity (the registry holds each once)."""

    id: str
    title: str  # what holds when it is right (the doctor's first column)
    # The likely cause when broken, in nginx terms (no lab internals: the doctor shows it for
    # anyone's deployment; `lab check` adds the directive and its file:line).
    hint: str
    severity: str
    scenarios: tuple[str, ...] = ()  # the nginx/scenarios/ folders that break it
    # The Routes field whose path the probe requests ("debug", "redirect", ...): where `lab check`
    # must see the config send it to the app, else nginx itself answered what the probe saw.
    route: str | None = None
    # The config's text decides even where the probe saw it hold: what the probe met is this
    # machine's (its OpenSSL refuses TLS 1.0 whatever ssl_protocols says; another's does not).
    config_decides: bool = False
    probe: ProbeFunction | None = field(default=None, repr=False)  # set by @probe
    rule: RuleFunction | None = field(default=None, repr=False)  # set by @rule


def _declarer(attribute: str) -> Callable[..., Callable[[F], F]]:
    """A decorator factory: ``@probe(A, B)`` / ``@rule(A, B)`` make the function A's and B's."""

    def declare(*judged: Behaviour) -> Callable[[F], F]:
        def register(function: F) -> F:
            for behaviour in judged:
                setattr(behaviour, attribute, function)
            return function

        return register

    return declare


probe = _declarer("probe")  # @probe(A, B): the function yields Results for A and B only
rule = _declarer("rule")  # @rule(A, B): the function yields Findings for A and B only


@dataclass(frozen=True)
class Result:
    behaviour: Behaviour
    verdict: str  # ok, broken, note (works, but not as the lab's contract wants), not probed
    seen: str  # what the probe saw, in one line
    # For `lab check`: the status an error page answered with, where the probe saw one that was
    # not what it asked for (error-format), so the explanation can say where it came from.
    status: int | None = None

    @property
    def title(self) -> str:
        return self.behaviour.title

    @property
    def hint(self) -> str:
        """For broken (and note): what to change, its behaviour's; "" otherwise."""
        return self.behaviour.hint if self.verdict in (BROKEN, NOTE) else ""


def result(behaviour: Behaviour, verdict: str, seen: str, status: int | None = None) -> Result:
    return Result(behaviour, verdict, seen, status)


@dataclass(frozen=True)
class Routes:
    """Where the app's routes are: the lab's by default; a real app's given by option."""

    redirect: str | None = "/redirect/external"  # answers with an absolute redirect
    debug: str | None = "/debug/request"  # the lab's stethoscope: what reached the app
    ws: str | None = "/ws/echo"  # a websocket route (it echoes: the idle probe sends a ping anyway)
    ws_info: str | None = "/ws/info"  # the lab's: the scheme the app saw on a websocket
    upload: str | None = "/upload/lab-doctor-probe.bin"  # PUT stores the body and answers its size
    body: str | None = "/landing"  # POST reads the body and answers its size
    bad_gateway: str | None = "/bugs/big-header"  # a route whose answer makes nginx say 502
    socketio: str | None = "/socket.io/"  # where Socket.IO answers (None: not probed)
    stream: str | None = "/stream/events?count=4&interval=0.5"  # Server-Sent Events, one every 0.5 s
    prefix: str | None = "/sub/"  # a path prefix nginx strips before the app (behaviours.prefix)

    @classmethod
    def for_app(
        cls, redirect: str | None, ws: str | None, upload: str | None, stream: str | None = None
    ) -> Routes:
        """A real app's routes (--redirect-path, --ws-url, --upload-url, --stream-url), none of the lab's."""
        return cls(
            redirect=redirect,
            debug=None,
            ws=ws,
            ws_info=None,
            upload=upload,
            body=None,
            bad_gateway=None,
            stream=stream,
            prefix=None,
        )


@dataclass(frozen=True)
class Options:
    routes: Routes = Routes()
    idle_s: float = 0  # hold a websocket idle this long (0: not probed)
    hold_websockets: int = 0  # open up to this many websockets, then a request (0: not probed)
    declared_limit_mib: float | None = None  # the body limit the deployment declares
    declared_header_kib: int | None = None  # the header line / response head the app declares
    # The lab's whole contract (its own stack): nginx's errors as the JSON envelope, the request
    # id. For anyone else's deployment these are notes, not failures.
    lab_contract: bool = False
    # Why HTTP/3 cannot be judged here ('' when it can): `lab check` on an nginx without the
    # module runs the user's config with its quic listens left out.
    http3_unjudged: str = ""
    # `lab check`: the Socket.IO location's proxy_read_timeout, judged against the handshake's pings.
    socketio_read_timeout_s: float | None = None


@dataclass
class Probe:
    endpoint: Endpoint
    options: Options
    # What the app saw of a plain request through the proxy (the lab's /debug/request), when known.
    seen_by_app: dict[str, object] | None = None
    # A small POST got no answer (the app waits for a body that never ends): a bigger one would too.
    body_unanswered: bool = False

    def get(self, path: str, headers: dict[str, str] | None = None, base: str | None = None) -> Reply:
        return http_probe.request(self.endpoint, "GET", path, headers=headers, base=base)


@dataclass(frozen=True)
class Finding:
    behaviour: Behaviour
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
    # The status nginx's 502 came back with when an error_page sent it elsewhere (the probe's).
    bad_gateway_answered: int | None = None

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


def same_url(one: str, other: str) -> bool:
    """Two absolute URLs name the same resource: scheme and host compared as DNS and nginx do
    (case-insensitively: nginx's $host is the Host lower-cased), the rest exactly."""
    a, b = urlsplit(one), urlsplit(other)
    return (a.scheme.lower(), a.netloc.lower(), a.path, a.query) == (
        b.scheme.lower(),
        b.netloc.lower(),
        b.path,
        b.query,
    )


def missing(block: Directive, text: str, behaviour: Behaviour, fix: str) -> Finding:
    return Finding(behaviour, block.where, f"missing: {text}", fix)


def at(directive: Directive, behaviour: Behaviour, fix: str) -> Finding:
    file, line = directive.where
    shown = line_of(directive)
    if directive.via is not None:  # from a system file: say which, at the user's include line
        shown = f"{line_of(directive.via)} (its {directive.file}:{directive.line}: {line_of(directive)})"
    return Finding(behaviour, (file, line), shown, fix)


def header_value(headers: dict[str, Directive], name: str) -> str | None:
    """What a proxy_set_header in force sets ``name`` to (None: not set)."""
    directive = headers.get(name)
    return " ".join(directive.args[1:]) if directive is not None else None


# The variables nginx fills from the peer's address: a geo or map keyed on one of them answers
# one peer (a trusted balancer: set_real_ip_from) otherwise than every other client.
PEER_VARIABLES = {"remote_addr", "realip_remote_addr", "binary_remote_addr"}


def _peer_keyed_defaults(config: Config) -> dict[str, str]:
    """Variable -> its default, for each geo or map keyed (directly or through another such
    variable) on the peer's address."""
    keyed: dict[str, str] = {}
    tables = [d for d in config.root.walk() if d.name in ("geo", "map") and d.args]
    for _ in range(len(tables)):  # a map keyed on a geo's output comes out once that geo has
        for table in tables:
            source, output = ("$remote_addr", table.args[0]) if len(table.args) == 1 else table.args[:2]
            sources = set(re.findall(r"\$\{?(\w+)", source))
            name = output.lstrip("$").strip("{}")
            if name in keyed or not sources & (PEER_VARIABLES | set(keyed)):
                continue
            # A table's entries read as directives: `default $scheme;` is "default" with ["$scheme"].
            default = next((e.args[0] for e in table.block or [] if e.name == "default" and e.args), "")
            keyed[name] = default
    return keyed


def for_any_client(site: Site, value: str | None) -> str | None:
    """``value`` as nginx fills it for any client but a trusted peer: a variable that a geo or map
    keys on the peer's address (``$lab_forwarded_proto``: the balancer's X-Forwarded-Proto from
    127.0.0.2, else $scheme) is that table's default."""
    if value is None or "$" not in value:
        return value
    defaults = _peer_keyed_defaults(site.config)
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), value)


def header_names(view: dict[str, object]) -> set[str]:
    """The request headers the app saw (lower-case names), from the lab's /debug/request."""
    headers = view.get("headers")
    return {str(name).lower() for name in headers} if isinstance(headers, dict) else set()
