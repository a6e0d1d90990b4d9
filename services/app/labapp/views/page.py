"""``GET /``: the lab page (plain HTML/CSS/JS from labapp/static/lab, no build step)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

bp = Blueprint("page", __name__)


@bp.get("/")
def index() -> Response:
    response = current_app.send_static_file("lab/index.html")
    # The page is the lab's instrument: always the copy that matches the running app.
    response.headers["Cache-Control"] = "no-cache"
    return response
