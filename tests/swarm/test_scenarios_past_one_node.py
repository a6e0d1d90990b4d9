"""The scenarios past one node, each under itself (symptom) and under the baseline (none), on the
three-node swarm (`LAB_SWARM_NODES=3`, CI's swarm path): uploads-node-local (uploads on each
node's own volume: a download through nginx 404s when a worker's task took the upload) and
registry-missing (the app image on the manager only: the workers' tasks fail "No such image")."""

from __future__ import annotations

import json
import time

import pytest

import labsettings
from labctl import compose, paths, swarm, swarmnodes
from labctl.health import wait_healthy
from support.swarmctl import spec, uploads_over_nodes

UPLOADS = 9  # spread by nginx over 3 nodes: each node takes some
UPLOAD_BYTES = 256 * 1024
REDEPLOY_TIMEOUT_S = 180
UPDATING = ("updating", "rollback_started")
SERVICES = ("app", "nginx")


@pytest.fixture(scope="module", autouse=True)
def several_nodes() -> None:
    if not swarmnodes.running():
        pytest.skip("one node: these run on LAB_SWARM_NODES=3 (CI's swarm path)")


def scenario_env(scenario: str) -> dict[str, str]:
    return compose.compose_env({**compose.started_env(), "LAB_SCENARIO": scenario})


def running_image() -> str:
    return spec("app")["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]


def update_marks() -> dict[str, tuple[str, str]]:
    """Each service's spec and the start of its last update (or rollback)."""
    found = {}
    for name in SERVICES:
        service = swarm.inspect_service(name) or {}
        found[name] = (
            json.dumps(service["Spec"], sort_keys=True),
            service.get("UpdateStatus", {}).get("StartedAt", ""),
        )
    return found


def redeploy(scenario: str, image: str) -> None:
    """`docker stack deploy` of the stack under ``scenario`` ('' the baseline) with the app's
    ``image``; returns once Swarm has updated (or rolled back) every service whose spec changed,
    and nginx answers again."""
    env = scenario_env(scenario)
    before = update_marks()
    swarm.stack_deploy(swarm.render(env, image), env)
    # A spec the deploy changed is rolled out; one it sent again as it was is left alone.
    changed = [name for name, (spec_now, _) in update_marks().items() if spec_now != before[name][0]]
    end = time.monotonic() + REDEPLOY_TIMEOUT_S
    for name in changed:
        # An update is done once one started after the deploy and is no longer running.
        while True:
            status = (swarm.inspect_service(name) or {}).get("UpdateStatus", {})
            if status.get("StartedAt", "") != before[name][1] and status.get("State") not in UPDATING:
                break
            assert time.monotonic() < end, (
                f"{scenario or 'baseline'}: {name} not updated in {REDEPLOY_TIMEOUT_S}s"
            )
            time.sleep(1)
    swarm.wait_converged([*SERVICES, "redis"], timeout_s=REDEPLOY_TIMEOUT_S)
    wait_healthy(f"https://localhost:{labsettings.HTTPS_PORT.value(env)}/healthz", paths.CA, 60)


def download_codes(http, lab) -> dict[str, set[int]]:
    """Each node: the statuses of downloads (through nginx, on node 1) of uploads it took."""
    codes: dict[str, set[int]] = {}
    for upload in uploads_over_nodes(http, lab, UPLOADS, UPLOAD_BYTES):
        status = http.get(f"{lab.url}/files/{upload.name}", timeout=30).status_code
        codes.setdefault(upload.node, set()).add(status)
    return codes


def test_uploads_node_local_404_when_a_worker_took_them_and_not_under_the_baseline(http, lab):
    image = running_image()
    try:
        redeploy("uploads-node-local", image)
        broken = download_codes(http, lab)
    finally:
        redeploy("", image)
    baseline = download_codes(http, lab)
    print(f"uploads-node-local: download statuses by node {broken}; baseline {baseline}")
    workers = {node: codes for node, codes in broken.items() if node != "node1"}
    assert workers and all(codes == {404} for codes in workers.values()), (
        f"under uploads-node-local, uploads taken on a worker should 404 through nginx on node1: {broken}"
    )
    assert baseline and all(codes == {200} for codes in baseline.values()), (
        f"the baseline (uploads on GlusterFS) downloads every upload: {baseline}"
    )


def rejected_by_node(since: set[str]) -> dict[str, set[str]]:
    """The errors of the app's tasks not in ``since``, by node."""
    names = swarm.node_names()
    found: dict[str, set[str]] = {}
    for task in swarm.tasks("app"):
        if task.id not in since and task.error:
            found.setdefault(names.get(task.node_id, task.node_id), set()).add(task.error)
    return found


def test_registry_missing_rejects_the_tasks_of_the_other_nodes_and_not_under_the_baseline():
    image = running_image()
    before = {task.id for task in swarm.tasks("app")}
    try:
        local = swarm.build_image(scenario_env("registry-missing"), print)
        assert swarmnodes.REGISTRY_HOST not in local, local
        redeploy("registry-missing", local)
        broken = rejected_by_node(before)
    finally:
        redeploy("", image)
    after = {task.id for task in swarm.tasks("app")}
    # Every task replaced under the baseline, wherever Swarm puts it (returns once converged).
    swarm.docker("service", "update", "--force", swarm.service("app"))
    baseline = rejected_by_node(after)
    print(f"registry-missing: task errors by node {broken}; baseline {baseline}")
    workers = {node: errors for node, errors in broken.items() if node != "node1"}
    assert workers and all(any("No such image" in e for e in errors) for errors in workers.values()), (
        f"under registry-missing, the app's tasks on the workers should fail with No such image: {broken}"
    )
    assert "node1" not in broken, f"the manager has the image: {broken}"
    assert baseline == {}, f"the baseline (pushed to the registry) runs on every node: {baseline}"
