"""`lab check` against configs as users write them: tests/diagnose/corpus/<name>/site.conf, quoted
from public sources (each expected.toml cites its source), each paired by folder with its
expected findings. Every expected finding must be reported with its behaviour and the line of the
user's file; the clean reference must come out clean. Precision and recall are printed.

Each config runs through the real `scripts/lab check` (nginx, the lab's app, the probes), in a
private network namespace where the machine allows it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labctl import paths
from labctl.diagnose.config import SYSTEM_CONF_DIR
from labctl.nginx import nginx_version

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.toml").is_file())
BROKEN = {"broken", "static"}


@dataclass
class Tally:
    expected: set[tuple[str, int, str]] = field(default_factory=set)
    reported: set[tuple[str, int, str]] = field(default_factory=set)


TALLY: dict[str, Tally] = {}


def applies(finding: dict[str, object]) -> bool:
    """Findings that hold only on some nginx builds or system files: judged for this machine."""
    before = finding.get("applies_before")
    if isinstance(before, str) and nginx_version() >= tuple(int(p) for p in before.split(".")):
        return False
    condition = finding.get("condition")
    if isinstance(condition, dict):
        included = SYSTEM_CONF_DIR / str(condition["include"])
        return included.is_file() and str(condition["sets"]) in included.read_text()
    return True


def directive_key(text: str) -> str:
    """What names a directive in a finding, however it is quoted: its name, and the header of a
    proxy_set_header ("missing: proxy_set_header Upgrade $http_upgrade" -> "proxy_set_header upgrade")."""
    words = text.removeprefix("missing:").strip().rstrip(";").split()
    if not words:
        return ""
    return " ".join(words[:2]).lower() if words[0] == "proxy_set_header" else words[0].lower()


Key = tuple[str, int, str]  # behaviour, line of the user's file, directive


def expected_findings(case: str) -> tuple[dict[str, object], set[Key]]:
    data = tomllib.loads((CORPUS / case / "expected.toml").read_text())
    wanted = {
        (f["behaviour"], f["line"], directive_key(f["directive"]))
        for f in data.get("finding", [])
        if applies(f)
    }
    return data, wanted


def lab_check(case: str) -> tuple[int, dict[str, object], str]:
    result = subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), "check", "--json", str(CORPUS / case / "site.conf")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        return result.returncode, json.loads(result.stdout), result.stderr
    except ValueError:
        return result.returncode, {}, result.stdout + result.stderr


@pytest.mark.parametrize("case", CASES)
def test_check_reports_the_expected_findings(case: str) -> None:
    data, wanted = expected_findings(case)
    code, report, stderr = lab_check(case)
    assert code in (0, 1), f"lab check could not run {case} (exit {code}): {stderr[-2000:]}"
    site = str(CORPUS / case / "site.conf")
    rows = report["rows"]
    assert isinstance(rows, list)
    reported = {
        (r["behaviour"], r["line"], directive_key(r["directive"]))
        for r in rows
        if r["verdict"] in BROKEN and r["file"] == site
    }
    elsewhere = [r for r in rows if r["verdict"] in BROKEN and r["file"] != site]
    TALLY[case] = Tally(wanted, reported)
    assert not elsewhere, f"findings must point at the user's own file: {elsewhere}"
    missing = sorted(wanted - reported)
    assert not missing, (
        f"{case} ({data['source']}): expected findings not reported: {missing}; reported {sorted(reported)}"
    )
    extra = sorted(reported - wanted)  # a finding nobody derived by hand is a false alarm until it is
    assert not extra, f"{case} ({data['source']}): reported but not expected (false alarms?): {extra}"
    if data.get("clean"):
        assert reported == set() and code == 0, f"the clean config is not clean: {sorted(reported)}"
    else:
        assert code == 1, f"{case}: findings but exit {code}"


def corpus_summary() -> list[str]:
    expected = sum(len(t.expected) for t in TALLY.values())
    reported = sum(len(t.reported) for t in TALLY.values())
    true_positive = sum(len(t.expected & t.reported) for t in TALLY.values())
    lines = [
        f"{case}: expected {len(t.expected)}, reported {len(t.reported)}, "
        f"extra {sorted(t.reported - t.expected)}"
        for case, t in TALLY.items()
    ]
    if expected and reported:
        lines.append(
            f"lab check on {len(TALLY)} corpus configs: recall {true_positive}/{expected} = "
            f"{true_positive / expected:.2f}, precision {true_positive}/{reported} = "
            f"{true_positive / reported:.2f}"
        )
    return lines
