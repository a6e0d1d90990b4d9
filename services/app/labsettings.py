"""Every setting of the lab, declared once: its name, its default and why it exists.

The way gunicorn's ``config.py`` declares a ``Setting``: everything else is derived from these
declarations. The app (``labapp.settings``), ``gunicorn.conf.py``, the lab's tools
(``scripts/labctl``) and the settings table of docs/SETTINGS.md (``scripts/lab docs``) read them here;
``compose.yaml``'s ``${NAME:-default}`` fallbacks are checked against them by a unit test.

Standard library only: ``gunicorn.conf.py`` imports this in gunicorn's master, before any worker
has patched anything with gevent, and ``scripts/lab`` imports it before the virtualenv exists.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar
from urllib.parse import urlsplit

import cgrouplimits

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


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    default: str  # as it is written in the environment ("" = unset)
    parse: Callable[[str], T]
    why: str  # one line for the settings table: what it does, which bug it keeps away
    group: str  # its table in docs/SETTINGS.md: one of GROUPS

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
DOCTOR_IDLE_S = Setting(
    "LAB_DOCTOR_IDLE_S", "0", float, "hold a websocket idle this long (65: past nginx's 60s default)", "tools"
)

# The app (labapp.settings). Each LAB_FIX_* is a fix the baseline applies; 0 brings its bug back.
MAX_UPLOAD_MB = Setting(
    "LAB_MAX_UPLOAD_MB",
    "4096",
    int,
    "upload limit in MiB, the same at nginx (client_max_body_size) and in the app",
    "app",
)
MAX_HEADER_KIB = Setting(
    "LAB_MAX_HEADER_KIB",
    "32",
    int,
    "largest request header line and response head in KiB: nginx's large_client_header_buffers and "
    "proxy_buffer_size, the app's own bound on what it sends (defaults: 8k in, 4k out; 400 and 502)",
    "app",
)
UPLOAD_DIR = Setting(
    "LAB_UPLOAD_DIR", "/srv/uploads", Path, "where uploads land (native mode: .lab/uploads)", "app"
)
# An upload in flight is a temp file in UPLOAD_DIR named so (labapp.storage), renamed once whole.
TEMP_PREFIX = ".partial-"


def temp_prefix(host: str, pid: int) -> str:
    """The temp-file prefix of worker ``pid`` on ``host``: here, beside the setting, because
    gunicorn.conf.py removes a dead worker's files and must not import the app (gevent).

    The host as well as the pid: app replicas share the uploads volume, and the workers of
    every container have the same few pids (each container's gunicorn master is pid 1)."""
    return f"{TEMP_PREFIX}{host}-{pid}-"


MAX_FORM_MEMORY_MB = Setting(
    "LAB_MAX_FORM_MEMORY_MB", "16", int, "MAX_FORM_MEMORY_SIZE for non-file form fields, in MiB", "app"
)
FIX_PROXY = Setting(
    "LAB_FIX_PROXY",
    "1",
    flag,
    "Werkzeug ProxyFix for exactly one hop: gevent-websocket's worker ignores forwarded_allow_ips",
    "app",
)
FIX_DRAIN_BODY = Setting(
    "LAB_FIX_DRAIN_BODY",
    "1",
    flag,
    "read a body the view left unread (else RST, nginx writev() failed (104), client 502)",
    "app",
)
FIX_UPGRADE_INPUT = Setting(
    "LAB_FIX_UPGRADE_INPUT",
    "1",
    flag,
    "bound the body of a plain request saying Connection: upgrade (gevent + Werkzeug read it to EOF: a hang)",
    "app",
)
FIX_JSON_ERRORS = Setting(
    "LAB_FIX_JSON_ERRORS", "1", flag, "the JSON error envelope for every error (off: HTML pages)", "app"
)
FIX_FORM_MEMORY = Setting(
    "LAB_FIX_FORM_MEMORY",
    "1",
    flag,
    "raise MAX_FORM_MEMORY_SIZE to LAB_MAX_FORM_MEMORY_MB (off: Werkzeug's 500 kB, 413)",
    "app",
)
WS_ROUTE_FLAG = Setting(
    "LAB_WS_ROUTE_FLAG",
    "1",
    flag,
    "declare the /ws/* routes with websocket=True (off: 101 then an immediate close)",
    "app",
)
FIX_WS_UPGRADE = Setting(
    "LAB_FIX_WS_UPGRADE",
    "1",
    flag,
    "upgrade only a websocket route's handshake (stock gevent-websocket: 101 for any path, then a close)",
    "app",
)
X_ACCEL = Setting(
    "LAB_X_ACCEL", "1", flag, "/files/<name> answers with X-Accel-Redirect for nginx to serve", "app"
)
WS_MAX_MESSAGE = Setting(
    "LAB_WS_MAX_MESSAGE",
    str(16 * 1024 * 1024),
    int,
    "largest websocket message in bytes (close 1009): gevent-websocket reads any length into memory",
    "app",
)
FIX_BROKER = Setting(
    "LAB_FIX_BROKER",
    "1",
    flag,
    "chat through Redis pub/sub (off: each worker process has its own room, chat-split-brain)",
    "app",
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
SCENARIOS_DIR = Setting(
    "LAB_SCENARIOS_DIR", "/lab/scenarios", Path, "where gunicorn.conf.py finds a scenario's app.env", "app"
)

# gunicorn (gunicorn.conf.py).
GUNICORN_BIND = Setting("GUNICORN_BIND", "0.0.0.0:8000", str, "gunicorn's listen address(es)", "gunicorn")
GUNICORN_WORKERS = Setting(
    "GUNICORN_WORKERS",
    "auto",
    workers,
    "worker processes; auto: one per core, at least 2 (a worker uses one core; a second one shows "
    "any state kept in one process, as chat-split-brain does)",
    "gunicorn",
)
GUNICORN_WORKER_CLASS = Setting(
    "GUNICORN_WORKER_CLASS",
    "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
    str,
    "gevent-websocket's worker: websockets and thousands of idle connections per process",
    "gunicorn",
)
GUNICORN_PRELOAD = Setting(
    "GUNICORN_PRELOAD",
    "0",
    flag,
    "load the app in the master before forking (on: it imports requests/ssl before the worker's "
    "gevent patches them, MonkeyPatchWarning, outbound HTTPS fails: patch-order)",
    "gunicorn",
)
GUNICORN_WORKER_CONNECTIONS = Setting(
    "GUNICORN_WORKER_CONNECTIONS", "10000", int, "connections one async worker accepts", "gunicorn"
)
GUNICORN_TIMEOUT = Setting(
    "GUNICORN_TIMEOUT",
    "30",
    int,
    "worker heartbeat deadline (async workers: not a request timeout)",
    "gunicorn",
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
)
GUNICORN_KEEPALIVE = Setting(
    "GUNICORN_KEEPALIVE",
    "75",
    int,
    "idle keep-alive seconds: above nginx's upstream keepalive_timeout, so nginx closes first",
    "gunicorn",
)
GUNICORN_LOGLEVEL = Setting("GUNICORN_LOGLEVEL", "info", str, "gunicorn's own log level", "gunicorn")
GUNICORN_PIDFILE = Setting(
    "GUNICORN_PIDFILE", "", str, "the master's pid file (native mode sets it)", "gunicorn"
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
)

# nginx.
HSTS_MAX_AGE = Setting(
    "LAB_HSTS_MAX_AGE",
    "0",
    int,
    "Strict-Transport-Security max-age; 0 sends none (a pinned localhost breaks other projects)",
    "nginx",
)

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
# the container holds at the lab's own caps (a gevent pool of GUNICORN_WORKER_CONNECTIONS per
# worker, nginx's worker_connections), worked out from what one of each thing costs, measured on
# a fresh stack and rounded up (docs/COMPOSE.md, "Limits"): the cgroup's working set (its memory
# less inactive page cache), and its tasks. tests/compose/test_limits.py measures them again.
MIB = 1024 * 1024
KIB = 1024
APP_MASTER_MIB = 20  # gunicorn's master, no app loaded: measured 17.4
APP_WORKER_MIB = 40  # one idle worker, the app, gevent and redis-py loaded: measured 33.4
APP_WEBSOCKET_KIB = 42  # one open /ws/echo in a worker: measured 38.4 and 38.8 (2,000 and 1,000)
APP_UPLOAD_MIB = 4  # one upload in flight (labapp.storage.CHUNK read, hashed, written): measured 3.3
APP_UPLOADS_PER_WORKER = 16  # budgeted in flight at once; beyond them the memory limit is the cap
# A websocket message is read whole (LAB_WS_MAX_MESSAGE), and /ws/echo holds it three times:
# measured 48.4 MiB at the peak for one of 16 MiB.
MESSAGE_COPIES = 3
NGINX_MASTER_MIB = 4  # measured 2.0
NGINX_WORKER_MIB = 12  # one idle worker, the config and TLS contexts loaded: measured 9.0
# One proxied connection, client TLS and upstream sides: a wss measured 63.7 and 63.9, an upload in
# flight 65 (48 of them).
NGINX_CONNECTION_KIB = 72
# worker_connections (nginx.conf) counts both sides of each proxied connection.
NGINX_PROXIED_PER_WORKER = 16384 // 2
REDIS_BASE_MIB = 16  # measured 4.6
# Redis's default client-output-buffer-limit for pub/sub: a subscriber that far behind is cut.
REDIS_PUBSUB_BUFFER_MIB = 32
# One per app worker: 3 replicas (make test-compose) x 2 workers, twice during `make deploy`.
REDIS_SUBSCRIBERS = 12
# gevent's threadpool maxsize: its resolver's getaddrinfo threads and the uploads' hashing and
# writing (labapp.storage) share it.
GEVENT_THREADS_PER_WORKER = 10
REDIS_THREADS = 6  # main, 3 background I/O, jemalloc's: measured
# Healthcheck: python3 (app), bash + head + grep (nginx), redis-cli (redis).
HEALTHCHECK_PIDS = {"app": 1, "nginx": 3, "redis": 1}
EXEC_PIDS = 8  # `docker exec`: a shell and what it runs (make reload, dump, logs; the tests)
# nginx after a reload: new workers start while the old ones close their connections (up to
# worker_shutdown_timeout): two reloads in a row (make watch) make three generations.
NGINX_WORKER_GENERATIONS = 3


def cpu_cores(raw: str) -> float:
    """A CPU limit as Compose writes one: a number of cores above 0 (``2``, ``1.5``)."""
    value = float(raw)
    if value <= 0:
        raise ValueError(f"want more than 0 cores, not {raw!r}")
    return value


SIZE_UNITS = {"": 1, "k": KIB, "m": MIB, "g": 1024 * MIB}


def byte_size(raw: str) -> int:
    """A memory size as Compose writes one: ``768m``, ``1g``, ``512k``, or bytes."""
    text = raw.strip().lower()
    unit = text[-1:] if text[-1:] in SIZE_UNITS else ""
    number = text[: len(text) - len(unit)]
    if not number.isdigit() or int(number) == 0:
        raise ValueError(f"want a size like 768m or 1g, not {raw!r}")
    return int(number) * SIZE_UNITS[unit]


def _mib(value: float) -> str:
    return f"{math.ceil(value)}m"


_APP_CORES = "2"
_APP_WORKERS = max(2, math.ceil(float(_APP_CORES)))  # GUNICORN_WORKERS=auto under that quota
_APP_WS = int(GUNICORN_WORKER_CONNECTIONS.default)
_MESSAGE_MIB = int(WS_MAX_MESSAGE.default) / MIB
_APP_WORKER_AT_CAPS = (
    APP_WORKER_MIB
    + _APP_WS * APP_WEBSOCKET_KIB / KIB
    + APP_UPLOADS_PER_WORKER * APP_UPLOAD_MIB
    + MESSAGE_COPIES * _MESSAGE_MIB
)
_NGINX_CORES = "2"
_NGINX_WORKERS = math.ceil(float(_NGINX_CORES))  # worker_processes under that quota
_NGINX_WORKER_AT_CAPS = NGINX_WORKER_MIB + NGINX_PROXIED_PER_WORKER * NGINX_CONNECTION_KIB / KIB

APP_CPUS = Setting(
    "LAB_APP_CPUS",
    _APP_CORES,
    cpu_cores,
    "cores one app replica may use; GUNICORN_WORKERS=auto runs one worker per core of it (at least 2)",
    "limits",
)
APP_MEMORY = Setting(
    "LAB_APP_MEMORY",
    _mib(APP_MASTER_MIB + _APP_WORKERS * _APP_WORKER_AT_CAPS),
    byte_size,
    f"one app replica: master {APP_MASTER_MIB} MiB + {_APP_WORKERS} workers x ({APP_WORKER_MIB} MiB "
    f"+ {_APP_WS} websockets x {APP_WEBSOCKET_KIB} KiB + {APP_UPLOADS_PER_WORKER} uploads x "
    f"{APP_UPLOAD_MIB} MiB + {MESSAGE_COPIES} x a {_MESSAGE_MIB:g} MiB message); hit: restarted",
    "limits",
)
APP_PIDS = Setting(
    "LAB_APP_PIDS",
    str(1 + _APP_WORKERS * (1 + GEVENT_THREADS_PER_WORKER) + HEALTHCHECK_PIDS["app"] + EXEC_PIDS),
    count,
    f"one app replica: master + {_APP_WORKERS} workers x (1 + {GEVENT_THREADS_PER_WORKER} pool "
    f"threads) + healthcheck {HEALTHCHECK_PIDS['app']} + docker exec {EXEC_PIDS}; hit: restarted",
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
    _mib(NGINX_MASTER_MIB + _NGINX_WORKERS * _NGINX_WORKER_AT_CAPS),
    byte_size,
    f"nginx: master {NGINX_MASTER_MIB} MiB + {_NGINX_WORKERS} workers x ({NGINX_WORKER_MIB} MiB + "
    f"{NGINX_PROXIED_PER_WORKER} proxied websockets or uploads x {NGINX_CONNECTION_KIB} KiB); buffered "
    "request bodies go to disk",
    "limits",
)
NGINX_PIDS = Setting(
    "LAB_NGINX_PIDS",
    str(1 + NGINX_WORKER_GENERATIONS * _NGINX_WORKERS + HEALTHCHECK_PIDS["nginx"] + EXEC_PIDS),
    count,
    f"nginx: master + {_NGINX_WORKERS} workers x {NGINX_WORKER_GENERATIONS} generations (reloads) + "
    f"healthcheck {HEALTHCHECK_PIDS['nginx']} + docker exec {EXEC_PIDS}",
    "limits",
)
REDIS_CPUS = Setting(
    "LAB_REDIS_CPUS", "1", cpu_cores, "cores redis may use: one event loop does its work", "limits"
)
REDIS_MEMORY = Setting(
    "LAB_REDIS_MEMORY",
    _mib(REDIS_BASE_MIB + REDIS_SUBSCRIBERS * REDIS_PUBSUB_BUFFER_MIB),
    byte_size,
    f"redis: {REDIS_BASE_MIB} MiB + {REDIS_SUBSCRIBERS} subscribers (app workers) x their "
    f"{REDIS_PUBSUB_BUFFER_MIB} MiB pub/sub output-buffer limit; hit: restarted, chat recovers",
    "limits",
)
REDIS_PIDS = Setting(
    "LAB_REDIS_PIDS",
    str(REDIS_THREADS + HEALTHCHECK_PIDS["redis"] + EXEC_PIDS),
    count,
    f"redis: {REDIS_THREADS} threads + healthcheck {HEALTHCHECK_PIDS['redis']} + docker exec {EXEC_PIDS}",
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
