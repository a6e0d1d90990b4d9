"""The project's virtualenv (.venv): created and filled from the pinned requirements when missing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from .paths import APP_DIR, ROOT, SCRIPTS, VENV, VENV_PYTHON

REQUIREMENTS = [ROOT / "requirements-dev.txt", APP_DIR / "requirements.txt"]
STAMP = VENV / ".requirements.sha256"


def _requirements_digest() -> str:
    digest = hashlib.sha256()
    for path in REQUIREMENTS:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create .venv and install the pins; a no-op when the pins have not changed since."""
    wanted = _requirements_digest()
    if VENV_PYTHON.exists() and STAMP.is_file() and STAMP.read_text() == wanted:
        return
    if not VENV_PYTHON.exists():
        print(f"lab: creating the virtualenv {VENV.relative_to(ROOT)}/", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("lab: installing pinned requirements into .venv", flush=True)
    pip = [str(VENV_PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "-r", str(ROOT / "requirements-dev.txt")], check=True)
    STAMP.write_text(wanted)


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def reexec_in_venv(command: list[str], create: bool = True) -> None:
    """Re-execute `scripts/lab COMMAND...` with .venv's python unless already running there: for
    commands that import a pinned library (matplotlib, watchfiles), while `scripts/lab` itself runs
    on any python3, before the venv exists. Same process (exec): Ctrl-C and the exit status stay.
    ``create=False``: only when .venv exists (a command that also works without it)."""
    if in_venv() or (not create and not VENV_PYTHON.exists()):
        return
    ensure_venv()
    argv = [str(VENV_PYTHON), str(SCRIPTS / "lab"), *command]
    os.execv(argv[0], argv)
