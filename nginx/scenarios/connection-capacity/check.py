"""connection-capacity's check: websockets up to the worker's connection cap, then one request,
and how busy the machine is while that request waits.

Needs the processes' CPU counters, and a hang that is told apart from a slow answer (so a
function, not data).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import labsettings
from labctl import probe, procs, stack, wsclient
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

CAP = int(labsettings.read_env_file(Path(__file__).with_name("app.env"))["GUNICORN_WORKER_CONNECTIONS"])
HANG_S = 3.0  # a free worker answers /healthz in milliseconds
IDLE_CPU = 0.2  # of one core, app and nginx together: idle, not busy serving


def _healthz(endpoint: Endpoint) -> int | str:
    try:
        return probe.request(endpoint, "GET", "/healthz", timeout=HANG_S).status
    except TimeoutError:
        return "no answer"


def observe(endpoint: Endpoint) -> Observation:
    running = stack.require()
    with contextlib.ExitStack() as sockets:
        opened: list[wsclient.WebSocket] = []
        refused = ""
        for _ in range(CAP):
            try:
                handshake, conn = probe.websocket(endpoint, "/ws/echo", timeout=HANG_S)
            except TimeoutError:
                refused = f"; websocket {len(opened) + 1}'s handshake hung"
                break
            if conn is None:
                refused = f"; websocket {len(opened) + 1} answered {handshake.status}"
                break
            opened.append(sockets.enter_context(conn))
        pids = [pid for group in running.process_groups().values() for pid in group]
        cpu_before, started = procs.cpu_seconds(pids), time.monotonic()
        health = _healthz(endpoint)
        waited = time.monotonic() - started
        busy = (procs.cpu_seconds(pids) - cpu_before) / waited
    # Over a hang only: a few milliseconds of an answer are too short for the kernel's CPU ticks.
    meanwhile = f", the app and nginx using {busy:.0%} of a core meanwhile" if waited >= 1 else ""
    seen = f"{len(opened)} websockets open{refused}; then /healthz: {health} after {waited:.1f} s{meanwhile}"
    symptom = health == "no answer" and busy < IDLE_CPU
    healthy = len(opened) == CAP and health == 200 and waited < 1.0
    return Observation(classify(symptom, healthy), seen)
