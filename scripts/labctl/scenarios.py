"""`scripts/lab scenario NAME`: one scenario of the catalogue on a native stack, its symptom next
to its fix; and the matrix both it and the scenario suite print (`scripts/lab scenarios` runs
that suite, tests/scenarios/). Scenarios themselves are labctl.catalogue's.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from dataclasses import dataclass

from . import catalogue, endpoints, native
from .procs import environment


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


@dataclass
class Row:
    name: str
    reproduced: bool | None = None  # symptom seen under the scenario
    absent: bool | None = None  # healthy answer under the baseline
    seconds: float = 0.0
    seen: str = ""  # under the scenario

    @property
    def ok(self) -> bool:
        return bool(self.reproduced and self.absent)


def _yes(value: bool | None) -> str:
    return {True: "true", False: "false", None: "error"}[value]


def format_matrix(rows: list[Row], skipped: list[str], total_s: float) -> str:
    width = max([len("scenario"), *(len(r.name) for r in rows), *(len(n) for n in skipped)])
    lines = [f"{'scenario':<{width}}  reproduced  absent-in-baseline  seconds  seen under the scenario"]
    for row in rows:
        flags = f"{_yes(row.reproduced):<10}  {_yes(row.absent):<18}"
        lines.append(f"{row.name:<{width}}  {flags}  {row.seconds:>7.1f}  {row.seen}")
    lines.extend(
        f"{name:<{width}}  skipped: compose only (`LAB_SCENARIO={name} make up`)" for name in skipped
    )
    failed = [r.name for r in rows if not r.ok]
    lines.append(
        f"{len(rows)} native scenarios, {len(rows) - len(failed)} ok, {len(failed)} failed"
        f"{': ' + ', '.join(failed) if failed else ''}; {len(skipped)} compose-only skipped; {total_s:.0f} s"
    )
    return "\n".join(lines)


def run_one(name: str) -> int:
    """Bring the scenario up, show what a user sees and the README's fix, bring it down."""
    if name not in catalogue.names():
        raise SystemExit(f"lab: no scenario {name!r}; known: {', '.join(catalogue.names())}")
    scenario = catalogue.load(name)
    if scenario.compose_only:
        print(f"lab: {name} needs Docker: `LAB_SCENARIO={name} make up` (see {scenario.folder}/README.md)")
        return 2
    with native_stack(name):
        observation = scenario.observe(endpoints.from_env())
    print(f"\nscenario {name}: {scenario.symptom_for(endpoints.https_port(), endpoints.http_port())}")
    print(f"  what you see: {observation.seen}")
    if observation.present is True:
        print(f"  reproduced:   yes\n  likely cause: {scenario.hint}")
    else:
        print("  reproduced:   NO: this config no longer shows the scenario's symptom")
    print(f"\nthe fix (nginx/scenarios/{name}/README.md):\n\n{scenario.readme_section('Fix')}\n")
    return 0 if observation.present is True else 1
