"""`scripts/lab logs` joins nginx's access log and the app's log on the request id."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from labctl import paths, stack
from support.lab import Lab


def lab_logs(*args: str) -> str:
    result = subprocess.run(
        ["python3", str(paths.SCRIPTS / "lab"), "logs", *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def local_stack() -> None:
    if stack.running_mode() is None:
        pytest.skip("the logs of a stack this checkout did not start are not readable here")


@pytest.mark.parametrize(
    "path, nginx_status, app_status, note",
    [
        ("/errors/teapot", "418", "418", ""),
        ("/no/such/page", "404", "404", ""),
    ],
)
def test_one_row_per_request_with_both_halves(
    lab: Lab, http, local_stack, path: str, nginx_status: str, app_status: str, note: str
):
    request_id = http.get(lab.url + path).headers["X-Request-ID"]
    rows = [line for line in lab_logs("--id", request_id).splitlines()[1:] if line.strip()]
    assert len(rows) == 1, f"expected one row for request {request_id}, got {rows}"
    request, nginx_half, app_half, row_note = (part.strip() for part in rows[0].split(" | "))
    assert path in request and request_id[:8] in request, rows[0]
    assert nginx_half.split()[0] == nginx_status, f"nginx half: {rows[0]}"
    assert app_half.split()[0] == app_status, f"app half: {rows[0]} (is labapp.access logging?)"
    assert row_note == note, rows[0]


def test_a_request_nginx_answered_itself_has_no_app_half(lab: Lab, http, local_stack):
    # An unknown Host is refused by nginx's default server (421): the app never sees it.
    probe = f"/logs-probe-{uuid.uuid4().hex[:8]}"
    assert http.get(lab.url + probe, headers={"Host": "not-the-lab.example"}).status_code == 421
    rows = [line for line in lab_logs("-n", "200").splitlines() if probe in line]
    assert len(rows) == 1, f"expected one row for {probe}: {rows}"
    _, nginx_half, app_half, note = (part.strip() for part in rows[0].split(" | "))
    assert nginx_half.split()[0] == "421" and app_half.split()[0] == "-", rows[0]
    assert note == "nginx answered itself, the app never saw it", rows[0]
