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
from support.swarmctl import logged_on, spec, uploads_over_nodes

UPLOADS = 9  # spread by nginx over 3 nodes: each node takes some
UPLOAD_BYTES = 256 * 1024
REDEPLOY_TIMEOUT_S = 180
UPDATING = ("updating", "rollback_started")
SERVICES = ("app", "nginx")


@pytest.fixture(scope="module", autouse=True)
def several_nodes() -> None:
    if not swarmnodes.running():
        pytest.skip("one node: these run on LAB_SWARM_NODES=3 (CI's swarm path, docs/SCALING.md)")


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
    ``image``; returns once Swarm has rolled out (or rolled back) every service whose spec
    changed, and nginx answers again."""
    env = scenario_env(scenario)
    before = update_marks()
    old = {name: {task.id for task in swarm.tasks(name)} for name in SERVICES}
    swarm.stack_deploy(swarm.render(env, image), env)
    # A spec the deploy changed is rolled out; one it sent again as it was is left alone.
    changed = [name for name, (spec_now, _) in update_marks().items() if spec_now != before[name][0]]
    wait_rolled_out({name: (before[name][1], old[name]) for name in changed}, scenario or "baseline")
    wait_healthy(f"https://localhost:{labsettings.HTTPS_PORT.value(env)}/healthz", paths.CA, 60)


def wait_rolled_out(updates: dict[str, tuple[str, set[str]]], what: str) -> None:
    """Until each service of ``updates`` (its update's start before, its tasks before) is
    rolled_out, then the stack converged."""
    end = time.monotonic() + REDEPLOY_TIMEOUT_S
    for name, (started_before, old) in updates.items():
        while not rolled_out(name, started_before, old):
            assert time.monotonic() < end, f"{what}: {name} not updated in {REDEPLOY_TIMEOUT_S}s"
            time.sleep(1)
    swarm.wait_converged([*SERVICES, "redis"], timeout_s=REDEPLOY_TIMEOUT_S)


def rolled_out(name: str, started_before: str, old: set[str]) -> bool:
    """An update of ``name`` started after the deploy is over, or has replaced every task (no
    task of ``old`` runs, all wanted run): what is left of it is its `monitor` window (10 s, in
    which nothing changes unless a new task fails, which wait_converged would then report)."""
    service = swarm.inspect_service(name) or {}
    status = service.get("UpdateStatus", {})
    if status.get("StartedAt", "") == started_before:
        return False
    if status.get("State") not in UPDATING:
        return True
    running = {task.id for task in swarm.running_tasks(name)}
    wanted = service["Spec"]["Mode"]["Replicated"]["Replicas"]
    return status.get("State") == "updating" and len(running) == wanted and not running & old


def downloads(http, lab) -> list[tuple[str, str, int]]:
    """Uploads through nginx (on node 1), each downloaded: (the node whose task took the upload,
    the node whose task answered the download, its status)."""
    answered = {}
    for upload in uploads_over_nodes(http, lab, UPLOADS, UPLOAD_BYTES):
        # Its path is in the log line of the app task that answered (nginx's X-Accel 200 has no
        # X-Request-ID to go by).
        path = f"/files/{upload.name}"
        answered[path] = (upload.node, http.get(lab.url + path, timeout=30).status_code)
    by = logged_on(set(answered))
    found = [(taken, by.get(path, ""), status) for path, (taken, status) in answered.items()]
    assert all(taken and served for taken, served, _ in found), f"a request no app task logged: {found}"
    return found


def test_uploads_node_local_404s_unless_the_managers_task_took_and_served_it(http, lab):
    """The app answers GET /files/<name> only for a file on its own node's volume, then nginx
    serves it by X-Accel-Redirect from the manager's: a download is 200 only when the manager's
    task took the upload and answered its download; the app's 404 when another node's task
    answered it, nginx's when a worker's task took it and answered."""
    image = running_image()
    try:
        redeploy("uploads-node-local", image)
        broken = downloads(http, lab)
    finally:
        redeploy("", image)
    baseline = downloads(http, lab)
    print(f"uploads-node-local: (taken on, download answered on, status) {broken}; baseline {baseline}")
    wrong = [
        (taken, by, status)
        for taken, by, status in broken
        if status != (200 if taken == by == "node1" else 404)
    ]
    assert not wrong, (
        "under uploads-node-local, a download is 200 only when the manager's task took the upload "
        f"and answered the download (one volume per node), else 404: these were not {wrong} (of {broken})"
    )
    assert any(taken != "node1" for taken, _, _ in broken), f"no upload taken on a worker: {broken}"
    assert all(status == 200 for _, _, status in baseline), (
        f"the baseline (uploads on GlusterFS) downloads every upload, whichever node: {baseline}"
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
    # The baseline: every task replaced from the registry's image, wherever Swarm puts it, and
    # running. What is left of the update then is its monitor window, in which nothing changes
    # unless a new task fails (which wait_converged reports): no need to wait it out, as this
    # module runs last (conftest), so no later test scales the service under the update.
    old = {task.id for task in swarm.tasks("app")}
    started_before = update_marks()["app"][1]
    swarm.docker("service", "update", "--force", "--detach", swarm.service("app"))
    wait_rolled_out({"app": (started_before, old)}, "baseline's forced update")
    baseline = rejected_by_node(old)
    names = swarm.node_names()
    running_on = sorted({names[task.node_id] for task in swarm.running_tasks("app")})
    print(f"registry-missing: task errors by node {broken}; baseline {baseline}, running on {running_on}")
    workers = {node: errors for node, errors in broken.items() if node != "node1"}
    assert workers and all(any("No such image" in e for e in errors) for errors in workers.values()), (
        f"under registry-missing, the app's tasks on the workers should fail with No such image: {broken}"
    )
    assert "node1" not in broken, f"the manager has the image: {broken}"
    assert baseline == {} and set(running_on) - {"node1"}, (
        f"the baseline (pushed to the registry) runs on the workers: errors {baseline}, on {running_on}"
    )
