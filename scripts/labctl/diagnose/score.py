"""How well `lab check` judges configs it is given: each folder of a corpus holds a quoted config
(`site.conf`) and the findings nginx's semantics predict for it (`expected.toml`, see
tests/diagnose/corpus/README.md). A finding is a (behaviour, line of the user's file, directive) key;
recall is the share of expected keys reported, precision the share of reported keys expected.

`lab diagnose-score` prints the figures for the development corpus and the held-out one (each config
through the real `lab check`: nginx, the lab's app, the probes), then the mutation score
(labctl.diagnose.mutate).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from .. import paths
from ..nginx import nginx_version
from . import sandbox
from .config import SYSTEM_CONF_DIR

BROKEN = {"broken", "static"}
CORPORA = {
    "corpus": paths.ROOT / "tests" / "diagnose" / "corpus",
    "holdout": paths.ROOT / "tests" / "diagnose" / "holdout",
}
CHECK_TIMEOUT_S = 120
SCORE_DIR = paths.LAB / "score"  # a directory per config, so that runs go side by side
SIDE_BY_SIDE = 4  # configs checked at once (each waits on its probes most of its time)
Key = tuple[str, int, str]  # behaviour, line of the user's file, directive
T = TypeVar("T")
R = TypeVar("R")


def directive_key(text: str) -> str:
    """What names a directive in a finding, however it is quoted: its name, and the header of a
    proxy_set_header ("missing: proxy_set_header Upgrade $http_upgrade" -> "proxy_set_header upgrade")."""
    words = text.removeprefix("missing:").strip().rstrip(";").split()
    if not words:
        return ""
    return " ".join(words[:2]).lower() if words[0] == "proxy_set_header" else words[0].lower()


def applies(finding: dict[str, object]) -> bool:
    """Findings that hold only on some nginx builds or system files: judged for this machine."""
    before = finding.get("applies_before")
    if isinstance(before, str) and nginx_version() >= tuple(int(p) for p in before.split(".")):
        return False
    condition = finding.get("condition")
    if isinstance(condition, dict) and "absent" in condition:  # a file the build may or may not ship
        return not Path(str(condition["absent"])).exists()
    if isinstance(condition, dict):
        included = SYSTEM_CONF_DIR / str(condition["include"])
        return included.is_file() and str(condition["sets"]) in included.read_text()
    return True


@dataclass(frozen=True)
class Expected:
    case: str
    site: Path
    data: dict[str, object]
    wanted: frozenset[Key]

    @property
    def refused(self) -> str | None:
        """What nginx itself says when it refuses the config (then `lab check` must exit 2)."""
        value = self.data.get("refused")
        return value if isinstance(value, str) else None


def expected(folder: Path) -> Expected:
    data = tomllib.loads((folder / "expected.toml").read_text())
    findings = data.get("finding", [])
    assert isinstance(findings, list)
    wanted = frozenset(
        (f["behaviour"], f["line"], directive_key(f["directive"])) for f in findings if applies(f)
    )
    return Expected(folder.name, folder / "site.conf", data, wanted)


def cases(corpus: Path) -> list[Expected]:
    return [expected(p) for p in sorted(corpus.iterdir()) if (p / "expected.toml").is_file()]


def run_check(
    site: Path, extra: Iterable[str] = (), workdir: Path | None = None
) -> tuple[int, dict[str, object], str]:
    """`lab check --json SITE` as a user runs it (writing under ``workdir``, its own, to run beside
    others): exit code, the report, stderr."""
    own = ["--workdir", str(workdir)] if workdir else []
    result = subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), "check", "--json", *own, *extra, str(site)],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_S,
    )
    try:
        return result.returncode, json.loads(result.stdout), result.stderr
    except ValueError:
        return result.returncode, {}, result.stdout + result.stderr


def reported_keys(report: dict[str, object], site: Path) -> tuple[set[Key], list[dict[str, object]]]:
    """The broken rows of a report as keys in the user's file, and those that point elsewhere."""
    rows = report.get("rows", [])
    assert isinstance(rows, list)
    broken = [r for r in rows if r["verdict"] in BROKEN]
    mine = {
        (r["behaviour"], r["line"], directive_key(r["directive"])) for r in broken if r["file"] == str(site)
    }
    return mine, [r for r in broken if r["file"] != str(site)]


@dataclass
class Outcome:
    expected: Expected
    code: int
    reported: set[Key]
    elsewhere: list[dict[str, object]]
    stderr: str
    seconds: float

    @property
    def ran(self) -> bool:
        return self.code in (0, 1)

    @property
    def refusal_right(self) -> bool:
        """A config nginx refuses: exit 2 naming the way out."""
        fix = str(self.expected.data.get("refusal_fix", ""))
        return self.code == 2 and fix in self.stderr

    @property
    def misses(self) -> set[Key]:
        return set(self.expected.wanted) - self.reported

    @property
    def false_alarms(self) -> set[Key]:
        return self.reported - set(self.expected.wanted)


def judge(case: Expected, workdir: Path | None = None) -> Outcome:
    """``case`` through `lab check`, writing under ``workdir`` (its own, to run beside others)."""
    start = time.monotonic()
    code, report, stderr = run_check(case.site, workdir=workdir)
    reported, elsewhere = reported_keys(report, case.site)
    # A broken row that names no line of the user's file cannot be acted on: a false alarm here.
    reported |= {(str(r["behaviour"]), 0, directive_key(str(r["directive"]))) for r in elsewhere}
    return Outcome(case, code, reported, elsewhere, stderr, time.monotonic() - start)


@dataclass
class Score:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def expected(self) -> int:
        return sum(len(o.expected.wanted) for o in self.outcomes)

    @property
    def found(self) -> int:
        return sum(len(o.expected.wanted & o.reported) for o in self.outcomes)

    @property
    def reported(self) -> int:
        return sum(len(o.reported) for o in self.outcomes)

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.found / self.reported if self.reported else 1.0

    def by_behaviour(self, which: str) -> Counter[str]:
        return Counter(key[0] for o in self.outcomes for key in getattr(o, which))

    def lines(self) -> list[str]:
        out = []
        for o in self.outcomes:
            state = f"exit {o.code}" + ("" if o.ran or o.expected.refused else " (could not run)")
            out.append(
                f"  {o.expected.case}: {state}, {o.seconds:.0f}s, expected {len(o.expected.wanted)}, "
                f"missed {sorted(o.misses)}, false alarms {sorted(o.false_alarms)}"
            )
        refusals = [o for o in self.outcomes if o.expected.refused]
        out.append(
            f"{self.name}: {len(self.outcomes)} configs, "
            f"recall {self.found}/{self.expected} = {self.recall:.1%}, "
            f"precision {self.found}/{self.reported} = {self.precision:.1%}, "
            f"could not run {sum(not o.ran for o in self.outcomes if not o.expected.refused)}, "
            f"refusals with the way out {sum(o.refusal_right for o in refusals)}/{len(refusals)}"
        )
        out.append(f"  misses per behaviour: {dict(self.by_behaviour('misses').most_common())}")
        out.append(f"  false alarms per behaviour: {dict(self.by_behaviour('false_alarms').most_common())}")
        return out


def side_by_side(name: str, items: dict[str, T], run: Callable[[T, Path | None], R]) -> dict[str, R]:
    """``run(item, workdir)`` for each named item, `lab check` runs that are independent: side by
    side where each gets its own network namespace (its own loopback and ports) and its own
    directory (.lab/score/NAME/ITEM); else one at a time on the lab's ports (workdir None). Most of
    a run is waiting on its probes."""
    if sandbox.namespace_command() is None:
        return {key: run(item, None) for key, item in items.items()}
    sandbox.lab_ca()  # made once, before the runs that all sign with it
    with ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
        done = pool.map(lambda key: run(items[key], SCORE_DIR / name / key), items)
        return dict(zip(items, done, strict=True))


def score(name: str, corpus: Path) -> Score:
    """Every config of CORPUS through `lab check` (side by side where it can)."""
    return Score(name, list(side_by_side(name, {c.case: c for c in cases(corpus)}, judge).values()))


def run(args: argparse.Namespace) -> int:
    """Print recall and precision per corpus, then the mutation score; 0 (the figures are a
    report, the tests hold the floors)."""
    from . import mutate  # mutate imports this module's keys

    for name, folder in CORPORA.items():
        if args.corpus in (name, "all"):
            print("\n".join(score(name, folder).lines()), flush=True)
    if args.mutations != "none":
        print("\n".join(mutate.score(full=args.mutations == "full").lines()), flush=True)
    return 0
