"""What a deployment must do, one probe per behaviour, for `make doctor` (any deployment) and
`lab check` (a user's nginx config in front of the lab's app).

Each probe says what it needs. Some need a route of the app (the lab's own, or the user's:
``Routes``): an absolute redirect shows what the app believes about scheme, host and port, the
lab's /debug/request shows what reached it. A probe whose route is absent reports "not probed",
never "broken". The rest need nothing from the app: an unknown Host, an absolute-form request
line with another Host, the HTTP->HTTPS redirect, the body limit (``Expect: 100-continue``: nginx
answers 100 or 413 before any body is sent), a websocket handshake, HTTP/2 and TLS versions,
HTTP/3 (its Alt-Svc, a request over QUIC, the host the app sees there).

Standard library only: the doctor runs before the virtualenv exists. The one exception, HTTP/3's
client (aioquic, labctl.h3), is imported only where .venv provides it.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import ssl
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import probe, wsclient
from .endpoints import Endpoint
from .probe import FORGED_ADDR, MIB, Reply

EVIL_HOST = "evil.example"  # RFC 2606: never a real site
FORGED_PORT = "1"
HANDSHAKE_SEEN_HEADER = "x-lab-handshake-seen"  # the lab app's note on a refused handshake
UPLOAD_SIZES_MIB = (2, 16)
REDIRECT_STATUSES = {301, 302, 303, 307, 308}
OLD_TLS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)  # RFC 8996: deprecated

OK, BROKEN, NOTE, NOT_PROBED = "ok", "broken", "note", "not probed"

# id -> what holds when the behaviour is right (the report's first column).
TITLES = {
    "redirect-scheme": "the app's absolute redirects keep the scheme",
    "redirect-host": "the app's absolute redirects keep the public host",
    "redirect-port": "the app's absolute redirects keep the public port",
    "https-redirect": "plain HTTP redirects to the same host, port, path and query on HTTPS",
    "client-addr": "the app sees the client's address",
    "forged-for": "a forged X-Forwarded-For is not believed",
    "forged-proto": "a forged X-Forwarded-Proto is not believed",
    "forged-host": "a forged X-Forwarded-Host does not reach the app's URLs",
    "forged-port": "a forged X-Forwarded-Port does not reach the app's URLs",
    "forged-forwarded": "a forged Forwarded header does not reach the app's URLs",
    "unknown-host": "an unknown Host is refused, never reflected",
    "absolute-form-host": "an absolute-form request line cannot smuggle another Host",
    "request-id": "the request id nginx logs reaches the app and the client",
    "request-body": "a request body reaches the app and the answer comes back",
    "upload-limit": "uploads of 2 and 16 MiB are accepted, bigger than the limit refused",
    "error-format": "nginx's own errors keep their status (and are the lab's JSON envelope)",
    "ws-upgrade": "a websocket handshake is upgraded (101)",
    "ws-open": "an upgraded websocket stays open and answers",
    "ws-scheme": "the app sees wss behind TLS",
    "ws-idle": "an idle websocket is held",
    "h2": "HTTP/2 is offered (ALPN)",
    "h3-advertised": "HTTP/3 is advertised (Alt-Svc: h3)",
    "h3-answers": "HTTP/3 answers where Alt-Svc says (QUIC over UDP)",
    "h3-host": "over HTTP/3 the app still sees the public host and port",
    "tls-versions": "only TLS 1.2 and 1.3 are accepted",
}

# The likely cause of each broken behaviour, in nginx terms (no lab internals: the doctor shows
# these for anyone's deployment; `lab check` adds the directive and its file:line).
HINTS = {
    "redirect-scheme": "nginx must send `proxy_set_header X-Forwarded-Proto $scheme` and the app trust "
    "one hop of it (Werkzeug's ProxyFix x_proto=1)",
    "redirect-host": "nginx sends the proxy_pass host unless told: `proxy_set_header Host $host` (plus the "
    "port when it is not the scheme's default)",
    "redirect-port": "`Host $host` has no port: behind a non-default port send `$host:<public port>` and "
    "`X-Forwarded-Port <public port>`",
    "https-redirect": "redirect with `return 301 https://$host$request_uri` (add `:<public https port>` "
    "after $host when HTTPS is not on 443)",
    "client-addr": "nginx must send `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`",
    "forged-for": "append, never pass through: `X-Forwarded-For $proxy_add_x_forwarded_for`, and trust "
    "exactly one hop in the app",
    "forged-proto": "set it, so the client's value never passes through: "
    "`proxy_set_header X-Forwarded-Proto $scheme`",
    "forged-host": "set it, so the client's value never passes through: `proxy_set_header X-Forwarded-Host "
    "$host`",
    "forged-port": "set it, so the client's value never passes through: `proxy_set_header X-Forwarded-Port "
    "<public port>`",
    "forged-forwarded": 'clear or set the RFC 7239 header too: `proxy_set_header Forwarded ""`',
    "unknown-host": "a default server that refuses other Hosts (`listen ... default_server;` with "
    "`return 444;`, or `ssl_reject_handshake on;` for TLS)",
    "absolute-form-host": "`$http_host` is the client's raw header: use `$host` (the name that matched), "
    "plus the port when it is not the default",
    "request-id": "`proxy_set_header X-Request-ID $request_id`, and log $request_id",
    "request-body": '`Connection "upgrade"` on every request makes gevent\'s pywsgi hand the app the raw '
    "socket as the body (Werkzeug reads it to the end): send `Connection $connection_upgrade` (a map)",
    "upload-limit": "`client_max_body_size` (default 1m) at the largest upload the app accepts",
    "error-format": "an `error_page` must point at a location that exists; a missing page turns every "
    "502/504 into a 404",
    "ws-upgrade": "a websocket location needs `proxy_http_version 1.1`, "
    "`proxy_set_header Upgrade $http_upgrade` and `proxy_set_header Connection $connection_upgrade`",
    "ws-open": "101 then an immediate close: the app upgraded a path it does not serve as a websocket "
    "(a Flask route without `websocket=True` under gevent-websocket)",
    "ws-scheme": "the websocket location lost X-Forwarded-Proto: a location's own proxy_set_header drops "
    "every inherited one, so repeat the whole set there",
    "ws-idle": "`proxy_read_timeout` on the websocket location above the longest silence (default 60s), or "
    "pings from the app",
    "h2": "`listen 443 ssl http2;` (or `http2 on;` from nginx 1.25.1)",
    "h3-advertised": "browsers use HTTP/3 only once told: `listen 443 quic reuseport;` beside the TCP "
    "listen and `add_header Alt-Svc 'h3=\":443\"; ma=86400' always;` (nginx 1.25+, --with-http_v3_module)",
    "h3-answers": "Alt-Svc promises h3 but no QUIC answer came: the UDP port must be open and published too "
    "(Docker: `127.0.0.1:443:443/udp`), with `listen <port> quic` on it",
    "h3-host": "HTTP/3 has no Host header (only :authority) and nginx leaves `$http_host` empty there: "
    "send `proxy_set_header Host $host:<public port>` (or `$host` on 443), never `$http_host`",
    "tls-versions": "`ssl_protocols TLSv1.2 TLSv1.3;`",
}


@dataclass(frozen=True)
class Result:
    behaviour: str
    verdict: str  # ok, broken, note (works, but not as the lab's contract wants), not probed
    seen: str  # what the probe saw, in one line
    hint: str = ""  # for broken (and note): what to change
    # For `lab check`: the status an error page answered with, where the probe saw one that was
    # not what it asked for (error-format), so the explanation can say where it came from.
    status: int | None = None

    @property
    def title(self) -> str:
        return TITLES[self.behaviour]


def result(behaviour: str, verdict: str, seen: str, status: int | None = None) -> Result:
    hint = HINTS[behaviour] if verdict in (BROKEN, NOTE) else ""
    return Result(behaviour, verdict, seen, hint, status)


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

    @classmethod
    def for_app(cls, redirect: str | None, ws: str | None, upload: str | None) -> Routes:
        """A real app's routes (--redirect-path, --ws-url, --upload-url), none of the lab's."""
        return cls(
            redirect=redirect, debug=None, ws=ws, ws_info=None, upload=upload, body=None, bad_gateway=None
        )


@dataclass(frozen=True)
class Options:
    routes: Routes = Routes()
    idle_s: float = 0  # hold a websocket idle this long (0: not probed)
    declared_limit_mib: float | None = None  # the body limit the deployment declares
    # The lab's whole contract (its own stack): nginx's errors as the JSON envelope, the request
    # id. For anyone else's deployment these are notes, not failures.
    lab_contract: bool = False
    # Why HTTP/3 cannot be judged here ('' when it can): `lab check` on an nginx without the
    # module runs the user's config with its quic listens left out.
    http3_unjudged: str = ""


@dataclass
class Probe:
    endpoint: Endpoint
    options: Options
    # What the app saw of a plain request through the proxy (the lab's /debug/request), when known.
    seen_by_app: dict[str, object] | None = None
    # A small POST got no answer (the app waits for a body that never ends): a bigger one would too.
    body_unanswered: bool = False

    def get(self, path: str, headers: dict[str, str] | None = None, base: str | None = None) -> Reply:
        return probe.request(self.endpoint, "GET", path, headers=headers, base=base)


def _location_parts(location: str, want_scheme: str) -> tuple[str, str, int]:
    """Scheme, host and port of an absolute Location; a port left out counts as the default of
    the scheme it should have had, so a lost scheme is not blamed on the port as well."""
    parts = urlsplit(location)
    return parts.scheme, parts.hostname or "", parts.port or (443 if want_scheme == "https" else 80)


def probe_redirects(p: Probe) -> Iterator[Result]:
    names = ("redirect-scheme", "redirect-host", "redirect-port")
    route = p.options.routes.redirect
    if route is None:
        yield from (result(n, NOT_PROBED, "no route that redirects (--redirect-path)") for n in names)
        return
    reply = p.get(route)
    location = reply.location
    if reply.status not in REDIRECT_STATUSES or not location:
        seen = f"{route} answered {reply.describe()}, not a redirect"
        yield from (result(n, NOT_PROBED, seen) for n in names)
        return
    if not urlsplit(location).scheme:
        yield from (result(n, OK, f"{reply.status} relative Location: {location}") for n in names)
        return
    want_scheme = "https" if p.endpoint.tls else "http"
    scheme, hostname, port = _location_parts(location, want_scheme)
    seen = f"{reply.status} Location: {location}"
    yield result(names[0], OK if scheme == want_scheme else BROKEN, seen)
    yield result(names[1], OK if hostname == p.endpoint.hostname else BROKEN, seen)
    yield result(names[2], OK if port == p.endpoint.port else BROKEN, seen)


def probe_https_redirect(p: Probe) -> Iterator[Result]:
    name = "https-redirect"
    if not p.endpoint.tls:
        yield result(name, NOT_PROBED, "the site has no TLS: nothing to redirect to")
        return
    if p.endpoint.http_url is None:
        yield result(name, NOT_PROBED, "no plain-HTTP entry point known (LAB_HTTP_URL)")
        return
    path = "/lab-probe/redirect?from=http&x=%2F"
    try:
        reply = p.get(path, base=p.endpoint.http_url)
    except OSError as error:
        yield result(name, NOT_PROBED, f"{p.endpoint.http_url}: {error}")
        return
    want = f"https://{p.endpoint.host}{p.endpoint.prefix}{path}"
    if reply.status not in REDIRECT_STATUSES:
        yield result(name, BROKEN, f"HTTP answered {reply.describe()} itself: the site is served in clear")
        return
    verdict = OK if reply.location == want else BROKEN
    seen = f"{reply.status} Location: {reply.location or '(none)'}" + (
        "" if verdict == OK else f" (want {want})"
    )
    yield result(name, verdict, seen)


def _app_view(p: Probe, headers: dict[str, str] | None = None) -> dict[str, object] | None:
    """What the app saw (the lab's debug route), or None when there is no such route."""
    route = p.options.routes.debug
    if route is None:
        return None
    reply = p.get(route, headers=headers)
    seen = reply.json()
    return seen if reply.status == 200 and isinstance(seen, dict) and "remote_addr" in seen else None


def _header_names(view: dict[str, object]) -> set[str]:
    """The request headers the app saw (lower-case names), from the lab's /debug/request."""
    headers = view.get("headers")
    return {str(name).lower() for name in headers} if isinstance(headers, dict) else set()


def _forged_location(p: Probe, headers: dict[str, str]) -> str | None:
    route = p.options.routes.redirect
    if route is None:
        return None
    reply = p.get(route, headers=headers)
    return reply.location if reply.status in REDIRECT_STATUSES and reply.location else None


def probe_forwarded(p: Probe) -> Iterator[Result]:
    """Forged forwarded headers, one at a time: does the app believe any of them?"""
    plain = _app_view(p)
    p.seen_by_app = plain
    if plain is None:
        yield result("client-addr", NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
        yield result("forged-for", NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
    else:
        got_xff = "x-forwarded-for" in _header_names(plain)
        yield result(
            "client-addr",
            OK if got_xff else BROKEN,
            f"the app got {'an' if got_xff else 'no'} X-Forwarded-For; remote_addr {plain['remote_addr']}",
        )
        forged = _app_view(p, {"X-Forwarded-For": FORGED_ADDR}) or {}
        believed = forged.get("remote_addr") == FORGED_ADDR
        yield result(
            "forged-for",
            BROKEN if believed else OK,
            f"X-Forwarded-For: {FORGED_ADDR} -> remote_addr {forged.get('remote_addr')}",
        )
    # Forge the opposite of what the app believes now: a proxy that sets nothing already lets it
    # see http behind TLS, and a forged "http" would change nothing there.
    app_scheme = urlsplit(_forged_location(p, {}) or "").scheme or ("https" if p.endpoint.tls else "http")
    other_scheme = "http" if app_scheme == "https" else "https"
    forgeries: dict[str, tuple[dict[str, str], Callable[[str], bool]]] = {
        "forged-proto": ({"X-Forwarded-Proto": other_scheme}, lambda loc: loc.startswith(other_scheme + ":")),
        "forged-host": ({"X-Forwarded-Host": EVIL_HOST}, lambda loc: EVIL_HOST in urlsplit(loc).netloc),
        "forged-port": ({"X-Forwarded-Port": FORGED_PORT}, lambda loc: urlsplit(loc).port == 1),
        "forged-forwarded": (
            {"Forwarded": f"for={FORGED_ADDR};proto={other_scheme};host={EVIL_HOST}"},
            lambda loc: EVIL_HOST in loc or loc.startswith(f"{other_scheme}://"),
        ),
    }
    for name, (sent, reached_url) in forgeries.items():
        header, value = next(iter(sent.items()))
        location = _forged_location(p, sent)
        if location is None:
            yield result(name, NOT_PROBED, "no route that redirects to observe (--redirect-path)")
            continue
        verdict = BROKEN if urlsplit(location).scheme and reached_url(location) else OK
        yield result(name, verdict, f"{header}: {value} -> Location: {location}")


def _reflects(reply: Reply) -> bool:
    return EVIL_HOST in reply.location or EVIL_HOST.encode() in reply.body


def probe_unknown_host(p: Probe) -> Iterator[Result]:
    name = "unknown-host"
    path = p.options.routes.debug or p.options.routes.redirect or "/"
    try:
        reply = p.get(path, headers={"Host": EVIL_HOST})
    except (ConnectionError, http.client.HTTPException) as error:
        yield result(name, OK, f"Host: {EVIL_HOST}: the connection was closed ({type(error).__name__})")
        return
    except ssl.SSLError as error:
        yield result(name, OK, f"Host: {EVIL_HOST}: TLS refused ({error.reason})")
        return
    if _reflects(reply):
        where = f" in Location: {reply.location}" if EVIL_HOST in reply.location else " in the answer"
        yield result(name, BROKEN, f"Host: {EVIL_HOST} -> {reply.describe()}, reflected{where}")
    else:
        yield result(name, OK, f"Host: {EVIL_HOST} -> {reply.describe()}, not reflected")


def probe_absolute_form(p: Probe) -> Iterator[Result]:
    name = "absolute-form-host"
    path = p.options.routes.redirect or p.options.routes.debug or "/"
    request = (
        f"GET {p.endpoint.url}{path} HTTP/1.1\r\nHost: {EVIL_HOST}\r\nConnection: close\r\n"
        "User-Agent: lab-probe\r\n\r\n"
    ).encode()
    try:
        answer = probe.raw_exchange(p.endpoint, request)
    except OSError as error:
        yield result(name, OK, f"the connection was refused or closed ({type(error).__name__})")
        return
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    reflected = EVIL_HOST.encode() in head or EVIL_HOST.encode() in body
    seen = f"GET {p.endpoint.url}{path} + Host: {EVIL_HOST} -> {status_line}"
    yield result(
        name, BROKEN if reflected else OK, seen + (", and the forged Host came back" if reflected else "")
    )


def probe_request_id(p: Probe) -> Iterator[Result]:
    name = "request-id"
    seen = p.seen_by_app
    if seen is None:
        yield result(name, NOT_PROBED, "needs a route that shows what reached the app (the lab's)")
        return
    got = "x-request-id" in _header_names(seen)
    verdict = OK if got else (BROKEN if p.options.lab_contract else NOTE)
    yield result(name, verdict, f"the app got {'an' if got else 'no'} X-Request-ID")


BODY_TIMEOUT_S = 3.0  # a 1 KiB POST on loopback answers in milliseconds
UPLOAD_TIMEOUT_S = 20.0  # a 2 MiB PUT stored on loopback: well under a second on a loaded box


def probe_request_body(p: Probe) -> Iterator[Result]:
    """A small POST: its answer must come back (a proxy can make the app wait for a body forever)."""
    name, route = "request-body", p.options.routes.body
    if route is None:
        yield result(name, NOT_PROBED, "no route that reads a POST body (the lab's /landing)")
        return
    size = 1024
    try:
        reply = probe.request(
            p.endpoint, "POST", route, body=probe.pattern_body(size), length=size, timeout=BODY_TIMEOUT_S
        )
    except TimeoutError:
        p.body_unanswered = True
        yield result(name, BROKEN, f"1 KiB POST {route}: no answer within {BODY_TIMEOUT_S:g} s")
        return
    if reply.status == 404:
        yield result(name, NOT_PROBED, f"{route} answered 404: no such route")
        return
    answered = reply.json()
    whole = not isinstance(answered, dict) or "size" not in answered or answered["size"] == size
    yield result(name, OK if whole else BROKEN, f"1 KiB POST {route}: {reply.describe()}")


def _expect_continue(p: Probe, path: str, size: int) -> tuple[int, Reply | None]:
    """Announce a body of ``size`` bytes and send none: nginx answers 100 Continue when it would
    take it, 413 at once when it is over client_max_body_size. The 413's page is read whole."""
    request = (
        f"PUT {p.endpoint.prefix}{path} HTTP/1.1\r\nHost: {p.endpoint.host}\r\nContent-Length: {size}\r\n"
        "Expect: 100-continue\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    ).encode()
    with probe.open_socket(p.endpoint) as sock:
        sock.sendall(request)
        sock.settimeout(probe.TIMEOUT)
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


def probe_upload_limit(p: Probe) -> Iterator[Result]:
    name = "upload-limit"
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
        yield result(name, NOT_PROBED, f"PUT with Expect: 100-continue: {error}")
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
    yield result(name, verdict, seen)
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
        yield _error_format("413", refusal, p.options.lab_contract)


def _stored_upload(p: Probe, path: str) -> Iterator[Result]:
    """A real 2 MiB upload through the proxy: stored whole (the app says its size)."""
    size = UPLOAD_SIZES_MIB[0] * MIB
    try:
        reply = probe.request(
            p.endpoint, "PUT", path, body=probe.pattern_body(size), length=size, timeout=UPLOAD_TIMEOUT_S
        )
    except OSError as error:  # a timeout too: the app waiting for a body that has ended
        yield result("upload-limit", BROKEN, f"a 2 MiB PUT {path}: {type(error).__name__}: {error}")
        return
    body = reply.json()
    if reply.status == 404:
        return
    stored = isinstance(body, dict) and body.get("size") == size
    if not stored:
        yield result("upload-limit", BROKEN, f"a 2 MiB PUT {path}: {reply.describe()}, not stored whole")


def _error_format(status: str, reply: Reply, lab_contract: bool) -> Result:
    if probe.is_envelope(reply, int(status)):
        return result("error-format", OK, f"nginx's {status}: the JSON envelope")
    verdict = BROKEN if lab_contract else NOTE
    return result("error-format", verdict, f"nginx's {status} is {reply.describe()}, not the JSON envelope")


def probe_errors(p: Probe) -> Iterator[Result]:
    """nginx's own 502 (a response header bigger than its buffers): still a 502, and its format."""
    route = p.options.routes.bad_gateway
    if route is None or p.seen_by_app is None:
        return  # only the lab's app has a route that makes nginx answer 502
    reply = p.get(route)
    if reply.status == 200:
        seen = f"{route}: the proxy accepted a 32 kB header: no 502 to look at"
        yield result("error-format", NOT_PROBED, seen)
    elif reply.status != 502:
        yield result(
            "error-format",
            BROKEN,
            f"nginx's 502 ({route}) came back as {reply.describe()}: an error_page sent it somewhere that "
            "does not answer",
            status=reply.status,
        )
    else:
        yield _error_format("502", reply, p.options.lab_contract)


# A refused handshake's status -> the scenario that refuses it so, and the pieces that one lacks
# (what the status alone tells, where the app's note on the handshake did not come back).
HANDSHAKE_REFUSALS = {400: "ws-no-upgrade", 402: "ws-http10", 426: "ws-http10", 505: "ws-http10"}
REFUSAL_PIECES = {
    "ws-no-upgrade": (
        "proxy_set_header Upgrade $http_upgrade",
        "proxy_set_header Connection $connection_upgrade",
    ),
    "ws-http10": ("proxy_http_version 1.1",),
}


def missing_pieces(handshake: wsclient.Handshake) -> list[str]:
    """Which parts of the upgrade the proxy dropped, from the status and the app's note on it."""
    seen = handshake.headers.get(HANDSHAKE_SEEN_HEADER, "")
    if seen:
        notes = dict(part.strip().partition("=")[::2] for part in seen.split(";"))
        missing = []
        if notes.get("protocol") != "HTTP/1.1":
            missing.append(f"proxy_http_version 1.1 (the app got {notes.get('protocol')})")
        if notes.get("upgrade", "").lower() != "websocket":
            missing.append("proxy_set_header Upgrade $http_upgrade")
        if "upgrade" not in notes.get("connection", "").lower():
            missing.append("proxy_set_header Connection $connection_upgrade")
        return missing
    return list(REFUSAL_PIECES.get(HANDSHAKE_REFUSALS.get(handshake.status, ""), ()))


def probe_websocket(p: Probe) -> Iterator[Result]:
    route = p.options.routes.ws
    if route is None:
        yield result("ws-upgrade", NOT_PROBED, "no websocket route (--ws-url)")
        return
    try:
        handshake, conn = probe.websocket(p.endpoint, route)
    except OSError as error:
        yield result("ws-upgrade", BROKEN, f"{route}: {error}")
        return
    if conn is None:
        if handshake.status == 404:
            yield result("ws-upgrade", NOT_PROBED, f"{route} answered 404: no such websocket route")
            return
        missing = missing_pieces(handshake)
        seen = f"{route}: handshake answered {handshake.status}" + (
            f"; missing: {', '.join(missing)}" if missing else ""
        )
        yield result("ws-upgrade", BROKEN, seen)
        yield result("ws-open", NOT_PROBED, "no websocket to keep open")
        yield result("ws-idle", NOT_PROBED, "no websocket to hold idle")
        return
    with conn:
        yield result("ws-upgrade", OK, f"{route}: 101, Sec-WebSocket-Accept verified")
        conn.settimeout(probe.TIMEOUT)
        try:
            conn.sock.sendall(wsclient.encode_frame(wsclient.OP_PING, b"lab-probe"))
            opcode, payload = _next_non_data(conn)
        except TimeoutError:
            yield result("ws-open", BROKEN, f"101, then no answer to a ping within {probe.TIMEOUT:g} s")
            return
        except OSError as error:
            yield result("ws-open", BROKEN, f"101, then the connection dropped ({type(error).__name__})")
            return
        if opcode == wsclient.OP_CLOSE:
            yield result("ws-open", BROKEN, f"101, then a close frame {wsclient.close_code(payload)}")
            return
        yield result("ws-open", OK, "101, then a pong to a ping")
        if p.options.idle_s:
            yield _hold_idle(conn, p.options.idle_s)
        else:
            yield result(
                "ws-idle", NOT_PROBED, "not asked (--idle SECONDS, e.g. 65: past nginx's 60s default)"
            )


def _next_non_data(conn: wsclient.WebSocket) -> tuple[int, bytes]:
    """The next pong or close, skipping any data frame the route sends on its own."""
    while True:
        opcode, payload = conn.recv()
        if opcode in (wsclient.OP_PONG, wsclient.OP_CLOSE):
            return opcode, payload


def _hold_idle(conn: wsclient.WebSocket, idle_s: float) -> Result:
    started = time.monotonic()
    conn.settimeout(idle_s + probe.TIMEOUT)
    time.sleep(idle_s)
    try:
        conn.sock.sendall(wsclient.encode_frame(wsclient.OP_PING, b"still there?"))
        opcode, payload = _next_non_data(conn)
    except OSError as error:
        dropped = f"after {idle_s:g} s of silence the connection dropped ({type(error).__name__})"
        return result("ws-idle", BROKEN, dropped)
    if opcode == wsclient.OP_CLOSE:
        return result(
            "ws-idle", BROKEN, f"after {idle_s:g} s of silence: close {wsclient.close_code(payload)}"
        )
    return result("ws-idle", OK, f"held {time.monotonic() - started:.0f} s idle, then a pong")


def probe_ws_scheme(p: Probe) -> Iterator[Result]:
    route = p.options.routes.ws_info
    if route is None:
        return
    try:
        handshake, conn = probe.websocket(p.endpoint, route)
    except OSError as error:
        yield result("ws-scheme", NOT_PROBED, f"{route}: {error}")
        return
    if conn is None:
        yield result("ws-scheme", NOT_PROBED, f"{route}: handshake answered {handshake.status}")
        return
    try:
        with conn:
            conn.settimeout(probe.TIMEOUT)
            opcode, payload = conn.recv()
        message = json.loads(payload) if opcode == wsclient.OP_TEXT else None
    except (OSError, ValueError) as error:  # a drop, a timeout, a message that is not JSON
        yield result("ws-scheme", NOT_PROBED, f"{route}: 101, then {type(error).__name__}: {error}")
        return
    if not isinstance(message, dict):
        yield result("ws-scheme", NOT_PROBED, f"{route}: 101, then no JSON object (opcode {opcode})")
        return
    scheme = message.get("scheme")
    want = "wss" if p.endpoint.tls else "ws"
    yield result("ws-scheme", OK if scheme == want else BROKEN, f'{route} reports "scheme": "{scheme}"')


def probe_tls(p: Probe) -> Iterator[Result]:
    if not p.endpoint.tls:
        return
    address = p.endpoint.address()
    context = p.endpoint.ssl_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(address, timeout=probe.TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=p.endpoint.hostname) as tls,
    ):
        alpn = tls.selected_alpn_protocol()
    yield result("h2", OK if alpn == "h2" else NOTE, f"ALPN chose {alpn or 'nothing'}")
    outcomes = {v.name: _handshake_with(address, p.endpoint.hostname, v) for v in OLD_TLS}
    accepted = [name for name, outcome in outcomes.items() if outcome is True]
    untried = [name for name, outcome in outcomes.items() if outcome is None]
    if accepted:
        yield result("tls-versions", BROKEN, f"accepted {', '.join(accepted)}")
    elif untried:
        seen = f"TLS 1.2+ as far as this machine's OpenSSL can tell ({', '.join(untried)} cannot be offered)"
        yield result("tls-versions", OK, seen)
    else:
        yield result("tls-versions", OK, "TLSv1 and TLSv1.1 refused")


def _handshake_with(address: tuple[str, int], hostname: str, version: ssl.TLSVersion) -> bool | None:
    """True: the server accepted a handshake of exactly ``version``; False: refused; None: this
    machine's OpenSSL cannot even offer it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the protocol version is under test here
    try:
        with warnings.catch_warnings():  # deprecated is the point: this asks for exactly that version
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return None
    try:
        with (
            socket.create_connection(address, timeout=probe.TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=hostname),
        ):
            return True
    except ssl.SSLError as error:
        return None if "NO_PROTOCOLS_AVAILABLE" in str(error) or "no protocols" in str(error) else False
    except OSError:
        return False


def probe_http3(p: Probe) -> Iterator[Result]:
    """HTTP/3: advertised (Alt-Svc on an HTTPS answer), answering (a QUIC handshake and a request
    on the advertised port), and the host the app builds URLs from, the same as over TCP."""
    if not p.endpoint.tls:
        return
    if p.options.http3_unjudged:
        for name in ("h3-advertised", "h3-answers", "h3-host"):
            yield result(name, NOT_PROBED, p.options.http3_unjudged)
        return
    route = p.options.routes.redirect
    tcp = p.get(route or "/")
    port = probe.alt_svc_h3(tcp.headers.get("alt-svc", ""), p.endpoint.port)
    if port is None:
        yield result("h3-advertised", NOTE, f"no h3 in Alt-Svc ({tcp.headers.get('alt-svc') or 'none'})")
        return
    yield result("h3-advertised", OK, f"Alt-Svc: {tcp.headers['alt-svc']}")
    if importlib.util.find_spec("aioquic") is None:
        yield result(
            "h3-answers", NOT_PROBED, "needs aioquic (in .venv: `scripts/lab` uses it once it exists)"
        )
        return
    from . import h3  # aioquic: only in .venv

    try:
        over_h3 = h3.request(p.endpoint, "GET", route or "/", port=port)
    except OSError as error:
        seen = f"UDP {port}: {type(error).__name__}: {error or 'no QUIC handshake'}"
        yield result("h3-answers", BROKEN, seen)
        return
    yield result(
        "h3-answers", OK, f"UDP {port}: GET {route or '/'} over HTTP/3 answered {over_h3.describe()}"
    )
    if route is None or tcp.status not in REDIRECT_STATUSES or not tcp.location:
        yield result("h3-host", NOT_PROBED, "no route that redirects to compare (--redirect-path)")
        return
    tcp_host, h3_host = urlsplit(tcp.location).netloc, urlsplit(over_h3.location).netloc
    seen = f"Location over HTTP/1.1: {tcp.location}; over HTTP/3: {over_h3.location or '(none)'}"
    yield result("h3-host", OK if h3_host == tcp_host else BROKEN, seen)


PROBES: tuple[Callable[[Probe], Iterator[Result]], ...] = (
    probe_redirects,
    probe_https_redirect,
    probe_forwarded,
    probe_unknown_host,
    probe_absolute_form,
    probe_request_id,
    probe_request_body,
    probe_upload_limit,
    probe_errors,
    probe_websocket,
    probe_ws_scheme,
    probe_tls,
    probe_http3,
)


def run(endpoint: Endpoint, options: Options) -> list[Result]:
    """Every probe against ``endpoint``, in order; a probe that cannot reach it raises OSError."""
    state = Probe(endpoint, options)
    return [found for each in PROBES for found in each(state)]
