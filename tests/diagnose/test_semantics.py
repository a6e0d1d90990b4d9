"""`lab check` follows nginx's semantics, not the corpus's spellings: one config per class of
misjudgement found on configs nobody here wrote (issue 25), each written the way users write
them (tests/diagnose/semantics/*.conf, sources cited in their comments), run through the real
`scripts/lab check` (nginx, the lab's app, the probes) and judged on the row that was wrong.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from labctl import paths

CONFIGS = Path(__file__).parent / "semantics"


def lab_check(name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), "check", *extra, str(CONFIGS / f"{name}.conf")],
        capture_output=True,
        text=True,
        timeout=120,
    )


def rows(name: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    run = lab_check(name, "--json")
    assert run.returncode in (0, 1), f"exit {run.returncode}: {run.stderr}"
    report = json.loads(run.stdout)
    return report, report["rows"]


def of(found: list[dict[str, object]], behaviour: str) -> list[dict[str, object]]:
    picked = [r for r in found if r["behaviour"] == behaviour]
    assert picked, f"no {behaviour} row in {found}"
    return picked


def test_a_server_without_listen_runs_on_nginx_s_implicit_port() -> None:
    report, found = rows("no_listen")
    assert any(c["was"] == "(no listen)" for c in report["changes"]), report["changes"]
    # The probes reached the app through the implicit *:80: the redirect came back as one.
    assert {r["verdict"] for r in of(found, "redirect-host")} == {"ok"}, found


def test_names_compare_case_insensitively_and_a_302_to_443_keeps_its_port() -> None:
    report, found = rows("capital_server_name")
    assert {r["verdict"] for r in of(found, "https-redirect")} == {"ok"}, found
    assert {r["verdict"] for r in of(found, "redirect-host")} == {"ok"}, found
    scenarios = {name for name, _ in report["matches"]}
    assert not scenarios & {"https-redirect-drops-port", "host-drops-port"}, report["matches"]


def test_connection_http_connection_is_an_upgrade_only_http_1_1_is_missing() -> None:
    _, found = rows("http_connection")
    upgrade = of(found, "ws-upgrade")
    assert all(r["verdict"] == "broken" for r in upgrade), upgrade
    assert [r["directive"] for r in upgrade] == ["missing: proxy_http_version 1.1"], upgrade
    assert "Connection" not in str(upgrade[0]["seen"]), upgrade


def test_a_forged_proto_the_location_hides_is_judged_by_what_the_app_saw() -> None:
    _, found = rows("proxy_redirect_hides_proto")
    forged = of(found, "forged-proto")
    assert {r["verdict"] for r in forged} == {"broken"}, forged
    assert "the app saw https://" in str(forged[0]["seen"]), forged
    assert forged[0]["line"] == 9, forged  # the location that sets no X-Forwarded-Proto


def test_paths_the_config_does_not_proxy_are_not_reached_never_ok() -> None:
    _, found = rows("api_only")
    for behaviour, path in (("unknown-host", "/debug/request"), ("absolute-form-host", "/redirect/external")):
        (row,) = of(found, behaviour)
        assert row["verdict"] == "not probed", row
        assert row["seen"] == f"not reached: {path} is answered by nginx (location /, line 9)", row
    upload = of(found, "upload-limit")
    assert [(r["verdict"], r["line"], r["directive"]) for r in upload] == [
        ("broken", 3, "missing: client_max_body_size")
    ], upload


def test_tls_settings_are_read_from_the_config_and_ssl_on_gets_its_fix() -> None:
    report, found = rows("old_tls")
    tls = of(found, "tls-versions")
    assert [(r["verdict"] in ("broken", "static"), r["line"]) for r in tls] == [(True, 9)], tls
    (warning,) = [w for w in report["warnings"] if '"ssl" directive' in str(w["message"])]
    assert str(warning["message"]).endswith("old_tls.conf:6"), warning
    assert "listen 443 ssl" in str(warning["fix"]), warning


@pytest.mark.parametrize(
    ("name", "message", "fix"),
    [
        ("no_events", 'no "events" section', "`events {}`"),
        ("duplicate_default", "duplicate_default.conf:11", "`default_server`"),
    ],
)
def test_nginx_s_refusals_come_with_the_way_out(name: str, message: str, fix: str) -> None:
    run = lab_check(name)
    assert run.returncode == 2, run.stdout + run.stderr
    first, second = run.stderr.strip().splitlines()[:2]
    assert message in first, run.stderr
    assert second.strip().startswith("fix:") and fix in second, run.stderr


def test_the_html_report_is_one_page_with_the_responsible_lines_highlighted(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    run = lab_check("api_only", "--html", str(out))
    assert run.returncode == 1, run.stderr
    page = out.read_text()
    # Self-contained: nothing fetched, nothing run.
    assert "<script" not in page and "src=" not in page and "http-equiv" not in page
    assert not re.search(r'href="(?!#)', page), "a link out of the page"
    # The upload-limit row links to its line, and that line of the config is highlighted.
    assert '<a href="#api_only-conf-3">api_only.conf:3</a> <code>missing: client_max_body_size</code>' in page
    assert re.search(r'<span id="api_only-conf-3" class="blamed"><i>3</i>server \{</span>', page), page
    assert 'class="fix"' in page and "client_max_body_size" in page
    # Every line of the config is there, escaped.
    assert page.count('<span id="api_only-conf-') == len((CONFIGS / "api_only.conf").read_text().splitlines())


def test_the_config_s_own_websocket_locations_are_probed() -> None:
    report, found = rows("own_websocket_locations")
    # /socket.io forwards the upgrade (its constant Connection "Upgrade" included): probed there.
    for behaviour in ("ws-upgrade", "ws-open", "ws-scheme"):
        (row,) = of(found, behaviour)
        assert row["verdict"] == "ok" and "read from the config" not in str(row["seen"]), row
    assert str(of(found, "ws-upgrade")[0]["seen"]).startswith("/socket.io/: 101"), found
    # The lab's own /ws/* are not this config's websockets: no catalogue line about them.
    assert not [name for name, _ in report["matches"] if name.startswith("ws-")], report["matches"]


def test_a_broken_own_websocket_location_is_probed_and_blamed_at_its_line() -> None:
    _, found = rows("own_websocket_broken")
    upgrade = of(found, "ws-upgrade")
    assert {r["verdict"] for r in upgrade} == {"broken"}, upgrade
    assert str(upgrade[0]["seen"]).startswith(
        "/api/live/: handshake answered 400; missing: proxy_http_version"
    )
    assert {(r["line"], r["directive"]) for r in upgrade} == {
        (14, 'missing: proxy_set_header Connection "upgrade"'),
        (14, "missing: proxy_http_version 1.1"),
    }, upgrade
