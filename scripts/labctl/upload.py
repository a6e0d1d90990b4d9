"""`scripts/lab upload FILE [--name N]`: stream a file of any size to the lab over verified TLS.

The body goes to ``PUT /upload/<name>`` with a Content-Length, read and hashed 1 MiB at a time
(memory stays flat whatever the size), with a progress bar on stderr. The sha256 and size the
server answers are checked against our own. Standard library only: scripts/lab runs without the
virtualenv. Exit status: 0 verified, 1 refused or failed (the server's JSON error is shown),
3 the server stored something else than what was sent.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import ssl
import sys
import time
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlsplit

from . import endpoints

CHUNK = 1024 * 1024
EXIT_FAILED = 1
EXIT_MISMATCH = 3


class UploadFailed(Exception):
    """The upload did not complete: refused, connection lost, or not an answer we understand."""


class Mismatch(Exception):
    """The server answered 201 but stored other bytes than the ones sent."""


class Progress:
    """A bar on a terminal, or one line per 10% when stderr is a file or a pipe."""

    WIDTH = 30

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total = total
        self.stream = stream
        self.interactive = stream.isatty()
        self.done = 0
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._last_tenth = -1

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        tenth = self.done * 10 // self.total if self.total else 10
        if self.interactive and (now - self._drawn_at >= 0.1 or self.done == self.total):
            self._drawn_at = now
            self.stream.write("\r" + self.line())
        elif not self.interactive and tenth != self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def line(self) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(fraction * self.WIDTH)
        rate = self.done / max(time.monotonic() - self.started, 1e-6) / 2**20
        return (
            f"[{'#' * filled}{'.' * (self.WIDTH - filled)}] {fraction:4.0%} "
            f"{self.done / 2**20:.1f}/{self.total / 2**20:.1f} MiB {rate:.0f} MiB/s"
        )

    def finish(self) -> None:
        if self.interactive:
            self.stream.write("\n")
            self.stream.flush()


def _connection(url: str, ca: Path | None) -> tuple[http.client.HTTPSConnection, str]:
    target = urlsplit(url)
    if target.scheme != "https" or not target.hostname:
        raise UploadFailed(f"LAB_URL must be an https:// URL (the upload is verified TLS), not {url!r}")
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    connection = http.client.HTTPSConnection(
        target.hostname, target.port or 443, context=context, timeout=120
    )
    return connection, target.path.rstrip("/")


def _describe(status: int, raw: bytes) -> str:
    try:
        body = json.loads(raw)
        return f"HTTP {status}: {body['msg']} (request_id {body.get('request_id', '?')})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status} and not the lab's JSON error: {raw[:200]!r}"


def check_answer(answer: object, size: int, sha256: str) -> dict:
    """The server's 201 answer, if it describes exactly the bytes that were sent."""
    if not isinstance(answer, dict) or not {"name", "size", "sha256"} <= answer.keys():
        raise UploadFailed(f"the server's answer is not {{name, size, sha256}}: {answer!r}")
    if answer["size"] != size or answer["sha256"] != sha256:
        raise Mismatch(
            f"MISMATCH: sent {size} bytes with sha256 {sha256}, the server stored "
            f"{answer['size']} bytes with sha256 {answer['sha256']} - the body was altered or cut on the way"
        )
    return answer


def upload(path: Path, name: str, url: str, ca: Path | None, progress: Progress) -> dict:
    size = path.stat().st_size
    connection, base = _connection(url, ca)
    digest = hashlib.sha256()
    lost: OSError | None = None
    try:
        connection.putrequest("PUT", f"{base}/upload/{quote(name, safe='')}")
        connection.putheader("Content-Type", "application/octet-stream")
        connection.putheader("Content-Length", str(size))
        connection.endheaders()
        with path.open("rb") as source:
            while chunk := source.read(CHUNK):
                connection.send(chunk)
                digest.update(chunk)
                progress.advance(len(chunk))
    except ssl.SSLError as error:
        raise UploadFailed(f"TLS to {url} failed ({error}): is {ca} the lab's CA (LAB_CA)?") from error
    except OSError as error:
        lost = error  # the server may have answered early (413, 400) and closed: read why below
    finally:
        progress.finish()
    try:
        response = connection.getresponse()
        raw = response.read()
    except (OSError, http.client.HTTPException) as error:
        raise UploadFailed(
            f"connection to {url} lost after {progress.done} of {size} bytes: {lost or error}"
        ) from error
    finally:
        connection.close()
    if response.status != 201:
        raise UploadFailed(f"the server refused the upload: {_describe(response.status, raw)}")
    try:
        answer = json.loads(raw)
    except ValueError as error:
        raise UploadFailed(f"the server's 201 answer is not JSON: {raw[:200]!r}") from error
    return check_answer(answer, size, digest.hexdigest())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the file to upload (any size)")
    parser.add_argument("--name", help="name to store it under (default: the file's name)")


def main(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        print(f"lab upload: {path} is not a file", file=sys.stderr)
        return EXIT_FAILED
    endpoint = endpoints.from_env()
    url, ca = endpoint.url, endpoint.ca
    print(f"lab upload: {path} -> {url}/upload/{args.name or path.name}", file=sys.stderr)
    try:
        answer = upload(path, args.name or path.name, url, ca, Progress(path.stat().st_size, sys.stderr))
    except Mismatch as error:
        print(f"lab upload: {error}", file=sys.stderr)
        return EXIT_MISMATCH
    except (UploadFailed, OSError) as error:
        print(f"lab upload: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"lab upload: verified, the server's sha256 matches ({answer['sha256']})", file=sys.stderr)
    print(json.dumps(answer))
    return 0
