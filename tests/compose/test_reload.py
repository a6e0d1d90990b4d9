"""`make reload` in compose mode: an edit under nginx/ (bind-mounted) applies without a rebuild or a
restart; a broken edit is refused with nginx's own message and the running config keeps serving."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

from labctl import paths
from support.probeserver import probe, probe_config


def lab_reload() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), "reload"], capture_output=True, text=True, timeout=60
    )


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
