"""The scenario catalogue: each folder under nginx/scenarios/ is one scenario, found by its name.

A folder holds everything about its bug: the .conf files that replace the baseline's files of
the same path, an optional ``app.env`` (app and gunicorn settings), ``README.md`` (cause, fix,
references) and ``scenario.toml``, the one home of what the rest of the lab shows: what is
broken, the symptom, the behaviour it breaks (``behaviour = "redirect-port"``: a name in
labctl.behaviours' registry, whose hint it takes unless it words its own), the likely cause
(the hint the doctor and the suites print) and the check,
declared as data (a request and the two answers it tells apart, see labctl.checks) or, where
data cannot say it, as ``observe(endpoint)`` in a ``check.py`` beside it.

The matrix, `make scenario` and the README tables all read this; nothing else lists scenarios.
"""

from __future__ import annotations

import functools
import importlib.util
import re
import tomllib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import behaviours, checks, paths
from .behaviours import Behaviour
from .checks import Observation
from .endpoints import Endpoint

DECLARATION = "scenario.toml"
FUNCTION_CHECK = "check.py"
README_SECTIONS = ("Symptom", "Cause", "Fix", "References")


@dataclass(frozen=True)
class Scenario:
    name: str
    folder: Path
    broken: str  # what is wrong, in a few words (the README table's column)
    symptom: str  # what the check observes; {https_port} and {http_port} are filled in
    hint: str  # the likely cause, as the doctor and the suites word it, for anyone's deployment
    request: str  # what the check does, in one line
    lab_hint: str = ""  # the lab's own knob for it (shown only for this checkout's stack)
    behaviour: Behaviour | None = None  # the behaviour its symptom breaks, where the doctor probes one
    doctor: bool = False  # `make doctor` names the hint under this scenario
    compose_only: bool = False  # needs Docker (checked by tests/compose), skipped natively
    lab_stack_only: bool = False  # its check needs the lab's own app (not judged by `lab check`)
    checks: tuple[checks.Check, ...] = ()
    function: Callable[[Endpoint], Observation] | None = field(default=None, compare=False)

    def symptom_for(self, https_port: int, http_port: int) -> str:
        return self.symptom.format(https_port=https_port, http_port=http_port)

    @property
    def checked(self) -> bool:
        return bool(self.checks) or self.function is not None

    def observe(self, endpoint: Endpoint) -> Observation:
        """The check against the stack at ``endpoint``: was the symptom there, what was seen. A
        check that cannot finish (the stack stopped answering) is neither verdict, not a crash."""
        try:
            if self.function is not None:
                return self.function(endpoint)
            return checks.observe_all(self.checks, endpoint)
        except OSError as error:
            return Observation(None, f"the check could not run: {type(error).__name__}: {error}")

    def readme_section(self, title: str) -> str:
        """The text under ``## <title>`` in the scenario's README.md ('' when there is none)."""
        readme = self.folder / "README.md"
        text = readme.read_text() if readme.is_file() else ""
        found = re.search(rf"^## {re.escape(title)}\s*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
        return found.group(1).strip() if found else ""

    def overlay_files(self) -> list[Path]:
        """The .conf files this scenario replaces, relative to nginx/."""
        return sorted(p.relative_to(self.folder) for p in self.folder.rglob("*.conf"))

    @property
    def app_env(self) -> Path | None:
        path = self.folder / "app.env"
        return path if path.is_file() else None


class CatalogueError(ValueError):
    """A scenario folder that cannot be loaded: its path and what is wrong."""


def _function_check(folder: Path) -> Callable[[Endpoint], Observation] | None:
    source = folder / FUNCTION_CHECK
    if not source.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"lab_scenario_{folder.name.replace('-', '_')}", source)
    if spec is None or spec.loader is None:
        raise CatalogueError(f"{source}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    observe = getattr(module, "observe", None)
    if not callable(observe):
        raise CatalogueError(f"{source}: defines no observe(endpoint) function")
    return observe


def _from_folder(folder: Path) -> Scenario:
    declaration = folder / DECLARATION
    try:
        data: Mapping[str, Any] = tomllib.loads(declaration.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise CatalogueError(f"{declaration}: {error}") from error
    behaviour = _behaviour(declaration, folder.name, data.get("behaviour"))
    required = ("broken", "symptom", "request") + (() if behaviour else ("hint",))
    missing = [key for key in required if key not in data]
    if missing:
        raise CatalogueError(f"{declaration}: missing {', '.join(missing)}")
    declared = data.get("check", [])
    try:
        parsed = tuple(checks.Check.parse(block, data["request"]) for block in declared)
    except (KeyError, TypeError, ValueError) as error:
        raise CatalogueError(f"{declaration}: [[check]]: {error}") from error
    return Scenario(
        name=folder.name,
        folder=folder,
        broken=data["broken"],
        symptom=data["symptom"],
        hint=data.get("hint", behaviour.hint if behaviour else ""),
        request=data["request"],
        lab_hint=data.get("lab_hint", ""),
        behaviour=behaviour,
        doctor=bool(data.get("doctor", False)),
        compose_only=bool(data.get("compose_only", False)),
        lab_stack_only=bool(data.get("lab_stack_only", False)),
        checks=parsed,
        function=_function_check(folder),
    )


def _behaviour(declaration: Path, scenario: str, name: object) -> Behaviour | None:
    """The behaviour ``behaviour = "..."`` names: one of the registry, which lists the scenario back."""
    if name is None:
        return None
    found = behaviours.by_id(str(name))
    if found is None:
        known = ", ".join(b.id for b in behaviours.registry())
        raise CatalogueError(f"{declaration}: behaviour {name!r} is not one of labctl.behaviours' ({known})")
    if scenario not in found.scenarios:
        raise CatalogueError(
            f"{declaration}: behaviour {name!r} does not list {scenario!r} in its scenarios "
            "(labctl/behaviours/)"
        )
    return found


def names(root: Path | None = None) -> list[str]:
    root = root or paths.SCENARIOS
    return sorted(p.name for p in root.iterdir() if (p / DECLARATION).is_file()) if root.is_dir() else []


@functools.cache
def load(name: str, root: Path | None = None) -> Scenario:
    folder = (root or paths.SCENARIOS) / name
    if not (folder / DECLARATION).is_file():
        raise CatalogueError(f"no scenario {name!r}: {folder / DECLARATION} does not exist")
    return _from_folder(folder)


def scenarios(root: Path | None = None) -> list[Scenario]:
    return [load(name, root) for name in names(root)]


def matching(candidates: list[Scenario], endpoint: Endpoint) -> list[tuple[Scenario, Observation]]:
    """The candidates whose symptom ``endpoint`` shows, with what their checks saw. The checks run
    side by side: each is a few independent requests, some of them waiting seconds on purpose."""
    with ThreadPoolExecutor(max_workers=max(1, len(candidates))) as pool:
        observed = list(pool.map(lambda scenario: scenario.observe(endpoint), candidates))
    return [(s, o) for s, o in zip(candidates, observed, strict=True) if o.present is True]


def hint(name: str) -> str:
    """The likely cause of scenario ``name``'s symptom, worded once in its scenario.toml."""
    return load(name).hint
