"""`lab check` runs the catalogue's checks beside the probes, except where an upstream has several
servers: there a check's failed request takes a server out (max_fails) for the probes beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.diagnose import check, config

SITE = """
upstream app {{
{servers}
}}
server {{
    listen 80;
    location / {{ proxy_pass http://app; }}
}}
"""


@pytest.mark.parametrize(
    ("servers", "marked_down"),
    [
        (["127.0.0.1:8000"], False),  # one server is never taken out
        (["127.0.0.1:8000", "127.0.0.1:8001"], True),
    ],
)
def test_peers_marked_down(tmp_path: Path, servers: list[str], marked_down: bool) -> None:
    path = tmp_path / "site.conf"
    path.write_text(SITE.format(servers="\n".join(f"    server {s};" for s in servers)))
    assert check.peers_marked_down(config.load(path)) is marked_down


def test_no_upstream_block_runs_side_by_side(tmp_path: Path) -> None:
    path = tmp_path / "site.conf"
    path.write_text("server { listen 80; location / { proxy_pass http://127.0.0.1:8000; } }\n")
    assert check.peers_marked_down(config.load(path)) is False
