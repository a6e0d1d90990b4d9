"""`lab check` against configs as users write them: tests/diagnose/corpus/<name>/site.conf, quoted
from public sources (each expected.toml cites its source), each paired by folder with its
expected findings. Every expected finding must be reported with its behaviour and the line of the
user's file; the clean reference must come out clean. Precision and recall are printed.

Each config runs through the real `scripts/lab check` (nginx, the lab's app, the probes), in a
private network namespace where the machine allows it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from labctl.diagnose.score import Key, expected, reported_keys, run_check, side_by_side

CORPUS = Path(__file__).parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.toml").is_file())


@dataclass
class Tally:
    expected: set[tuple[str, int, str]] = field(default_factory=set)
    reported: set[tuple[str, int, str]] = field(default_factory=set)


TALLY: dict[str, Tally] = {}


def expected_findings(case: str) -> tuple[dict[str, object], set[Key]]:
    found = expected(CORPUS / case)
    return found.data, set(found.wanted)


@functools.cache
def checked() -> dict[str, tuple[int, dict[str, object], str]]:
    """Every corpus config through `lab check` once, side by side where the machine allows it."""
    sites = {case: CORPUS / case / "site.conf" for case in CASES}
    return side_by_side("corpus-test", sites, lambda site, workdir: run_check(site, workdir=workdir))


def lab_check(case: str) -> tuple[int, dict[str, object], str]:
    return checked()[case]


@pytest.mark.parametrize("case", CASES)
def test_check_reports_the_expected_findings(case: str) -> None:
    data, wanted = expected_findings(case)
    code, report, stderr = lab_check(case)
    assert code in (0, 1), f"lab check could not run {case} (exit {code}): {stderr[-2000:]}"
    reported, elsewhere = reported_keys(report, CORPUS / case / "site.conf")
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
