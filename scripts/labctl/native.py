"""Native mode: the system's nginx (as any user, everything under .lab/) in front of gunicorn
from .venv on loopback. Same nginx files and same URLs as compose mode; starts in seconds."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import labsettings

from . import nginx, paths, procs, runstate
from .endpoints import print_ready
from .health import wait_healthy
from .venv import ensure_venv

MODE = "native"

GUNICORN_PID = paths.RUN / "gunicorn.pid"
NGINX_PID = paths.NGINX_PREFIX / "run" / "nginx.pid"
APP_LOG = paths.LOGS / "app.log"
NGINX_ACCESS_LOG = paths.NGINX_PREFIX / "logs" / "access.log"
NGINX_ERROR_LOG = paths.NGINX_PREFIX / "logs" / "error.log"


def _raise_fd_limit() -> None:
    # Inherited by nginx and gunicorn: thousands of websockets need thousands of descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _read_pid(path: Path, marker: str) -> int | None:
    """The pid in ``path`` if that process is still ours: after a crash or a reboot the number
    may belong to any other process, and down() runs as root in CI."""
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return pid  # no /proc (not Linux): being alive is all we can check
    return pid if marker in command else None


def app_env() -> dict[str, str]:
    return {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{labsettings.APP_PORT.value()}",
        "GUNICORN_PIDFILE": str(GUNICORN_PID),
        "LAB_UPLOAD_DIR": str(paths.UPLOADS),
        "LAB_SCENARIOS_DIR": str(paths.SCENARIOS),
        "LAB_SCENARIO": labsettings.SCENARIO.value(),
        "PYTHONUNBUFFERED": "1",
    }


def start_gunicorn() -> subprocess.Popen[bytes]:
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    log = APP_LOG.open("ab")
    return subprocess.Popen(
        [
            str(paths.VENV / "bin" / "gunicorn"),
            "--config",
            str(paths.APP_DIR / "gunicorn.conf.py"),
            "--chdir",
            str(paths.APP_DIR),
            "labapp:create_app()",
        ],
        env=app_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def up() -> None:
    if (scenario := labsettings.SCENARIO.value()) and not (paths.SCENARIOS / scenario).is_dir():
        raise SystemExit(f"lab: no scenario named {scenario!r} (see nginx/scenarios/)")
    nginx_env = nginx.native_env()  # fails early, with install instructions, when nginx is missing
    ensure_venv()
    down(quiet=True)
    https, http = labsettings.HTTPS_PORT.value(), labsettings.HTTP_PORT.value()
    app_port = labsettings.APP_PORT.value()
    busy = [p for p in (https, http, app_port) if not _port_free(p)]
    if busy:
        raise SystemExit(
            f"lab: port(s) {busy} already in use on 127.0.0.1 (a compose stack? `make down`), "
            "or choose others with LAB_HTTPS_PORT / LAB_HTTP_PORT / LAB_APP_PORT"
        )
    for directory in (paths.RUN, paths.UPLOADS, paths.LOGS):
        directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sh", str(paths.SCRIPTS / "certs.sh"), str(paths.CERTS)], check=True)
    _raise_fd_limit()

    started = time.monotonic()
    app = start_gunicorn()
    try:
        wait_healthy(f"http://127.0.0.1:{app_port}/healthz", None, 30, lambda: app.poll() is None)
        nginx.run("start", env=nginx_env)
        runstate.record(MODE, {**nginx_env, "LAB_APP_PORT": str(app_port)})
        wait_healthy(f"https://localhost:{https}/healthz", paths.CA, 15)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        down(quiet=True)
        raise SystemExit(
            f"lab: native stack failed to start: {error}\n  logs: {paths.LOGS}, {NGINX_ERROR_LOG}"
        ) from error
    print_ready(f"native (nginx + gunicorn on 127.0.0.1:{app_port})", time.monotonic() - started)


def _stop(pid: int | None, sig: signal.Signals, wait_s: float) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        if _exited(pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):  # it may exit between the last look and now
        os.kill(pid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    try:
        # Reap it when this process started it (up() then down() in one process, as `lab test`
        # and the browser suite do): a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    except ChildProcessError:
        pass  # not our child: its own parent reaps it, maybe much later (`lab test` runs pytest)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return procs.is_zombie(pid)


def down(quiet: bool = False) -> None:
    nginx_pid = _read_pid(NGINX_PID, str(paths.NGINX_PREFIX))
    app_pid = _read_pid(GUNICORN_PID, str(paths.APP_DIR / "gunicorn.conf.py"))
    # The fast shutdowns: TERM for nginx, QUIT for gunicorn (its TERM is the graceful stop, which
    # waits graceful_timeout for open websockets).
    _stop(nginx_pid, signal.SIGTERM, 10)
    _stop(app_pid, signal.SIGQUIT, 15)
    runstate.clear(MODE)
    if not quiet:
        print("lab: native stack stopped" if nginx_pid or app_pid else "lab: no native stack was running")


def deploy(note: Callable[[str], None]) -> None:
    """Replace every gunicorn worker with gunicorn's own graceful reload: HUP makes the master
    re-read gunicorn.conf.py, start new workers (loading the app's code afresh: nothing is
    preloaded) and SIGTERM the old ones, which finish their requests (LAB_LONGEST_REQUEST_S),
    close their websockets and exit within GUNICORN_GRACEFUL_TIMEOUT. The listening socket stays
    the master's throughout, so no connection is refused or reset. Returns once every old worker
    has exited and the new ones answer."""
    master = _read_pid(GUNICORN_PID, str(paths.APP_DIR / "gunicorn.conf.py"))
    if master is None:
        raise SystemExit("lab: no native gunicorn is running here: `make native-up` first")
    old = procs.children(master)
    note(f"kill -HUP {master}: new workers start, the old {len(old)} stop gracefully")
    os.kill(master, signal.SIGHUP)
    end = time.monotonic() + labsettings.GUNICORN_GRACEFUL_TIMEOUT.value(runstate.read()) + 30
    while time.monotonic() < end:
        current = procs.children(master)
        if current and not current & old:
            wait_healthy(f"http://127.0.0.1:{labsettings.APP_PORT.value(runstate.read())}/healthz", None, 10)
            note(f"old workers {sorted(old)} gone, new {sorted(current)} serving")
            return
        time.sleep(0.05)
    raise SystemExit(f"lab: gunicorn's old workers {sorted(old & procs.children(master))} did not exit")


def running_env() -> dict[str, str]:
    """What nginx-ctl.sh renders with for the running stack: what it was started with."""
    started = runstate.read()
    return nginx.reload_env(os.environ, started) if started else nginx.native_env()


def reload() -> int:
    env = running_env()
    print(f"lab: reloading nginx with config: {env['LAB_SCENARIO'] or 'baseline'}", flush=True)
    return nginx.run("reload", env=env, check=False).returncode


def dump_config() -> str:
    result = nginx.run("dump", env=running_env(), check=False, capture=True)
    return result.stdout + result.stderr


def log_files() -> dict[str, Path]:
    return {"nginx access": NGINX_ACCESS_LOG, "nginx error": NGINX_ERROR_LOG, "app": APP_LOG}
