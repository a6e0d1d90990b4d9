"""``GET /lab/verdict``: the doctor's verdict on the running stack, as `make reload` / `make
watch` last wrote it (LAB_VERDICT_FILE; labctl.verdict), for the lab page's verdict section."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app

import labsettings as lab

bp = Blueprint("verdict", __name__)


@bp.get("/lab/verdict")
def verdict() -> Response:
    where = current_app.config["LAB"][lab.VERDICT_FILE]
    if not where:
        abort(404, "no verdict file here (LAB_VERDICT_FILE is not set: `make native-up` sets it)")
    try:
        text = Path(where).read_text()
    except FileNotFoundError:
        abort(404, "no verdict yet: `make reload` (or a save under `make watch`) writes one")
    # Rewritten by every reload: never a cached copy.
    return Response(text, mimetype="application/json", headers={"Cache-Control": "no-store"})
