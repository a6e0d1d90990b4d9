"""Swarm mode: the stack of compose.yaml on Docker Swarm (`make swarm-up`, `swarm-deploy`,
`swarm-down`), a third mode beside native and compose, built on compose's file and image.

The stack file is derived, never written by hand: `docker compose config` lays compose.swarm.yaml
over compose.yaml with the settings `make up` would use (offline stand-ins, a scenario's app.env),
and stack_file() drops the little Swarm's schema refuses. The result, .lab/swarm/stack.json (JSON
is YAML), is what `docker stack deploy` reads; a bare `docker stack deploy -c .lab/swarm/stack.json
proxylab-swarm` does the same.

One node by default: `swarm-up` runs `docker swarm init` when the engine is in no swarm, and
remembers that it did (.lab/run/swarm-joined, the node's id), so that `swarm-down` leaves the
swarm only then. The app image stays local; with LAB_REGISTRY it is pushed there and every node
pulls it. Reload, dump and logs reach the nginx task's container on this node.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import labsettings

from . import compose, paths, runstate, swarmnodes
from .endpoints import print_ready
from .health import StartFailed, wait_healthy

MODE = "swarm"
UP, DOWN = "make swarm-up", "make swarm-down"
OVERLAY = paths.ROOT / "compose.swarm.yaml"
OUT = paths.LAB / "swarm"
STACK_FILE = OUT / "stack.json"
# Written by swarm-up right after its `docker swarm init`: the node id of the swarm it made.
JOINED = paths.RUN / "swarm-joined"
# Every service converged (tasks healthy), from a built image: the app's start period is 30 s.
CONVERGE_TIMEOUT_S = 150
# A rolling update: per task, a new one healthy (a few health intervals), the old one's graceful
# stop (its stop_grace_period at most), update_config's monitor.
UPDATE_TIMEOUT_S = 300
REMOVE_TIMEOUT_S = 90
POLL_S = 0.25
LOGS_TIMEOUT_S = 30
# What an image built by swarm-up is tagged: a new tag per new image makes a service update roll.
BUILD_TAG = "build-"
# The images the stack runs besides the app's: pushed to the registry of several nodes.
BASE_IMAGES = {"LAB_NGINX_IMAGE": labsettings.NGINX_IMAGE, "LAB_REDIS_IMAGE": labsettings.REDIS_IMAGE}
# The states of a service's UpdateStatus that end an update without the new tasks.
UPDATE_FAILED = ("paused", "rollback_started", "rollback_paused", "rollback_completed")


def stack_name() -> str:
    return swarmnodes.stack_name()


def service(name: str) -> str:
    return f"{stack_name()}_{name}"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """docker on the swarm's manager: this engine, or node 1 of LAB_SWARM_NODES' (swarmnodes)."""
    swarmnodes.use_manager()
    return compose.docker(*args, check=check)


# -- the swarm itself ----------------------------------------------------------------------------


def node_state() -> str:
    """The engine's swarm state: inactive, active, pending, error, locked."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()


def node_id() -> str:
    return docker("info", "--format", "{{.Swarm.NodeID}}").stdout.strip()


def join(env: Mapping[str, str]) -> None:
    """A single-node swarm when the engine is in none (remembered, for swarm-down); an existing
    swarm is used as it is and never left by this checkout."""
    state = node_state()
    if state == "active":
        if not JOINED.is_file():
            print("lab: the engine is already in a swarm: using it (swarm-down will not leave it)")
        return
    if state != "inactive":
        raise SystemExit(f"lab: the engine's swarm state is {state!r}: `docker info` says why")
    address = labsettings.SWARM_ADVERTISE_ADDR.value(env)
    print(f"lab: docker swarm init --advertise-addr {address} (swarm-down leaves it again)", flush=True)
    init = docker("swarm", "init", "--advertise-addr", address, check=False)
    if init.returncode != 0:
        raise SystemExit(f"lab: docker swarm init failed: {init.stderr.strip()}")
    paths.RUN.mkdir(parents=True, exist_ok=True)
    JOINED.write_text(node_id() + "\n")


def leave_if_joined() -> None:
    """Leave the swarm only if swarm-up made it (the same node id), and only once."""
    if not JOINED.is_file():
        return
    if node_state() == "active" and node_id() == JOINED.read_text().strip():
        docker("swarm", "leave", "--force")
        print("lab: left the swarm swarm-up had made (docker swarm leave --force)")
    JOINED.unlink()


# -- the stack file -------------------------------------------------------------------------------


def stack_file(config: Mapping[str, object]) -> dict:
    """`docker compose config --format json` of compose.yaml + compose.swarm.yaml, made into what
    `docker stack deploy` accepts and what the lab needs there:

    - compose.yaml's published ports, each in `mode: host` (the routing mesh, `ingress`, hides the
      client's address and does not work without IPVS) and with no host address, which Swarm
      cannot bind (so it listens on every interface: swarm-up says so);
    - its schema refuses the top-level `name` (the stack's name is given on the command line), a
      null `command` or `entrypoint` ("must be a string"), a published port given as a string
      ("must be a integer"), and two that compose writes the other way round: a CPU limit as a
      number ("cpus must be a string") and a tmpfs mount's size as a string ("size must be a
      integer")."""
    stack = {key: value for key, value in config.items() if key != "name"}
    services = {}
    declared: Mapping[str, dict] = stack.get("services", {})  # type: ignore[assignment]
    for name, spec in declared.items():
        kept = {key: value for key, value in spec.items() if value is not None}
        if "ports" in kept:
            kept["ports"] = [
                {
                    **{k: v for k, v in port.items() if k != "host_ip"},
                    "mode": "host",
                    "published": int(port["published"]),
                }
                for port in kept["ports"]
            ]
        if "resources" in kept.get("deploy", {}):
            kept["deploy"] = {
                **kept["deploy"],
                "resources": {
                    kind: {**limits, **({"cpus": str(limits["cpus"])} if "cpus" in limits else {})}
                    for kind, limits in kept["deploy"]["resources"].items()
                },
            }
        if "volumes" in kept:
            kept["volumes"] = [
                {**mount, "tmpfs": {**mount["tmpfs"], "size": int(mount["tmpfs"]["size"])}}
                if "size" in mount.get("tmpfs", {})
                else mount
                for mount in kept["volumes"]
            ]
        services[name] = kept
    stack["services"] = services
    return stack


def render(env: Mapping[str, str], image: str) -> dict:
    """The stack for these settings (a compose.compose_env()) and this app image."""
    # Several nodes: nginx and redis placed on the manager, uploads on the shared volume.
    overrides = (OVERLAY, *swarmnodes.overlays(env))
    result = compose.run(
        "config", "--format", "json",
        project_name=stack_name(), env={**env, "LAB_APP_IMAGE": image},
        overrides=overrides, capture=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"lab: `docker compose config` of compose.yaml + {OVERLAY.name}: {result.stderr}")
    return stack_file(json.loads(result.stdout))


def stack_deploy(stack: Mapping[str, object], env: Mapping[str, str], only: str | None = None) -> None:
    """`docker stack deploy` of ``stack`` (written to .lab/swarm/stack.json), or of its service
    ``only``: `docker stack deploy` leaves the services a file does not name as they are."""
    OUT.mkdir(parents=True, exist_ok=True)
    STACK_FILE.write_text(json.dumps(stack, indent=1) + "\n")
    path = STACK_FILE
    if only is not None:
        services: Mapping[str, object] = stack["services"]  # type: ignore[assignment]
        path = OUT / f"{only}.json"
        path.write_text(json.dumps({**stack, "services": {only: services[only]}}, indent=1) + "\n")
    registry = bool(registry_of(env))
    # Without a registry there is no digest to look up (`always` would ask Docker Hub for it).
    resolve = (
        ["--resolve-image", "always", "--with-registry-auth"] if registry else ["--resolve-image", "never"]
    )
    result = docker("stack", "deploy", *resolve, "-c", str(path), stack_name(), check=False)
    if result.returncode != 0:
        raise SystemExit(f"lab: docker stack deploy failed:\n{result.stdout}{result.stderr}")


# -- the app image ------------------------------------------------------------------------------


def built_image(env: Mapping[str, str]) -> str:
    """The name `docker compose build app` gives the image (LAB_APP_IMAGE), with ``env`` (a
    compose.compose_env())."""
    return labsettings.APP_IMAGE.value(env)


def without_tag(image: str) -> str:
    """registry:5000/name:tag -> registry:5000/name (a registry's port is not a tag)."""
    name, _, tag = image.rpartition(":")
    return name if name and "/" not in tag else image


def registry_of(env: Mapping[str, str]) -> str:
    """Where the app image is pushed and pulled from: LAB_REGISTRY (several nodes: theirs),
    none when LAB_SWARM_REGISTRY=0 leaves the image on the manager (registry-missing)."""
    if swarmnodes.running() and not labsettings.SWARM_REGISTRY.value(env):
        return ""
    return labsettings.REGISTRY.value(env).rstrip("/")


def repository(env: Mapping[str, str]) -> str:
    """What the stack's app image is called, less its tag: in its registry when there is one."""
    name = without_tag(built_image(env))
    if registry := registry_of(env):
        return f"{registry}/{name.rsplit('/', 1)[-1]}"
    return name


def build_image(env: Mapping[str, str], note: Callable[[str], None]) -> str:
    """Build LAB_APP_IMAGE as `make up` does, with ``env`` (a compose.compose_env()), on this
    engine, then tag it with its id (pushed to LAB_REGISTRY when set; with several nodes through
    the manager): the name the stack runs."""
    started = time.monotonic()
    compose.build_app(swarmnodes.host_env(env), stack_name())
    built = built_image(env)
    image_id = swarmnodes.host_docker("image", "inspect", "--format", "{{.Id}}", built).stdout.strip()
    tagged = f"{repository(env)}:{BUILD_TAG}{image_id.removeprefix('sha256:')[:12]}"
    swarmnodes.host_docker("tag", built, tagged)
    if swarmnodes.running() and not registry_of(env):
        note(f"loading {tagged} into the manager only (LAB_SWARM_REGISTRY=0: no other node has it)")
        swarmnodes.load([tagged])
    elif swarmnodes.running():
        note(f"pushing {tagged} from the manager (every node pulls it)")
        swarmnodes.publish([tagged])
    elif registry_of(env):
        note(f"pushing {tagged} (LAB_REGISTRY: every node pulls it)")
        swarmnodes.host_docker("push", tagged)
    note(f"app image {tagged} built in {time.monotonic() - started:.1f}s")
    return tagged


def remove_build_tags(env: Mapping[str, str]) -> None:
    """The build-<id> tags swarm-up and swarm-deploy made (the images stay while another tag,
    LAB_APP_IMAGE's own, holds them)."""
    tags = []
    # Its local name too: registry-missing's image is never pushed.
    for name in {repository(env), without_tag(built_image(env))}:
        listed = swarmnodes.host_docker(
            "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", name, check=False
        )
        tags += [tag for tag in listed.stdout.split() if tag.split(":")[-1].startswith(BUILD_TAG)]
    if tags:
        swarmnodes.host_docker("image", "rm", *tags, check=False)


# -- services and tasks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    id: str
    name: str  # <service>.<slot>
    desired: str  # running, shutdown, ...
    state: str  # new ... running, shutdown, complete, failed, ...
    container: str  # its container's id ('' before it has one): the app's hostname is its first 12
    exit_code: int | None
    error: str
    node_id: str  # the node Swarm placed it on

    @property
    def host(self) -> str:
        return self.container[:12]


def tasks(name: str) -> list[Task]:
    """Every task Swarm keeps for the service (its history too), from the manager."""
    ids = docker("service", "ps", "-q", "--no-trunc", service(name), check=False).stdout.split()
    if not ids:
        return []
    # check=False: Swarm prunes old tasks (5 per slot) at any moment, and `docker inspect` of a
    # task gone since `service ps` exits 1 after printing the others.
    found = []
    for task in json.loads(docker("inspect", *ids, check=False).stdout or "[]"):
        status = task.get("Status", {})
        container = status.get("ContainerStatus", {})
        found.append(
            Task(
                id=task["ID"],
                name=f"{service(name)}.{task.get('Slot', '?')}",
                desired=task.get("DesiredState", ""),
                state=status.get("State", ""),
                container=container.get("ContainerID", ""),
                exit_code=container.get("ExitCode"),
                error=status.get("Err", ""),
                node_id=task.get("NodeID", ""),
            )
        )
    return found


def node_names() -> dict[str, str]:
    """Every node of the swarm: its hostname by its id."""
    listed = docker("node", "ls", "--format", "{{.ID}} {{.Hostname}}", check=False).stdout.split()
    return dict(zip(listed[::2], listed[1::2], strict=True))


def task_docker(task: Task, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """docker on the engine of the node that runs ``task`` (its container is there)."""
    env = swarmnodes.engines().get(node_names().get(task.node_id, ""), dict(os.environ))
    return subprocess.run(["docker", *args], env=env, check=check, text=True, capture_output=True)


def running_tasks(name: str) -> list[Task]:
    return [task for task in tasks(name) if task.desired == "running" and task.state == "running"]


def inspect_service(name: str) -> dict | None:
    result = docker("service", "inspect", service(name), check=False)
    return json.loads(result.stdout)[0] if result.returncode == 0 else None


def services_here() -> list[str]:
    """The stack's services (full names), [] when it is not deployed."""
    result = docker(
        "service", "ls", "--format", "{{.Name}}",
        "--filter", f"label=com.docker.stack.namespace={stack_name()}",
        check=False,
    )  # fmt: skip
    return result.stdout.split() if result.returncode == 0 else []


def replicas() -> dict[str, tuple[int, int]]:
    """Each service's (running, wanted) tasks as `docker service ls` counts them: a task with a
    healthcheck counts as running once it is healthy."""
    result = docker(
        "service", "ls", "--format", "{{.Name}} {{.Replicas}}",
        "--filter", f"label=com.docker.stack.namespace={stack_name()}", check=False,
    )  # fmt: skip
    found = {}
    for line in result.stdout.splitlines():
        name, _, counts = line.partition(" ")
        if matched := re.match(r"(\d+)/(\d+)", counts):
            found[name.removeprefix(f"{stack_name()}_")] = (int(matched[1]), int(matched[2]))
    return found


def wait_converged(wanted: list[str], timeout_s: float = CONVERGE_TIMEOUT_S) -> None:
    end = time.monotonic() + timeout_s
    counts: dict[str, tuple[int, int]] = {}
    while time.monotonic() < end:
        counts = replicas()
        if set(wanted) <= set(counts) and all(run == want for run, want in counts.values()):
            return
        time.sleep(1)
    failures = [
        f"{task.name}: {task.state} {task.error}".strip()
        for name in wanted
        for task in tasks(name)
        if task.error or task.state in ("failed", "rejected")
    ]
    raise RuntimeError(f"services not converged after {timeout_s:.0f}s: {counts}; {failures[-6:]}")


def nginx_container() -> str:
    """The running nginx task's container on this node (a host-mode port is this node's)."""
    ids = containers("nginx")
    if not ids:
        raise SystemExit("lab: the swarm stack has no running nginx task on this node: `make swarm-up` first")
    return ids[0]


# -- the commands -------------------------------------------------------------------------------


def up() -> None:
    if (scenario := labsettings.SCENARIO.value()) and not (paths.SCENARIOS / scenario).is_dir():
        raise SystemExit(f"lab: no scenario named {scenario!r} (see nginx/scenarios/)")
    compose.require_engine()
    print(f"lab: swarm up (Compose {compose.compose_version()}, stack {stack_name()})", flush=True)
    started = time.monotonic()
    env = compose.compose_env()
    # Made here, as the user (a bind mount's missing source would be created as root, or not at
    # all: Swarm refuses a task whose bind source is missing).
    paths.CERTS.mkdir(parents=True, exist_ok=True)
    if (nodes := swarmnodes.wanted(env)) > 1:
        env = nodes_up(env, nodes)
    else:
        join(env)
        make_certs(env)
    image = build_image(env, lambda text: print(f"lab: {text}", flush=True))
    stack = render(env, image)
    stack_deploy(stack, env)
    tasks_wanted = labsettings.SWARM_REPLICAS.value(env)
    print(
        f"lab: docker stack deploy {stack_name()} ({STACK_FILE.relative_to(paths.ROOT)}): waiting "
        f"for {tasks_wanted} app tasks, redis and nginx to be healthy",
        flush=True,
    )
    try:
        wait_converged(list(stack["services"]))
        wait_healthy(f"https://localhost:{labsettings.HTTPS_PORT.value(env)}/healthz", paths.CA, 30)
    except RuntimeError as error:
        left = "the stack is left as it is for `make logs` / `docker stack ps`; `make swarm-down` removes it"
        raise StartFailed(str(error), left) from None
    runstate.record(MODE, env)
    print_ready(
        f"swarm ({stack_name()}: nginx + {tasks_wanted} app tasks + redis)", time.monotonic() - started
    )
    https, http = labsettings.HTTPS_PORT.value(env), labsettings.HTTP_PORT.value(env)
    if swarmnodes.running():
        print(f"  {nodes} nodes (containers {swarmnodes.container(1)} ...): `make swarm-down` removes them")
        return
    print(
        f"  NOTE: published with `mode: host`, ports {https} and {http} listen on EVERY interface of "
        "this machine, not only on 127.0.0.1 as `make up`'s do: anyone who reaches this host reaches "
        "the lab. Firewall them, or `make swarm-down` when done.",
        flush=True,
    )


def make_certs(env: Mapping[str, str]) -> None:
    """compose.yaml's one-shot certs service, on the engine ``env`` names: nginx's copy of the
    server key (the tls volume) and the CA the app verifies nginx with (the ca volume)."""
    certs = compose.run(
        "run", "--rm", "--no-deps", "certs", project_name=stack_name(), env=env, capture=True, check=False
    )
    if certs.returncode != 0:
        raise SystemExit(f"lab: making the certificates failed:\n{certs.stdout}{certs.stderr}")


def nodes_up(env: Mapping[str, str], nodes: int) -> dict[str, str]:
    """LAB_SWARM_NODES engines in containers (swarmnodes), the base images in their registry, the
    certificates' volumes on each node; returns ``env`` with the images by their registry names,
    and points this process's docker commands at the manager."""
    images = {key: setting.value(env) for key, setting in BASE_IMAGES.items()}
    swarmnodes.up(nodes, env, list(images.values()))
    swarmnodes.use_manager()
    moved = {
        **env,
        "LAB_REGISTRY": swarmnodes.REGISTRY_HOST,
        **{key: swarmnodes.registry_name(image) for key, image in images.items()},
    }
    for node in range(1, nodes + 1):
        make_certs({**moved, "DOCKER_HOST": swarmnodes.socket_url(node)})
    return moved


def down(volumes: bool = False) -> None:
    """Remove the stack (and wait until its containers and network are gone), then leave the
    swarm if swarm-up made it. Safe to run when nothing is up."""
    compose.require_engine()
    env = compose.compose_env(compose.started_env() if runstate.recorded(MODE) else None)
    # Several nodes: their engines go, and the stack, its volumes and the swarm with them.
    if not swarmnodes.running():
        if node_state() == "active" and services_here():
            docker("stack", "rm", stack_name())
            wait_removed()
            print(f"lab: swarm stack {stack_name()} removed")
        if volumes:
            for volume in stack_volumes():
                docker("volume", "rm", "-f", volume, check=False)
    swarmnodes.down()
    remove_build_tags(env)
    leave_if_joined()
    runstate.clear(MODE)


def stack_volumes() -> list[str]:
    """Every volume of the stack: uploads, nginx's temp files, and its copy of the key, which the
    certs one-shot (a compose run) made before the stack, so only the name tells."""
    return compose.volumes_of(stack_name(), docker)


def wait_removed(timeout_s: float = REMOVE_TIMEOUT_S) -> None:
    """`docker stack rm` returns at once; its tasks stop gracefully and its network goes last."""
    label = f"label=com.docker.stack.namespace={stack_name()}"
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        left = docker("ps", "-aq", "--filter", label, check=False).stdout.split()
        left += docker("network", "ls", "-q", "--filter", label, check=False).stdout.split()
        if not left:
            return
        time.sleep(0.5)
    raise SystemExit(f"lab: the stack's containers or network are still there after {timeout_s:.0f}s")


def deploy(note: Callable[[str], None]) -> None:
    """A rolling update of the app service: build (a new image gets a new tag), `docker stack
    deploy` of the app alone (nginx and redis are left running), or a forced update when neither
    the image nor its settings changed, so that every task is replaced either way. Swarm does the
    rest, as compose.swarm.yaml's update_config says: one task at a time, the new one healthy
    before the old one gets SIGTERM; a failure rolls back. Follows the tasks until it is done."""
    compose.require_engine()
    env = compose.compose_env(compose.started_env())
    current = inspect_service("app") if runstate.recorded(MODE) else None
    if current is None:
        raise SystemExit("lab: no swarm stack is running here: `make swarm-up` first")
    old = {task.id: task for task in running_tasks("app")}
    template = current["Spec"]["TaskTemplate"]
    note("building the app image")
    image = build_image(env, note)
    stack = render(env, image)
    note(f"docker stack deploy of the app alone: {image}, {len(old)} tasks, start-first")
    stack_deploy(stack, env, only="app")
    if inspect_service("app")["Spec"]["TaskTemplate"] == template:  # type: ignore[index]
        note("same image and settings: docker service update --force (every task replaced anyway)")
        docker("service", "update", "--force", "--detach", service("app"))
    follow_update(old, note)


def follow_update(
    old: dict[str, Task], note: Callable[[str], None], timeout_s: float = UPDATE_TIMEOUT_S
) -> None:
    """Note each step of the app's rolling update as Swarm takes it, until every old task is gone
    and the update is complete; SystemExit when it paused or rolled back."""
    told, started, ended = set(), set(), set()
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for task in tasks("app"):
            if task.id in old:
                if task.desired != "running" and task.id not in told:
                    told.add(task.id)
                    # The app's hostname is its container's short id: the name its uploads carry.
                    note(f"stopping {task.name} ({task.host}): SIGTERM")
                if task.state in ("shutdown", "complete", "failed") and task.id not in ended:
                    ended.add(task.id)
                    note(f"{task.name} ({task.host}) exited, exit code {task.exit_code}")
            elif task.desired == "running" and task.state == "running" and task.id not in started:
                started.add(task.id)
                note(f"new task {task.name} ({task.host}) healthy")
        status = (inspect_service("app") or {}).get("UpdateStatus", {})
        if status.get("State") in UPDATE_FAILED:
            raise SystemExit(f"lab deploy: the update {status['State']}: {status.get('Message', '')}")
        if status.get("State") == "completed" and ended >= set(old):
            note(f"update completed: {len(started)} new tasks, {len(ended)} old ones exited")
            return
        time.sleep(POLL_S)
    raise SystemExit(f"lab deploy: the rolling update did not complete within {timeout_s:.0f}s")


def reload() -> int:
    return compose.reload(nginx_container())


def dump_config() -> str:
    return compose.dump_config(nginx_container())


def nginx_has_http3() -> bool:
    return compose.nginx_has_http3(nginx_container())


def nginx_source() -> Path:
    return compose.NGINX_SOURCE


def process_groups() -> dict[str, list[int]]:
    """The workers of the nginx task and of the app tasks on this node (on several nodes, the
    manager's: its engine's PIDs are those of its container's namespace, mapped to the host's)."""
    if swarmnodes.running():
        return compose.process_groups(
            nginx_container(), containers("app"), lambda pid: swarmnodes.host_pid(1, pid)
        )
    return compose.process_groups(nginx_container(), containers("app"))


def containers(name: str, running: bool = True) -> list[str]:
    """The containers of the service's tasks on this node, newest first (every one with
    ``running=False``: Swarm keeps a few exited tasks per slot)."""
    result = docker(
        "ps", "-q", *([] if running else ["-a"]),
        "--filter", f"label=com.docker.swarm.service.name={service(name)}", check=False,
    )  # fmt: skip
    return result.stdout.split()


def service_containers(name: str, env: Mapping[str, str]) -> list[str]:
    """Every container of the service's tasks (the exited ones too) on the engine ``env`` reaches
    (one of swarmnodes.engines())."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.swarm.service.name={service(name)}"],
        env=env, text=True, capture_output=True, timeout=LOGS_TIMEOUT_S,
    )  # fmt: skip
    return listed.stdout.split()


def log_tail(lines: int = 60) -> dict[str, str]:
    """nginx's access log (its stdout), error log (stderr), the app's output (every task's, the
    exited ones too, on every node), from the containers themselves. Not `docker service logs`,
    which would gather them but was seen to hang here (for 10 minutes, until killed)."""
    return _logs(["--tail", str(lines)])


@contextlib.contextmanager
def logs_written() -> Iterator[dict[str, str]]:
    """What each log got during the block, by name as log_tail (filled when it ends)."""
    since = f"{time.time():.6f}"  # `docker logs --since` takes a Unix timestamp
    written: dict[str, str] = {}
    yield written
    written.update(_logs(["--since", since]))


def _logs(which: list[str]) -> dict[str, str]:
    """The logs of nginx's task and of every node's app tasks as `docker logs` with ``which``
    selects them."""
    nginx = containers("nginx")
    if not nginx:
        return {"nginx": "(no running nginx task on this node)"}
    logs = subprocess.run(
        ["docker", "logs", *which, nginx[0]], text=True, capture_output=True, timeout=LOGS_TIMEOUT_S
    )
    # Every node's app tasks (the exited ones too): a request is logged where its task ran.
    app = ""
    for env in swarmnodes.engines().values():
        for cid in service_containers("app", env):
            app += subprocess.run(
                ["docker", "logs", *which, cid], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=LOGS_TIMEOUT_S,
            ).stdout  # fmt: skip
    return {
        "nginx access": logs.stdout,
        "nginx error": logs.stderr,
        "app": app or "(no app task)",
    }
