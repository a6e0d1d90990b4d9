"""The native stack's chat broker: Debian's redis-server, run as you with everything under .lab/.

No TCP port (``port 0``): only this checkout's gunicorn reaches it, through a unix socket under
.lab/run/, so several checkouts (and a system Redis on 6379) never meet. Pub/sub and one id
counter are all it holds: nothing is saved, and a restart loses nothing chat would want back.
Compose runs the same role as its ``redis`` service.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from . import paths, procs

HOME = paths.LAB / "redis"  # its config file and working directory
CONF = HOME / "redis.conf"
PID = paths.RUN / "redis.pid"
SOCKET = paths.RUN / "redis.sock"
LOG = paths.LOGS / "redis.log"
# sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
SOCKET_PATH_MAX = 107
INSTALL_HINT = (
    "redis-server is not installed (the chat's broker). Install it, then run this again:\n"
    "  Debian/Ubuntu: sudo apt-get install -y redis-server   (then `sudo service redis-server stop`:\n"
    "                 the lab runs its own, as you, on a unix socket under .lab/run/)\n"
    "  macOS:         brew install redis"
)


def binary() -> str | None:
    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(p).exists()), None
    )


def url() -> str:
    """LAB_BROKER_URL for the app of the native stack."""
    return f"unix://{SOCKET}"


def config() -> str:
    return "\n".join(
        [
            "# Written by `scripts/lab native-up` (labctl/broker.py): the native stack's chat broker.",
            "port 0",
            f"unixsocket {SOCKET}",
            "unixsocketperm 700",
            f"pidfile {PID}",
            f"logfile {LOG}",
            f"dir {HOME}",
            # Pub/sub and the sender-id counter: nothing worth writing to disk.
            'save ""',
            "appendonly no",
            "daemonize no",
            "",
        ]
    )


def running() -> int | None:
    """The pid of this checkout's redis-server, if it runs."""
    return procs.pid_from_file(PID, str(SOCKET))


def answers(timeout: float = 1.0) -> bool:
    """PING over the socket (an inline command) gets +PONG."""
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(timeout)
            client.connect(str(SOCKET))
            client.sendall(b"PING\r\n")
            return client.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start(deadline_s: float = 10) -> None:
    """Start redis-server and return once it answers; SystemExit with the reason if it cannot."""
    found = binary()
    if found is None:
        raise SystemExit("lab: " + INSTALL_HINT)
    if len(str(SOCKET)) > SOCKET_PATH_MAX:
        raise SystemExit(
            f"lab: the broker's socket path {SOCKET} is longer than a unix socket allows "
            f"({SOCKET_PATH_MAX} bytes): use a checkout with a shorter path"
        )
    for directory in (HOME, paths.RUN, paths.LOGS):
        directory.mkdir(parents=True, exist_ok=True)
    CONF.write_text(config())
    process = subprocess.Popen(
        [found, str(CONF)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=LOG.open("ab"),
        start_new_session=True,
    )
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if answers(timeout=0.5):
            return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    procs.stop(process.pid, signal.SIGTERM, 5)
    tail = LOG.read_text(errors="replace").splitlines()[-5:] if LOG.is_file() else []
    raise SystemExit("lab: redis-server did not start: " + (" | ".join(tail) or f"see {LOG}"))


def stop() -> bool:
    """Stop it (TERM: redis exits at once, nothing to save); whether one was running."""
    pid = running()
    procs.stop(pid, signal.SIGTERM, 10)
    return pid is not None
