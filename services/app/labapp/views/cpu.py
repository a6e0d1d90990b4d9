"""CPU-bound work inside a request, and what it does to the worker's event loop.

A gevent worker runs every request of its process on one loop: code that computes without
yielding holds all of them (event-loop-blocked), and past gunicorn's ``timeout`` the worker
misses its heartbeat and is killed. The baseline hands the work to gevent's threadpool
(``LAB_FIX_CPU_OFFLOAD``): the work below releases the GIL, so the loop keeps serving.
"""

from __future__ import annotations

import functools
import hashlib
import time

import gevent
from flask import Blueprint, Response, current_app, jsonify
from gevent import monkey

import labsettings as lab

from .debug import served_by
from .params import bounded

bp = Blueprint("cpu", __name__)

MAX_SECONDS = 60.0
# About 50 ms here: a shorter sample misjudges the rate on a busy machine.
CALIBRATION_ITERATIONS = 200_000
LAG_TICK_S = 0.01
DIGEST, PASSWORD, SALT = "sha256", b"proxylab", b"layers"


@functools.cache
def iterations_per_second() -> float:
    """PBKDF2 iterations this machine does in a second, measured once per process."""
    hashlib.pbkdf2_hmac(DIGEST, PASSWORD, SALT, 1_000)  # sets OpenSSL's digest up: not timed
    started = time.perf_counter()
    hashlib.pbkdf2_hmac(DIGEST, PASSWORD, SALT, CALIBRATION_ITERATIONS)
    return CALIBRATION_ITERATIONS / max(time.perf_counter() - started, 1e-6)


def burn_cpu(seconds: float) -> int:
    """About ``seconds`` of computing in one call into C (OpenSSL's PBKDF2), the way a C
    extension or a database driver computes: no Python runs until it returns, so neither a
    greenlet switch nor gunicorn's SIGABRT handler. It releases the GIL: in a thread it leaves
    the loop free. The number of iterations done."""
    iterations = max(1, round(iterations_per_second() * seconds))
    hashlib.pbkdf2_hmac(DIGEST, PASSWORD, SALT, iterations)
    return iterations


class LoopLag:
    """The longest the worker's loop was late to wake a greenlet sleeping LAG_TICK_S, meanwhile."""

    def __init__(self) -> None:
        self.worst_s = 0.0
        self._ticker = gevent.spawn(self._tick)

    def _tick(self) -> None:
        while True:
            before = time.monotonic()
            gevent.sleep(LAG_TICK_S)
            self.worst_s = max(self.worst_s, time.monotonic() - before - LAG_TICK_S)

    def stop(self) -> float:
        self._ticker.kill()
        return self.worst_s


@bp.get("/cpu")
def cpu() -> Response:
    seconds = bounded("seconds", float, 1.0, 0.0, MAX_SECONDS)
    on_loop = monkey.is_module_patched("socket")  # a gevent worker: one loop serves every request
    offload = on_loop and current_app.config["LAB"][lab.FIX_CPU_OFFLOAD]
    lag = LoopLag() if on_loop else None
    started = time.monotonic()
    iterations = gevent.get_hub().threadpool.apply(burn_cpu, (seconds,)) if offload else burn_cpu(seconds)
    return jsonify(
        seconds=seconds,
        iterations=iterations,
        took_s=round(time.monotonic() - started, 3),
        where="gevent threadpool" if offload else "inline",
        # How late the loop was for the worker's other requests while this one ran (None: no loop).
        loop_lag_ms=None if lag is None else round(lag.stop() * 1000, 1),
        served_by=served_by(),
    )
