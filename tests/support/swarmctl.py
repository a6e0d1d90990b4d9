"""The swarm stack as tests see it: service specs, the app's tasks, who served a request, the
uploads volume as nginx mounts it. Every call goes through labctl.swarm."""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections import Counter
from dataclasses import dataclass

import requests

from labctl import swarm, swarmnodes
from support import composectl
from support.lab import Lab


def spec(name: str) -> dict:
    found = swarm.inspect_service(name)
    assert found is not None, f"the swarm stack has no {swarm.service(name)} service"
    return found["Spec"]


def task_hosts() -> set[str]:
    """The hostnames of the app's running tasks (their container's short id): what served_by names."""
    return {task.host for task in swarm.running_tasks("app")}


def served_by_hosts(http: requests.Session, lab: Lab, count: int) -> Counter:
    """``count`` GETs of /debug/request: how many each app host served."""
    return Counter(
        http.get(lab.url + "/debug/request", timeout=10).json()["served_by"]["host"] for _ in range(count)
    )


def upload_dir_names() -> list[str]:
    """The uploads volume as the nginx task mounts it (read-only; every task writes to it)."""
    return composectl.upload_dir_names(swarm.nginx_container())


@dataclass(frozen=True)
class Upload:
    name: str
    sha256: str
    node: str  # the node whose app task took it ('' when no log said)


def logged_on(marks: set[str]) -> dict[str, str]:
    """The node whose app task logged each of ``marks`` (a request id, a unique path), from every
    node's app containers' logs."""
    found = {}
    for node, env in swarmnodes.engines().items():
        for cid in swarm.service_containers("app", env):
            logs = subprocess.run(
                ["docker", "logs", cid], env=env, text=True, capture_output=True, check=True
            )
            found.update({mark: node for mark in marks if mark in logs.stdout + logs.stderr})
    return found


def uploads_over_nodes(http: requests.Session, lab: Lab, count: int, size: int) -> list[Upload]:
    """``count`` uploads of ``size`` random bytes through nginx (each answered 201 with its
    sha256), each with the node that took it."""
    sent = {}
    for _ in range(count):
        name = f"nodes-{uuid.uuid4().hex[:8]}.bin"
        body = os.urandom(size)
        response = http.put(f"{lab.url}/upload/{name}", data=body, timeout=60)
        assert response.status_code == 201, response.text
        digest = hashlib.sha256(body).hexdigest()
        assert response.json()["sha256"] == digest, f"{name}: the server's sha256 differs"
        sent[response.headers["X-Request-ID"]] = (name, digest)
    taken = logged_on(set(sent))
    return [Upload(name, digest, taken.get(rid, "")) for rid, (name, digest) in sent.items()]
