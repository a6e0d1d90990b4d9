"""`make reload`: an edit applies without a restart; a broken edit is refused and the old
config keeps serving. Edits a copy of nginx/ (LAB_NGINX_SRC), never the repository's files."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from labctl import paths

PROBE_SNIPPET = "snippets/proxy.conf"


@pytest.fixture
def edited_copy(lab, tmp_path: Path):
    if paths.running_mode() != "native":
        pytest.skip("drives the native stack's nginx; tests/compose covers reload in containers")
    copy = tmp_path / "nginx"
    shutil.copytree(paths.NGINX_SRC, copy)
    yield copy
    reload_from(paths.NGINX_SRC)  # leave the stack on the repository's config


def reload_from(source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(paths.SCRIPTS / "lab"), "reload"],
        env={**os.environ, "LAB_NGINX_SRC": str(source)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_edit_takes_effect_on_reload(lab, edited_copy):
    token = uuid.uuid4().hex
    with (edited_copy / PROBE_SNIPPET).open("a") as snippet:
        snippet.write(f"add_header X-Reload-Probe {token} always;\n")
    result = reload_from(edited_copy)
    assert result.returncode == 0, result.stderr
    # A reload is asynchronous: new workers take over while the old ones finish their requests.
    seen = None
    for _ in range(50):
        with lab.session() as fresh:  # a new connection lands on a new worker
            seen = fresh.get(lab.url + "/healthz").headers.get("X-Reload-Probe")
        if seen == token:
            break
        time.sleep(0.1)
    assert seen == token, "the edited config was not in force 5 s after `make reload`"


def test_a_broken_edit_is_refused_and_the_old_config_keeps_serving(lab, http, edited_copy):
    with (edited_copy / PROBE_SNIPPET).open("a") as snippet:
        snippet.write("proxy_set_header Host\n")  # no value, no semicolon
    result = reload_from(edited_copy)
    assert result.returncode != 0
    assert "[emerg]" in result.stderr, f"nginx's own message should be shown: {result.stderr!r}"
    assert "running config is unchanged" in result.stderr
    response = http.get(lab.url + "/redirect/external", allow_redirects=False)
    assert response.headers["Location"] == lab.url + "/landing"
