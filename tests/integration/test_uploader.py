"""`scripts/lab upload`, the command-line uploader, against the running stack.

It runs with the system's python3 (scripts/lab must work before the virtualenv exists), so
these tests also prove it needs nothing beyond the standard library.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from labctl import paths
from support.lab import MIB, Lab, pattern_file, sha256_of_response

UPLOADER_MB = 64


def run_uploader(lab: Lab, *args: str, ca: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAB_URL": lab.url, "LAB_CA": str(ca or lab.ca)}
    return subprocess.run(
        ["python3", str(paths.SCRIPTS / "lab"), "upload", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("uploader") / "uploader.bin"
    return path, pattern_file(path, UPLOADER_MB * MIB, seed=b"uploader")


def test_uploader_streams_and_verifies_a_big_file(lab: Lab, http, big_file: tuple[Path, str], upload_name):
    path, sha256 = big_file
    name = upload_name("uploader.bin")
    result = run_uploader(lab, str(path), "--name", name)
    assert result.returncode == 0, f"the uploader failed ({result.returncode}): {result.stderr[-1500:]}"
    assert json.loads(result.stdout) == {"name": name, "size": UPLOADER_MB * MIB, "sha256": sha256}
    assert "100%" in result.stderr and "verified" in result.stderr, f"no progress to 100%: {result.stderr}"
    download = http.get(f"{lab.url}/files/{name}", stream=True)
    assert sha256_of_response(download) == (UPLOADER_MB * MIB, sha256), "the stored file differs"


def test_uploader_reports_the_servers_json_error(lab: Lab, tmp_path: Path):
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    result = run_uploader(lab, str(small), "--name", "..")
    assert result.returncode == 1, f"a refused upload must exit 1, got {result.returncode}: {result.stderr}"
    assert "HTTP 400" in result.stderr and "nothing usable" in result.stderr, (
        f"the server's JSON error message is not shown: {result.stderr}"
    )


def test_uploader_refuses_a_server_it_cannot_verify(lab: Lab, tmp_path: Path):
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 1000)
    # The system's CA bundle does not hold the lab's CA: TLS must fail, never fall back.
    result = run_uploader(lab, str(small), ca=Path("/etc/ssl/certs/ca-certificates.crt"))
    assert result.returncode == 1, result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr, result.stderr
