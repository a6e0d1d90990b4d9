"""proxylab's Flask app: the thing nginx sits in front of."""

from __future__ import annotations

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from . import chat, clienterrors, errors, inputfix, middleware, storage, wsfix
from .settings import LabSettings
from .views import bugs, debug, errors_demo, page, redirects, slow, uploads, websockets


class KeepOrderJSON(DefaultJSONProvider):
    # /debug/request lists what the app sees in the order a reader wants it, not sorted.
    sort_keys = False


def create_app(settings: LabSettings | None = None) -> Flask:
    settings = settings or LabSettings.from_env()
    wsfix.install(
        route_aware_upgrade=settings.fix_ws_upgrade, bounded_upgrade_input=settings.fix_upgrade_input
    )
    inputfix.install()
    if settings.fix_json_errors:
        clienterrors.install()
    app = Flask(__name__)
    app.request_class = storage.StreamingRequest
    app.config["LAB"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    if settings.fix_form_memory:
        # Werkzeug caps non-file form fields at 500 kB; large text fields are legitimate here.
        app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_form_memory_mb * 1024 * 1024
    app.json = KeepOrderJSON(app)
    # The worker's chat room; gunicorn.conf.py's post_worker_init starts its relay (labapp.chat).
    app.extensions[chat.EXTENSION] = chat.make_room(settings.fix_broker, settings.broker_url)

    for blueprint in (
        debug.bp,
        redirects.bp,
        websockets.make_blueprint(settings.ws_route_flag),
        uploads.bp,
        errors_demo.bp,
        slow.bp,
        bugs.bp,
        page.bp,
    ):
        app.register_blueprint(blueprint)

    if settings.fix_json_errors:
        errors.register(app)
    middleware.install(app, settings)
    return app
