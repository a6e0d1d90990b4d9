"""Every setting of the lab, declared once: its name, its default and why it exists.

The way gunicorn's ``config.py`` declares a ``Setting``: everything else is derived from these
declarations. The app reads its own (group "app") through ``AppSettings``, typed by each
declaration (``settings[FIX_PROXY]`` is a bool); ``public=True`` puts one in ``/debug/settings``;
``gunicorn="name"`` makes one the gunicorn setting of that name (``gunicorn.conf.py`` takes them
all from ``gunicorn_settings()``). The lab's tools (``scripts/labctl``) and the settings table
of docs/SETTINGS.md (``scripts/lab docs``) read them here; ``compose.yaml``'s
``${NAME:-default}`` fallbacks are checked against them by a unit test. A new setting is its
declaration, nothing else. The container limits' figures come from the capacity model
(``capacity.py``).

Standard library only: ``gunicorn.conf.py`` imports this in gunicorn's master, before any worker
has patched anything with gevent, and ``scripts/lab`` imports it before the virtualenv exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar, cast
from urllib.parse import urlsplit

import capacity
import cgrouplimits
from capacity import byte_size, cpu_cores

T = TypeVar("T")


def flag(raw: str) -> bool:
    """1/true/yes/on are on; anything else is off (an empty value means the default)."""
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def count(raw: str) -> int:
    """A whole number of 1 or more."""
    value = int(raw)
    if value < 1:
        raise ValueError(f"want 1 or more, not {value}")
    return value


def seconds(raw: str) -> float:
    """A duration as Compose writes one: ``15s``, ``500ms``, ``1m``, or plain seconds."""
    text = raw.strip()
    for suffix, scale in (("ms", 0.001), ("s", 1.0), ("m", 60.0)):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * scale
    return float(text)


def workers(raw: str) -> int:
    """``auto``: one worker per core, at least 2; else a count of 1 or more. The cores are the
    ones the process may keep busy: in a container with a CPU quota (compose.yaml's
    LAB_APP_CPUS), as many as the quota allows, not every core of the host."""
    if raw.strip().lower() == "auto":
        return max(2, cgrouplimits.cores(os.cpu_count() or 1))
    try:
        return count(raw)
    except ValueError:
        raise ValueError(f"want 'auto' or a count of 1 or more, not {raw!r}") from None


BROKER_SCHEMES = ("redis", "rediss", "unix")


def broker_url(raw: str) -> str:
    """A Redis URL as redis-py reads it: redis://host[:port][/db], rediss://..., unix:///path.

    Checked here, in gunicorn's master, so that a typo stops the start with one line instead of
    every worker failing to boot (or chat failing later, for reasons only the log tells)."""
    url = raw.strip()
    parts = urlsplit(url)
    if parts.scheme not in BROKER_SCHEMES:
        raise ValueError(f"{url!r}: want {', '.join(s + '://' for s in BROKER_SCHEMES)}")
    if parts.scheme == "unix":
        if parts.netloc or not parts.path.startswith("/"):
            raise ValueError(f"{url!r}: want unix:///absolute/path/to/redis.sock")
        return url
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host (redis://host:6379/0)")
    _ = parts.port  # raises ValueError on a port that is not a number in range
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ValueError(f"{url!r}: the path is the database number (redis://host:6379/0)")
    return url


def addresses(raw: str) -> list[str]:
    """Listen addresses, comma-separated: ``0.0.0.0:8000,unix:/run/app.sock``."""
    return [part.strip() for part in raw.split(",") if part.strip()]


def url_path(raw: str) -> str:
    """A URL path, as /path/ (Socket.IO's own way: a leading and a trailing slash)."""
    if not raw.startswith("/") or any(c in raw for c in "?# "):
        raise ValueError(f"{raw!r} is not a path such as /socket.io/")
    return raw.rstrip("/") + "/"


def optional(raw: str) -> str | None:
    """A string, or None when empty (gunicorn's way of saying "not set")."""
    return raw or None


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    default: str  # as it is written in the environment ("" = unset)
    parse: Callable[[str], T]
    why: str  # one line for the settings table: what it does, which bug it keeps away
    group: str  # its table in docs/SETTINGS.md: one of GROUPS
    field: str = ""  # the app's name for it (AppSettings, /debug/settings); "": the name less LAB_
    public: bool = False  # /debug/settings shows it (never a path or an address)
    gunicorn: str = ""  # the gunicorn setting it is (gunicorn.conf.py)

    @property
    def field_name(self) -> str:
        return self.field or self.name.removeprefix("LAB_").lower()

    def is_set(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether the environment names it at all (set empty too: an explicit "the default",
        where a tool would otherwise take what the running stack was started with)."""
        return self.name in (os.environ if environ is None else environ)

    def value(self, environ: Mapping[str, str] | None = None) -> T:
        """The value from the environment; the default when unset or empty. A value that does
        not parse raises ValueError naming the setting."""
        raw = (os.environ if environ is None else environ).get(self.name, "").strip()
        try:
            return self.parse(raw or self.default)
        except ValueError as error:
            raise ValueError(f"{self.name}: {error}") from None


# The stack: where it listens and what it runs.
HTTPS_PORT = Setting(
    "LAB_HTTPS_PORT", "8443", int, "public HTTPS port; nginx listens on the same port inside", "stack"
)
HTTP_PORT = Setting("LAB_HTTP_PORT", "8080", int, "public HTTP port: only redirects to HTTPS", "stack")
APP_PORT = Setting("LAB_APP_PORT", "8000", int, "gunicorn's loopback port in native mode", "stack")
# The balancer in front of the lab's nginx (`make balancer-up`; compose: profile "balancer").
BALANCER_PORT = Setting(
    "LAB_BALANCER_PORT", "9443", int, "the balancer's public HTTPS port (TLS ends there)", "stack"
)
BALANCER_HTTP_PORT = Setting(
    "LAB_BALANCER_HTTP_PORT", "9080", int, "the balancer's public HTTP port: only redirects to HTTPS", "stack"
)


def port_or_auto(raw: str) -> int:
    """A port number, or ``auto`` (0): derived by whoever reads it."""
    return 0 if raw.strip().lower() == "auto" else int(raw)


BEHIND_BALANCER_PORT = Setting(
    "LAB_BEHIND_BALANCER_PORT",
    "auto",
    port_or_auto,
    "the lab nginx's plain-HTTP port on 127.0.0.1 for the balancer alone, never published; auto: "
    "LAB_HTTPS_PORT + 2 natively (stacks with their own ports never share it), 8081 in compose",
    "stack",
)


def behind_balancer_port() -> int:
    """LAB_BEHIND_BALANCER_PORT as a native stack listens on it (``auto``: LAB_HTTPS_PORT + 2)."""
    return BEHIND_BALANCER_PORT.value() or HTTPS_PORT.value() + 2


SCENARIO = Setting(
    "LAB_SCENARIO", "", str, "a folder of nginx/scenarios/ to run instead of the baseline", "stack"
)
NGINX_SRC = Setting(
    "LAB_NGINX_SRC",
    "",
    str,
    "the nginx/ directory rendered natively (default: the checkout's; tests: a copy)",
    "stack",
)
# Where the tools and the suites point (any deployment, not only this checkout's).
URL = Setting("LAB_URL", "", str, "the HTTPS URL probed (default https://localhost:$LAB_HTTPS_PORT)", "stack")
CA = Setting("LAB_CA", "", str, "the CA that clients verify TLS against (default .lab/certs/ca.pem)", "stack")
HTTP_URL = Setting(
    "LAB_HTTP_URL", "", str, "the plain-HTTP entry point (default: LAB_URL's host on $LAB_HTTP_PORT)", "stack"
)

# The doctor's routes of a real app (`make doctor` probes the lab's own routes by default).
DOCTOR_REDIRECT_PATH = Setting(
    "LAB_DOCTOR_REDIRECT_PATH", "", str, "a route of your app that answers with an absolute redirect", "tools"
)
DOCTOR_WS_URL = Setting(
    "LAB_DOCTOR_WS_URL", "", str, "a websocket route of your app, for the doctor", "tools"
)
DOCTOR_UPLOAD_URL = Setting(
    "LAB_DOCTOR_UPLOAD_URL", "", str, "a route of your app that stores a PUT body, for the doctor", "tools"
)
DOCTOR_SOCKETIO_PATH = Setting(
    "LAB_DOCTOR_SOCKETIO_PATH",
    "/socket.io/",
    str,
    "where your app answers Socket.IO, for the doctor",
    "tools",
)
DOCTOR_STREAM_URL = Setting(
    "LAB_DOCTOR_STREAM_URL", "", str, "a Server-Sent Events route of your app, for the doctor", "tools"
)
DOCTOR_IDLE_S = Setting(
    "LAB_DOCTOR_IDLE_S", "0", float, "hold a websocket idle this long (65: past nginx's 60s default)", "tools"
)

# The app (AppSettings, below; public=True: /debug/settings shows it). Each LAB_FIX_* is a fix the
# baseline applies; 0 brings its bug back.
MAX_UPLOAD_MB = Setting(
    "LAB_MAX_UPLOAD_MB",
    "4096",
    int,
    "upload limit in MiB, the same at nginx (client_max_body_size) and in the app",
    "app",
    public=True,
)
UPLOAD_BODY_S = Setting(
    "LAB_UPLOAD_BODY_S",
    "600",
    seconds,
    "the whole of one request's body (an upload, a form, JSON: every route, labapp.body), however it "
    "trickles (nginx's client_body_timeout is per read: a byte every 59 s held a worker's connection "
    "for ever); past it 408, nothing stored",
    "app",
    public=True,
)
VERDICT_FILE = Setting(
    "LAB_VERDICT_FILE",
    "",
    str,
    "the doctor's verdict on the running stack, written by `make reload` / `make watch` and shown on the "
    "lab page from /lab/verdict (native mode: .lab/run/verdict.json; empty: the page says there is none)",
    "app",
)
MAX_HEADER_KIB = Setting(
    "LAB_MAX_HEADER_KIB",
    "32",
    int,
    "largest request header line and response head in KiB: nginx's large_client_header_buffers and "
    "proxy_buffer_size, the app's own bound on what it sends (defaults: 8k in, 4k out; 400 and 502)",
    "app",
    public=True,
)
UPLOAD_DIR = Setting(
    "LAB_UPLOAD_DIR", "/srv/uploads", Path, "where uploads land (native mode: .lab/uploads)", "app"
)
# 16 KiB suits a local page cache: the kernel's copy is most of an upload's cost, cheaper in small
# pieces on the lab's VMs (docs/BENCHMARKS.md, "Upload"). Through FUSE each os.write is a request
# (on GlusterFS, to three replicas): compose.swarm-shared.yaml sets more there (docs/SCALING.md).
UPLOAD_WRITE_KIB = Setting(
    "LAB_UPLOAD_WRITE_KIB",
    "16",
    count,
    "largest os.write of an upload in KiB: small for a local page cache, larger on a FUSE mount "
    "(GlusterFS), where each write is a request",
    "app",
    public=True,
)
# An upload in flight is a temp file in UPLOAD_DIR named so (labapp.storage), renamed once whole.
TEMP_PREFIX = ".partial-"


def temp_prefix(host: str, pid: int) -> str:
    """The temp-file prefix of worker ``pid`` on ``host``: here, beside the setting, because
    gunicorn's master removes a dead worker's files (gunicornhooks) and must not import the app
    (gevent).

    The host as well as the pid: app replicas share the uploads volume, and the workers of
    every container have the same few pids (each container's gunicorn master is pid 1)."""
    return f"{TEMP_PREFIX}{host}-{pid}-"


MAX_FORM_MEMORY_MB = Setting(
    "LAB_MAX_FORM_MEMORY_MB",
    "16",
    int,
    "MAX_FORM_MEMORY_SIZE for non-file form fields, in MiB",
    "app",
    public=True,
)
FIX_PROXY = Setting(
    "LAB_FIX_PROXY",
    "1",
    flag,
    "Werkzeug ProxyFix for exactly one hop: gevent-websocket's worker ignores forwarded_allow_ips",
    "app",
    public=True,
)
FIX_DRAIN_BODY = Setting(
    "LAB_FIX_DRAIN_BODY",
    "1",
    flag,
    "read a body the view left unread (else RST, nginx writev() failed (104), client 502)",
    "app",
    public=True,
)
FIX_UPGRADE_INPUT = Setting(
    "LAB_FIX_UPGRADE_INPUT",
    "1",
    flag,
    "bound the body of a plain request saying Connection: upgrade (gevent + Werkzeug read it to EOF: a hang)",
    "app",
    public=True,
)
FIX_JSON_ERRORS = Setting(
    "LAB_FIX_JSON_ERRORS",
    "1",
    flag,
    "the JSON error envelope for every error (off: HTML pages)",
    "app",
    public=True,
)
FIX_FORM_MEMORY = Setting(
    "LAB_FIX_FORM_MEMORY",
    "1",
    flag,
    "raise MAX_FORM_MEMORY_SIZE to LAB_MAX_FORM_MEMORY_MB (off: Werkzeug's 500 kB, 413)",
    "app",
    public=True,
)
WS_ROUTE_FLAG = Setting(
    "LAB_WS_ROUTE_FLAG",
    "1",
    flag,
    "declare the /ws/* routes with websocket=True (off: 101 then an immediate close)",
    "app",
    public=True,
)
WS_ANY_PATH = Setting(
    "LAB_WS_ANY_PATH",
    "0",
    flag,
    "lab check only: a websocket handshake on any other path is upgraded to an echo (first message: what "
    "/ws/info sends), so a config's own websocket locations (/socket.io, /api/live/) are probed",
    "app",
)
FIX_WS_UPGRADE = Setting(
    "LAB_FIX_WS_UPGRADE",
    "1",
    flag,
    "upgrade only a websocket route's handshake (stock gevent-websocket: 101 for any path, then a close)",
    "app",
    public=True,
)
FIX_WS_READ = Setting(
    "LAB_FIX_WS_READ",
    "1",
    flag,
    "read websocket messages at C speed in pieces, yielding (stock gevent-websocket: per-byte "
    "Python, no message cap, stalls the worker)",
    "app",
)
FIX_WS_CLOSE_CODES = Setting(
    "LAB_FIX_WS_CLOSE_CODES",
    "1",
    flag,
    "accept the close codes RFC 6455 and IANA allow (stock: 1012-1014 refused, 5000+ echoed)",
    "app",
)
FIX_SOCKETIO_SEND = Setting(
    "LAB_FIX_SOCKETIO_SEND",
    "1",
    flag,
    "Engine.IO websocket sessions send each packet at once, a broadcast's frame built once, pings "
    "on a timer (stock python-engineio: a writer and a pinger greenlet parked per client)",
    "app",
)
WS_DEFLATE = Setting(
    "LAB_WS_DEFLATE",
    "0",
    flag,
    "permessage-deflate (RFC 7692) for websocket clients that offer it: less to send, a zlib "
    "compressor and decompressor (~300 KiB) per connection that uses it",
    "app",
)
X_ACCEL = Setting(
    "LAB_X_ACCEL",
    "1",
    flag,
    "/files/<name> answers with X-Accel-Redirect for nginx to serve",
    "app",
    public=True,
)
WS_MAX_MESSAGE = Setting(
    "LAB_WS_MAX_MESSAGE",
    str(16 * 1024 * 1024),
    int,
    "largest websocket message in bytes (close 1009): gevent-websocket reads any length into memory "
    "(checked by the reader of LAB_FIX_WS_READ)",
    "app",
    field="ws_max_message_bytes",
    public=True,
)
WS_SEND_TIMEOUT_S = Setting(
    "LAB_WS_SEND_TIMEOUT_S",
    "5",
    seconds,
    "a websocket client must take each message within this, else close 1008 (a client that never "
    "read its 16 MiB echo pinned 48 MiB of the worker for as long as it stayed)",
    "app",
    public=True,
)
WS_SEND_MAX_BYTES = Setting(
    "LAB_WS_SEND_MAX_BYTES",
    WS_MAX_MESSAGE.default,
    int,
    "largest websocket message the app sends and holds unsent for one client (close 1009 beyond)",
    "app",
    public=True,
)
FIX_BROKER = Setting(
    "LAB_FIX_BROKER",
    "1",
    flag,
    "chat through Redis pub/sub (off: each worker process has its own room, chat-split-brain)",
    "app",
    public=True,
)
BROKER_URL = Setting(
    "LAB_BROKER_URL",
    "redis://redis:6379/0",
    broker_url,
    "the chat's Redis (compose's redis service; native mode: .lab/run/redis.sock)",
    "app",
)
SELF_URL = Setting(
    "LAB_SELF_URL",
    "",
    str,
    "the lab's own HTTPS URL as the app reaches it, for /debug/outbound (default "
    "https://localhost:$LAB_HTTPS_PORT; compose: nginx by its service name)",
    "app",
)
SELF_CA = Setting(
    "LAB_SELF_CA",
    "/lab/certs/ca.pem",
    Path,
    "the CA the app verifies its outbound HTTPS against (native mode: .lab/certs/ca.pem)",
    "app",
)
FIX_CPU_OFFLOAD = Setting(
    "LAB_FIX_CPU_OFFLOAD",
    "1",
    flag,
    "/cpu's work in gevent's threadpool (off: inline, the worker's loop stalls: event-loop-blocked)",
    "app",
    public=True,
)
GEVENT_MONITOR = Setting(
    "LAB_GEVENT_MONITOR",
    "0",
    flag,
    "gevent's monitor thread: the app's log names the function that held the loop past the time below",
    "app",
)
GEVENT_MAX_BLOCKING_S = Setting(
    "LAB_GEVENT_MAX_BLOCKING_S",
    "0.1",
    seconds,
    "gevent's max_blocking_time under LAB_GEVENT_MONITOR=1: a loop held longer is reported",
    "app",
)
SCENARIOS_DIR = Setting(
    "LAB_SCENARIOS_DIR", "/lab/scenarios", Path, "where gunicorn.conf.py finds a scenario's app.env", "app"
)
# Socket.IO (labapp/realtime.py, labapp/sioslots.py; docs/SOCKETIO.md).
SOCKETIO_PATH = Setting(
    "LAB_SOCKETIO_PATH",
    "/socket.io/",
    url_path,
    "where the app answers Socket.IO; `lab check` sets the config's own Socket.IO path, so its probes "
    "meet the app there (nginx's snippets serve /socket.io/)",
    "app",
)
SOCKETIO_PORT = Setting(
    "LAB_SOCKETIO_PORT",
    "8001",
    int,
    "each gunicorn worker also serves /socket.io/ on a port of its own, from this one up (one per "
    "worker): nginx hashes a session's cookie to one of them, so its polls reach the process holding it",
    "app",
)
SOCKETIO_PING_INTERVAL = Setting(
    "LAB_SOCKETIO_PING_INTERVAL",
    "25",
    int,
    "Engine.IO pingInterval in seconds; with pingTimeout below the /socket.io/ proxy_read_timeout "
    "(socketio-ping-timeout)",
    "app",
    public=True,
)
SOCKETIO_PING_TIMEOUT = Setting(
    "LAB_SOCKETIO_PING_TIMEOUT",
    "20",
    int,
    "Engine.IO pingTimeout in seconds (see the interval)",
    "app",
    public=True,
)
SOCKETIO_MAX_MESSAGE = Setting(
    "LAB_SOCKETIO_MAX_MESSAGE",
    str(1024 * 1024),
    int,
    "largest Engine.IO packet or poll body in bytes: a client over it is disconnected, nobody else",
    "app",
    field="socketio_max_message_bytes",
    public=True,
)

# gunicorn (gunicorn.conf.py).
GUNICORN_BIND = Setting(
    "GUNICORN_BIND", "0.0.0.0:8000", addresses, "gunicorn's listen address(es)", "gunicorn", gunicorn="bind"
)
GUNICORN_WORKERS = Setting(
    "GUNICORN_WORKERS",
    "auto",
    workers,
    "worker processes; auto: one per core, at least 2 (a worker uses one core; a second one shows "
    "any state kept in one process, as chat-split-brain does)",
    "gunicorn",
    gunicorn="workers",
)
GUNICORN_WORKER_CLASS = Setting(
    "GUNICORN_WORKER_CLASS",
    "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
    str,
    "gevent-websocket's worker: websockets and thousands of idle connections per process",
    "gunicorn",
    gunicorn="worker_class",
)
GUNICORN_PRELOAD = Setting(
    "GUNICORN_PRELOAD",
    "0",
    flag,
    "load the app in the master before forking (on: it imports requests/ssl before the worker's "
    "gevent patches them, MonkeyPatchWarning, outbound HTTPS fails: patch-order)",
    "gunicorn",
    gunicorn="preload_app",
)
GUNICORN_WORKER_CONNECTIONS = Setting(
    "GUNICORN_WORKER_CONNECTIONS",
    "10000",
    int,
    "connections one async worker accepts",
    "gunicorn",
    gunicorn="worker_connections",
)
GUNICORN_TIMEOUT = Setting(
    "GUNICORN_TIMEOUT",
    "30",
    int,
    "worker heartbeat deadline (async workers: not a request timeout)",
    "gunicorn",
    gunicorn="timeout",
)
# A graceful stop (SIGTERM: `make deploy`, `docker compose stop`; HUP's old workers) keeps three
# promises, each longer than the one before: the longest request it lets finish, gunicorn's
# graceful_timeout (then it cuts what is left), and Compose's stop_grace_period (then Docker
# SIGKILLs). gunicorn.conf.py refuses a graceful_timeout at or below the first; compose.yaml's
# LAB_APP_STOP_GRACE_PERIOD stays above the second (tests/unit/test_settings_drift.py).
LONGEST_REQUEST_S = Setting(
    "LAB_LONGEST_REQUEST_S",
    "2",
    seconds,
    "the longest request a graceful stop or `make deploy` promises to finish (graceful_timeout is above)",
    "gunicorn",
)
GUNICORN_GRACEFUL_TIMEOUT = Setting(
    "GUNICORN_GRACEFUL_TIMEOUT",
    "3",
    int,
    "seconds in-flight requests get after SIGTERM/HUP, then they are cut; above LAB_LONGEST_REQUEST_S",
    "gunicorn",
    gunicorn="graceful_timeout",
)
GUNICORN_KEEPALIVE = Setting(
    "GUNICORN_KEEPALIVE",
    "75",
    int,
    "idle keep-alive seconds: above nginx's upstream keepalive_timeout, so nginx closes first",
    "gunicorn",
    gunicorn="keepalive",
)
GUNICORN_LOGLEVEL = Setting(
    "GUNICORN_LOGLEVEL", "info", str, "gunicorn's own log level", "gunicorn", gunicorn="loglevel"
)
GUNICORN_PIDFILE = Setting(
    "GUNICORN_PIDFILE",
    "",
    optional,
    "the master's pid file (native mode sets it)",
    "gunicorn",
    gunicorn="pidfile",
)
RESTART_ON_LIMIT = Setting(
    "LAB_RESTART_ON_LIMIT",
    "0",
    flag,
    "stop gunicorn gracefully (exit 75) when the container's cgroup says it hit its memory or pids "
    "limit, for the engine to restart it (compose sets 1; natively the cgroup is the host's)",
    "gunicorn",
)
GUNICORN_FORWARDED_ALLOW_IPS = Setting(
    "GUNICORN_FORWARDED_ALLOW_IPS",
    "127.0.0.1",
    str,
    "who may send X-Forwarded-* to the sync/gevent workers of some scenarios",
    "gunicorn",
    gunicorn="forwarded_allow_ips",
)

# nginx.
HSTS_MAX_AGE = Setting(
    "LAB_HSTS_MAX_AGE",
    "0",
    int,
    "Strict-Transport-Security max-age; 0 sends none (a pinned localhost breaks other projects)",
    "nginx",
)
# Per client address (nginx's limit_conn / limit_req, snippets/*-limits.conf; 429 JSON beyond).
# Everyone behind one NAT (an office, a campus, a carrier's CGNAT) is one address: raise these
# there (docs/RELIABILITY.md, "Per-client limits").
LIMIT_CONN_UPLOAD = Setting(
    "LAB_LIMIT_CONN_UPLOAD",
    "64",
    count,
    "uploads in flight at once from one client address (300 trickling from one client pinned the "
    "app's memory before uploads were read as they arrive; 48 at once is tests/compose's load)",
    "nginx",
)
LIMIT_CONN_WS = Setting(
    "LAB_LIMIT_CONN_WS",
    "1024",
    count,
    "open websockets at once from one client address (tests/compose opens 600 from one)",
    "nginx",
)
LIMIT_WS_HANDSHAKES = Setting(
    "LAB_LIMIT_WS_HANDSHAKES",
    "100",
    count,
    "websocket handshakes a second from one client address, after a burst of ten times that "
    "(a reconnect storm of one client queues no work in the app)",
    "nginx",
)
KEEPALIVE_REQUESTS = Setting(
    "LAB_KEEPALIVE_REQUESTS",
    "1000",
    count,
    "requests over one client connection (HTTP/1.1 keep-alive, HTTP/2) before nginx closes it, freeing "
    "what the connection allocated (nginx's default); clients reconnect, h2load does not (make bench)",
    "nginx",
)
# What nginx-ctl.sh renders from these declarations (scripts/labctl/nginx.py, compose.yaml).
CLIENT_LIMITS = (LIMIT_CONN_UPLOAD, LIMIT_CONN_WS, LIMIT_WS_HANDSHAKES, KEEPALIVE_REQUESTS)

# Docker Compose.
APP_REPLICAS = Setting(
    "LAB_APP_REPLICAS",
    "1",
    count,
    "app containers behind the one nginx (`make up` scales the app service; nginx finds them by DNS)",
    "compose",
)
APP_STOP_GRACE_PERIOD = Setting(
    "LAB_APP_STOP_GRACE_PERIOD",
    "15s",
    seconds,
    "Docker's wait from SIGTERM to SIGKILL of an app container, above graceful_timeout (grace-period-kill)",
    "compose",
)
FIX_ROLLING_DEPLOY = Setting(
    "LAB_FIX_ROLLING_DEPLOY",
    "1",
    flag,
    "`make deploy` starts new replicas, then stops the old (off: recreate in place, deploy-drops-requests)",
    "compose",
)
PYTHON_IMAGE = Setting("LAB_PYTHON_IMAGE", "python:3.13-slim-trixie", str, "the app image's base", "compose")
NGINX_IMAGE = Setting(
    "LAB_NGINX_IMAGE", "nginx:1.30-trixie", str, "nginx's image (and the one-shot certs service's)", "compose"
)
REDIS_IMAGE = Setting(
    "LAB_REDIS_IMAGE", "redis:8-trixie", str, "the chat broker's image (the redis service)", "compose"
)
WHEELHOUSE = Setting(
    "LAB_WHEELHOUSE", "", str, "a wheel directory of services/app to install from (offline builds)", "compose"
)
APP_IMAGE = Setting(
    "LAB_APP_IMAGE", "proxylab-app:latest", str, "the name the app image is built as", "compose"
)
OFFLINE = Setting(
    "LAB_OFFLINE", "1", flag, "0: ignore the stand-in images of `make offline-images`", "compose"
)
DEBIAN_MIRROR = Setting(
    "LAB_DEBIAN_MIRROR", "", str, "the mirror `make offline-images` debootstraps from", "compose"
)

# Container limits: compose.yaml's deploy.resources.limits, per container. Each default is what
# the container holds at the lab's own caps, from the capacity model (capacity.py).
_APP_CORES = "2"
_APP_MEMORY = capacity.app_memory(
    _APP_CORES, GUNICORN_WORKER_CONNECTIONS.default, WS_MAX_MESSAGE.default, WS_SEND_MAX_BYTES.default
)
_APP_PIDS = capacity.app_pids(_APP_CORES)
_NGINX_CORES = "2"
_NGINX_MEMORY = capacity.nginx_memory(_NGINX_CORES)
_NGINX_PIDS = capacity.nginx_pids(_NGINX_CORES)
_REDIS_MEMORY = capacity.redis_memory()
_REDIS_PIDS = capacity.redis_pids()

APP_CPUS = Setting(
    "LAB_APP_CPUS",
    _APP_CORES,
    cpu_cores,
    "cores one app replica may use; GUNICORN_WORKERS=auto runs one worker per core of it (at least 2)",
    "limits",
)
APP_MEMORY = Setting(
    "LAB_APP_MEMORY",
    _APP_MEMORY.default,
    byte_size,
    _APP_MEMORY.why,
    "limits",
)
APP_PIDS = Setting(
    "LAB_APP_PIDS",
    _APP_PIDS.default,
    count,
    _APP_PIDS.why,
    "limits",
)
NGINX_CPUS = Setting(
    "LAB_NGINX_CPUS",
    _NGINX_CORES,
    cpu_cores,
    "cores nginx may use; it runs one worker per core of it (worker_processes, nginx-ctl.sh)",
    "limits",
)
NGINX_MEMORY = Setting(
    "LAB_NGINX_MEMORY",
    _NGINX_MEMORY.default,
    byte_size,
    _NGINX_MEMORY.why,
    "limits",
)
NGINX_PIDS = Setting(
    "LAB_NGINX_PIDS",
    _NGINX_PIDS.default,
    count,
    _NGINX_PIDS.why,
    "limits",
)
REDIS_CPUS = Setting(
    "LAB_REDIS_CPUS", "1", cpu_cores, "cores redis may use: one event loop does its work", "limits"
)
REDIS_MEMORY = Setting(
    "LAB_REDIS_MEMORY",
    _REDIS_MEMORY.default,
    byte_size,
    _REDIS_MEMORY.why,
    "limits",
)
REDIS_PIDS = Setting(
    "LAB_REDIS_PIDS",
    _REDIS_PIDS.default,
    count,
    _REDIS_PIDS.why,
    "limits",
)

# Docker Swarm (`make swarm-up`: compose.swarm.yaml over compose.yaml).
SWARM_REPLICAS = Setting(
    "LAB_SWARM_REPLICAS",
    "3",
    count,
    "app tasks of the swarm stack: a start-first update replaces one while the others serve",
    "swarm",
)
REGISTRY = Setting(
    "LAB_REGISTRY",
    "",
    str,
    "a registry every swarm node pulls the app image from (swarm-up pushes it); empty: one node",
    "swarm",
)
SWARM_NODES = Setting(
    "LAB_SWARM_NODES",
    "1",
    count,
    "Swarm nodes swarm-up runs: 1 is this engine; more are Docker engines in containers (docs/SCALING.md)",
    "swarm",
)
SWARM_SHARED_UPLOADS = Setting(
    "LAB_SWARM_SHARED_UPLOADS",
    "1",
    flag,
    "several swarm nodes: uploads on GlusterFS, on every node; 0: one volume per node (uploads-node-local)",
    "swarm",
)
SWARM_REGISTRY = Setting(
    "LAB_SWARM_REGISTRY",
    "1",
    flag,
    "several swarm nodes: the app image pushed to their registry; 0: on the manager only (registry-missing)",
    "swarm",
)
NODE_NAME = Setting(
    "LAB_NODE_NAME",
    "",
    str,
    "the Swarm node running this app task (compose.swarm.yaml: {{.Node.Hostname}}), in served_by",
    "swarm",
)
SWARM_ADVERTISE_ADDR = Setting(
    "LAB_SWARM_ADVERTISE_ADDR",
    "127.0.0.1",
    str,
    "the address swarm-up's `docker swarm init` advertises (several nodes: one they all reach)",
    "swarm",
)

# The test suites.
TEST_UPLOAD_MB = Setting(
    "LAB_TEST_UPLOAD_MB", "256", int, "size of the integration suite's big uploads", "tests"
)
BROWSER_UPLOAD_MB = Setting("LAB_BROWSER_UPLOAD_MB", "48", int, "size of the browser suite's upload", "tests")
CHROMIUM = Setting(
    "LAB_CHROMIUM",
    "/usr/bin/chromium",
    str,
    "the Chromium binary the browser suite drives (Debian's; `make setup` installs it)",
    "tests",
)

SETTINGS: dict[str, Setting[object]] = {
    value.name: value for value in list(globals().values()) if isinstance(value, Setting)
}
GROUPS = ("stack", "app", "gunicorn", "nginx", "compose", "limits", "swarm", "tools", "tests")


def by_group() -> Iterator[tuple[str, list[Setting[object]]]]:
    for group in GROUPS:
        yield group, [s for s in SETTINGS.values() if s.group == group]


def gunicorn_settings(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """gunicorn's settings by gunicorn's names (``bind``, ``workers``, ...), from the environment.
    A value that does not parse raises ValueError naming the setting."""
    return {s.gunicorn: s.value(environ) for s in SETTINGS.values() if s.gunicorn}


class AppSettings:
    """The app's settings (group "app"), read once; each is read through its declaration, typed
    by it: ``settings[FIX_PROXY]`` is a bool, ``settings[UPLOAD_DIR]`` a Path."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self._values = dict(values)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppSettings:
        """Every app setting from the environment; a value that does not parse raises ValueError
        naming the setting."""
        return cls({s.field_name: s.value(environ) for s in SETTINGS.values() if s.group == "app"})

    def __getitem__(self, setting: Setting[T]) -> T:
        return cast(T, self._values[setting.field_name])

    def replace(self, **changes: object) -> AppSettings:
        """A copy with some settings changed, by field name: ``replace(fix_proxy=False)``."""
        unknown = changes.keys() - self._values.keys()
        if unknown:
            raise TypeError(f"not an app setting: {', '.join(sorted(unknown))}")
        return AppSettings({**self._values, **changes})

    @property
    def max_upload_bytes(self) -> int:
        return self[MAX_UPLOAD_MB] * capacity.MIB

    @property
    def upload_write_bytes(self) -> int:
        return self[UPLOAD_WRITE_KIB] * capacity.KIB

    @property
    def self_url(self) -> str:
        """The lab's own HTTPS URL for /debug/outbound: LAB_SELF_URL, else this host's HTTPS port."""
        return (self[SELF_URL] or f"https://localhost:{HTTPS_PORT.value()}").rstrip("/")

    def public(self) -> dict[str, object]:
        """What ``/debug/settings`` shows: the settings declared public, by field name; the form
        memory limit is null when its fix is off (Werkzeug's own limit applies then)."""
        shown = {s.field_name: self._values[s.field_name] for s in SETTINGS.values() if s.public}
        if not self[FIX_FORM_MEMORY]:
            shown[MAX_FORM_MEMORY_MB.field_name] = None
        return shown


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (as Compose's .env and a scenario's app.env are written): comments and
    blank lines skipped, no quoting or interpolation."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values
