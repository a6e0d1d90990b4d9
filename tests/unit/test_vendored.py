"""The lab page's vendored socket.io-client is the npm package's file its manifest names
(scripts/vendor-socketio.sh wrote both): nobody edited it by hand, and the version is pinned."""

from __future__ import annotations

import hashlib
import json

import pytest

from labctl import paths

pytestmark = pytest.mark.no_stack

VENDOR = paths.APP_DIR / "labapp" / "static" / "lab" / "vendor"


def test_the_vendored_client_is_the_packages_file():
    manifest = json.loads((VENDOR / "socket.io-client.json").read_text())
    assert manifest["package"] == "socket.io-client" and manifest["version"] == "4.8.4", manifest
    data = (VENDOR / manifest["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest["sha256"], (
        "vendor/socket.io.min.js differs from what `make vendor-socketio` took from the npm package"
    )
    assert data.startswith(f"/*!\n * Socket.IO v{manifest['version']}\n".encode()), data[:80]
