"""Fixtures for the suite that runs unchanged against a native or compose stack (LAB_URL, LAB_CA)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from labctl import h3, native, paths, probe, stack
from labctl.probe import Reply
from labctl.procs import children
from support.lab import MIB, Lab, http3_port_or_skip, lab_from_env


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = lab_from_env()
    try:
        lab.session().get(lab.url + "/healthz", timeout=5).raise_for_status()
    except requests.RequestException as error:
        pytest.fail(
            f"the lab at {lab.url} is not answering ({error}): start it (`make native-up` or "
            "`make up`) or set LAB_URL (and LAB_CA for a certificate no public CA signed)"
        )
    return lab


@pytest.fixture
def http(lab: Lab) -> requests.Session:
    """requests through nginx over TLS verified against the lab's CA; redirects not followed."""
    with lab.session() as session:
        yield session


@pytest.fixture
def remove_after(lab: Lab, http: requests.Session):
    """``remove_after(name)``: DELETE that upload when the test ends (the suite uploads hundreds of MiB)."""
    names: list[str] = []
    yield names.append
    for name in names:
        http.delete(f"{lab.url}/files/{name}")


@pytest.fixture
def upload_name(remove_after):
    """``upload_name("x.bin")``: a name no other run uses, DELETEd when the test ends."""

    def make(suffix: str) -> str:
        name = f"{uuid.uuid4().hex[:8]}-{suffix}"
        remove_after(name)
        return name

    return make


@pytest.fixture(scope="session")
def big_upload_bytes() -> int:
    """Size of the big-upload tests (LAB_TEST_UPLOAD_MB, default 256 MiB)."""
    return int(os.environ.get("LAB_TEST_UPLOAD_MB", "256")) * MIB


def nginx_workers() -> set[int]:
    return children(int(native.NGINX_PID.read_text().strip()))


class EditedNginx:
    """A copy of nginx/ (LAB_NGINX_SRC) the running native stack can be reloaded from."""

    def __init__(self, lab: Lab, copy: Path) -> None:
        self.lab = lab
        self.copy = copy

    def append(self, relative: str, text: str) -> None:
        with (self.copy / relative).open("a") as conf:
            conf.write(text)

    def reload(self, source: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(paths.SCRIPTS / "lab"), "reload"],
            env={**os.environ, "LAB_NGINX_SRC": str(source or self.copy)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def reload_and_wait(self, source: Path | None = None) -> None:
        """Reload, then wait until every worker of the old config has exited: a reload is
        asynchronous, and until then an old worker may still accept a new connection."""
        old = nginx_workers()
        result = self.reload(source)
        assert result.returncode == 0, result.stderr
        for _ in range(100):
            if not old & nginx_workers():
                return
            time.sleep(0.1)
        pytest.fail(f"10 s after `make reload`, old nginx workers {old & nginx_workers()} still run")


@pytest.fixture
def edited_nginx(lab: Lab, tmp_path: Path):
    if stack.running_mode() != "native":
        pytest.skip("drives the native stack's nginx; tests/compose covers reload in containers")
    edited = EditedNginx(lab, tmp_path / "nginx")
    shutil.copytree(paths.NGINX_SRC, edited.copy)
    yield edited
    edited.reload_and_wait(paths.NGINX_SRC)  # leave the stack on the repository's config


@dataclass(frozen=True)
class Http3:
    """The lab over HTTP/3: its endpoint and the UDP port its Alt-Svc advertises."""

    lab: Lab
    port: int

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
        timeout: float = probe.TIMEOUT,
    ) -> Reply:
        """One request on a QUIC connection of its own (labctl.h3), redirects not followed."""
        return h3.request(self.lab.endpoint, method, path, headers, body, port=self.port, timeout=timeout)


@pytest.fixture(scope="session")
def http3(lab: Lab) -> Http3:
    """HTTP/3 where the stack speaks it, "not applicable" (a skip saying why) where it cannot."""
    return Http3(lab, http3_port_or_skip(lab))
