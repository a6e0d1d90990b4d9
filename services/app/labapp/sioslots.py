"""Each gunicorn worker's own port for /socket.io/, so that nginx can send a session's requests to
the one process that holds it (docs/SOCKETIO.md).

An Engine.IO session lives in one worker's memory: its long-polls and its upgrade must reach that
worker, while gunicorn's shared listening socket hands each connection to whichever worker
accepts first ("Invalid session", "Session ID unknown"). So each worker also listens on a slot
port of its own, LAB_SOCKETIO_PORT + i for i below GUNICORN_WORKERS, served exactly as the shared
one (same app, handler and graceful stop). The worker names its slot on a new session's answer
(X-Lab-Socketio-Slot), nginx keeps it in a cookie it sets itself and sends the session's later
requests there (snippets/socketio-map.conf). A worker takes the first free slot; a new one
started by a reload or after a crash takes the slot its predecessor frees (the old worker closes
it in its SIGTERM handler, gunicornhooks.py), retrying until then.

A new polling session is made only on a worker whose slot will stay its own: while a worker waits
for its slot, and once it is told to stop, it answers such a handshake 503 (realtime.py), which
nginx retries on another server where it has one and the client otherwise (docs/SOCKETIO.md).
Without that a session begun there had no cookie, or one naming a slot its successor takes, and
its upgrade and polls reached another worker ("400 Invalid session"; seen during `make deploy`).
"""

from __future__ import annotations

import enum
import errno
import socket
from typing import Any

import gevent
from gevent.pool import Pool
from gunicorn.http.wsgi import base_environ
from gunicorn.workers.ggevent import VERSION

import labsettings

SLOT_HEADER = "X-Lab-Socketio-Slot"  # on a new session's answer: where its later requests go
RETRY_S = 0.1  # a slot held by a stopping worker is free within its SIGTERM handler's next tick
GIVE_UP_S = 30.0  # then the worker serves the shared port only, and says so


class State(enum.Enum):
    """Where this worker is with its slot, which says what a new polling session gets."""

    NONE = "none"  # serves no slot (a worker class without gevent's servers, a test): no cookie
    WAITING = "waiting"  # its slot is still a stopping worker's: new sessions refused (503)
    SERVING = "serving"  # new sessions named their slot (SLOT_HEADER)
    GAVE_UP = "gave up"  # none was freed within GIVE_UP_S: new sessions served without a cookie
    STOPPING = "stopping"  # told to stop, its slot freed for its successor: new sessions refused


_state = State.NONE  # before a slot is served: none, waiting or gave up (serving: _announced)
_stopping = False  # set once, by stop(), whatever the state was (a signal may come at any point)
# This worker's slot as nginx may reach it ("host:port"), once it serves one.
_announced: str | None = None
_server: Any = None  # the gevent server on the slot, closed on the worker's stop


def state() -> State:
    if _stopping:
        return State.STOPPING
    return State.SERVING if _announced else _state


def announced() -> str | None:
    return None if _stopping else _announced


def refuses_new_sessions() -> bool:
    """A polling session begun now would not stay reachable: this worker has no slot yet (a
    session without a cookie: its polls and upgrade go to any worker) or is stopping (its cookie
    would name the slot its successor takes)."""
    return state() in (State.WAITING, State.STOPPING)


def stop() -> None:
    """From the worker's SIGTERM handler: no new sessions, and the slot freed at once (closed,
    not only no longer accepted), so that the worker replacing this one finds it free when it
    boots, instead of waiting for this one to exit (measured: 2-3 s after gunicorn's HUP)."""
    global _stopping
    _stopping = True
    _close_server()


def _close_server() -> None:
    global _server
    if _server is not None:
        _server.close()
        _server = None


def slot_ports(workers: int, first: int) -> list[int]:
    return [first + i for i in range(workers)]


def _reachable_host(bind_host: str) -> str:
    """A specific bind address as it is (127.0.0.1 natively); on every interface (a container),
    the host name, which is the container's id and in Docker's DNS."""
    return socket.gethostname() if bind_host in ("", "0.0.0.0", "::") else bind_host


def _bind_first_free(host: str, ports: list[int]) -> socket.socket | None:
    for port in ports:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            # Inside the try: two workers booting at once may both bind a port (SO_REUSEADDR, no
            # listener yet); the second's listen is then refused, and it takes the next port
            # (seen: a worker exiting on EADDRINUSE here took gunicorn down, "Worker failed to boot").
            sock.listen(2048)
        except OSError as error:
            sock.close()
            if error.errno != errno.EADDRINUSE:
                raise
            continue
        return sock
    return None


def serve(worker: Any) -> None:
    """From post_worker_init, after ``worker.server_class`` is the lab's (it stops accepting on
    SIGTERM): the worker takes a slot and serves its app there too."""
    global _state
    host = worker.cfg.address[0][0] if isinstance(worker.cfg.address[0], tuple) else "127.0.0.1"
    ports = slot_ports(worker.cfg.workers, labsettings.SOCKETIO_PORT.value())

    def serve_on(sock: socket.socket) -> None:
        global _announced, _server
        environ = base_environ(worker.cfg)
        environ.update({"wsgi.multithread": True, "SERVER_SOFTWARE": VERSION})
        server = worker.server_class(
            sock,
            application=worker.wsgi,
            spawn=Pool(worker.worker_connections),
            log=worker.log,
            handler_class=worker.wsgi_handler,
            environ=environ,
        )
        server.start()
        _server = server
        if _stopping:  # told to stop (a signal) since it bound the port: the port is its successor's
            _close_server()
            return
        _announced = f"{_reachable_host(host)}:{sock.getsockname()[1]}"
        worker.log.info("socketio: worker %s serves slot %s", worker.pid, _announced)

    def wait_for_a_slot() -> None:
        global _state
        waited = 0.0
        while not _stopping and worker.alive:  # once told to stop, a freed port is its successor's
            sock = _bind_first_free(host, ports)
            if sock is not None:
                serve_on(sock)
                return
            if waited >= GIVE_UP_S:
                _state = State.GAVE_UP
                worker.log.warning(
                    "socketio: no free slot among ports %s in %gs: shared port only, new sessions "
                    "without a cookie",
                    ports,
                    GIVE_UP_S,
                )
                return
            gevent.sleep(RETRY_S)
            waited += RETRY_S

    # Before the worker accepts anything when a slot is free (a fresh start, a reload whose old
    # workers freed theirs on SIGTERM): a session begun on it is then always announced. Otherwise
    # as soon as one is freed; meanwhile it refuses new polling sessions (realtime.py).
    sock = _bind_first_free(host, ports)
    if sock is not None:
        serve_on(sock)
    else:
        _state = State.WAITING
        worker.log.info("socketio: worker %s waits for a free slot among ports %s", worker.pid, ports)
        gevent.spawn(wait_for_a_slot)
