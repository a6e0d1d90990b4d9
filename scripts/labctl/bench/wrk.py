"""HTTP load with wrk (Debian package `wrk`): requests/s and latency percentiles."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

REPORT_SCRIPT = Path(__file__).resolve().parent / "report.lua"
INSTALL_HINT = "wrk is not installed: sudo apt-get install -y wrk   (macOS: brew install wrk)"


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def parse_report(stdout: str) -> LoadResult:
    """The JSON line report.lua prints after wrk's own text."""
    line = next((raw for raw in stdout.splitlines() if raw.startswith('{"wrk":')), None)
    if line is None:
        raise RuntimeError(f"wrk printed no report line (report.lua not run?):\n{stdout[-2000:]}")
    report = json.loads(line)
    seconds = report["duration_us"] / 1e6
    return LoadResult(
        requests=report["requests"],
        seconds=round(seconds, 3),
        rps=round(report["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=round(report["p50_us"] / 1000, 2),
        p99_ms=round(report["p99_us"] / 1000, 2),
        errors=report["errors"],
    )


def run(url: str, connections: int, seconds: float, timeout_s: float = 5.0, threads: int = 1) -> LoadResult:
    """One bounded wrk run. wrk does not verify TLS certificates: callers first check the URL
    with a verifying client (health.wait_healthy against the lab's CA)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit(INSTALL_HINT)
    completed = subprocess.run(
        [
            binary,
            f"--threads={threads}",
            f"--connections={connections}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            f"--script={REPORT_SCRIPT}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + timeout_s + 30,
        check=True,
    )
    return parse_report(completed.stdout)
