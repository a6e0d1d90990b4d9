"""`make watch` on the native stack: a saved edit is live without any command, a broken one is
refused with nginx's message while the old config keeps serving, and Ctrl-C stops the watcher only.
Watches a copy of nginx/ (LAB_NGINX_SRC), never the repository's files; tests/compose/test_watch.py
does the same in containers."""

from __future__ import annotations

import time
import uuid

from support.watcher import watching

# Bounded waits: the watcher reacts within ~50 ms of the last write, the reload takes well under a
# second; old nginx workers may take a moment to stop taking new connections.
RELOAD_S = 15


def probe_header(lab) -> str | None:
    with lab.session() as fresh:
        return fresh.get(lab.url + "/healthz", headers={"Connection": "close"}, timeout=5).headers.get(
            "X-Watch-Probe"
        )


def wait_for_header(lab, token: str, timeout: float = RELOAD_S) -> None:
    end, seen = time.monotonic() + timeout, None
    while time.monotonic() < end:
        if (seen := probe_header(lab)) == token:
            return
        time.sleep(0.1)
    raise AssertionError(f"the edit was not live {timeout:.0f}s after the save: X-Watch-Probe {seen!r}")


def test_watch_applies_a_saved_edit_refuses_a_broken_one_and_stops_alone(lab, http, edited_nginx):
    with watching({"LAB_NGINX_SRC": str(edited_nginx.copy)}) as watcher:
        token = uuid.uuid4().hex
        edited_nginx.append("snippets/proxy.conf", f"add_header X-Watch-Probe {token} always;\n")
        watcher.wait_for("lab: changed: snippets/proxy.conf", timeout=RELOAD_S)
        watcher.wait_for("lab: live", timeout=RELOAD_S)
        wait_for_header(lab, token)

        mark = len(watcher.output)
        edited_nginx.append("snippets/proxy.conf", "proxy_set_header Host\n")  # no value, no semicolon
        watcher.wait_for("lab: not applied", timeout=RELOAD_S)
        refusal = watcher.since(mark)
        assert "nginx: [emerg]" in refusal and "proxy.conf" in refusal, f"nginx's own message: {refusal}"
        assert "running config is unchanged" in refusal
        assert probe_header(lab) == token, "the running config must keep serving after a refused edit"

        assert watcher.ctrl_c() == 0
    assert http.get(lab.url + "/healthz").status_code == 200, "Ctrl-C must stop the watcher only"
    assert probe_header(lab) == token, "the stack keeps the last accepted config"
