"""form-memory's check: a multipart upload whose non-file field is 600 kB, over Werkzeug's
500 kB default for form fields and far under the baseline's MAX_FORM_MEMORY_SIZE."""

from __future__ import annotations

import uuid

from labctl import probe
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

FIELD_BYTES = 600 * 1024


def observe(endpoint: Endpoint) -> Observation:
    boundary = uuid.uuid4().hex
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
        + "x" * FIELD_BYTES
        + f"\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="form-memory-probe.txt"\r\n'
        "Content-Type: text/plain\r\n\r\na small file\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    reply = probe.request(
        endpoint,
        "POST",
        "/upload",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        body=body,
        timeout=5,
    )
    return Observation(
        classify(reply.status == 413, reply.status == 201), f"600 kB form field: {reply.describe()}"
    )
