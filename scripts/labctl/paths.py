"""Where things live. Locations only: settings are declared in services/app/labsettings.py,
the running stack's state is runstate's, the endpoints a client uses are endpoints'."""

from __future__ import annotations

from pathlib import Path

import labsettings

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / ".lab"
CERTS = LAB / "certs"
CA = CERTS / "ca.pem"
LOGS = LAB / "logs"
RUN = LAB / "run"
UPLOADS = LAB / "uploads"
NGINX_PREFIX = LAB / "nginx"
# Overridable so a test (or a user) can render an edited copy without touching nginx/.
NGINX_SRC = Path(labsettings.NGINX_SRC.value() or ROOT / "nginx")
SCENARIOS = NGINX_SRC / "scenarios"
APP_DIR = ROOT / "services" / "app"
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
SCRIPTS = ROOT / "scripts"
