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
it on SIGTERM, gunicorn.conf.py), retrying until then.
"""

from __future__ import annotations

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


# This worker's slot as nginx may reach it ("host:port"), once it has one.
_announced: str | None = None


def announced() -> str | None:
    return _announced


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
    host = worker.cfg.address[0][0] if isinstance(worker.cfg.address[0], tuple) else "127.0.0.1"
    ports = slot_ports(worker.cfg.workers, labsettings.SOCKETIO_PORT.value())

    def serve_on(sock: socket.socket) -> None:
        global _announced
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
        _announced = f"{_reachable_host(host)}:{sock.getsockname()[1]}"
        worker.log.info("socketio: worker %s serves slot %s", worker.pid, _announced)

    def wait_for_a_slot() -> None:
        waited = 0.0
        while (sock := _bind_first_free(host, ports)) is None:
            if waited >= GIVE_UP_S or not worker.alive:
                worker.log.warning("socketio: no free slot among ports %s: shared port only", ports)
                return
            gevent.sleep(RETRY_S)
            waited += RETRY_S
        serve_on(sock)

    # Before the worker accepts anything when a slot is free (a fresh start): a session begun on
    # it is then always announced. Otherwise (a reload: the old workers still hold theirs) as
    # soon as one is freed; meanwhile its sessions get no cookie and this worker serves none.
    sock = _bind_first_free(host, ports)
    if sock is not None:
        serve_on(sock)
    else:
        gevent.spawn(wait_for_a_slot)
