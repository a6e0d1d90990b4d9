"""How `lab check` makes a user's config runnable here (labctl.diagnose.adapt): each case is a
server block as users write it, where it runs (a private network namespace or the lab's ports)
and the lines the run must hold. No nginx is started."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.diagnose import adapt, config, sandbox

pytestmark = pytest.mark.no_stack

APP_PORT = 18765  # where the lab's app goes in place of a target the run cannot keep


def plan_for(tmp_path: Path, text: str, in_namespace: bool) -> adapt.Plan:
    conf = tmp_path / "site.conf"
    conf.write_text(text)
    where = adapt.Where(
        tmp_path / "check", tmp_path / "check" / "certs", in_namespace, 18443, 18080, APP_PORT
    )
    return adapt.adapt(config.load(conf), where)


CASES = [
    # (what, the server block, in a namespace?, lines the run holds, app binds)
    (
        "a loopback target followed by a variable is kept as written",
        "server { listen 80; location / { proxy_pass http://127.0.0.1:5000$request_uri; } }",
        True,
        ["proxy_pass http://127.0.0.1:5000$request_uri;"],
        ["127.0.0.1:5000"],
    ),
    (
        "a variable target (a template filled in at deploy time) is the lab's app",
        "server { listen 80; location / { proxy_pass http://$FLASK_SERVER_ADDR; } }",
        True,
        [f"proxy_pass http://127.0.0.1:{APP_PORT};"],
        [f"127.0.0.1:{APP_PORT}"],
    ),
    (
        "a named host is replaced by the lab's app, its URI kept",
        "server { listen 80; location /api/ { proxy_pass http://backend.internal:8000/v1/; } }",
        True,
        [f"proxy_pass http://127.0.0.1:{APP_PORT}/v1/;"],
        [f"127.0.0.1:{APP_PORT}"],
    ),
    (
        "a unix socket target becomes a socket under .lab/check, its URI kept",
        "server { listen 80; location / { proxy_pass http://unix:/run/app.sock:/inner/; } }",
        True,
        ["proxy_pass http://unix:{run}/app-1.sock:/inner/;"],
        ["unix:{run}/app-1.sock"],
    ),
    (
        "a unix listener moves under .lab/check and is no port",
        "server { listen unix:/run/nginx.sock; listen 80; location / { proxy_pass http://127.0.0.1:5000; } }",
        True,
        ["listen unix:{run}/listen-1.sock;", "listen 80;"],
        ["127.0.0.1:5000"],
    ),
    (
        "a public address becomes loopback of the same family in the namespace",
        "server { listen 192.0.2.10:80; listen [2001:db8::1]:443 ssl;"
        " location / { proxy_pass http://127.0.0.1:5000; } }",
        True,
        ["listen 127.0.0.1:80;", "listen [::1]:443 ssl;"],
        ["127.0.0.1:5000"],
    ),
    (
        "outside a namespace the ports are the lab's, each family on its loopback",
        "server { listen 443 ssl; location / { proxy_pass http://127.0.0.1:5000; } }",
        False,
        ["listen 127.0.0.1:18443 ssl;"],
        [f"127.0.0.1:{APP_PORT}"],
    ),
    (
        "a server without listen runs on nginx's implicit *:80, said explicitly (nginx's Beginner's Guide)",
        "server { location / { proxy_pass http://localhost:8080; } }",
        True,
        ["listen 80;"],
        ["127.0.0.1:8080"],
    ),
    (
        "a server without listen runs on the lab's plain port outside a namespace",
        "server { location / { proxy_pass http://localhost:8080; } }",
        False,
        ["listen 127.0.0.1:18080;"],
        [f"127.0.0.1:{APP_PORT}"],
    ),
    (
        "a placeholder server_name gets a sendable alias first: $server_name fills a Host the app reads",
        "server { listen 80; server_name <deleted>.com; location / { proxy_pass http://127.0.0.1:5000; } }",
        True,
        ["server_name -deleted-.com <deleted>.com;"],
        ["127.0.0.1:5000"],
    ),
]


@pytest.mark.parametrize(("what", "text", "in_namespace", "lines", "binds"), CASES, ids=[c[0] for c in CASES])
def test_the_run_holds(
    tmp_path: Path, what: str, text: str, in_namespace: bool, lines: list[str], binds: list[str]
) -> None:
    plan = plan_for(tmp_path, text, in_namespace)
    run = str(tmp_path / "check" / "run")
    rendered = [line.strip() for line in plan.text.splitlines()]
    for line in lines:
        assert line.format(run=run) in rendered, f"{what}: {line} not in\n{plan.text}"
    assert plan.app_binds == [b.format(run=run) for b in binds], what
    assert 0 not in plan.ports, "a unix listener is not a port"


def test_the_app_avoids_the_config_s_own_listen_port(tmp_path: Path) -> None:
    text = f"server {{ listen {APP_PORT}; location / {{ proxy_pass http://$backend; }} }}"
    plan = plan_for(tmp_path, text, True)
    (bind,) = plan.app_binds
    assert bind != f"127.0.0.1:{APP_PORT}", f"the app would take nginx's own port: {plan.text}"


def test_every_changed_line_is_recorded_at_the_user_s_line(tmp_path: Path) -> None:
    text = (
        "server {\n    listen 80;\n"
        "    location / {\n        proxy_pass http://backend.internal:8000;\n    }\n}\n"
    )
    plan = plan_for(tmp_path, text, True)
    (change,) = plan.changes
    assert change.where == (str(tmp_path / "site.conf"), 4)
    assert change.was == "proxy_pass http://backend.internal:8000;"


@pytest.mark.parametrize(
    ("name", "san"),
    [("example.com", "DNS:example.com"), ("192.168.1.15", "IP:192.168.1.15"), ("[::1]", "IP:::1")],
)
def test_a_server_name_that_is_an_address_gets_an_ip_san(name: str, san: str) -> None:
    assert sandbox.san_for(name) == san
