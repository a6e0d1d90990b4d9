"""Native-mode calls into scripts/nginx-ctl.sh, the renderer and driver both modes share."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from pathlib import Path

from . import paths

INSTALL_HINT = (
    "nginx is not installed. Install it, then run this again:\n"
    "  Debian/Ubuntu: sudo apt-get install -y nginx-light   (or nginx)\n"
    "  Fedora:        sudo dnf install -y nginx\n"
    "  macOS:         brew install nginx\n"
    "Only the binary is used: the lab runs it as you, with everything under .lab/."
)


def nginx_binary() -> str | None:
    # Debian puts nginx in /usr/sbin, which is not on a normal user's PATH.
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def loopback_listen(port: int) -> str:
    """Natively nginx listens on loopback only (not on every interface), on ::1 too when the
    host has IPv6: the certificate is valid for [::1] and a container without IPv6 never sees this."""
    return f"127.0.0.1:{port} [::1]:{port}" if _ipv6_loopback() else f"127.0.0.1:{port}"


def native_env(scenario: str | None = None) -> dict[str, str]:
    binary = nginx_binary()
    if binary is None:
        raise SystemExit(INSTALL_HINT)
    return {
        **os.environ,
        "LAB_NGINX_BIN": binary,
        "LAB_NGINX_SRC": str(paths.NGINX_SRC),
        "LAB_NGINX_PREFIX": str(paths.NGINX_PREFIX),
        "LAB_UPSTREAM": f"127.0.0.1:{paths.app_port()}",
        # The keepalive pool; never resolved through DNS natively (see snippets/upstream.conf).
        "LAB_PROXY_TARGET": "lab_app",
        "LAB_RESOLVER": "127.0.0.1",
        "LAB_HTTPS_PORT": str(paths.https_port()),
        "LAB_HTTP_PORT": str(paths.http_port()),
        "LAB_LISTEN_HTTPS": loopback_listen(paths.https_port()),
        "LAB_LISTEN_HTTP": loopback_listen(paths.http_port()),
        "LAB_UPLOAD_DIR": str(paths.UPLOADS),
        "LAB_CERT_DIR": str(paths.CERTS),
        "LAB_NGINX_USER": getpass.getuser(),
        "LAB_SCENARIO": paths.scenario() if scenario is None else scenario,
    }


def run(
    *args: str, check: bool = True, capture: bool = False, scenario: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(paths.SCRIPTS / "nginx-ctl.sh"), *args],
        env=native_env(scenario),
        check=check,
        text=True,
        capture_output=capture,
    )
