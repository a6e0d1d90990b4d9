"""nginx in native mode: the system's binary, and the environment scripts/nginx-ctl.sh (the
renderer and driver both modes share) renders the config with. Compose mode passes the same
variables from compose.yaml's nginx service."""

from __future__ import annotations

import functools
import getpass
import os
import shutil
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

import labsettings

from . import paths

INSTALL_HINT = (
    "nginx is not installed. Install it, then run this again:\n"
    "  Debian/Ubuntu: sudo apt-get install -y nginx-light   (or nginx)\n"
    "  Fedora:        sudo dnf install -y nginx\n"
    "  macOS:         brew install nginx\n"
    "Only the binary is used: the lab runs it as you, with everything under .lab/."
)
CTL = paths.SCRIPTS / "nginx-ctl.sh"


def nginx_binary() -> str | None:
    # Debian puts nginx in /usr/sbin, which is not on a normal user's PATH.
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def loopback_listen(port: int) -> str:
    """Natively nginx listens on loopback only (not on every interface), on ::1 too when the
    host has IPv6: the certificate is valid for [::1] and a container without IPv6 never sees this."""
    return f"127.0.0.1:{port} [::1]:{port}" if ipv6_loopback() else f"127.0.0.1:{port}"


@functools.cache
def nginx_version() -> tuple[int, ...]:
    """The system's nginx version (`nginx -v`), (0,) without one."""
    binary = nginx_binary()
    if binary is None:
        return (0,)
    banner = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    version = banner.rpartition("/")[2].split()[0] if "/" in banner else "0"
    return tuple(int(part) for part in version.split(".") if part.isdigit())


@functools.cache
def nginx_has_http3() -> bool:
    """Whether the system's nginx was built with the HTTP/3 module (`nginx -V`)."""
    binary = nginx_binary()
    if binary is None:
        return False
    return "--with-http_v3_module" in subprocess.run([binary, "-V"], capture_output=True, text=True).stderr


def socketio_ports() -> list[int]:
    """The native workers' own /socket.io/ ports (labapp/sioslots.py): one per gunicorn worker,
    right above the app's port."""
    first = labsettings.APP_PORT.value() + 1
    return [first + i for i in range(labsettings.GUNICORN_WORKERS.value())]


def socketio_slot_re() -> str:
    """What a native worker's X-Lab-Socketio-Slot may say (snippets/socketio-map.conf)."""
    ports = "|".join(str(port) for port in socketio_ports())
    return rf"127\.0\.0\.1:({ports})"


def native_env() -> dict[str, str]:
    """Every input of nginx-ctl.sh for a native stack, from the settings in the environment."""
    binary = nginx_binary()
    if binary is None:
        raise SystemExit(INSTALL_HINT)
    https, http = labsettings.HTTPS_PORT.value(), labsettings.HTTP_PORT.value()
    return {
        **os.environ,
        "LAB_NGINX_BIN": binary,
        "LAB_NGINX_SRC": str(paths.NGINX_SRC),
        "LAB_NGINX_PREFIX": str(paths.NGINX_PREFIX),
        "LAB_UPSTREAM": f"127.0.0.1:{labsettings.APP_PORT.value()}",
        "LAB_SOCKETIO_SLOT_RE": socketio_slot_re(),
        "LAB_SOCKETIO_SLOTS": " ".join(f"server 127.0.0.1:{port};" for port in socketio_ports()),
        # The keepalive pool; never resolved through DNS natively (see snippets/upstream.conf).
        "LAB_PROXY_TARGET": "lab_app",
        # A new Socket.IO session: the app thrice, so a refused handshake is retried (nginx.conf).
        "LAB_SOCKETIO_NEW_TARGET": "lab_sio_new",
        "LAB_RESOLVER": "127.0.0.1",
        "LAB_HTTPS_PORT": str(https),
        "LAB_HTTP_PORT": str(http),
        "LAB_LISTEN_HTTPS": loopback_listen(https),
        "LAB_LISTEN_HTTP": loopback_listen(http),
        "LAB_MAX_UPLOAD_MB": str(labsettings.MAX_UPLOAD_MB.value()),
        "LAB_MAX_HEADER_KIB": str(labsettings.MAX_HEADER_KIB.value()),
        "LAB_BEHIND_BALANCER_PORT": str(labsettings.behind_balancer_port()),
        "LAB_BALANCER_PORT": str(labsettings.BALANCER_PORT.value()),
        "LAB_BALANCER_HTTP_PORT": str(labsettings.BALANCER_HTTP_PORT.value()),
        "LAB_HSTS_MAX_AGE": str(labsettings.HSTS_MAX_AGE.value()),
        **{s.name: str(s.value()) for s in labsettings.CLIENT_LIMITS},
        "LAB_UPLOAD_DIR": str(paths.UPLOADS),
        "LAB_CERT_DIR": str(paths.CERTS),
        # Only root's nginx switches its workers' user (to the same user here: they serve .lab/).
        "LAB_NGINX_USER": getpass.getuser() if os.geteuid() == 0 else "",
        "LAB_SCENARIO": labsettings.SCENARIO.value(),
    }


def reload_env(environ: Mapping[str, str], started: Mapping[str, str]) -> dict[str, str]:
    """The started stack's values (ports, upstream, upload limit...), so a reload from another
    shell cannot move them; only the nginx source dir and an explicit LAB_SCENARIO are taken now."""
    env = {**environ, **started, "LAB_NGINX_SRC": str(paths.NGINX_SRC)}
    if labsettings.SCENARIO.is_set(environ):
        env[labsettings.SCENARIO.name] = labsettings.SCENARIO.value(environ)
    return env


def run(
    *args: str, env: Mapping[str, str], check: bool = True, capture: bool = False
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(CTL), *args], env=dict(env), check=check, text=True, capture_output=capture
    )


def render_baseline(out: Path) -> None:
    """The lab's baseline nginx config (no scenario, HSTS on) rendered into ``out``: what gixy
    reads (`make lint`) and the clean config mutation testing starts from."""
    env = {**native_env(), "LAB_SCENARIO": "", "LAB_HSTS_MAX_AGE": "31536000"}
    subprocess.run(["sh", str(paths.SCRIPTS / "nginx-ctl.sh"), "render", str(out)], env=env, check=True)
