"""Fixtures for the suite that runs unchanged against a native or compose stack (LAB_URL, LAB_CA)."""

from __future__ import annotations

import os

import pytest
import requests

from support.lab import MIB, Lab, lab_from_env


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = lab_from_env()
    if not lab.ca.is_file():
        pytest.fail(f"no CA at {lab.ca}: start a stack (`make native-up` or `make up`) or set LAB_CA")
    try:
        lab.session().get(lab.url + "/healthz", timeout=5).raise_for_status()
    except requests.RequestException as error:
        pytest.fail(f"the lab at {lab.url} is not answering ({error}): start it or set LAB_URL")
    return lab


@pytest.fixture
def http(lab: Lab) -> requests.Session:
    """requests through nginx over TLS verified against the lab's CA; redirects not followed."""
    with lab.session() as session:
        yield session


@pytest.fixture(scope="session")
def big_upload_bytes() -> int:
    """Size of the big-upload tests (LAB_TEST_UPLOAD_MB, default 256 MiB)."""
    return int(os.environ.get("LAB_TEST_UPLOAD_MB", "256")) * MIB
