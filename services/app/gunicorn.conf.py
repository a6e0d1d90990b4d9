"""gunicorn settings, every one from the environment (GUNICORN_*, declared in labsettings.py).

A scenario may ship an ``app.env``: with LAB_SCENARIO set, its values are applied here,
before anything below reads the environment, so the same file works in compose and native mode.
"""

import os
import resource
import signal
import socket
import sys
from pathlib import Path

from gunicorn.errors import HaltServer

# The lab's setting declarations sit beside this file (and beside it in the image's /app).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import cgrouplimits
import labsettings as lab


def _apply_scenario_env() -> None:
    name = lab.SCENARIO.value()
    env_file = lab.SCENARIOS_DIR.value() / name / "app.env"
    if name and env_file.is_file():
        os.environ.update(lab.read_env_file(env_file))


def _raise_open_files_limit() -> None:
    # Each websocket holds a descriptor in its worker: take the hard limit the engine (or the
    # shell) allows rather than a soft one of 1024, instead of asking Docker for a number (compose
    # `ulimits` above dockerd's own hard limit stop the container from starting). Workers inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_apply_scenario_env()
_raise_open_files_limit()

try:
    bind = lab.GUNICORN_BIND.value().split(",")
    workers = lab.GUNICORN_WORKERS.value()
    worker_class = lab.GUNICORN_WORKER_CLASS.value()
    worker_connections = lab.GUNICORN_WORKER_CONNECTIONS.value()
    # Off: gevent's worker patches in its own process before importing the app (patch-order).
    preload_app = lab.GUNICORN_PRELOAD.value()
    timeout = lab.GUNICORN_TIMEOUT.value()
    graceful_timeout = lab.GUNICORN_GRACEFUL_TIMEOUT.value()
    if graceful_timeout <= lab.LONGEST_REQUEST_S.value():
        raise SystemExit(
            f"lab: GUNICORN_GRACEFUL_TIMEOUT={graceful_timeout} must stay above "
            f"LAB_LONGEST_REQUEST_S={lab.LONGEST_REQUEST_S.value():g}: a graceful stop would cut "
            "requests it promises to finish"
        )
    keepalive = lab.GUNICORN_KEEPALIVE.value()
    loglevel = lab.GUNICORN_LOGLEVEL.value()
    # Read by the app in each worker; checked here, in the master, so that a bad one stops the
    # start with one line instead of a traceback from every worker that fails to boot.
    lab.BROKER_URL.value()
except ValueError as error:
    raise SystemExit(f"lab: bad setting {error}") from None
errorlog = "-"
pidfile = lab.GUNICORN_PIDFILE.value() or None
# gunicorn 27's control socket lives in ~/.gunicorn and is shared by every instance of a user.
control_socket_disable = True
forwarded_allow_ips = lab.GUNICORN_FORWARDED_ALLOW_IPS.value()


# LAB_RESTART_ON_LIMIT (compose): a container that hit its memory or pids limit stops with this
# status, which its `restart: on-failure` policy answers by starting it again. EX_TEMPFAIL: the
# failure passes, a retry (the restart) is the cure; gunicorn's own statuses are 3 and 4.
LIMIT_HIT_EXIT = os.EX_TEMPFAIL
LIMIT_HIT_STOPS = "stopping for the engine to restart the container"
# How often each worker reads the cgroup's counters: two small files, so a hit is seen within this.
LIMIT_POLL_S = 1.0
# The kernel's counts when this master started: a rise since then is a limit hit in this run.
limit_hits_at_start = cgrouplimits.hits() if lab.RESTART_ON_LIMIT.value() else None
# Set once the master has said why it halts (child_exit), so that on_exit does not say it again.
limit_hit_told = False


def _remove_partial_uploads(server, pattern: str, whose: str) -> None:
    for path in lab.UPLOAD_DIR.value().glob(pattern):
        path.unlink(missing_ok=True)
        server.log.warning("removed %s left by %s", path.name, whose)


def on_starting(server):
    # A container the engine starts again keeps its host name: a temp file with it was left by
    # the run before, killed whole (an OOM kill of its master, a SIGKILL), when no master was left
    # to clean up after its workers. Only there (LAB_RESTART_ON_LIMIT): natively a second master
    # of the same host may be serving (USR2), its uploads in flight.
    if limit_hits_at_start is not None:
        _remove_partial_uploads(
            server, f"{lab.TEMP_PREFIX}{socket.gethostname()}-*", "an earlier run of this container"
        )


def child_exit(server, worker):
    # A worker killed mid-upload (SIGKILL, OOM, timeout) cannot discard its temp file: the
    # master removes it when it reaps the worker.
    _remove_partial_uploads(
        server, f"{lab.temp_prefix(socket.gethostname(), worker.pid)}*", f"worker {worker.pid}"
    )
    # A worker that ends while gunicorn is not stopping (its listeners are closed first) and the
    # kernel's counters risen: the OOM killer took it. The whole container stops, gracefully (the
    # other workers finish what they have), with the status the restart policy answers; raised
    # here, as gunicorn halts for a worker that failed to boot, before a replacement is forked.
    global limit_hit_told
    if limit_hits_at_start is not None and server.LISTENERS:
        hit = cgrouplimits.hit_since(limit_hits_at_start)
        if hit:
            limit_hit_told = True
            raise HaltServer(f"lab: {hit}; {LIMIT_HIT_STOPS}", LIMIT_HIT_EXIT)


def on_exit(server):
    # A hit that killed no worker (the OOM killer took another process of the container, a fork or
    # thread was refused): a worker saw it and sent this master SIGTERM (post_worker_init), which
    # stops gunicorn the usual way, listeners first, with status 0; the status becomes 75 here
    # (SystemExit from this hook is gunicorn's exit, halt() calls it last).
    if limit_hits_at_start is not None and not limit_hit_told:
        hit = cgrouplimits.hit_since(limit_hits_at_start)
        if hit:
            server.log.error("lab: %s; %s", hit, LIMIT_HIT_STOPS)
            raise SystemExit(LIMIT_HIT_EXIT)


def post_worker_init(worker):
    # Imported here, in the worker, after gevent's patching.
    from labapp import chat
    from labapp.middleware import CloseWhenStopping
    from labapp.views.websockets import close_all_going_away

    # This worker's chat relay: one greenlet subscribed to the broker (labapp.chat).
    chat.room_of(worker.wsgi).start()

    # The worker's servers (gevent's), to stop accepting the moment it is told to stop: gunicorn
    # closes them only at its loop's next tick, up to a second later, and the websocket clients
    # sent away below would reconnect to this worker, to be sent away again. Their connections
    # wait in the shared listen backlog until a new worker takes them.
    servers = []
    if getattr(worker, "server_class", None) is not None:

        class StopsAccepting(worker.server_class):
            def start(self):
                super().start()
                servers.append(self)

        worker.server_class = StopsAccepting

    def handle_exit(sig, frame):
        # On SIGTERM (graceful stop, also what HUP sends old workers) the app closes each keep-alive
        # connection after its response and every websocket with 1001 at once, so nothing is still
        # in flight when graceful_timeout runs out (labapp.middleware.CloseWhenStopping,
        # labapp.views.websockets.going_away_on_shutdown).
        for server in servers:
            server.stop_accepting()
        CloseWhenStopping.stop()
        close_all_going_away()
        worker.handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, handle_exit)

    if limit_hits_at_start is not None:
        import gevent

        gevent.spawn(_stop_the_master_on_a_limit_hit, worker)


def _stop_the_master_on_a_limit_hit(worker) -> None:
    # What the master cannot see on its own (it has no timer to hang a check on): a limit hit
    # that killed no worker. The master is told to stop (SIGTERM): it closes the listening socket
    # first, so nginx's connects are refused and retried on another replica at once, then stops
    # every worker gracefully, this one included (on_exit sets the status). Were the workers to
    # stop on their own, the master would keep the socket open meanwhile, and connections queued
    # in its backlog would be reset seconds later, too old for nginx to retry (measured: 502s).
    import gevent

    while worker.alive:
        gevent.sleep(LIMIT_POLL_S)
        hit = cgrouplimits.hit_since(limit_hits_at_start)
        if hit:
            worker.log.error("lab: %s; worker %s asks the master to stop", hit, worker.pid)
            os.kill(worker.ppid, signal.SIGTERM)
            return
