"""The uploader's verdict on the server's answer (scripts/labctl/upload.py)."""

from __future__ import annotations

import pytest

from labctl.upload import Mismatch, UploadFailed, check_answer

SHA = "ab" * 32
OTHER = "cd" * 32


def test_matching_answer_is_accepted():
    answer = {"name": "f.bin", "size": 10, "sha256": SHA}
    assert check_answer(answer, 10, SHA) == answer


@pytest.mark.parametrize(
    "answer, error",
    [
        ({"name": "f.bin", "size": 10, "sha256": OTHER}, Mismatch),
        ({"name": "f.bin", "size": 9, "sha256": SHA}, Mismatch),
        ({"name": "f.bin", "size": 10}, UploadFailed),
        (["not", "an", "object"], UploadFailed),
    ],
)
def test_other_answers_are_refused(answer: object, error: type[Exception]):
    with pytest.raises(error):
        check_answer(answer, 10, SHA)
