"""`make reload` in compose mode: an edit under nginx/ (bind-mounted) applies without a rebuild or a
restart; a broken edit is refused with nginx's own message and the running config keeps serving."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from labctl import paths

PROBE_HOST = "reload-probe.invalid"


def lab_reload() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), "reload"], capture_output=True, text=True, timeout=60
    )


def probe_config(token: str) -> str:
    # A server of its own, picked by Host: nothing the rest of the suite relies on changes.
    return (
        "server {\n"
        "    listen {{LAB_LISTEN_HTTPS}} ssl;\n"
        f"    server_name {PROBE_HOST};\n"
        "    include snippets/tls.conf;\n"
        "    default_type application/json;\n"
        f'    return 200 \'{{"probe":"{token}"}}\';\n'
        "}\n"
    )


@pytest.fixture
def probe_file():
    path = paths.NGINX_SRC / "conf.d" / f"zz-compose-test-{uuid.uuid4().hex[:8]}.conf"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        lab_reload()


def probe(lab, expect: int | None = None, within: float = 5.0):
    """GET the probe server on a fresh connection (a kept-alive one may still be served by an
    old worker: a reload is a signal, the new workers start a moment later). With ``expect``,
    retry until that status shows up, for at most ``within`` seconds."""
    end = time.monotonic() + within
    while True:
        with lab.session() as fresh:
            answer = fresh.get(lab.url + "/", headers={"Host": PROBE_HOST, "Connection": "close"}, timeout=5)
        if expect is None or answer.status_code == expect or time.monotonic() > end:
            return answer
        time.sleep(0.1)


def test_edit_plus_reload_takes_effect_and_a_broken_edit_is_refused(lab, http, probe_file):
    assert probe(lab).status_code == 421, "the probe Host must be refused before the edit"

    token = uuid.uuid4().hex
    probe_file.write_text(probe_config(token))
    result = lab_reload()
    assert result.returncode == 0, f"reload failed: {result.stdout}{result.stderr}"
    answer = probe(lab, expect=200)
    assert answer.status_code == 200 and answer.json() == {"probe": token}, (
        f"the edit did not take effect after `make reload`: {answer.status_code} {answer.text[:200]}"
    )

    probe_file.write_text(probe_config(token) + "this_is_not_a_directive on;\n")
    result = lab_reload()
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"a broken config was accepted: {output}"
    assert 'nginx: [emerg] unknown directive "this_is_not_a_directive"' in output, (
        f"the refusal must carry nginx's own message: {output}"
    )
    time.sleep(0.5)
    answer = probe(lab)
    assert answer.status_code == 200 and answer.json() == {"probe": token}, "the old config must keep serving"
    assert http.get(lab.url + "/healthz", timeout=5).status_code == 200

    probe_file.unlink()
    assert lab_reload().returncode == 0
    assert probe(lab, expect=421).status_code == 421, "removing the file plus reload must remove the server"
