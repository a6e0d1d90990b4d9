"""The capacity model: what one of each thing costs a container, and the limits it adds up to.

compose.yaml's deploy.resources.limits, per container. Each default is what the container holds
at the lab's own caps (a gevent pool of GUNICORN_WORKER_CONNECTIONS per worker, nginx's
worker_connections), worked out from what one of each thing costs, measured on a fresh stack and
rounded up (docs/COMPOSE.md, "Limits"): the cgroup's working set (its memory less inactive page
cache), and its tasks. tests/compose/test_limits.py measures them again.

labsettings.py declares the LAB_*_CPUS/_MEMORY/_PIDS settings from the figures here. Standard
library only, like labsettings (gunicorn's master and ``scripts/lab`` import it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MIB = 1024 * 1024
KIB = 1024
APP_MASTER_MIB = 20  # gunicorn's master, no app loaded: measured 17.4
APP_WORKER_MIB = 40  # one idle worker, the app, gevent and redis-py loaded: measured 33.4
APP_WEBSOCKET_KIB = 42  # one open /ws/echo in a worker: measured 38.4 and 38.8 (2,000 and 1,000)
APP_UPLOAD_MIB = 4  # one upload in flight at full speed (two pooled 1 MiB chunks, hashing): measured 3.3
APP_UPLOADS_PER_WORKER = 16  # budgeted in flight at once; beyond them the memory limit is the cap
# An upload waiting for bytes holds no chunk (labapp.body): 31 KiB each, measured for 300 trickling,
# within the websockets' budget per connection above.
# A websocket message is read whole (LAB_WS_MAX_MESSAGE) and sent from that one copy in fragments
# (labapp/patches/wssend.py, at most LAB_WS_SEND_MAX_BYTES; a text one encoded once more): one in,
# one out.
# Held at most 2 x LAB_WS_SEND_TIMEOUT_S by a client that does not read (measured 12.8-17.6 MiB for
# a 16 MiB binary echo; 48.4 before the sends were fragmented).
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


@dataclass(frozen=True)
class Limit:
    """A container limit's default, as Compose writes it, and the sum it comes from."""

    default: str
    why: str


def app_memory(cores: str, worker_connections: str, max_message: str, max_send: str) -> Limit:
    """One app replica at its caps: ``cores`` (GUNICORN_WORKERS=auto: one worker per core, at
    least 2), a full gevent pool of ``worker_connections`` websockets per worker, its uploads,
    and a websocket message in (``max_message`` bytes) and one out (``max_send``)."""
    workers = max(2, math.ceil(float(cores)))
    websockets = int(worker_connections)
    message_mib = (int(max_message) + int(max_send)) / MIB
    worker = (
        APP_WORKER_MIB
        + websockets * APP_WEBSOCKET_KIB / KIB
        + APP_UPLOADS_PER_WORKER * APP_UPLOAD_MIB
        + message_mib
    )
    return Limit(
        _mib(APP_MASTER_MIB + workers * worker),
        f"one app replica: master {APP_MASTER_MIB} MiB + {workers} workers x ({APP_WORKER_MIB} MiB "
        f"+ {websockets} websockets x {APP_WEBSOCKET_KIB} KiB + {APP_UPLOADS_PER_WORKER} uploads x "
        f"{APP_UPLOAD_MIB} MiB + a websocket message in and out, {message_mib:g} MiB); hit: restarted",
    )


def app_pids(cores: str) -> Limit:
    workers = max(2, math.ceil(float(cores)))
    return Limit(
        str(1 + workers * (1 + GEVENT_THREADS_PER_WORKER) + HEALTHCHECK_PIDS["app"] + EXEC_PIDS),
        f"one app replica: master + {workers} workers x (1 + {GEVENT_THREADS_PER_WORKER} pool "
        f"threads) + healthcheck {HEALTHCHECK_PIDS['app']} + docker exec {EXEC_PIDS}; hit: restarted",
    )


def nginx_memory(cores: str) -> Limit:
    """nginx at its caps: one worker per core (worker_processes), each with every connection
    worker_connections allows it proxied."""
    workers = math.ceil(float(cores))
    worker = NGINX_WORKER_MIB + NGINX_PROXIED_PER_WORKER * NGINX_CONNECTION_KIB / KIB
    return Limit(
        _mib(NGINX_MASTER_MIB + workers * worker),
        f"nginx: master {NGINX_MASTER_MIB} MiB + {workers} workers x ({NGINX_WORKER_MIB} MiB + "
        f"{NGINX_PROXIED_PER_WORKER} proxied websockets or uploads x {NGINX_CONNECTION_KIB} KiB); "
        "buffered request bodies go to disk",
    )


def nginx_pids(cores: str) -> Limit:
    workers = math.ceil(float(cores))
    return Limit(
        str(1 + NGINX_WORKER_GENERATIONS * workers + HEALTHCHECK_PIDS["nginx"] + EXEC_PIDS),
        f"nginx: master + {workers} workers x {NGINX_WORKER_GENERATIONS} generations (reloads) + "
        f"healthcheck {HEALTHCHECK_PIDS['nginx']} + docker exec {EXEC_PIDS}",
    )


def redis_memory() -> Limit:
    return Limit(
        _mib(REDIS_BASE_MIB + REDIS_SUBSCRIBERS * REDIS_PUBSUB_BUFFER_MIB),
        f"redis: {REDIS_BASE_MIB} MiB + {REDIS_SUBSCRIBERS} subscribers (app workers) x their "
        f"{REDIS_PUBSUB_BUFFER_MIB} MiB pub/sub output-buffer limit; hit: restarted, chat recovers",
    )


def redis_pids() -> Limit:
    return Limit(
        str(REDIS_THREADS + HEALTHCHECK_PIDS["redis"] + EXEC_PIDS),
        f"redis: {REDIS_THREADS} threads + healthcheck {HEALTHCHECK_PIDS['redis']} + docker exec {EXEC_PIDS}",
    )
