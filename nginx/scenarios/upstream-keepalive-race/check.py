"""upstream-keepalive-race's check: the race counted, and its mechanism shown without luck.

nginx keeps an idle upstream connection for its `keepalive_timeout` (60 s); the app server here
closes it after its own `keepalive` (2 s). A request that takes the connection from nginx's pool
in the instant the app closes it fails, and nginx retries a GET but not a POST: 502. A lone
request almost never hits that instant (nginx sees the close and drops the connection first);
many at once, as a busy site sends them, do now and then: the sweep counts them. The mechanism
itself is made deterministic by stretching that instant: nginx's workers
are paused (SIGSTOP) while a POST arrives and the app's keepalive runs out, then resumed
(SIGCONT): nginx reads the POST before the close, takes the pooled connection the app has
closed, and answers what it answers when the race is lost (its error log says why).
"""

from __future__ import annotations

import http.client
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import labsettings
from labctl import keepalive, probe, stack
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

KEEPALIVE_S = float(labsettings.read_env_file(Path(__file__).with_name("app.env"))["GUNICORN_KEEPALIVE"])
# The sweep: CLIENTS POSTs at once after each idle gap, the gaps stepping across the moment the
# app closes (measured here: 11 of 384 POSTs got 502 with 16 clients and gaps of 1.997-2.001 s).
CLIENTS = 16
SWEEP_OFFSETS_S = (-0.003, -0.002, -0.001, 0.0, 0.001)  # idle past the keepalive, per round
ROUNDS_PER_OFFSET = 2
NGINX_SAYS = ("upstream prematurely closed connection", "recv() failed (104", "writev() failed (32", "(104: ")


def _post(conn: http.client.HTTPConnection) -> int:
    keepalive.send(conn, "POST")
    return keepalive.status(conn)


def _post_or_error(conn: http.client.HTTPConnection) -> int | str:
    try:
        return _post(conn)
    except (OSError, http.client.HTTPException) as error:
        conn.close()  # the next request opens a new connection
        return type(error).__name__


def _sweep(endpoint: Endpoint) -> list[int | str]:
    """Rounds of POSTs on CLIENTS kept-alive client connections at once (nginx pools as many
    upstream connections), each round after an idle gap around the app's keepalive."""
    conns = [probe.connection(endpoint, endpoint.url, probe.TIMEOUT) for _ in range(CLIENTS)]
    statuses: list[int | str] = []
    try:
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            for offset in (None, *SWEEP_OFFSETS_S * ROUNDS_PER_OFFSET):
                if offset is not None:
                    time.sleep(KEEPALIVE_S + offset)
                answered = list(pool.map(_post_or_error, conns))
                statuses.extend(answered if offset is not None else [])  # the first round fills the pool
    finally:
        for conn in conns:
            conn.close()
    return statuses


def observe(endpoint: Endpoint) -> Observation:
    running = stack.require()
    with running.logs_written() as written:
        swept = _sweep(endpoint)
        workers = running.process_groups()["nginx"]
        paused = keepalive.paused(endpoint, workers, KEEPALIVE_S, "POST")
        # The same for a GET: nginx retries an idempotent request that failed on a pooled connection.
        paused_get = keepalive.paused(endpoint, workers, KEEPALIVE_S, "GET")
    said = [line for line in written["nginx error"].splitlines() if any(s in line for s in NGINX_SAYS)]
    why = said[-1].split(": *", 1)[-1].partition(" ")[2].split(", client:", 1)[0] if said else "nothing"
    seen = (
        f"{len(swept)} POSTs, {CLIENTS} at a time, after {KEEPALIVE_S:g} s idle (+/- a few ms): "
        f"{swept.count(502)} got 502; "
        f"a POST on a pooled connection the app closed meanwhile: {paused} (a GET: {paused_get}); "
        f"nginx's error log: {why}"
    )
    symptom = paused == 502 and paused_get == 200 and bool(said)
    healthy = paused == paused_get == 200 and 502 not in swept and not said
    return Observation(classify(symptom, healthy), seen)
