"""scripts/certs.sh: the lab CA and a server certificate for localhost, 127.0.0.1 and ::1."""

from __future__ import annotations

import subprocess
from pathlib import Path

from labctl import paths


def make_certs(directory: Path) -> str:
    result = subprocess.run(
        ["sh", str(paths.SCRIPTS / "certs.sh"), str(directory)], capture_output=True, text=True, check=True
    )
    return result.stdout


def openssl(*args: str) -> str:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=True).stdout


def test_server_certificate_names_every_loopback_and_verifies(tmp_path):
    make_certs(tmp_path)
    san = openssl("x509", "-in", str(tmp_path / "server.pem"), "-noout", "-ext", "subjectAltName")
    assert "DNS:localhost" in san and "IP Address:127.0.0.1" in san and "IP Address:0:0:0:0:0:0:0:1" in san
    assert "OK" in openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "server.pem"))


def test_a_second_run_changes_nothing(tmp_path):
    make_certs(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert make_certs(tmp_path) == ""
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_renewing_the_server_certificate_keeps_the_trusted_ca(tmp_path):
    make_certs(tmp_path)
    ca = (tmp_path / "ca.pem").read_bytes()
    (tmp_path / "server.pem").unlink()  # as if it had expired
    assert "server certificate renewed" in make_certs(tmp_path)
    assert (tmp_path / "ca.pem").read_bytes() == ca, "clients trusting ca.pem would break"
    assert "OK" in openssl("verify", "-CAfile", str(tmp_path / "ca.pem"), str(tmp_path / "server.pem"))
