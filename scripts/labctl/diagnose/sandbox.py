"""Running an adapted config: a certificate for its names, `nginx -t` (its message mapped back to
the user's file and line), the lab's app where the config proxies, nginx in the foreground, and
everything stopped afterwards. Everything it writes is under .lab/check/.

Where the machine allows it (Linux, root or unprivileged user namespaces) the whole check runs
in a private network namespace (``unshare --net``): its own loopback, where ports 80 and 443 are
free, so the config's listen ports and upstream addresses stay as the user wrote them.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import native, nginx, paths
from . import refusals
from .adapt import Plan, Where
from .config import ConfigError

BASE = paths.LAB / "check"
IN_NAMESPACE = "LAB_CHECK_IN_NAMESPACE"  # set by the re-exec inside `unshare`
READY_S = 15.0


def namespace_command() -> list[str] | None:
    """How to re-run a command in a private network namespace here, or None where it cannot."""
    unshare = shutil.which("unshare")
    if unshare is None or os.environ.get(IN_NAMESPACE):
        return None
    for command in ([unshare, "--net"], [unshare, "--net", "--map-root-user"]):
        if subprocess.run([*command, "true"], capture_output=True).returncode == 0:
            return command
    return None


def loopback_up() -> None:
    """A new network namespace starts with loopback down: bring it up (SIOCSIFFLAGS, IFF_UP)."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def where(
    in_namespace: bool, https_port: int, http_port: int, app_port: int, base: Path | None = None
) -> Where:
    base = base or BASE
    return Where(base, base / "certs", in_namespace, https_port, http_port, app_port)


def prepare(place: Where) -> None:
    shutil.rmtree(place.base, ignore_errors=True)
    for directory in (place.certs, place.logs, place.run, place.www, place.tmp, place.base / "uploads"):
        directory.mkdir(parents=True, exist_ok=True)


def san_for(name: str) -> str:
    """A subjectAltName entry: an IP address (`server_name 192.168.1.15`) as one, else a DNS name."""
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return f"DNS:{name}"
    return f"IP:{name.strip('[]')}"


def lab_ca() -> None:
    """The lab's CA (made once, kept): before runs side by side, so none of them makes it at once."""
    subprocess.run(["sh", str(paths.SCRIPTS / "certs.sh"), str(paths.CERTS)], check=True, capture_output=True)


def mint_certificate(names: list[str], out: Path) -> None:
    """A server certificate for ``names`` (and 127.0.0.1, ::1), signed by the lab's CA, so the
    probes verify TLS for the config's own server_name."""
    lab_ca()
    sans = ",".join([*(san_for(name) for name in names), "IP:127.0.0.1", "IP:::1"])
    extensions = out / "server.ext"
    extensions.write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        f"extendedKeyUsage=serverAuth\nsubjectAltName={sans}\n"
    )
    key, csr, cert = out / "server-key.pem", out / "server.csr", out / "server.pem"
    ca_key = paths.CERTS / "ca-key.pem"
    subject = f"/O=proxylab check/CN={names[0]}"
    openssl = [
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
        ["openssl", "req", "-new", "-key", str(key), "-subj", subject, "-out", str(csr)],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(paths.CA), "-CAkey", str(ca_key),
         "-CAcreateserial", "-CAserial", str(out / "ca.srl"), "-days", "2", "-sha256",
         "-extfile", str(extensions), "-out", str(cert)],
    ]  # fmt: skip
    for command in openssl:
        subprocess.run(command, check=True, capture_output=True)


def _nginx(place: Where) -> list[str]:
    binary = nginx.nginx_binary()
    if binary is None:
        raise SystemExit(nginx.INSTALL_HINT)
    return [
        binary,
        "-p",
        f"{place.base}/",
        "-e",
        str(place.logs / "error.log"),
        "-c",
        str(place.base / "nginx.conf"),
    ]


def user_message(text: str, plan: Plan, place: Where) -> str:
    """nginx's message with the rendered file's lines replaced by the user's file and line."""
    rendered = str(place.base / "nginx.conf")

    def back(match: re.Match[str]) -> str:
        origin = plan.origin.get(int(match.group(1)))
        return f"{origin[0]}:{origin[1]}" if origin else f"(the lab's wrapper, line {match.group(1)})"

    # "configuration file <ours> test failed" names the rendered copy, not the user's file.
    lines = [line for line in text.splitlines() if f"configuration file {rendered}" not in line]
    return re.sub(re.escape(rendered) + r":(\d+)", back, "\n".join(lines))


def nginx_test(plan: Plan, place: Where) -> list[str]:
    """`nginx -t` of the adapted config: its warnings (mapped) or ConfigError with its message."""
    (place.base / "nginx.conf").write_text(plan.text)
    result = subprocess.run([*_nginx(place), "-t", "-q"], capture_output=True, text=True)
    message = user_message(result.stderr.strip(), plan, place)
    if result.returncode != 0:
        raise ConfigError(refusals.with_fixes(message) if message else "nginx -t failed")
    return [line for line in message.splitlines() if line]


def _answers(bind: str) -> bool:
    """gunicorn answers /healthz at ``bind`` (host:port or unix:/path)."""
    address: str | tuple[str, int]
    if bind.startswith("unix:"):
        family, address = socket.AF_UNIX, bind[5:]
    else:
        family, address = (socket.AF_INET6 if bind.startswith("[") else socket.AF_INET), _host_port(bind)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(address)
            sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return sock.recv(12).startswith(b"HTTP/1.")
    except OSError:
        return False


def _host_port(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def _listening(port: int) -> bool:
    """Something accepts on ``port`` at 127.0.0.1 or ::1 (`listen [::]:443` is IPv6 only)."""
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family) as sock:
            sock.settimeout(1)
            try:
                if sock.connect_ex((host, port)) == 0:
                    return True
            except OSError:  # no IPv6 here
                continue
    return False


def _wait(what: str, ready: Callable[[], bool], alive: Callable[[], bool]) -> None:
    end = time.monotonic() + READY_S
    while time.monotonic() < end:
        if ready():
            return
        if not alive():
            raise RuntimeError(f"{what} exited")
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {READY_S:.0f} s")


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running(
    plan: Plan, place: Where, app_command: list[str] | None = None, socketio_path: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The lab's app (or ``app_command``, a gunicorn command given a --bind per address) on every
    address the config proxies to, Socket.IO at ``socketio_path`` (the config's), nginx with the
    config (given to the block: its master); both stopped (process groups, even after a failure)."""
    app_env = {
        **native.app_env(),
        "GUNICORN_BIND": ",".join(plan.app_binds),
        "GUNICORN_PIDFILE": "",
        # One worker and its own chat room: the sandbox runs no broker, and a config is judged by
        # what nginx does, not by how the app spreads its work.
        "GUNICORN_WORKERS": "1",
        "LAB_FIX_BROKER": "0",
        "LAB_UPLOAD_DIR": str(place.base / "uploads"),
        # A user's config has no internal location for the lab's X-Accel downloads.
        "LAB_X_ACCEL": "0",
        # Bodies read as a stock Flask app under gevent reads them, so a config that makes them
        # hang (connection-upgrade-always) shows: this one fix of the lab's app would hide it.
        "LAB_FIX_UPGRADE_INPUT": "0",
        "LAB_SCENARIO": "",
        # A websocket handshake on any path is an echo: the config's own websocket locations
        # (/socket.io, /api/live/) are probed, not only the lab's /ws/*.
        "LAB_WS_ANY_PATH": "1",
    }
    if socketio_path:
        app_env["LAB_SOCKETIO_PATH"] = socketio_path
    if app_command is None:
        app = native.start_gunicorn(app_env, place.logs / "app.log")
    else:
        binds = [arg for bind in plan.app_binds for arg in ("--bind", bind)]
        app_log = (place.logs / "app.log").open("ab")
        app = subprocess.Popen(
            [*app_command, *binds],
            env=app_env,
            stdout=app_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server: subprocess.Popen[bytes] | None = None
    try:
        _wait("the app", lambda: all(_answers(b) for b in plan.app_binds), lambda: app.poll() is None)
        nginx_log = (place.logs / "nginx.out").open("ab")
        server = subprocess.Popen(
            [*_nginx(place), "-g", "daemon off;"],
            stdout=nginx_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        ports = sorted(set(plan.ports.values()))
        _wait(
            "nginx",
            lambda: all(_listening(p) for p in ports),
            lambda: server is not None and server.poll() is None,
        )
        yield server
    finally:
        if server is not None:
            _stop(server, signal.SIGTERM)
        _stop(app, signal.SIGQUIT)
