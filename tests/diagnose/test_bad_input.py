"""`lab check` and `lab doctor` on input they cannot run: one plain line naming the file and line
(nginx's own message where nginx is the judge), exit 2, no traceback, the user's file untouched.
And the fallback where no network namespace is allowed: the same findings on the lab's ports."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labctl import paths
from labctl.diagnose import sandbox

CORPUS = Path(__file__).parent / "corpus"


def lab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def one_line_refusal(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, f"exit {result.returncode}: {result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"one line, not {len(lines)}: {result.stderr!r}"
    for needle in needles:
        assert needle in result.stderr, f"{needle!r} not in {result.stderr!r}"
    return result.stderr


CASES = {
    # name: (the config, what the refusal must name)
    "not-nginx-syntax": (
        "server {\n    listen 80\n    location / { proxy_pass http://127.0.0.1:8000; }\n}\n",
        ["site.conf:"],
    ),
    "nginx-refuses-it": (
        "server {\n    listen 80;\n    location / {\n        proxy_pass http://127.0.0.1:8000;\n"
        "        proxy_set_header Host;\n    }\n}\n",
        ['invalid number of arguments in "proxy_set_header"', "site.conf:5"],
    ),
    "nothing-to-proxy": ("server {\n    listen 80;\n    root /var/www;\n}\n", ["nothing here proxies"]),
    "missing-include": (
        "server {\n    listen 80;\n    location / {\n        include no-such-params;\n"
        "        proxy_pass http://127.0.0.1:8000;\n    }\n}\n",
        ["site.conf:4", "no-such-params", "not found"],
    ),
    "no-server": ("events {}\n", ["no server block"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_check_refuses_with_a_line_that_names_the_place(case: str, tmp_path: Path) -> None:
    text, needles = CASES[case]
    site = tmp_path / "site.conf"
    site.write_text(text)
    before = hashlib.sha256(site.read_bytes()).hexdigest()
    one_line_refusal(lab("check", str(site)), *needles)
    assert hashlib.sha256(site.read_bytes()).hexdigest() == before, "the user's file was modified"


def test_check_of_a_file_that_does_not_exist(tmp_path: Path) -> None:
    one_line_refusal(lab("check", str(tmp_path / "nope.conf")), "no such file")


def test_doctor_against_nothing_is_one_line_and_exit_2() -> None:
    result = lab("doctor", env={"LAB_URL": "https://127.0.0.1:9", "LAB_CA": str(paths.CA)})
    one_line_refusal(result, "cannot reach https://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("case", ["flask-docs-nginx", "mirahlabs-blog-flask-nginx-ssl"])
def test_without_a_namespace_the_findings_are_the_same(case: str) -> None:
    """Where `unshare` is not allowed the config runs on the lab's ports, judged as its own."""
    if sandbox.namespace_command() is None:
        pytest.skip("no network namespace on this machine: both runs would be the remapped one")
    site = str(CORPUS / case / "site.conf")

    def findings(*extra: str) -> set[tuple[str, int, str]]:
        result = lab("check", "--json", *extra, site)
        assert result.returncode == 1, result.stdout + result.stderr
        rows = json.loads(result.stdout)["rows"]
        return {
            (r["behaviour"], r["line"], r["directive"]) for r in rows if r["verdict"] in ("broken", "static")
        }

    remapped = findings("--no-namespace")
    assert remapped == findings(), "the remapped run and the namespace run disagree"
