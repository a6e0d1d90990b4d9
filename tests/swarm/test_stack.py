"""The stack `make swarm-up` deployed is compose.yaml's with the swarm overlay, and has what a
rolling update and a multi-task app need: host-mode ports, >= 3 app tasks updated start-first
with rollback, healthchecks, a stop grace above gunicorn's graceful timeout, redis as a service,
nginx finding every task through tasks.app (re-resolved), uploads on the stack's volume, and
compose.yaml's hardening (read-only, no capabilities, limits, not root)."""

from __future__ import annotations

import json
import time

import pytest

import labsettings
from labctl import compose, paths, swarm, swarmnodes
from support.swarmctl import served_by_hosts, spec, task_hosts

NANOSECONDS = 1e9


def test_the_stack_file_is_derived_from_compose_yaml():
    stack = json.loads(swarm.STACK_FILE.read_text())
    assert set(stack["services"]) == {"app", "nginx", "redis"}, (
        "the stack is compose.yaml's services less the one-shot certs (swarm-up makes the certificates)"
    )
    app_env = stack["services"]["app"]["environment"]
    # compose.yaml's own values, through `docker compose config`: nothing was copied by hand.
    assert app_env["GUNICORN_GRACEFUL_TIMEOUT"] == labsettings.GUNICORN_GRACEFUL_TIMEOUT.default
    assert app_env["LAB_BROKER_URL"] == labsettings.BROKER_URL.default
    running = spec("app")["TaskTemplate"]["ContainerSpec"]["Image"]
    assert running.split("@")[0] == stack["services"]["app"]["image"], (
        f"the app service runs {running}, the stack file says {stack['services']['app']['image']}"
    )


def test_nginx_publishes_in_host_mode_which_listens_on_every_interface():
    ports = spec("nginx")["EndpointSpec"]["Ports"]
    assert {p["PublishMode"] for p in ports} == {"host"}, (
        f"nginx's ports {ports}: `mode: ingress` (the routing mesh) replaces the client address "
        "and refused connections here; compose.swarm.yaml publishes them with `mode: host`"
    )
    bindings = compose.inspect(swarm.nginx_container())["NetworkSettings"]["Ports"]
    published = {b["HostIp"] for port in bindings.values() if port for b in port}
    # The security note swarm-up prints and the README repeats: not 127.0.0.1 as in compose.
    assert published <= {"0.0.0.0", "::"} and published, (
        f"host-mode ports bound on {published}: the README and swarm-up say they listen on every "
        "interface; if the engine binds them elsewhere now, say so there"
    )


def test_the_app_has_three_tasks_or_more_updated_start_first_with_rollback():
    app = spec("app")
    assert app["Mode"]["Replicated"]["Replicas"] >= 3
    update = app["UpdateConfig"]
    assert (update["Order"], update["FailureAction"], update["Parallelism"]) == ("start-first", "rollback", 1)
    assert app["RollbackConfig"]["Order"] == "start-first"
    container = app["TaskTemplate"]["ContainerSpec"]
    grace = container["StopGracePeriod"] / NANOSECONDS
    graceful = labsettings.GUNICORN_GRACEFUL_TIMEOUT.value(compose.started_env())
    assert grace > graceful, (
        f"stop_grace_period {grace:g}s is not above graceful_timeout {graceful}s: Swarm would SIGKILL "
        "what gunicorn is still finishing (grace-period-kill)"
    )
    assert container["StopSignal"] == "SIGTERM"
    tasks = swarm.running_tasks("app")
    assert len(tasks) == app["Mode"]["Replicated"]["Replicas"], tasks
    health = {
        t.name: swarm.task_docker(
            t, "inspect", "--format", "{{.State.Health.Status}}", t.container
        ).stdout.strip()
        for t in tasks
    }
    assert set(health.values()) == {"healthy"}, f"the app tasks' healthcheck (the image's): {health}"


def test_redis_is_a_service_of_the_stack():
    assert spec("redis")["Mode"]["Replicated"]["Replicas"] == 1
    assert len(swarm.running_tasks("redis")) == 1


def test_uploads_are_on_the_stacks_volume_read_only_for_nginx():
    def volumes(name: str) -> dict[str, bool]:
        mounts = spec(name)["TaskTemplate"]["ContainerSpec"]["Mounts"]
        return {m["Source"]: m.get("ReadOnly", False) for m in mounts if m["Type"] in ("volume", "bind")}

    app, nginx = volumes("app"), volumes("nginx")
    volume = f"{swarm.stack_name()}_{{}}".format
    # Several nodes: the GlusterFS mount every node has (compose.swarm-nodes.yaml), not a volume,
    # which would be each node's own.
    uploads = swarmnodes.SHARED_UPLOADS if swarmnodes.running() else volume("uploads")
    checkout = {source for source in {**app, **nginx} if source.startswith(str(paths.ROOT))}
    app, nginx = ({k: v for k, v in mounts.items() if k not in checkout} for mounts in (app, nginx))
    # The app writes uploads and reads the lab's CA (its outbound HTTPS call, /debug/outbound).
    assert app == {uploads: False, volume("ca"): True}, app
    assert nginx == {uploads: True, volume("tls"): True, volume("nginx-temp"): False}, (
        "nginx reads uploads and its own copy of the key (written by the certs one-shot swarm-up "
        f"runs), and buffers request bodies in its temp volume: {nginx}"
    )


@pytest.mark.parametrize("name", ["app", "nginx", "redis"])
def test_compose_yamls_hardening_holds_on_the_swarm_service(name: str):
    """What docker/cli's converter carries over (docs/COMPOSE.md, "Swarm"); no-new-privileges is
    the one it drops (moby/moby#41371)."""
    task = spec(name)["TaskTemplate"]
    container = task["ContainerSpec"]
    assert container.get("ReadOnly") is True, f"{name}: root filesystem writable in Swarm"
    assert container.get("CapabilityDrop") == ["ALL"], (
        f"{name}: capabilities {container.get('CapabilityDrop')}"
    )
    limits = task["Resources"]["Limits"]
    assert {"NanoCPUs", "MemoryBytes", "Pids"} <= set(limits), f"{name}: limits {limits}"
    running = swarm.running_tasks(name)[0]
    assert swarm.task_docker(running, "exec", running.container, "id", "-u").stdout.strip() != "0", (
        f"{name}'s task runs as root in Swarm"
    )


def test_nginx_spreads_requests_over_every_task_through_tasks_app(http, lab):
    env = compose.container_env(swarm.nginx_container())
    assert env["LAB_UPSTREAM"] == "tasks.app:8000", env["LAB_UPSTREAM"]
    hosts = task_hosts()
    seen = served_by_hosts(http, lab, 60)
    assert set(seen) == hosts, (
        f"60 GETs were served by {dict(seen)}, the running tasks are {sorted(hosts)}: nginx should "
        "ask Docker's DNS for tasks.app (one address per healthy task) on every request"
    )


def test_a_task_added_is_in_rotation_within_seconds(http, lab):
    """tasks.app is re-resolved (resolver valid=1s), not read once at start."""
    wanted = spec("app")["Mode"]["Replicated"]["Replicas"]
    before = task_hosts()
    try:
        swarm.docker("service", "scale", "--detach", f"{swarm.service('app')}={wanted + 1}")
        swarm.wait_converged(["app"], timeout_s=90)
        (added,) = task_hosts() - before
        healthy_at = time.monotonic()
        end = healthy_at + 15
        while time.monotonic() < end and added not in served_by_hosts(http, lab, 12):
            time.sleep(0.25)
        took = time.monotonic() - healthy_at
        assert took < 15, f"task {added} healthy for 15 s and never served: nginx does not re-resolve"
        print(f"a task added served {took:.1f}s after the swarm counted it running (healthy)")
    finally:
        swarm.docker("service", "scale", "--detach", f"{swarm.service('app')}={wanted}")
        swarm.wait_converged(["app"], timeout_s=90)
