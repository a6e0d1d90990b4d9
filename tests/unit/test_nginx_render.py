"""scripts/nginx-ctl.sh render: the one renderer both modes use (no nginx needed)."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import labsettings
from labctl import paths

# Every input nginx-ctl.sh requires (it defaults none of them to either mode's topology).
RENDER_ENV = {
    "LAB_NGINX_SRC": str(paths.NGINX_SRC),
    "LAB_NGINX_PREFIX": "/nonexistent",
    "LAB_UPSTREAM": "127.0.0.1:8123",
    "LAB_RESOLVER": "127.0.0.1",
    "LAB_HTTPS_PORT": "9443",
    "LAB_HTTP_PORT": "9080",
    "LAB_MAX_UPLOAD_MB": "64",
    "LAB_MAX_HEADER_KIB": "24",
    "LAB_BEHIND_BALANCER_PORT": "9081",
    "LAB_BALANCER_PORT": "9444",
    "LAB_BALANCER_HTTP_PORT": "9082",
    "LAB_UPLOAD_DIR": "/srv/up",
    "LAB_CERT_DIR": "/lab/certs",
    "LAB_HSTS_MAX_AGE": "0",
    "LAB_LIMIT_CONN_UPLOAD": "64",
    "LAB_LIMIT_CONN_WS": "1024",
    "LAB_LIMIT_WS_HANDSHAKES": "100",
    "LAB_KEEPALIVE_REQUESTS": "1000",
    "LAB_NGINX_USER": "",
    "LAB_SOCKETIO_SLOT_RE": r"127\.0\.0\.1:(8124|8125)",
}


def render(out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(paths.SCRIPTS / "nginx-ctl.sh"), "render", str(out)],
        env={"PATH": os.environ["PATH"], **RENDER_ENV, **env},
        capture_output=True,
        text=True,
    )


def conf_text(directory: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(directory.rglob("*.conf")))


def test_every_placeholder_is_rendered(tmp_path):
    assert render(tmp_path / "out").returncode == 0
    text = conf_text(tmp_path / "out")
    assert not re.search(r"\{\{LAB_[A-Z_]+\}\}", text)
    assert "server 127.0.0.1:8123 max_fails=0;" in text
    assert "listen 9443 ssl http2" in text
    assert "https://$host:9443$request_uri" in text
    assert "alias /srv/up/;" in text
    assert "large_client_header_buffers 4 24k;" in text and "proxy_buffer_size 24k;" in text
    assert not (tmp_path / "out" / "scenarios").exists()


def test_a_scenario_replaces_files_of_the_same_path(tmp_path):
    source = tmp_path / "nginx"
    shutil.copytree(paths.NGINX_SRC, source)
    scenario = source / "scenarios" / "demo" / "snippets"
    scenario.mkdir(parents=True)
    (scenario / "https-redirect.conf").write_text("return 301 https://$host$request_uri;\n")
    (scenario.parent / "README.md").write_text("not config\n")
    result = render(tmp_path / "out", LAB_NGINX_SRC=str(source), LAB_SCENARIO="demo")
    assert result.returncode == 0, result.stderr
    redirect = (tmp_path / "out" / "snippets" / "https-redirect.conf").read_text()
    assert redirect == "return 301 https://$host$request_uri;\n"
    assert not (tmp_path / "out" / "README.md").exists()


@pytest.mark.parametrize("missing", ["LAB_UPSTREAM", "LAB_MAX_UPLOAD_MB", "LAB_NGINX_USER"])
def test_a_missing_input_is_named_not_defaulted(tmp_path, missing):
    env = {k: v for k, v in RENDER_ENV.items() if k != missing}
    result = subprocess.run(
        ["sh", str(paths.SCRIPTS / "nginx-ctl.sh"), "render", str(tmp_path / "out")],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and missing in result.stderr, result.stderr


def test_an_unknown_scenario_is_an_error(tmp_path):
    result = render(tmp_path / "out", LAB_SCENARIO="no-such-scenario")
    assert result.returncode == 2
    assert "no scenario 'no-such-scenario'" in result.stderr


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="no nginx")
def test_the_rendered_baseline_passes_nginx_t(tmp_path):
    prefix = tmp_path / "prefix"
    for sub in ("logs", "run", "tmp"):
        (prefix / sub).mkdir(parents=True)
    certs = tmp_path / "certs"
    subprocess.run(["sh", str(paths.SCRIPTS / "certs.sh"), str(certs)], check=True, capture_output=True)
    rendered = render(
        prefix / "conf",
        LAB_CERT_DIR=str(certs),
        LAB_NGINX_PREFIX=str(prefix),
        LAB_NGINX_USER=getpass.getuser(),
    )
    assert rendered.returncode == 0, rendered.stderr
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run(
        [nginx, "-t", "-p", f"{prefix}/", "-e", "logs/error.log", "-c", str(prefix / "conf" / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def fake_nginx(directory: Path, configure: str) -> Path:
    """An `nginx` that only answers -V, as a build with these configure arguments would."""
    binary = directory / "nginx"
    binary.write_text(
        f"#!/bin/sh\necho 'nginx version: nginx/9.9.9' >&2\necho 'configure arguments: {configure}' >&2\n"
    )
    binary.chmod(0o755)
    return binary


def test_http3_is_rendered_where_nginx_has_the_module(tmp_path):
    binary = fake_nginx(tmp_path, "--with-http_ssl_module --with-http_v3_module")
    result = render(tmp_path / "out", LAB_NGINX_BIN=str(binary), LAB_LISTEN_HTTPS="127.0.0.1:9443 [::1]:9443")
    assert result.returncode == 0 and "HTTP/3" not in result.stderr, result.stderr
    servers = (tmp_path / "out" / "conf.d" / "lab.conf").read_text()
    # reuseport once per address (the default server), plain quic on the named one.
    assert servers.count("listen 127.0.0.1:9443 quic reuseport default_server;") == 1
    assert servers.count("listen [::1]:9443 quic reuseport default_server;") == 1
    assert servers.count("listen 127.0.0.1:9443 quic;") == 1 and servers.count("listen [::1]:9443 quic;") == 1
    alt_svc = (tmp_path / "out" / "snippets" / "alt-svc.conf").read_text()
    assert "add_header Alt-Svc 'h3=\":9443\"; ma=86400' always;" in alt_svc


def test_http3_is_left_out_in_one_line_where_nginx_lacks_the_module(tmp_path):
    binary = fake_nginx(tmp_path, "--with-http_ssl_module --with-http_v2_module")
    result = render(tmp_path / "out", LAB_NGINX_BIN=str(binary))
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "HTTP/3" in line]
    assert said == [
        "nginx-ctl: HTTP/3 left out: nginx/9.9.9 is built without --with-http_v3_module (nginx -V); "
        "HTTPS is HTTP/1.1 and HTTP/2 only"
    ], result.stderr
    text = conf_text(tmp_path / "out")
    assert "quic" not in text.replace("QUIC", "")
    assert "add_header Alt-Svc '' always;" in text  # an empty value: nginx sends no header


def test_the_balancer_is_rendered_beside_the_lab_s_config_and_trusted_alone(tmp_path):
    assert render(tmp_path / "out").returncode == 0
    balancer = (tmp_path / "out" / "balancer.conf").read_text()
    assert "listen 9444 ssl http2;" in balancer and "return 301 https://$host:9444$request_uri;" in balancer
    assert "proxy_pass http://127.0.0.1:9081;" in balancer and "proxy_bind 127.0.0.2;" in balancer
    lab = conf_text(tmp_path / "out" / "conf.d")
    assert "listen 127.0.0.1:9081;" in lab and "listen 127.0.0.1:9081 default_server;" in lab
    trust = (tmp_path / "out" / "snippets" / "balancer-trust.conf").read_text()
    trusted = [line for line in trust.splitlines() if line.startswith("set_real_ip_from")]
    assert trusted == ["set_real_ip_from 127.0.0.2;"], trusted


# Socket.IO's timers against nginx's (socketio-ping-timeout), read from the rendered config.
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def location_directives(conf: Path, path: str) -> str:
    """The text of ``location <path> { ... }`` in the rendered lab.conf, its includes inlined."""
    text = (conf / "conf.d" / "lab.conf").read_text()
    found = re.search(rf"location {re.escape(path)} \{{(.*?)\n    \}}", text, re.DOTALL)
    assert found, f"lab.conf has no location {path}"
    return re.sub(r"include (\S+);", lambda m: (conf / m.group(1)).read_text(), found.group(1))


def seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh]?)", value).groups()  # type: ignore[union-attr]
    return int(number) * UNITS[unit]


def test_socketio_read_timeout_stays_above_ping_interval_plus_timeout(tmp_path):
    # A long-poll is held up to pingInterval, a websocket hears a ping every pingInterval: below
    # their sum nginx ends them first (504, a cut websocket) and every client reconnects at once.
    assert render(tmp_path).returncode == 0
    directives = location_directives(tmp_path, "/socket.io/")
    timeouts = re.findall(r"^\s*proxy_read_timeout (\S+);", directives, re.MULTILINE)
    assert timeouts, "the /socket.io/ location sets no proxy_read_timeout of its own"
    read_timeout = seconds(timeouts[-1])
    interval = int(labsettings.SOCKETIO_PING_INTERVAL.default)
    timeout = int(labsettings.SOCKETIO_PING_TIMEOUT.default)
    assert interval + timeout < read_timeout, (
        f"pingInterval {interval} s + pingTimeout {timeout} s (LAB_SOCKETIO_PING_*) reach nginx's "
        f"proxy_read_timeout {read_timeout} s on /socket.io/: nginx would end long-polls and quiet "
        "websockets before Engine.IO does (socketio-ping-timeout)"
    )
