from __future__ import annotations

import contextlib
import hashlib
import io
import os

import gevent
import pytest
from gevent import pywsgi

import labsettings as lab
from labapp import patches
from labapp.body import CHUNK, Body, TimedInput
from labapp.patches import pywsgi as gevent_patches
from labapp.storage import PendingUpload

PAYLOAD = b"0123456789abcdef" * 4096  # 64 KiB


def files_in(app) -> list[str]:
    directory = app.config["LAB"][lab.UPLOAD_DIR]
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_multipart_upload_streams_to_disk(app, client):
    response = client.post("/upload", data={"file": (io.BytesIO(PAYLOAD), "report.bin")})
    assert response.status_code == 201
    assert response.get_json() == {
        "name": "report.bin",
        "size": len(PAYLOAD),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
    }
    assert files_in(app) == ["report.bin"]
    assert (app.config["LAB"][lab.UPLOAD_DIR] / "report.bin").read_bytes() == PAYLOAD


def test_raw_put(app, client):
    response = client.put("/upload/raw.bin", data=PAYLOAD)
    assert response.status_code == 201
    assert response.get_json()["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    assert files_in(app) == ["raw.bin"]


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("../../etc/passwd", "etc_passwd"), ("/abs/path.txt", "abs_path.txt"), ("a b.txt", "a_b.txt")],
)
def test_multipart_names_are_sanitised(app, client, raw, stored):
    response = client.post("/upload", data={"file": (io.BytesIO(b"x"), raw)})
    assert response.status_code == 201
    assert response.get_json()["name"] == stored
    assert files_in(app) == [stored]


@pytest.mark.parametrize("raw", ["..", "nul\x00byte", "///"])
def test_unusable_names_are_refused(app, client, raw):
    response = client.post("/upload", data={"file": (io.BytesIO(b"x"), raw)})
    assert response.status_code == 400
    assert files_in(app) == []


def test_missing_file_field_is_a_400(app, client):
    response = client.post("/upload", data={"other": "value"})
    assert response.status_code == 400 and "'file'" in response.get_json()["msg"]
    assert files_in(app) == []


@pytest.mark.parametrize("kib", [4, 16, 64])
def test_an_upload_is_written_in_pieces_of_lab_upload_write_kib(make_app, monkeypatch, kib):
    """Each os.write into the upload's file is LAB_UPLOAD_WRITE_KIB at most: small for a local
    page cache (16, the default), larger on a FUSE mount, where each write is a request."""
    app = make_app(upload_write_kib=kib)
    directory = app.config["LAB"][lab.UPLOAD_DIR]
    real_write = os.write
    pieces: list[int] = []

    def write(fd: int, data) -> int:
        written = real_write(fd, data)
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(directory)):
            pieces.append(written)
        return written

    monkeypatch.setattr(os, "write", write)
    client = app.test_client()
    assert client.put("/upload/raw.bin", data=PAYLOAD).status_code == 201
    assert client.post("/upload", data={"file": (io.BytesIO(PAYLOAD), "form.bin")}).status_code == 201
    assert max(pieces) == kib * 1024 and sum(pieces) == 2 * len(PAYLOAD), pieces
    assert (directory / "raw.bin").read_bytes() == (directory / "form.bin").read_bytes() == PAYLOAD


def test_over_the_limit_is_413_and_leaves_nothing(app, client):
    too_big = b"x" * (app.config["LAB"].max_upload_bytes + 1)
    assert client.put("/upload/big.bin", data=too_big).status_code == 413
    assert client.post("/upload", data={"file": (io.BytesIO(too_big), "big.bin")}).status_code == 413
    assert files_in(app) == []


def test_truncated_multipart_leaves_nothing(app, client):
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n\r\n'
        + PAYLOAD  # no closing boundary: the client went away
    )
    response = client.post(
        "/upload", data=body, headers={"Content-Type": "multipart/form-data; boundary=XyZ"}
    )
    assert response.status_code == 400
    assert files_in(app) == []


def test_download_is_handed_to_nginx(app, client):
    client.put("/upload/kept.bin", data=PAYLOAD)
    response = client.get("/files/kept.bin")
    assert response.status_code == 200
    assert response.headers["X-Accel-Redirect"] == "/_lab_files/kept.bin"
    assert response.data == b""


def test_download_without_x_accel_serves_the_bytes(make_app):
    client = make_app(x_accel=False).test_client()
    client.put("/upload/kept.bin", data=PAYLOAD)
    response = client.get("/files/kept.bin", headers={"Range": "bytes=0-15"})
    assert response.status_code == 206 and response.data == PAYLOAD[:16]


def test_download_of_unknown_file_is_404(client):
    assert client.get("/files/none.bin").status_code == 404


def test_large_form_field_fits_under_the_configured_form_memory(client):
    field = "x" * (600 * 1024)  # over Werkzeug's 500 kB default
    response = client.post("/upload", data={"note": field, "file": (io.BytesIO(b"x"), "a.txt")})
    assert response.status_code == 201


def test_werkzeug_default_form_memory_refuses_it(make_app):
    client = make_app(fix_form_memory=False).test_client()
    field = "x" * (600 * 1024)
    response = client.post("/upload", data={"note": field, "file": (io.BytesIO(b"x"), "a.txt")})
    assert response.status_code == 413


def test_delete_removes_an_upload(app, client):
    client.put("/upload/gone.bin", data=PAYLOAD)
    assert client.delete("/files/gone.bin").status_code == 204
    assert files_in(app) == []
    assert client.delete("/files/gone.bin").status_code == 404


BIG = bytes(range(256)) * (9 * 1024 + 7)  # a little over two 1 MiB chunks


def gevent_input(body: bytes, declared: int | None = None):
    """gevent's wsgi.input over ``body``, as the baseline worker builds it."""
    patches.install(gevent_patches.PATCHES)
    return pywsgi.Input(io.BufferedReader(io.BytesIO(body)), len(body) if declared is None else declared)


def test_gevent_input_reads_a_known_length_body_into_the_callers_buffer():
    body = gevent_input(BIG)
    buffer = bytearray(1000)
    assert body.readinto(buffer) == 1000 and bytes(buffer) == BIG[:1000]
    assert body.position == 1000  # gevent's own discard of the unread rest starts from here
    rest = bytearray(len(BIG))
    assert body.readinto(rest) == len(BIG) - 1000 and bytes(rest[: len(BIG) - 1000]) == BIG[1000:]
    assert body.readinto(rest) == 0


def test_gevent_input_sends_100_continue_once_before_the_first_readinto():
    class Client:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def sendall(self, data: bytes) -> None:
            self.sent.append(data)

    client = Client()
    patches.install(gevent_patches.PATCHES)
    body = pywsgi.Input(io.BufferedReader(io.BytesIO(BIG)), len(BIG), socket=client)
    buffer = bytearray(4096)
    assert client.sent == [], "nothing before the app reads: it may answer 417 or 413 first"
    body.readinto(buffer)
    body.readinto(buffer)
    assert client.sent == [b"HTTP/1.1 100 Continue\r\n\r\n"], client.sent


def test_gevent_input_chunked_body_reads_into_the_buffer_as_read_would():
    chunked = (
        b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (BIG[:70000], BIG[70000:])) + b"0\r\n\r\n"
    )
    patches.install(gevent_patches.PATCHES)
    body = pywsgi.Input(io.BufferedReader(io.BytesIO(chunked)), None, chunked_input=True)
    got = bytearray()
    buffer = bytearray(65536)
    while n := body.readinto(buffer):
        got += buffer[:n]
    assert bytes(got) == BIG


def test_gevent_input_body_shorter_than_declared_is_an_error():
    with pytest.raises(OSError, match="unexpected end of file"):
        gevent_input(b"x" * 10, declared=20).readinto(bytearray(64))


def test_receive_stores_every_chunk_in_order(tmp_path):
    part = PendingUpload(tmp_path, 16 * 1024)
    source = io.BytesIO(BIG)
    part.receive(Body({"wsgi.input": TimedInput(source, 60)}, source))
    assert part.commit("big.bin") == {
        "name": "big.bin",
        "size": len(BIG),
        "sha256": hashlib.sha256(BIG).hexdigest(),
    }
    assert (tmp_path / "big.bin").read_bytes() == BIG


def test_a_reader_error_mid_body_leaves_nothing_and_closes_the_file(tmp_path):
    class FailsThirdTime(io.BytesIO):
        def readinto(self, view) -> int:  # type: ignore[override]
            if self.tell() >= 2 * CHUNK:
                raise OSError("client went away")
            return super().readinto(view)

    source = FailsThirdTime(BIG)
    part = PendingUpload(tmp_path, 16 * 1024)
    with pytest.raises(OSError, match="went away"):
        part.receive(Body({"wsgi.input": TimedInput(source, 60)}, source))
    part.discard()
    assert list(tmp_path.iterdir()) == []
    gevent.sleep(0.1)  # the chunk still being written finishes, then the file is closed
    assert open_files_under(tmp_path) == []


def open_files_under(directory) -> list[str]:
    """This process's open files under ``directory`` (a deleted one still counts)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(FileNotFoundError):  # the listing's own descriptor, closed now
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith(str(directory)):
                found.append(target)
    return found
