"""Where things live, and the settings every command shares (all overridable from the env)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / ".lab"
CERTS = LAB / "certs"
CA = CERTS / "ca.pem"
LOGS = LAB / "logs"
RUN = LAB / "run"
UPLOADS = LAB / "uploads"
NGINX_PREFIX = LAB / "nginx"
MODE_FILE = RUN / "mode"
# The LAB_* values the running native stack's nginx config was rendered with (`make reload`).
STARTED_ENV = RUN / "nginx-env.json"
# Overridable so a test (or a user) can render an edited copy without touching nginx/.
NGINX_SRC = Path(os.environ.get("LAB_NGINX_SRC", str(ROOT / "nginx")))
SCENARIOS = NGINX_SRC / "scenarios"
APP_DIR = ROOT / "services" / "app"
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
SCRIPTS = ROOT / "scripts"


def https_port() -> int:
    return int(os.environ.get("LAB_HTTPS_PORT", "8443"))


def http_port() -> int:
    return int(os.environ.get("LAB_HTTP_PORT", "8080"))


def app_port() -> int:
    return int(os.environ.get("LAB_APP_PORT", "8000"))


def lab_url() -> str:
    return os.environ.get("LAB_URL", f"https://localhost:{https_port()}")


def lab_ca() -> Path:
    return Path(os.environ.get("LAB_CA", str(CA)))


def scenario() -> str:
    return os.environ.get("LAB_SCENARIO", "").strip()


def running_mode() -> str | None:
    """'native' or 'compose' while a stack started by this checkout is up: `make native-up` and
    `make up` leave a mode file; a compose stack started with plain `docker compose up` is found
    by its containers' labels (this project, this checkout)."""
    if MODE_FILE.is_file():
        return MODE_FILE.read_text().strip()
    from .compose import running_here  # here, not at the top: compose imports this module

    return "compose" if running_here() else None
