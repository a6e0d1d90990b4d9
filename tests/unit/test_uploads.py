from __future__ import annotations

import hashlib
import io

import pytest

PAYLOAD = b"0123456789abcdef" * 4096  # 64 KiB


def files_in(app) -> list[str]:
    directory = app.config["LAB"].upload_dir
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
    assert (app.config["LAB"].upload_dir / "report.bin").read_bytes() == PAYLOAD


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
