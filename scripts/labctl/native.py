"""Native mode: the system's nginx (as any user, everything under .lab/) in front of gunicorn
from .venv on loopback, with the system's redis-server as the chat's broker (labctl.broker).
Same nginx files and same URLs as compose mode; starts in seconds."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

import labsettings

from . import broker, nginx, paths, procs, runstate
from .endpoints import print_ready
from .health import wait_healthy
from .venv import ensure_venv

MODE = "native"
UP, DOWN = "make native-up", "make native-down"

GUNICORN_PID = paths.RUN / "gunicorn.pid"
NGINX_PID = paths.NGINX_PREFIX / "run" / "nginx.pid"
APP_LOG = paths.LOGS / "app.log"
NGINX_ACCESS_LOG = paths.NGINX_PREFIX / "logs" / "access.log"
NGINX_ERROR_LOG = paths.NGINX_PREFIX / "logs" / "error.log"


def _raise_fd_limit() -> None:
    # For the clients this process runs (the bench's websockets, the suites pytest runs from here):
    # nginx and gunicorn raise their own (nginx-ctl.sh, gunicorn.conf.py), in compose mode too.
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


def app_env() -> dict[str, str]:
    return {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{labsettings.APP_PORT.value()}",
        "LAB_SOCKETIO_PORT": str(nginx.socketio_ports()[0]),
        "GUNICORN_PIDFILE": str(GUNICORN_PID),
        "LAB_UPLOAD_DIR": str(paths.UPLOADS),
        "LAB_VERDICT_FILE": str(paths.RUN / "verdict.json"),  # labctl.verdict writes it
        "LAB_SCENARIOS_DIR": str(paths.SCENARIOS),
        "LAB_SCENARIO": labsettings.SCENARIO.value(),
        "LAB_BROKER_URL": broker.url(),
        "LAB_SELF_CA": str(paths.CA),
        "PYTHONUNBUFFERED": "1",
    }


def gunicorn_command() -> list[str]:
    return [
        str(paths.VENV / "bin" / "gunicorn"),
        "--config",
        str(paths.APP_DIR / "gunicorn.conf.py"),
        "--chdir",
        str(paths.APP_DIR),
        "labapp:create_app()",
    ]


def start_gunicorn(env: dict[str, str] | None = None, log_path: Path = APP_LOG) -> subprocess.Popen[bytes]:
    """The lab's app under gunicorn (its own session, so it can be stopped as a group); by
    default as the native stack runs it, else with ``env`` (`lab check` binds where a config says)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    return subprocess.Popen(
        gunicorn_command(),
        env=env or app_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


def _nginx_pid() -> int | None:
    return procs.pid_from_file(NGINX_PID, str(paths.NGINX_PREFIX))


def _gunicorn_pid() -> int | None:
    return procs.pid_from_file(GUNICORN_PID, str(paths.APP_DIR / "gunicorn.conf.py"))


def up() -> None:
    """Start the stack; if it runs with these same settings but a part of it is gone (a killed
    redis-server, say), start only that part and keep the others running. Otherwise (re)start it
    all: running it again restarts nginx and gunicorn, e.g. after an edit of the app."""
    if (scenario := labsettings.SCENARIO.value()) and not (paths.SCENARIOS / scenario).is_dir():
        raise SystemExit(f"lab: no scenario named {scenario!r} (see nginx/scenarios/)")
    nginx_env = nginx.native_env()  # fails early, with install instructions, when nginx is missing
    ensure_venv()
    https, http = labsettings.HTTPS_PORT.value(), labsettings.HTTP_PORT.value()
    app_port = labsettings.APP_PORT.value()
    settings = {**nginx_env, "LAB_APP_PORT": str(app_port)}
    if runstate.started_with(MODE, settings) and _start_missing(nginx_env, app_port):
        return
    down(quiet=True)
    busy = [p for p in (https, http, app_port, *nginx.socketio_ports()) if not _port_free(p)]
    if busy:
        raise SystemExit(
            f"lab: port(s) {busy} already in use on 127.0.0.1 (a compose stack? `make down`), "
            "or choose others with LAB_HTTPS_PORT / LAB_HTTP_PORT / LAB_APP_PORT"
        )
    for directory in (paths.RUN, paths.UPLOADS, paths.LOGS):
        directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sh", str(paths.SCRIPTS / "certs.sh"), str(paths.CERTS)], check=True)

    started = time.monotonic()
    try:
        _start(PARTS, nginx_env, app_port)
        runstate.record(MODE, settings)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        down(quiet=True)
        raise SystemExit(
            f"lab: native stack failed to start: {error}\n  logs: {paths.LOGS}, {NGINX_ERROR_LOG}"
        ) from error
    where = f"gunicorn on 127.0.0.1:{app_port}, redis-server on {broker.SOCKET.relative_to(paths.ROOT)}"
    print_ready(f"native (nginx + {where})", time.monotonic() - started)


# The parts of the stack, in the order they start: the broker first, so that the workers find it
# at once (they would retry, and chat would wait for it); nginx once the app answers.
PARTS = ("redis-server", "gunicorn", "nginx")


def _start(parts: Collection[str], nginx_env: dict[str, str], app_port: int) -> None:
    """Start ``parts`` of the stack, in PARTS' order, then wait until nginx answers over TLS."""
    _raise_fd_limit()
    if "redis-server" in parts:
        broker.start()
    if "gunicorn" in parts:
        app = start_gunicorn()
        wait_healthy(f"http://127.0.0.1:{app_port}/healthz", None, 30, lambda: app.poll() is None)
    if "nginx" in parts:
        nginx.run("start", env=nginx_env)
    wait_healthy(f"https://localhost:{labsettings.HTTPS_PORT.value()}/healthz", paths.CA, 15)


def _start_missing(nginx_env: dict[str, str], app_port: int) -> bool:
    """Start the parts of the running stack that are gone, keeping the others running; False when
    none is gone, or all are (then up() starts everything)."""
    parts = {"redis-server": broker.running(), "gunicorn": _gunicorn_pid(), "nginx": _nginx_pid()}
    missing = [name for name, pid in parts.items() if pid is None]
    if not missing or len(missing) == len(parts):
        return False
    try:
        _start(missing, nginx_env, app_port)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        what = ", ".join(missing)
        raise SystemExit(f"lab: starting {what} failed: {error}\n  logs: {paths.LOGS}") from error
    kept = [name for name in parts if name not in missing]
    print(
        f"lab: native stack: started {', '.join(missing)}; {', '.join(kept)} kept running "
        "(`make native-up` again restarts them too)"
    )
    return True


def down(quiet: bool = False) -> None:
    nginx_pid, app_pid = _nginx_pid(), _gunicorn_pid()
    # The fast shutdowns: TERM for nginx, QUIT for gunicorn (its TERM is the graceful stop, which
    # waits graceful_timeout for open websockets); the broker last, once nothing uses it.
    procs.stop(nginx_pid, signal.SIGTERM, 10)
    procs.stop(app_pid, signal.SIGQUIT, 15)
    had_broker = broker.stop()
    runstate.clear(MODE)
    if not quiet:
        ran = nginx_pid or app_pid or had_broker
        print("lab: native stack stopped" if ran else "lab: no native stack was running")


def deploy(note: Callable[[str], None]) -> None:
    """Replace every gunicorn worker with gunicorn's own graceful reload: HUP makes the master
    re-read gunicorn.conf.py, start new workers (loading the app's code afresh: nothing is
    preloaded) and SIGTERM the old ones, which finish their requests (LAB_LONGEST_REQUEST_S),
    close their websockets and exit within GUNICORN_GRACEFUL_TIMEOUT. The listening socket stays
    the master's throughout, so no connection is refused or reset. Returns once every old worker
    has exited and the new ones answer."""
    master = _gunicorn_pid()
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
    return {
        "nginx access": NGINX_ACCESS_LOG,
        "nginx error": NGINX_ERROR_LOG,
        "app": APP_LOG,
        "redis": broker.LOG,
    }


def log_tail(lines: int = 60) -> dict[str, str]:
    """The last lines of each log file, by name."""
    tails = {}
    for name, path in log_files().items():
        try:
            with open(path, errors="replace") as handle:
                tails[name] = "".join(deque(handle, maxlen=lines))
        except OSError as error:
            tails[name] = f"({error})"
    return tails


@contextlib.contextmanager
def logs_written() -> Iterator[dict[str, str]]:
    """What each log file got during the block, by name (filled when it ends)."""
    files = log_files()
    start = {name: path.stat().st_size if path.exists() else 0 for name, path in files.items()}
    written: dict[str, str] = {}
    yield written
    for name, path in files.items():
        try:
            with path.open("rb") as handle:
                handle.seek(start[name])
                written[name] = handle.read().decode(errors="replace")
        except OSError as error:
            written[name] = f"({error})"


def nginx_container() -> None:
    """None: nginx runs on the host."""
    return None


def nginx_source() -> Path:
    """LAB_NGINX_SRC (a copy, in tests), else the checkout's nginx/."""
    return paths.NGINX_SRC


def nginx_has_http3() -> bool:
    return nginx.nginx_has_http3()


def process_groups() -> dict[str, list[int]]:
    """nginx's workers and gunicorn's, the children of their masters."""
    masters = {"nginx": _nginx_pid(), "app": _gunicorn_pid()}
    return {name: sorted(procs.children(pid)) if pid else [] for name, pid in masters.items()}
