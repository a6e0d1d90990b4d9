"""proxylab's Flask app: the thing nginx sits in front of."""

from __future__ import annotations

from flask import Flask
from flask.json.provider import DefaultJSONProvider

import labsettings as lab
from labsettings import AppSettings

from . import chat, clienterrors, errors, inputfix, middleware, realtime, storage, wsfix
from .views import bugs, cpu, debug, errors_demo, page, redirects, slow, stream, uploads, websockets


class KeepOrderJSON(DefaultJSONProvider):
    # /debug/request lists what the app sees in the order a reader wants it, not sorted.
    sort_keys = False


def create_app(settings: AppSettings | None = None) -> Flask:
    settings = settings or AppSettings.from_env()
    wsfix.install(
        route_aware_upgrade=settings[lab.FIX_WS_UPGRADE],
        bounded_upgrade_input=settings[lab.FIX_UPGRADE_INPUT],
    )
    inputfix.install()
    if settings[lab.FIX_JSON_ERRORS]:
        clienterrors.install()
    app = Flask(__name__)
    app.request_class = storage.StreamingRequest
    app.config["LAB"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    if settings[lab.FIX_FORM_MEMORY]:
        # Werkzeug caps non-file form fields at 500 kB; large text fields are legitimate here.
        app.config["MAX_FORM_MEMORY_SIZE"] = settings[lab.MAX_FORM_MEMORY_MB] * 1024 * 1024
    app.json = KeepOrderJSON(app)
    # The worker's chat room; gunicornhooks' post_worker_init starts its relay (labapp.chat).
    app.extensions[chat.EXTENSION] = chat.make_room(settings[lab.FIX_BROKER], settings[lab.BROKER_URL])

    for blueprint in (
        debug.bp,
        redirects.bp,
        websockets.make_blueprint(settings[lab.WS_ROUTE_FLAG]),
        uploads.bp,
        errors_demo.bp,
        slow.bp,
        stream.bp,
        cpu.bp,
        bugs.bp,
        page.bp,
    ):
        app.register_blueprint(blueprint)

    if settings[lab.FIX_JSON_ERRORS]:
        errors.register(app)
    # Socket.IO at /socket.io/ (labapp.realtime), inside ProxyFix and the request log.
    realtime.install(app, settings)
    middleware.install(app, settings)
    return app
