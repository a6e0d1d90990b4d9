"""What only a compose stack can show: who publishes which port, the image (who runs as what, and
with which privileges: test_hardening)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from labctl import compose


def project_containers(stack) -> dict[str, dict]:
    ids = compose.docker(
        "ps", "-q", "--filter", f"label=com.docker.compose.project={stack.project}"
    ).stdout.split()
    infos = [compose.inspect(cid) for cid in ids]
    return {info["Config"]["Labels"]["com.docker.compose.service"]: info for info in infos}


def published(info: dict) -> list[tuple[str, str, str]]:
    """(container port, host ip, host port) of every published port."""
    return [
        (port, binding["HostIp"], binding["HostPort"])
        for port, bindings in (info["NetworkSettings"]["Ports"] or {}).items()
        for binding in bindings or []
    ]


def test_only_nginx_publishes_ports_and_only_on_loopback(stack):
    containers = project_containers(stack)
    assert {"app", "nginx"} <= set(containers), f"running services: {sorted(containers)}"
    for service, info in containers.items():
        if service != "nginx":
            assert published(info) == [], f"{service} publishes {published(info)}: only nginx may"
    settings = compose.nginx_env(stack.project)
    https, http = settings["LAB_HTTPS_PORT"], settings["LAB_HTTP_PORT"]
    # The balancer's (profile "balancer") too: it runs in nginx's network namespace.
    balancer, balancer_http = settings["LAB_BALANCER_PORT"], settings["LAB_BALANCER_HTTP_PORT"]
    assert sorted(published(containers["nginx"])) == sorted(
        [
            (f"{https}/tcp", "127.0.0.1", str(https)),
            (f"{https}/udp", "127.0.0.1", str(https)),  # HTTP/3 (QUIC)
            (f"{http}/tcp", "127.0.0.1", str(http)),
            (f"{balancer}/tcp", "127.0.0.1", str(balancer)),
            (f"{balancer_http}/tcp", "127.0.0.1", str(balancer_http)),
        ]
    ), "nginx must publish exactly the HTTPS (TCP and UDP), HTTP and balancer ports, on 127.0.0.1 only"
    # The same, as `docker ps` shows it to a user: "127.0.0.1:8443->8443/tcp, 80/tcp" (the
    # image's EXPOSE 80 is listed but not published).
    nginx_name = containers["nginx"]["Name"].lstrip("/")
    rows = compose.docker(
        "ps",
        "--filter",
        f"label=com.docker.compose.project={stack.project}",
        "--format",
        "{{.Names}}\t{{.Ports}}",
    ).stdout.splitlines()
    for name, _, ports in (row.partition("\t") for row in rows):
        mappings = [p.strip() for p in ports.split(",") if "->" in p]
        assert not mappings or name == nginx_name, f"docker ps: {name} publishes {mappings}"
        assert all(m.startswith("127.0.0.1:") for m in mappings), f"docker ps: {name} {ports}"


def _docker_proxies() -> list[str]:
    """Command lines of the docker-proxy processes forwarding published ports (userland proxy)."""
    lines = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"docker-proxy"):
            lines.append(b" ".join(argv).decode())
    return lines


def test_app_port_is_not_reachable_from_the_host(stack):
    proxies = _docker_proxies()
    if proxies:
        assert any(f"-container-ip {stack.ip('nginx')} " in line for line in proxies), proxies
    for replica in stack.containers("app"):
        bindings = compose.docker("inspect", replica, "--format", "{{json .HostConfig.PortBindings}}")
        assert json.loads(bindings.stdout) in ({}, None), f"app port bindings: {bindings.stdout}"
        # Published ports are forwarded by docker-proxy processes (Docker's userland proxy):
        # there must be some for nginx and none for the app.
        app_ip = stack.ip_of(replica)
        assert not any(f"-container-ip {app_ip} " in line for line in proxies), (
            f"a docker-proxy forwards a host port to app {replica[:12]}: {proxies}"
        )
    # Where a user would try: gunicorn's port on loopback. Another checkout's native stack may
    # legitimately listen there, but never through Docker.
    with socket.socket() as probe:
        probe.settimeout(2)
        refused = probe.connect_ex(("127.0.0.1", 8000)) != 0
    assert refused or not any("-host-port 8000 " in line for line in proxies), (
        "127.0.0.1:8000 is forwarded into a container"
    )


def test_app_image_has_no_compiler_and_no_pip(stack):
    image = stack.inspect("app")["Config"]["Image"]
    result = compose.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c",
        "for tool in gcc cc c++ clang make; do command -v $tool; done; "
        "/opt/venv/bin/python -c 'import pip' 2>/dev/null && echo pip; true",
    )  # fmt: skip
    assert result.stdout.strip() == "", f"build tools in the final app image: {result.stdout.split()}"
