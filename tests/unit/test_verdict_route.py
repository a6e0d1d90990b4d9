"""/lab/verdict: the file `make reload` wrote (labctl.verdict), served as it is and never cached;
a clear JSON 404 when there is none."""

from __future__ import annotations

import json
from pathlib import Path


def test_the_verdict_written_by_the_last_reload_is_served_uncached(make_app, tmp_path: Path) -> None:
    written = tmp_path / "verdict.json"
    verdict = {"written": "2026-01-01T00:00:00Z", "scenario": "ws-no-upgrade", "rows": [], "matches": []}
    written.write_text(json.dumps(verdict))
    response = make_app(verdict_file=str(written)).test_client().get("/lab/verdict")
    assert response.status_code == 200
    assert response.get_json() == verdict
    assert response.headers["Cache-Control"] == "no-store"


def test_no_verdict_yet_is_a_json_404_that_says_what_writes_one(make_app, tmp_path: Path) -> None:
    response = make_app(verdict_file=str(tmp_path / "absent.json")).test_client().get("/lab/verdict")
    assert response.status_code == 404
    assert "make reload" in response.get_json()["msg"]


def test_no_verdict_file_configured_is_a_json_404(make_app) -> None:
    response = make_app(verdict_file="").test_client().get("/lab/verdict")
    assert response.status_code == 404
    assert "LAB_VERDICT_FILE" in response.get_json()["msg"]
