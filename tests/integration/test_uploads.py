"""Large uploads arrive intact through nginx (streamed, never buffered whole), and come back."""

from __future__ import annotations

import uuid

import pytest

from labctl import hints
from support.lab import MIB, PatternBody, assert_json_error, multipart_chunks, sha256_of_response

X_ACCEL_CAUSE = (
    "the X-Accel location: GET /files/<name> is answered by nginx's internal location "
    "(`location /_lab_files/ { internal; alias <upload dir>/; }`) reading the app's upload dir"
)


def assert_stored(lab, http, name: str, body: PatternBody, response) -> None:
    assert response.status_code == 201, (
        f"{response.status_code} {response.text[:300]}: {hints.UPLOAD_STREAMING}"
    )
    stored = response.json()
    assert stored == {"name": name, "size": body.size, "sha256": body.sha256}, hints.UPLOAD_STREAMING
    download = http.get(lab.url + f"/files/{name}", stream=True)
    # The app only authorises /files/<name>; nginx serves the bytes from its internal X-Accel location.
    assert download.status_code == 200, f"download {download.status_code}: {X_ACCEL_CAUSE}"
    assert int(download.headers["Content-Length"]) == body.size, f"wrong Content-Length: {X_ACCEL_CAUSE}"
    assert sha256_of_response(download) == (body.size, body.sha256), f"other bytes came back: {X_ACCEL_CAUSE}"


@pytest.mark.slow
def test_big_multipart_upload(lab, http, big_upload_bytes, upload_name):
    name, body, boundary = (
        upload_name("multipart.bin"),
        PatternBody(big_upload_bytes, b"multipart"),
        uuid.uuid4().hex,
    )
    response = http.post(
        lab.url + "/upload",
        data=multipart_chunks(body, name, boundary),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert_stored(lab, http, name, body, response)


@pytest.mark.slow
def test_big_raw_put_with_content_length(lab, http, big_upload_bytes, upload_name):
    name, body = upload_name("raw.bin"), PatternBody(big_upload_bytes, b"raw")
    response = http.put(lab.url + f"/upload/{name}", data=body)
    assert_stored(lab, http, name, body, response)


@pytest.mark.slow
def test_big_raw_put_chunked(lab, http, big_upload_bytes, upload_name):
    name, body = upload_name("chunked.bin"), PatternBody(big_upload_bytes, b"chunked")
    response = http.put(lab.url + f"/upload/{name}", data=body.chunks())  # a generator: chunked
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert_stored(lab, http, name, body, response)


def test_download_supports_ranges(lab, http, upload_name):
    name, body = upload_name("ranged.bin"), PatternBody(3 * MIB, b"ranged")
    assert http.put(lab.url + f"/upload/{name}", data=body).status_code == 201
    whole = http.get(lab.url + f"/files/{name}").content
    part = http.get(lab.url + f"/files/{name}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == whole[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{3 * MIB}"


def test_declared_body_over_the_limit_is_413_and_leaves_no_file(lab, http, upload_name):
    limit_mb = http.get(lab.url + "/debug/settings").json()["max_upload_mb"]
    name = upload_name("too-big.bin")
    response = http.put(
        lab.url + f"/upload/{name}", headers={"Content-Length": str(limit_mb * MIB + 1)}, data=b""
    )
    assert_json_error(response, 413)
    assert http.get(lab.url + f"/files/{name}").status_code == 404


@pytest.mark.slow
def test_chunked_body_over_the_limit_is_413_and_leaves_no_file(lab, http, upload_name):
    limit_mb = http.get(lab.url + "/debug/settings").json()["max_upload_mb"]
    name, body = upload_name("too-big-chunked.bin"), PatternBody(limit_mb * MIB + MIB, b"over")
    try:
        response = http.put(lab.url + f"/upload/{name}", data=body.chunks())
    except (ConnectionError, OSError) as error:  # nginx may close while the client still sends
        pytest.fail(f"no 413 before the connection closed: {error}")
    assert_json_error(response, 413)
    assert http.get(lab.url + f"/files/{name}").status_code == 404


@pytest.mark.parametrize(
    ("raw", "stored"), [("../../etc/passwd", "etc_passwd"), ("/abs/name.txt", "abs_name.txt")]
)
def test_upload_names_are_sanitised(lab, http, raw, stored):
    response = http.post(lab.url + "/upload", files={"file": (raw, b"content")})
    assert response.status_code == 201 and response.json()["name"] == stored
