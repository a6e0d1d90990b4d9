"""gunicorn settings, every one from the environment (GUNICORN_*).

A scenario may ship an ``app.env``: with LAB_SCENARIO set, its values are applied here,
before anything below reads the environment, so the same file works in compose and native mode.
"""

import os
import signal
from pathlib import Path


def _apply_scenario_env() -> None:
    name = os.environ.get("LAB_SCENARIO", "").strip()
    if not name:
        return
    scenarios = Path(os.environ.get("LAB_SCENARIOS_DIR", "/lab/scenarios"))
    env_file = scenarios / name / "app.env"
    if not env_file.is_file():
        return
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            os.environ[key.strip()] = value.strip()


_apply_scenario_env()

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000").split(",")
workers = int(os.environ.get("GUNICORN_WORKERS", "1"))
worker_class = os.environ.get(
    "GUNICORN_WORKER_CLASS", "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
)
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "10000"))
# For async workers this is only the heartbeat deadline; /slow and websockets are not bounded by it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))
# Longer than nginx's upstream keepalive_timeout, so nginx always closes idle pooled sockets first.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "75"))
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
errorlog = "-"
pidfile = os.environ.get("GUNICORN_PIDFILE") or None
# gunicorn 27's control socket lives in ~/.gunicorn and is shared by every instance of a user.
control_socket_disable = True
# Trust X-Forwarded-* only from nginx; matters for the sync/gevent workers of some scenarios.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    # A worker killed mid-upload (SIGKILL, OOM, timeout) cannot discard its temp file: the
    # master removes it when it reaps the worker. The name is labapp.uploads.temp_prefix(pid);
    # importing the app here would load gevent in the master before the workers patch it.
    upload_dir = Path(os.environ.get("LAB_UPLOAD_DIR", "/srv/uploads"))
    for path in upload_dir.glob(f".partial-{worker.pid}-*"):
        path.unlink(missing_ok=True)
        server.log.warning("removed %s left by worker %s", path.name, worker.pid)


def post_worker_init(worker):
    # On SIGTERM (graceful stop, also what HUP sends old workers) the app closes each keep-alive
    # connection after its response, so nothing is still in flight when graceful_timeout runs
    # out (labapp.middleware.CloseWhenStopping). Imported here, in the worker, after gevent's patching.
    from labapp.middleware import CloseWhenStopping

    def handle_exit(sig, frame):
        CloseWhenStopping.stop()
        worker.handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, handle_exit)
