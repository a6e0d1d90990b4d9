"""Compose-only checks, against the stack `make up` started (tests/compose/; `make compose-test`).

They inspect and restart containers, so they need the Docker engine and a compose stack of this
checkout: run them after the integration suite, not during it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import requests

from labctl import compose
from labctl import stack as lab_stack
from support.composectl import Stack
from support.lab import Lab, lab_from_env


@pytest.fixture(scope="session")
def lab() -> Lab:
    if lab_stack.running_mode() != "compose":
        pytest.fail("no compose stack started from this checkout: `make up` first")
    try:
        compose.require_engine()
    except SystemExit as error:
        pytest.fail(str(error))
    return lab_from_env()


@pytest.fixture(scope="session")
def stack(lab: Lab) -> Stack:
    return Stack(project=compose.project(), url=lab.url, env=compose.started_env())


@pytest.fixture
def http(lab: Lab) -> requests.Session:
    with lab.session() as session:
        yield session


@pytest.fixture(scope="session")
def side_stack(lab: Lab) -> Iterator[Stack]:
    """A second compose project of this checkout (its own ports, network and volume) for the
    scenario checks that recreate or kill the app, so the stack under test is left alone. One
    app replica. Ports next to the main stack's (+100), or LAB_COMPOSE_TEST_HTTPS_PORT / _HTTP_PORT."""
    main = compose.nginx_env()
    https = int(os.environ.get("LAB_COMPOSE_TEST_HTTPS_PORT", int(main["LAB_HTTPS_PORT"]) + 100))
    http = int(os.environ.get("LAB_COMPOSE_TEST_HTTP_PORT", int(main["LAB_HTTP_PORT"]) + 100))
    env = {
        **compose.started_env(),
        "LAB_HTTPS_PORT": str(https),
        "LAB_HTTP_PORT": str(http),
        "LAB_SCENARIO": "",
        "LAB_APP_REPLICAS": "1",
    }
    stack = Stack(project=f"{compose.project()}-side", url=f"https://localhost:{https}", env=env)
    stack.compose("down", "--volumes", "--remove-orphans", check=False)
    try:
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", check=False)
