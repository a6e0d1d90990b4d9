"""What the app sees as the client's address behind the swarm stack, for a client on loopback.

nginx's ports are published with `mode: host`, which the engine implements as it does compose's
ports: NAT rules for traffic from other hosts, and for a connection to 127.0.0.1 its userland
proxy (docker-proxy), which accepts the connection on the host's loopback and opens a new one to
the nginx container from the gateway of docker_gwbridge, the bridge that connects a swarm task to
its node. So nginx's $remote_addr, the X-Forwarded-For it sends and the app's remote_addr
(ProxyFix, one hop) are that gateway's address, not 127.0.0.1: a client from another host would
be seen as itself. In compose mode it is the compose network's gateway, for the same reason. In
`mode: ingress` (the routing mesh) every client, from anywhere, would be the ingress network's
address instead: the reason compose.swarm.yaml publishes in host mode.
"""

from __future__ import annotations

import json

from labctl import compose, swarmnodes
from support.lab import access_log_entry


def gwbridge_gateway() -> str:
    """docker_gwbridge's gateway; on several nodes the gateway of the nodes' network on this host,
    from which this host's docker-proxy connects to node 1's published port (node 1's engine then
    NATs it to nginx, keeping that address)."""
    if swarmnodes.running():
        inspected = swarmnodes.host_docker("network", "inspect", swarmnodes.network_name())
    else:
        inspected = compose.docker("network", "inspect", "docker_gwbridge")
    return json.loads(inspected.stdout)[0]["IPAM"]["Config"][0]["Gateway"]


def test_a_loopback_client_is_seen_as_the_gwbridge_gateway(lab, http):
    gateway = gwbridge_gateway()
    response = http.get(lab.url + "/debug/request")
    seen = response.json()
    assert seen["remote_addr"] == gateway, (
        f"the app saw {seen['remote_addr']!r}, docker_gwbridge's gateway is {gateway}: with `mode: host` "
        "ports a loopback client reaches nginx through Docker's userland proxy (10.0.0.x would be "
        "the ingress routing mesh)"
    )
    assert seen["headers"]["X-Forwarded-For"] == gateway, seen["headers"]
    entry = access_log_entry(response.headers["X-Request-ID"])
    assert entry["remote_addr"] == gateway, f"nginx logged {entry['remote_addr']}, the app saw {gateway}"
    print(f"client on 127.0.0.1 -> nginx and the app see {gateway} (docker_gwbridge's gateway)")
