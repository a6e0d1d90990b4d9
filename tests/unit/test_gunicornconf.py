"""The gunicorn command line found where users keep it, each option with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.diagnose import gunicornconf

pytestmark = pytest.mark.no_stack


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("Procfile", "web: gunicorn --keep-alive 5 -k gevent app:app\n"),
        (
            "Dockerfile",
            'FROM python:3.13-slim\nCMD ["gunicorn", "--keep-alive", "5", "-k", "gevent", "a:app"]\n',
        ),
        ("run.sh", "#!/bin/sh\nexec gunicorn \\\n  --keep-alive 5 \\\n  -k gevent app:app\n"),
    ],
)
def test_command_line_forms(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    gunicorn = gunicornconf.load_gunicorn(path)
    assert (gunicorn.value("keepalive"), gunicorn.worker_class) == (5, "gevent")
    line = next(n for n, row in enumerate(text.splitlines(), start=1) if "--keep-alive" in row)
    assert gunicorn.where("keepalive") == f"{name}:{line}"


def test_command_line_config_file_then_options(tmp_path: Path) -> None:
    (tmp_path / "gunicorn.conf.py").write_text("workers = 3\nkeepalive = 10\n")
    (tmp_path / "cmd").write_text("gunicorn -c gunicorn.conf.py --keep-alive 20 app:app\n")
    gunicorn = gunicornconf.load_gunicorn(tmp_path / "cmd")
    assert (gunicorn.value("workers"), gunicorn.value("keepalive")) == (3, 20)
    assert (gunicorn.where("workers"), gunicorn.where("keepalive")) == ("gunicorn.conf.py:1", "cmd:1")
