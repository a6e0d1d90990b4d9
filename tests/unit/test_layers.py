"""Imports in scripts/labctl run one way: each module imports only from layers below its own.

Low modules (where things are, processes, the one record of a running stack) never import the
high ones (the mode drivers, the commands); only ``stack`` branches on the mode (no other module
compares anything with a mode's name); the tools never import the tests. A new module gets a
layer here, which is the point: say where it sits. A package counts as one module (bench.x is
bench), except the modules of one named here by their dotted name (diagnose.config sits below the
rest of diagnose: the behaviours' rules read its model).
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
    {"sse", "keepalive"},  # Server-Sent Events; the keep-alive race's mechanism: over probe's connections
    {"h3", "sioclient"},  # HTTP/3 (aioquic), Socket.IO (python-socketio): .venv only
    {"diagnose.config"},  # a user's nginx config as nginx reads it: the model the behaviours' rules read
    {"checks", "behaviours"},  # checks declared as data; the behaviours: probes and static rules
    {"catalogue"},  # the scenario folders
    {"hints"},
    {"native", "compose", "balancer"},  # one mode each, never each other; the balancer in front
    {"offline"},  # stand-in images built with debootstrap (`make offline-images`, the swarm's nodes)
    {"swarmnodes"},  # several Docker engines in containers, a registry: the swarm's nodes
    {"swarm"},  # the third mode: compose's file and image, deployed as a Swarm stack
    {"stack"},  # the only module that branches on the mode
    # the commands
    {
        "scenarios",
        "doctor",
        "docs",
        "logs",
        "lint",
        "upload",
        "bench",
        "conformance",
        "diagnose",
        "setup",
    },
    {"verdict"},  # the doctor's verdict on the running stack, for the lab page
    {"watch"},  # reloads on each edit, then writes the verdict
    {"deploy"},  # a command that draws with the bench's chart
    {"cli"},
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}
LABCTL = paths.SCRIPTS / "labctl"


def _named(parts: list[str]) -> str:
    """The layer name of the module at ``parts``: its dotted name where LAYERS has it, else its
    top-level name."""
    return ".".join(parts[:2]) if ".".join(parts[:2]) in LAYER else parts[0]


def imported(path: Path) -> set[str]:
    """labctl modules ``path`` imports, by their layer name (bench.x counts as bench)."""
    package = path.relative_to(LABCTL).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            parts = base + (node.module.split(".") if node.module else [])
            if not parts:  # from .. import a, b: each a module
                found.update(alias.name for alias in node.names)
            elif node.module is None:  # from . import a, b inside a package: each of its modules
                found.update(_named([*parts, alias.name]) for alias in node.names)
            else:
                found.add(_named(parts))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("labctl."):
            found.add(_named(node.module.split(".")[1:]))
    return found


def module_name(path: Path) -> str:
    parts = [part.removesuffix(".py") for part in path.relative_to(LABCTL).parts]
    return _named(parts)


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


# A mode's name: as a string, as a driver's MODE, or the driver module itself (`running is swarm`).
MODE_NAMES = {"native", "compose", "swarm"}


def mode_comparisons(source: str) -> list[str]:
    """The comparisons in ``source`` with a mode's name on either side (or in a tuple there)."""

    def names_a_mode(node: ast.expr) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in MODE_NAMES
        if isinstance(node, ast.Attribute):
            return node.attr == "MODE"
        if isinstance(node, ast.Name):
            return node.id == "MODE" or node.id in MODE_NAMES
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            return any(names_a_mode(element) for element in node.elts)
        return False

    return [
        ast.unparse(node)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Compare) and any(map(names_a_mode, [node.left, *node.comparators]))
    ]


@pytest.mark.parametrize(
    "path",
    [*(p for p in SOURCES if p != LABCTL / "stack.py"), *paths.SCENARIOS.glob("*/check.py")],
    ids=lambda p: str(p.relative_to(paths.ROOT)),
)
def test_only_stack_branches_on_the_mode(path: Path) -> None:
    found = mode_comparisons(path.read_text())
    assert found == [], (
        f"{path.relative_to(paths.ROOT)} compares with a mode: {found} (ask labctl.stack's Stack)"
    )


def test_the_mode_reader_sees_every_form() -> None:
    source = """
if runstate.mode() == "native": pass
if stack.running_mode() != swarm.MODE: pass
if other not in (None, MODE): pass
if stack.current() is compose: pass
if mode == name or kind in ("a", "b"): pass
"""
    assert mode_comparisons(source) == [
        "runstate.mode() == 'native'",
        "stack.running_mode() != swarm.MODE",
        "other not in (None, MODE)",
        "stack.current() is compose",
    ]


def test_the_import_reader_sees_relative_and_absolute_imports() -> None:
    assert imported(LABCTL / "stack.py") == {"compose", "health", "native", "runstate", "swarm"}
    assert {"endpoints", "paths", "wsclient"} <= imported(LABCTL / "bench" / "wsfleet.py")
    assert {"bench"} <= imported(LABCTL / "bench" / "wsload.py")
    assert {"diagnose.config", "probe", "endpoints"} <= imported(LABCTL / "behaviours" / "core.py")
    assert {"behaviours", "diagnose", "diagnose.config"} <= imported(LABCTL / "diagnose" / "check.py")
