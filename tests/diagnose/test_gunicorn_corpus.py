"""`lab check --gunicorn` on gunicorn configs from public sources beside their nginx configs
(tests/diagnose/gunicorn_corpus/): every expected finding with its verdict and both lines, no
other broken one; and bad gunicorn configs are one line and exit 2. No stack: the cross-layer
judgement reads both files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from labctl import paths
from labctl.diagnose import check, gunicornconf
from labctl.diagnose.config import load

pytestmark = pytest.mark.no_stack

HERE = Path(__file__).parent
CORPUS = HERE / "gunicorn_corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "expected.toml").is_file())


def _line(where: str) -> int:
    found = re.match(r"[^:]+:(\d+)", where)
    return int(found.group(1)) if found else 0


def _case(name: str) -> tuple[dict, Path, Path]:
    expected = tomllib.loads((CORPUS / name / "expected.toml").read_text())
    return expected, HERE / "corpus" / expected["nginx"] / "site.conf", CORPUS / name / expected["gunicorn"]


@pytest.mark.parametrize("name", CASES)
def test_findings_between_nginx_and_gunicorn(name: str) -> None:
    expected, nginx, gunicorn = _case(name)
    assert expected["source"].startswith("https://"), f"{name}: cite the public source"
    site = check.site_for(load(nginx), None, None)
    found = {
        (f.behaviour.id, f.verdict, _line(f.nginx), _line(f.gunicorn))
        for f in gunicornconf.judge(site, gunicornconf.load_gunicorn(gunicorn))
    }
    wanted = {
        (f["behaviour"], f["verdict"], f["nginx_line"], f["gunicorn_line"]) for f in expected["finding"]
    }
    assert wanted <= found, f"{name}: missing {sorted(wanted - found)}; reported {sorted(found)}"
    extra_broken = {f for f in found - wanted if f[1] == "broken"}
    assert not extra_broken, f"{name}: broken findings not expected: {sorted(extra_broken)}"


def _lab_check(tmp_path: Path, gunicorn_text: str, name: str) -> subprocess.CompletedProcess[str]:
    conf = tmp_path / name
    conf.write_text(gunicorn_text)
    nginx = HERE / "corpus" / "gunicorn-docs-example" / "site.conf"
    return subprocess.run(
        [
            sys.executable,
            str(paths.SCRIPTS / "lab"),
            "check",
            str(nginx),
            "--gunicorn",
            str(conf),
            "--no-namespace",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("raises.py", "import no_such_module_here\n", "ModuleNotFoundError"),
        ("typo.py", "workers = 2\nkeepalive_timeout = 75\n", "'keepalive_timeout' is not a gunicorn setting"),
        ("value.py", "workers = 'many'\n", "workers"),
        ("command.txt", "gunicorn --wrokers 2 app:app\n", "no option '--wrokers'"),
        ("value.txt", "gunicorn -w abc app:app\n", "invalid int value"),
        ("nothing.txt", "echo hello\n", "neither a gunicorn.conf.py nor a line running gunicorn"),
        ("quote.txt", "gunicorn --bind 'oops app:app\n", "quote.txt:1: No closing quotation"),
    ],
)
def test_bad_gunicorn_config_is_one_line_and_exit_2(tmp_path: Path, name: str, text: str, said: str) -> None:
    result = _lab_check(tmp_path, text, name)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab check: ") and said in lines[0], result.stderr
    assert result.stdout == "", result.stdout


def _layers(nginx: Path, gunicorn: Path) -> dict[str, dict[str, str]]:
    """`lab check --gunicorn --json`'s findings between the layers, by behaviour."""
    ran = subprocess.run(
        [
            sys.executable,
            str(paths.SCRIPTS / "lab"),
            "check",
            str(nginx),
            "--gunicorn",
            str(gunicorn),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode in (0, 1), ran.stderr[-2000:]
    return {f["behaviour"]: f for f in json.loads(ran.stdout)["gunicorn"]}


def test_lab_check_runs_the_users_worker_and_confirms_the_websocket_worker_finding() -> None:
    """flask-socketio-docs-threads (gthread, 100 threads) in front of the lab's app: the handshake
    through /socket.io fails under that worker (the row says confirmed), where the same config
    with the gevent-websocket worker has no such finding."""
    _, nginx, threads = _case("flask-socketio-docs-threads")
    _, _, gevent = _case("flask-socketio-docs-gevent-websocket")
    reports = {}
    for name, gunicorn in (("threads", threads), ("gevent", gevent)):
        reports[name] = _layers(nginx, gunicorn)
    worker = reports["threads"]["ws-worker"]
    # lab check's app echoes a plain websocket on any path (LAB_WS_ANY_PATH): under gthread no worker
    # hands the route a websocket, and the route answers the handshake 400, never 101.
    assert worker["verdict"] == "broken" and "handshake answered 400" in worker["confirmed"], worker
    assert "ws-worker" not in reports["gevent"], reports["gevent"]


POOLED_NGINX = """upstream app {
    server 127.0.0.1:8000;
    keepalive 16;
}
server {
    listen 80;
    server_name example.com;
    location / {
        proxy_pass http://app;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
    }
}
"""


@pytest.mark.parametrize(("keepalive", "race"), [(2, True), (75, False)])
def test_lab_check_confirms_the_keepalive_race_by_a_probe(tmp_path: Path, keepalive: int, race: bool) -> None:
    """nginx pools upstream connections for 60 s; gunicorn's gevent worker closes them after its
    keepalive: with 2 s a POST held in nginx across the close gets 502 (confirmed); with 75 s the
    finding is ok."""
    nginx, gunicorn = tmp_path / "site.conf", tmp_path / "gunicorn.conf.py"
    nginx.write_text(POOLED_NGINX)
    gunicorn.write_text(f'worker_class = "gevent"\nworkers = 1\nkeepalive = {keepalive}\n')
    found = _layers(nginx, gunicorn)["keepalive-race"]
    if race:
        assert found["verdict"] == "broken" and found["confirmed"].endswith(": 502"), found
    else:
        assert found["verdict"] == "ok" and found["confirmed"] == "", found
