"""`make lint`: ruff (check and format) over the project, mypy over the app and the lab's tools
(pyproject.toml's [tool.mypy]), gixy over the rendered baseline nginx config (scenarios are
broken on purpose and excluded)."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from . import nginx, paths
from .venv import ensure_venv

# gixy checks where the baseline differs on purpose; each is answered by a comment at the line.
GIXY_SKIPS = {
    "hsts_header": "snippets/hsts.conf: HSTS off by default on localhost (LAB_HSTS_MAX_AGE)",
    "worker_rlimit_nofile_vs_connections": "nginx.conf: nginx-ctl.sh raises RLIMIT_NOFILE first",
    "ssrf": "snippets/socketio-map.conf: the routing cookie is used only when it is one of the "
    "workers' own addresses (LAB_SOCKETIO_SLOT_RE), else ignored",
}


def run() -> int:
    ensure_venv()
    bin_dir = paths.VENV / "bin"
    results = {
        "ruff check": subprocess.run([str(bin_dir / "ruff"), "check", "."], cwd=paths.ROOT).returncode,
        "ruff format": subprocess.run(
            [str(bin_dir / "ruff"), "format", "--check", "."], cwd=paths.ROOT
        ).returncode,
        "mypy": subprocess.run([str(bin_dir / "mypy")], cwd=paths.ROOT).returncode,
    }
    with tempfile.TemporaryDirectory(prefix="lab-gixy-") as tmp:
        nginx.render_baseline(Path(tmp))
        results["gixy"] = subprocess.run(
            [str(bin_dir / "gixy"), "--skips", ",".join(GIXY_SKIPS), str(Path(tmp) / "nginx.conf")]
        ).returncode
    print("\nlab lint: " + ", ".join(f"{k} {'ok' if v == 0 else 'FAILED'}" for k, v in results.items()))
    return 0 if all(code == 0 for code in results.values()) else 1
