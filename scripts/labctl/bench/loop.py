"""The lab's own loop: `scripts/lab native-up` until healthy, and the integration suite."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from .. import native, paths
from ..procs import environment

LAB = [sys.executable, str(paths.SCRIPTS / "lab")]


@dataclass(frozen=True)
class SuiteResult:
    seconds: float
    exit_code: int
    summary: str  # pytest's last line, e.g. "42 passed in 30.1s"

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _timed(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    completed = subprocess.run([*LAB, *args], capture_output=True, text=True, cwd=paths.ROOT)
    return time.perf_counter() - started, completed


def native_up_seconds() -> float:
    """Wall time of the user's command, from a stopped stack to healthy through nginx."""
    native.down(quiet=True)
    with environment(LAB_SCENARIO=""):
        seconds, completed = _timed("native-up")
    if completed.returncode != 0:
        raise RuntimeError(f"scripts/lab native-up failed:\n{completed.stdout}{completed.stderr}")
    return round(seconds, 2)


def pytest_summary(output: str) -> str:
    """pytest's last line ("12 passed in 30.1s"), without the ===== padding it has without -q."""
    lines = [line.strip("= ") for line in output.splitlines() if line.strip("= ")]
    return lines[-1] if lines else ""


def integration() -> SuiteResult:
    """The integration suite as it exists in this checkout, against the running stack."""
    seconds, completed = _timed("integration-test")
    # stderr's last line explains a run that never reached pytest's summary.
    return SuiteResult(
        round(seconds, 1), completed.returncode, pytest_summary(completed.stdout + completed.stderr)
    )
