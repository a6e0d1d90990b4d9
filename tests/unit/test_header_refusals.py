"""The header-size probe names the layer that refused from its answer (behaviours/headers.py):
the lab's JSON envelopes say who they are, nginx's own pages and 494 are nginx's, a 502 is
nginx's whatever its page says."""

from __future__ import annotations

import pytest

from labctl.behaviours.headers import refused_by


@pytest.mark.parametrize(
    ("status", "body", "html", "server", "layer"),
    [
        (400, {"msg": "nginx refused the request: request header or cookie too large"}, b"", "", "nginx"),
        (
            400,
            {"msg": "the app server (gevent's pywsgi) could not parse the request head"},
            b"",
            "",
            "the app server",
        ),
        (431, {"msg": "request header fields too large"}, b"", "", "the app"),
        (400, None, b"<center>nginx</center>", "", "nginx"),
        (400, None, b"", "nginx/1.22.1", "nginx"),
        (494, None, b"", "", "nginx"),
        (502, {"msg": "bad gateway: the app is down or closed the connection"}, b"", "", "nginx"),
        (400, None, b"Bad Request", "", "an unnamed layer"),
    ],
)
def test_the_refusing_layer_is_named(status: int, body: object, html: bytes, server: str, layer: str) -> None:
    named = refused_by(status, body, html, server)
    assert named.startswith(layer + " ("), named
