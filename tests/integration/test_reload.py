"""`make reload`: an edit applies without a restart; a broken edit is refused and the old
config keeps serving. Edits a copy of nginx/ (LAB_NGINX_SRC), never the repository's files."""

from __future__ import annotations

import uuid


def test_an_edit_takes_effect_on_reload(lab, edited_nginx):
    token = uuid.uuid4().hex
    edited_nginx.append("snippets/proxy.conf", f"add_header X-Reload-Probe {token} always;\n")
    edited_nginx.reload_and_wait()
    with lab.session() as fresh:
        assert fresh.get(lab.url + "/healthz").headers.get("X-Reload-Probe") == token


def test_a_broken_edit_is_refused_and_the_old_config_keeps_serving(lab, http, edited_nginx):
    edited_nginx.append("snippets/proxy.conf", "proxy_set_header Host\n")  # no value, no semicolon
    result = edited_nginx.reload()
    assert result.returncode != 0
    assert "[emerg]" in result.stderr, f"nginx's own message should be shown: {result.stderr!r}"
    assert "running config is unchanged" in result.stderr
    response = http.get(lab.url + "/redirect/external", allow_redirects=False)
    assert response.headers["Location"] == lab.url + "/landing"
