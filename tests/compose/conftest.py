"""Compose-only checks, against the stack `make up` started (tests/compose/; `make compose-test`).

They inspect and restart containers, so they need the Docker engine and a compose stack of this
checkout: run them after the integration suite, not during it.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labctl import compose, paths
from labctl import stack as lab_stack
from support.composectl import Stack, side_stack
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


@pytest.fixture
def probe_file() -> Iterator[Path]:
    """A conf.d file of the checkout's nginx/ (the one the container mounts), removed at the end
    and the removal reloaded (.gitignore'd, in case a killed run leaves it)."""
    path = compose.NGINX_SOURCE / "conf.d" / f"zz-compose-test-{uuid.uuid4().hex[:8]}.conf"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, str(paths.SCRIPTS / "lab"), "reload"], capture_output=True, timeout=60
        )


@pytest.fixture(scope="module")
def side(lab: Lab) -> Iterator[Stack]:
    """A second compose project of this checkout, one app replica, for the scenario checks that
    recreate, redeploy or kill the app, so the stack under test is left alone. One per module:
    every side stack publishes the same two ports (support.composectl.side_stack), so a module
    with a side stack of its own (test_open_files) must not run while this one is still up."""
    with side_stack("side", LAB_SCENARIO="", LAB_APP_REPLICAS="1") as stack:
        yield stack
