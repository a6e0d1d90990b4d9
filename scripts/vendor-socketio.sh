#!/bin/sh
# Vendors the official Socket.IO browser client for the lab page from its npm package (never
# hand-written): `npm pack socket.io-client@VERSION`, its dist/socket.io.min.js and LICENSE into
# services/app/labapp/static/lab/vendor/, and a manifest with the version and both sha256s
# (tests/unit/test_vendored.py checks the file against it).
#
#   sh scripts/vendor-socketio.sh [VERSION]     (make vendor-socketio)
set -eu
VERSION=${1:-4.8.4}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/services/app/labapp/static/lab/vendor"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "socket.io-client@$VERSION" >/dev/null)
tarball="$work/socket.io-client-$VERSION.tgz"
tar -xzf "$tarball" -C "$work" package/dist/socket.io.min.js package/LICENSE
mkdir -p "$DEST"
cp "$work/package/dist/socket.io.min.js" "$DEST/socket.io.min.js"
cp "$work/package/LICENSE" "$DEST/socket.io-client.LICENSE"
file_sha=$(sha256sum "$DEST/socket.io.min.js" | cut -d' ' -f1)
tarball_sha=$(sha256sum "$tarball" | cut -d' ' -f1)
cat >"$DEST/socket.io-client.json" <<JSON
{
  "package": "socket.io-client",
  "version": "$VERSION",
  "from": "npm pack socket.io-client@$VERSION: package/dist/socket.io.min.js",
  "tarball_sha256": "$tarball_sha",
  "file": "socket.io.min.js",
  "sha256": "$file_sha",
  "license": "MIT (socket.io-client.LICENSE)"
}
JSON
echo "vendor-socketio: socket.io-client $VERSION -> $DEST/socket.io.min.js (sha256 $file_sha)"
