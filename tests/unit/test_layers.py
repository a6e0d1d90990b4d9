"""Imports in scripts/labctl run one way: each module imports only from layers below its own.

Low modules (where things are, processes, the one record of a running stack) never import the
high ones (the mode drivers, the commands); only ``stack`` branches on the mode; the tools never
import the tests. A new module gets a layer here, which is the point: say where it sits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from labctl import paths

pytestmark = pytest.mark.no_stack

LAYERS: list[set[str]] = [
    {"paths", "procs", "health", "wsclient"},  # nothing of labctl
    {"runstate", "venv", "nginx", "broker"},  # the running stack's record, the venv, nginx, redis-server
    {"endpoints"},  # LAB_URL, LAB_CA, LAB_HTTP_URL
    {"probe", "traffic"},  # HTTP the way the diagnostics make it; a bounded load, timed
    {"h3"},  # the same over HTTP/3 (aioquic: .venv only)
    {"checks", "behaviours"},  # checks declared as data; the probes of the doctor and `lab check`
    {"catalogue"},  # the scenario folders
    {"hints"},
    {"native", "compose", "balancer"},  # one mode each, never each other; the balancer in front
    {"swarm"},  # the third mode: compose's file and image, deployed as a Swarm stack
    {"stack"},  # the only module that branches on the mode
    # the commands
    {
        "scenarios",
        "doctor",
        "docs",
        "logs",
        "lint",
        "offline",
        "upload",
        "bench",
        "diagnose",
        "setup",
        "watch",
    },
    {"deploy"},  # a command that draws with the bench's chart
    {"cli"},
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}
LABCTL = paths.SCRIPTS / "labctl"


def imported(path: Path) -> set[str]:
    """labctl modules ``path`` imports, by their top-level name (bench.x counts as bench)."""
    package = path.relative_to(LABCTL).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            parts = base + (node.module.split(".") if node.module else [])
            names = [parts[0]] if parts else [alias.name for alias in node.names]
            found.update(names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labctl."):
            found.add(node.module.split(".")[1])
    return found


def module_name(path: Path) -> str:
    return path.relative_to(LABCTL).parts[0].removesuffix(".py")


SOURCES = sorted(p for p in LABCTL.rglob("*.py") if p.name != "__init__.py" or p.parent != LABCTL)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(LABCTL)))
def test_imports_go_down_the_layers(path: Path) -> None:
    name = module_name(path)
    assert name in LAYER, f"labctl/{name}: give it a layer in tests/unit/test_layers.py"
    upward = sorted(dep for dep in imported(path) - {name} if LAYER.get(dep, -1) >= LAYER[name])
    assert upward == [], f"labctl/{path.relative_to(LABCTL)} imports from its own layer or above: {upward}"


@pytest.mark.parametrize("path", [*SOURCES, *paths.SCENARIOS.glob("*/check.py")], ids=lambda p: p.name)
def test_the_tools_never_import_the_tests(path: Path) -> None:
    tree = ast.parse(path.read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in modules if m.split(".")[0] in {"tests", "support", "scenarios", "conftest"}}


def test_the_import_reader_sees_relative_and_absolute_imports() -> None:
    assert imported(LABCTL / "stack.py") == {"compose", "native", "nginx", "paths", "runstate", "swarm"}
    assert {"endpoints", "paths", "wsclient"} <= imported(LABCTL / "bench" / "wsfleet.py")
    assert {"bench"} <= imported(LABCTL / "bench" / "wsload.py")
