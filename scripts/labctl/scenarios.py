"""`scripts/lab scenario NAME` and `scripts/lab scenarios`: run the catalogue of broken configs
(nginx/scenarios/<name>/) on a native stack and show each symptom next to its fix.

The checks themselves live in tests/scenarios/catalogue.py (they use requests and websocket-client)
and run inside .venv through `python -m scenarios.observe`; this module only drives stacks and prints.
A folder holding a file named ``compose-only`` needs Docker (e.g. a recreated container): the
native runner lists it and skips it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

from . import native, paths
from .procs import environment
from .venv import ensure_venv

COMPOSE_ONLY_MARKER = "compose-only"
# Where the checks import from, as in pyproject's [tool.pytest.ini_options] pythonpath.
CHECK_PATH = [paths.APP_DIR, paths.SCRIPTS, paths.ROOT / "tests"]


def all_names() -> list[str]:
    return sorted(p.name for p in paths.SCENARIOS.iterdir() if p.is_dir()) if paths.SCENARIOS.is_dir() else []


def compose_only(name: str) -> bool:
    return (paths.SCENARIOS / name / COMPOSE_ONLY_MARKER).is_file()


def readme_section(name: str, title: str) -> str:
    """The text under ``## <title>`` in the scenario's README.md ('' when there is none)."""
    readme = paths.SCENARIOS / name / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    match = re.search(rf"^## {re.escape(title)}\s*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    return match.group(1).strip() if match else ""


@contextlib.contextmanager
def native_stack(scenario: str, quiet: bool = False) -> Iterator[None]:
    """A native stack with LAB_SCENARIO=scenario ('' = baseline), always brought down after."""
    with environment(LAB_SCENARIO=scenario):
        try:
            with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
                native.up()
            yield
        finally:
            native.down(quiet=True)


def observe(names: list[str]) -> dict[str, dict]:
    """Run the named checks (in .venv) against the running stack: name -> observation."""
    ensure_venv()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in CHECK_PATH)}
    result = subprocess.run(
        [str(paths.VENV_PYTHON), "-m", "scenarios.observe", *names],
        cwd=paths.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    found = {obs["name"]: obs for obs in map(json.loads, result.stdout.splitlines())}
    for name in names:
        found.setdefault(
            name, {"name": name, "present": None, "seen": f"observer failed: {result.stderr[-500:]}"}
        )
    return found


@dataclass
class Row:
    name: str
    reproduced: bool | None = None  # symptom seen under the scenario
    absent: bool | None = None  # healthy answer under the baseline
    seconds: float = 0.0
    seen: str = ""  # under the scenario
    note: str = ""  # why a row is skipped or could not run

    @property
    def ok(self) -> bool:
        return bool(self.reproduced and self.absent)


def _yes(value: bool | None) -> str:
    return {True: "true", False: "false", None: "error"}[value]


def format_matrix(rows: list[Row], skipped: list[str], total_s: float) -> str:
    width = max([len("scenario"), *(len(r.name) for r in rows), *(len(n) for n in skipped)])
    lines = [f"{'scenario':<{width}}  reproduced  absent-in-baseline  seconds  seen under the scenario"]
    for row in rows:
        seen = row.note or row.seen
        flags = f"{_yes(row.reproduced):<10}  {_yes(row.absent):<18}"
        lines.append(f"{row.name:<{width}}  {flags}  {row.seconds:>7.1f}  {seen}")
    lines.extend(
        f"{name:<{width}}  skipped: compose only (`LAB_SCENARIO={name} make up`)" for name in skipped
    )
    failed = [r.name for r in rows if not r.ok]
    lines.append(
        f"{len(rows)} native scenarios, {len(rows) - len(failed)} ok, {len(failed)} failed"
        f"{': ' + ', '.join(failed) if failed else ''}; {len(skipped)} compose-only skipped; {total_s:.0f} s"
    )
    return "\n".join(lines)


def _start_failure(error: SystemExit) -> str:
    return f"the stack did not start: {error}".splitlines()[0]


def run_matrix() -> int:
    """Baseline once for every check, then each scenario on its own stack."""
    started = time.monotonic()
    names = all_names()
    native_names = [n for n in names if not compose_only(n)]
    rows = {name: Row(name) for name in native_names}
    try:
        with native_stack("", quiet=True):
            for name, obs in observe(native_names).items():
                rows[name].absent = False if obs.get("missing") else obs["present"] is False
                rows[name].seconds += obs.get("seconds", 0.0)
                if obs.get("missing"):
                    rows[name].note = "no check: add a row to tests/scenarios/catalogue.py"
                elif obs["present"] is not False:
                    rows[name].note = f"baseline: {obs['seen']}"
    except SystemExit as error:
        for row in rows.values():
            row.note = "baseline " + _start_failure(error)
    for name in native_names:
        row, row_started = rows[name], time.monotonic()
        if row.note.startswith("no check"):
            continue
        try:
            with native_stack(name, quiet=True):
                obs = observe([name])[name]
            row.reproduced, row.seen = obs["present"] is True, obs["seen"]
        except SystemExit as error:
            row.reproduced, row.note = False, _start_failure(error)
        row.seconds += time.monotonic() - row_started
        print(f"  {name}: {'reproduced' if row.reproduced else 'NOT reproduced'}", flush=True)
    print()
    print(
        format_matrix(list(rows.values()), [n for n in names if compose_only(n)], time.monotonic() - started)
    )
    return 0 if all(row.ok for row in rows.values()) else 1


def run_one(name: str) -> int:
    """Bring the scenario up, show what a user sees and the README's fix, bring it down."""
    if name not in all_names():
        raise SystemExit(f"lab: no scenario {name!r}; known: {', '.join(all_names())}")
    if compose_only(name):
        print(
            f"lab: {name} needs Docker: `LAB_SCENARIO={name} make up` (see nginx/scenarios/{name}/README.md)"
        )
        return 2
    with native_stack(name):
        obs = observe([name])[name]
    print(f"\nscenario {name}: {obs.get('symptom', '(no check in tests/scenarios/catalogue.py)')}")
    print(f"  what you see: {obs['seen']}")
    if obs["present"] is True:
        print(f"  reproduced:   yes\n  likely cause: {obs['hint']}")
    else:
        print("  reproduced:   NO: this config no longer shows the scenario's symptom")
    print(f"\nthe fix (nginx/scenarios/{name}/README.md):\n\n{readme_section(name, 'Fix')}\n")
    return 0 if obs["present"] is True else 1
