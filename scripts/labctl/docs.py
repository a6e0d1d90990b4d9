"""`scripts/lab docs [--check]`: the parts of the docs that are derived, rewritten from their one
home: the scenario table (each scenario.toml), each scenario README's header (its own
scenario.toml), the settings tables (services/app/labsettings.py) and the behaviours the
doctor and `lab check` probe (the registry of labctl/behaviours/).

A derived part sits between two markers, and only that part is ever rewritten:

    <!-- generated: scenarios (scripts/lab docs; edit the sources, not this) -->
    ...
    <!-- /generated: scenarios -->

``--check`` rewrites nothing and exits 1 naming every stale part (a unit test runs it).
"""

from __future__ import annotations

import argparse
import functools
import re
from collections.abc import Callable
from pathlib import Path

import labsettings

from . import behaviours, catalogue, paths

# The ports the docs are written for: the declared defaults.
DOC_HTTPS_PORT = int(labsettings.HTTPS_PORT.default)
DOC_HTTP_PORT = int(labsettings.HTTP_PORT.default)
SETTINGS_DOC = paths.ROOT / "docs" / "SETTINGS.md"
DIAGNOSE_DOC = paths.ROOT / "docs" / "DIAGNOSE.md"


def begin(name: str) -> str:
    return f"<!-- generated: {name} (scripts/lab docs; edit the sources, not this) -->"


def end(name: str) -> str:
    return f"<!-- /generated: {name} -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def scenarios_table() -> str:
    rows = [
        "| scenario | what is broken | symptom the check observes |",
        "|---|---|---|",
    ]
    for scenario in catalogue.scenarios():
        symptom = scenario.symptom_for(DOC_HTTPS_PORT, DOC_HTTP_PORT)
        name = f"[{scenario.name}](nginx/scenarios/{scenario.name}/README.md)"
        only = " (compose only)" if scenario.compose_only else ""
        rows.append(f"| {name}{only} | {_cell(scenario.broken)} | {_cell(symptom)} |")
    return "\n".join(rows)


def scenario_header(scenario: catalogue.Scenario) -> str:
    check = "data in scenario.toml" if scenario.checks else "check.py" if scenario.function else ""
    if scenario.compose_only:
        check = f"{check}, run by tests/compose" if check else "tests/compose"
    return "\n".join(
        [
            f"- **Broken:** {scenario.broken}",
            f"- **Symptom:** {scenario.symptom_for(DOC_HTTPS_PORT, DOC_HTTP_PORT)}",
            f"- **Check:** {scenario.request} ({check})",
            f"- **Likely cause, as the doctor and the suites say it:** {scenario.hint}",
            *([f"- **In the lab:** {scenario.lab_hint}"] if scenario.lab_hint else []),
        ]
    )


def _what(setting: labsettings.Setting[object]) -> str:
    marks = [f"gunicorn `{setting.gunicorn}`"] if setting.gunicorn else []
    if setting.public:
        marks.append(f"/debug/settings shows it as `{setting.field_name}`")
    return f"{setting.why} ({'; '.join(marks)})" if marks else setting.why


def settings_tables() -> str:
    parts = []
    for group, settings in labsettings.by_group():
        parts.append(f"**{group}**\n\n| setting | default | what it does |\n|---|---|---|")
        parts.extend(
            f"| `{s.name}` | {f'`{s.default}`' if s.default else '(unset)'} | {_cell(_what(s))} |"
            for s in settings
        )
        parts.append("")
    return "\n".join(parts).rstrip()


def behaviours_table() -> str:
    rows = [
        "| behaviour | holds when | when broken, change | severity | scenarios that break it |",
        "|---|---|---|---|---|",
    ]
    for b in behaviours.registry():
        scenarios = ", ".join(f"[{name}](../nginx/scenarios/{name}/README.md)" for name in b.scenarios)
        rows.append(f"| `{b.id}` | {_cell(b.title)} | {_cell(b.hint)} | {b.severity} | {scenarios} |")
    return "\n".join(rows)


def targets() -> dict[Path, dict[str, Callable[[], str]]]:
    """Every file with derived parts, and how each part is made."""
    found: dict[Path, dict[str, Callable[[], str]]] = {
        paths.ROOT / "README.md": {"scenarios": scenarios_table},
        SETTINGS_DOC: {"settings": settings_tables},
        DIAGNOSE_DOC: {"behaviours": behaviours_table},
    }
    for scenario in catalogue.scenarios():
        found[scenario.folder / "README.md"] = {"scenario": functools.partial(scenario_header, scenario)}
    return found


def rewrite(text: str, name: str, content: str, where: Path) -> str:
    pattern = re.compile(rf"{re.escape(begin(name))}\n.*?{re.escape(end(name))}", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"lab docs: {where} has no '{begin(name)}' ... '{end(name)}' markers")
    return pattern.sub(lambda _m: f"{begin(name)}\n{content}\n{end(name)}", text, count=1)


def stale_parts(write: bool) -> list[str]:
    """The derived parts that differ from their sources; rewritten when ``write``."""
    stale = []
    for path, parts in targets().items():
        original = path.read_text()
        text = original
        for name, make in parts.items():
            updated = rewrite(text, name, make(), path)
            if updated != text:
                stale.append(f"{path.relative_to(paths.ROOT)}: {name}")
            text = updated
        if write and text != original:
            path.write_text(text)
    return stale


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true", help="rewrite nothing; exit 1 if a part is stale")


def main(args: argparse.Namespace) -> int:
    stale = stale_parts(write=not args.check)
    if args.check and stale:
        print("lab docs: stale (run `scripts/lab docs`):\n  " + "\n  ".join(stale))
        return 1
    print("lab docs: " + (f"rewrote {', '.join(stale)}" if stale else "everything is current"))
    return 0
