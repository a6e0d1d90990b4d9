"""`make watch` on the compose stack: a file saved under the bind-mounted nginx/ is live without
any command, a broken one is refused with nginx's message while the old config keeps serving, a
removed one is gone, and Ctrl-C stops the watcher only, never a container. The edits are a probe
file of its own (a server picked by Host), removed at the end."""

from __future__ import annotations

import uuid

from support.probeserver import probe, probe_config
from support.watcher import watching

RELOAD_S = 15


def test_watch_applies_refuses_and_stops_alone_in_containers(lab, http, stack, probe_file):
    assert probe(lab).status_code == 421, "the probe Host must be refused before the edit"
    containers = {service: stack.container(service) for service in ("app", "nginx")}
    with watching() as watcher:
        assert "for the compose stack" in watcher.output[-1]
        token = uuid.uuid4().hex
        probe_file.write_text(probe_config(token))
        watcher.wait_for(f"lab: changed: conf.d/{probe_file.name}", timeout=RELOAD_S)
        watcher.wait_for("lab: live", timeout=RELOAD_S)
        answer = probe(lab, expect=200, within=RELOAD_S)
        assert answer.status_code == 200 and answer.json() == {"probe": token}, answer.text[:200]

        mark = len(watcher.output)
        probe_file.write_text(probe_config(token) + "this_is_not_a_directive on;\n")
        watcher.wait_for("lab: not applied", timeout=RELOAD_S)
        refusal = watcher.since(mark)
        assert 'nginx: [emerg] unknown directive "this_is_not_a_directive"' in refusal, refusal
        answer = probe(lab)
        assert answer.status_code == 200 and answer.json() == {"probe": token}, (
            "the old config must keep serving"
        )

        probe_file.unlink()
        watcher.wait_for("lab: live", timeout=RELOAD_S)
        assert probe(lab, expect=421, within=RELOAD_S).status_code == 421, "a removed file's server is gone"

        assert watcher.ctrl_c() == 0
    assert {s: stack.state(s) for s in containers} == {"app": "healthy", "nginx": "healthy"}
    assert {s: stack.container(s) for s in containers} == containers, "no container was replaced"
    assert http.get(lab.url + "/healthz", timeout=5).status_code == 200
