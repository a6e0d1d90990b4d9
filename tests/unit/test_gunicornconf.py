"""The gunicorn command line found where users keep it, each option with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.diagnose import check, gunicornconf
from labctl.diagnose.config import load

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


def test_nginx_sizes_are_read_with_their_unit(tmp_path: Path) -> None:
    """large_client_header_buffers 4 1g: a request line up to 1 GiB passes nginx, far over
    gunicorn's limit_request_line (4094)."""
    (tmp_path / "site.conf").write_text(
        "server {\n    listen 80;\n    large_client_header_buffers 4 1g;\n"
        "    location / { proxy_pass http://127.0.0.1:8000; }\n}\n"
    )
    (tmp_path / "gunicorn.conf.py").write_text('worker_class = "sync"\n')
    site = check.site_for(load(tmp_path / "site.conf"), None, None)
    found = gunicornconf.judge(site, gunicornconf.load_gunicorn(tmp_path / "gunicorn.conf.py"))
    limits = [f for f in found if f.behaviour is gunicornconf.HEADER_LIMITS]
    assert [f.finding.fix for f in limits] == [
        "limit_request_line = 1073741824 in gunicorn (or the same bound in nginx)",
        "limit_request_field_size = 1073741824 in gunicorn (or the same bound in nginx)",
    ]
    assert all(f.nginx == "site.conf:3 (large_client_header_buffers 4 1g)" for f in limits), limits
