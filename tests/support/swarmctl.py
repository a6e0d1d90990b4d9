"""The swarm stack as tests see it: service specs, the app's tasks, who served a request, the
uploads volume as nginx mounts it. Every call goes through labctl.swarm."""

from __future__ import annotations

from collections import Counter

import requests

from labctl import swarm
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
