"""labctl.swarm's pure part: the stack file made from `docker compose config` output (the stack
itself is checked against a running swarm in tests/swarm)."""

from __future__ import annotations

import pytest

from labctl import swarm

pytestmark = pytest.mark.no_stack

# The shape `docker compose config --format json` writes (Compose 2.40), trimmed.
CONFIG = {
    "name": "proxylab-swarm",
    "services": {
        "app": {"command": None, "entrypoint": None, "image": "proxylab-app:build-0123456789ab"},
        "redis": {
            "deploy": {"resources": {"limits": {"cpus": 1, "memory": "419430400", "pids": 15}}},
            "volumes": [
                {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": "1048576"}},
                {"type": "volume", "source": "uploads", "target": "/srv/uploads"},
            ],
        },
        "nginx": {
            "entrypoint": ["sh", "-c", "exec nginx"],
            "ports": [
                {
                    "mode": "ingress",
                    "host_ip": "127.0.0.1",
                    "target": 8443,
                    "published": "8443",
                    "protocol": "tcp",
                },
                {
                    "mode": "ingress",
                    "host_ip": "127.0.0.1",
                    "target": 8443,
                    "published": "8443",
                    "protocol": "udp",
                },
            ],
        },
    },
    "volumes": {"uploads": {"name": "proxylab-swarm_uploads"}},
}


def test_the_stack_file_publishes_compose_yamls_ports_in_host_mode_and_drops_what_swarm_refuses():
    stack = swarm.stack_file(CONFIG)
    assert "name" not in stack, "docker stack deploy: (root) Additional property name is not allowed"
    assert stack["services"]["app"] == {"image": "proxylab-app:build-0123456789ab"}, (
        "a null command or entrypoint: 'services.app.command must be a string'"
    )
    assert stack["services"]["nginx"]["ports"] == [
        {"mode": "host", "target": 8443, "published": 8443, "protocol": "tcp"},
        {"mode": "host", "target": 8443, "published": 8443, "protocol": "udp"},
    ], "host mode (not the routing mesh), no host address (Swarm has none), the port an integer"
    assert stack["services"]["redis"]["deploy"] == {
        "resources": {"limits": {"cpus": "1", "memory": "419430400", "pids": 15}}
    }, "a CPU limit as a string: 'services.redis.deploy.resources.limits.cpus must be a string'"
    assert stack["services"]["redis"]["volumes"] == [
        {"type": "tmpfs", "target": "/tmp", "tmpfs": {"size": 1048576}},
        {"type": "volume", "source": "uploads", "target": "/srv/uploads"},
    ], "a tmpfs size as an integer: 'services.redis.volumes.0.tmpfs.size must be a integer'"
    assert stack["volumes"] == CONFIG["volumes"]
    assert CONFIG["services"]["app"]["command"] is None, "the input is left as it was"
    assert CONFIG["services"]["redis"]["deploy"]["resources"]["limits"]["cpus"] == 1
    assert CONFIG["services"]["redis"]["volumes"][0]["tmpfs"]["size"] == "1048576"
