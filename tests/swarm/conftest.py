"""Swarm-only checks, against the stack `make swarm-up` started (tests/swarm/; `make swarm-test`).

They inspect services and tasks, scale the app and roll it, so they need the engine and a swarm
stack of this checkout: run them after the integration suite, not during it (`make test-swarm`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from labctl import compose, swarm
from labctl import stack as lab_stack
from support.lab import Lab, lab_from_env

# Last: they redeploy the stack, and registry-missing's baseline returns once every task is
# replaced, within its update's monitor window, which no later test's scaling may then undo.
LAST = "test_scenarios_past_one_node.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The scenarios past one node run after every other swarm check (the sort keeps the rest in
    order)."""
    items.sort(key=lambda item: item.path.name == LAST)


@pytest.fixture(scope="session")
def lab() -> Lab:
    if lab_stack.running_mode() != swarm.MODE:
        pytest.fail("no swarm stack started from this checkout: `make swarm-up` first")
    try:
        compose.require_engine()
    except SystemExit as error:
        pytest.fail(str(error))
    return lab_from_env()


@pytest.fixture
def http(lab: Lab) -> requests.Session:
    with lab.session() as session:
        yield session


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed swarm check shows the manager's view of the nodes (`docker node ls`)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        nodes = swarm.docker("node", "ls", check=False)
        report.sections.append(("docker node ls (the manager's view)", nodes.stdout + nodes.stderr))
