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

# The lab's setting declarations sit beside this file (and beside it in the image's /app).
sys.path.insert(0, str(Path(__file__).resolve().parent))
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


def child_exit(server, worker):
    # A worker killed mid-upload (SIGKILL, OOM, timeout) cannot discard its temp file: the
    # master removes it when it reaps the worker. The name is labapp.storage.temp_prefix(host,
    # pid); importing the app here would load gevent in the master before the workers patch it.
    # The host is in it because replicas share the volume and their workers have the same pids.
    for path in lab.UPLOAD_DIR.value().glob(f".partial-{socket.gethostname()}-{worker.pid}-*"):
        path.unlink(missing_ok=True)
        server.log.warning("removed %s left by worker %s", path.name, worker.pid)


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
