"""Several Swarm nodes on this one host (`LAB_SWARM_NODES=3 make swarm-up`): Docker engines, each
in a container of the host's engine (docker-in-docker), one manager and the others workers,
joined over a network of their own, pulling every image from a real registry they trust.

- One image for the nodes and the registry, a stand-in of `make offline-images` (debootstrap of
  Debian trixie, `docker import`): Debian's docker.io, glusterfs (the uploads' shared volume) and
  docker-registry. `LAB_SWARM_NODES=3 make offline-images` builds it beside the others; swarm-up
  builds it when missing.
- Each node runs privileged (dockerd makes namespaces, cgroups, iptables rules, overlay mounts)
  with its /var/lib/docker on a volume of the host's engine (overlay2 refuses to stack on the
  container's own overlay root), labelled com.proxylab.swarm-node=<n>, hostname node<n>, and the
  checkout bind-mounted read-only at its own path, so the stack's bind mounts (nginx/, scripts/)
  resolve on every node. Its engine's socket is in .lab/swarm/node<n>/docker.sock.
- Node 1 is the manager: nginx and redis are placed there (compose.swarm-nodes.yaml); its
  container publishes the lab's ports on 127.0.0.1 of the host, where nginx's host-mode ports
  are. Every labctl call of the swarm module then talks to the manager (DOCKER_HOST).
- The registry (`registry:5000` on the nodes' network) serves TLS with a certificate from the
  lab's CA; each node trusts it as it would a real one, by /etc/docker/certs.d/registry:5000/ca.crt.
  The manager loads the images the host built (`docker save | docker load`) and pushes them;
  the nodes pull them by digest like any swarm.

`swarm-down` removes the nodes, the registry, their volumes and network, found by their label
(com.proxylab.swarm=<stack>), so it also cleans up after a swarm-up that failed half-way. The
host engine's own swarm state is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import labsettings

from . import compose, offline, paths, procs

OUT = paths.LAB / "swarm"
# Written once the nodes have joined: what DOCKER_HOST reaches the manager, and every node's.
STATE = OUT / "nodes.json"
REGISTRY_HOST = "registry:5000"
LABEL = "com.proxylab.swarm"
NODE_LABEL = "com.proxylab.swarm-node"
OVERLAY = paths.ROOT / "compose.swarm-nodes.yaml"
SHARED_OVERLAY = paths.ROOT / "compose.swarm-shared.yaml"
ENGINE_TIMEOUT_S = 60
# The uploads' shared volume: GlusterFS, one brick per node (a volume of the host's engine, like
# /var/lib/docker), replica 3, mounted with its FUSE client at SHARED_UPLOADS on every node, which
# compose.swarm-nodes.yaml binds into the app tasks and nginx.
GLUSTER_VOLUME = "lab-uploads"
BRICK_ROOT = "/bricks"
SHARED_UPLOADS = "/mnt/lab-uploads"
# The app image's user (services/app/Dockerfile): it owns the uploads directory.
APP_UID_GID = "10001:10001"
GLUSTER_TIMEOUT_S = 60
# What --privileged gives, less CAP_SYS_RESOURCE, which this host's engine does not hold itself
# (its bounding set lacks it: --privileged fails with "unable to apply caps: operation not
# permitted"): every other capability, no seccomp or AppArmor profile, /proc and /sys unmasked,
# every device allowed (the inner containers' mknod), FUSE for GlusterFS's client.
PRIVILEGES = (
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule", "a *:* rwm", "--device", "/dev/fuse",
)  # fmt: skip
# glusterd (daemonised) then dockerd, in the foreground.
# Unprivileged, Docker mounts /sys and the cgroup hierarchies read-only: dockerd must write
# there (its containers' cgroups), so they are mounted read-write again first.
NODE_START = (
    "mount -o remount,rw /sys && glusterd && "
    "for d in /sys/fs/cgroup /sys/fs/cgroup/*; do mount -o remount,bind,rw $d; done && "
    "exec dockerd -H unix:///var/run/docker.sock -H unix:///run/lab/docker.sock --storage-driver overlay2"
)
REGISTRY_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: /var/lib/docker-registry
http:
  addr: :5000
  tls:
    certificate: /certs/registry.pem
    key: /certs/registry-key.pem
"""


def wanted(env: Mapping[str, str] | None = None) -> int:
    return labsettings.SWARM_NODES.value(env)


def overlays(env: Mapping[str, str]) -> tuple[Path, ...]:
    """What goes over compose.swarm.yaml for LAB_SWARM_NODES (nothing on one node)."""
    if wanted(env) == 1:
        return ()
    return (OVERLAY, SHARED_OVERLAY) if labsettings.SWARM_SHARED_UPLOADS.value(env) else (OVERLAY,)


def host_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (the process's) without DOCKER_HOST: the host's own engine."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k != "DOCKER_HOST"}


def host_docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """docker on the host's engine (never a node's), output captured; SystemExit with docker's
    message when it fails and ``check``."""
    return _docker(["docker", *args], check)


def node_docker(node: int, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """docker on node ``node``'s engine."""
    return _docker(["docker", "-H", socket_url(node), *args], check)


def _docker(command: list[str], check: bool) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, env=host_env(), text=True, capture_output=True)
    if check and result.returncode != 0:
        raise SystemExit(f"lab: {' '.join(command[:6])} ... failed: {result.stderr.strip()}")
    return result


def stack_name() -> str:
    """`<compose project>-swarm`: its networks and volume never share a name with the compose
    stack's, whatever else runs; every node, volume and network of the nodes starts with it."""
    return f"{compose.project()}-swarm"


def network_name() -> str:
    """The nodes' own network on the host's engine (the registry is on it too)."""
    return f"{stack_name()}-nodes"


def container(node: int) -> str:
    return f"{stack_name()}-node{node}"


def socket_url(node: int) -> str:
    return f"unix://{OUT / f'node{node}' / 'docker.sock'}"


def read_state() -> dict | None:
    return json.loads(STATE.read_text()) if STATE.is_file() else None


def use_manager() -> None:
    """Point every docker command of this process (and its children) at the manager, when the
    nodes are up; a no-op for the one-node swarm on the host's engine."""
    if (state := read_state()) is not None:
        os.environ["DOCKER_HOST"] = state["manager"]


def running() -> bool:
    return read_state() is not None


# -- images ---------------------------------------------------------------------------------------


def build_images() -> None:
    """The nodes' (and registry's) image, when missing: `LAB_SWARM_NODES=3 make offline-images`
    builds it beside the stand-ins (CI), else it is debootstrapped here (about 2.5 minutes)."""
    if host_docker("image", "inspect", offline.SWARM_NODE.name, check=False).returncode != 0:
        offline.build_standins([offline.SWARM_NODE], time.monotonic())


def registry_name(image: str) -> str:
    """proxylab/nginx-standin:trixie -> registry:5000/proxylab/nginx-standin:trixie"""
    return image if image.startswith(f"{REGISTRY_HOST}/") else f"{REGISTRY_HOST}/{image}"


def load(images: list[str]) -> None:
    """The host's ``images`` loaded into the manager's engine (`docker save | docker load`)."""
    save = subprocess.Popen(["docker", "save", *images], env=host_env(), stdout=subprocess.PIPE)
    loaded = subprocess.run(
        ["docker", "-H", socket_url(1), "load", "-q"],
        env=host_env(),
        stdin=save.stdout,
        capture_output=True,
        text=True,
    )
    assert save.stdout is not None
    save.stdout.close()
    if save.wait() != 0 or loaded.returncode != 0:
        raise SystemExit(f"lab: loading {images} into the manager failed: {loaded.stderr.strip()}")


def publish(images: list[str]) -> None:
    """Load the host's ``images`` into the manager and push them to the registry from there, by
    their registry names, verifying its certificate."""
    load(images)
    for image in images:
        target = registry_name(image)
        if target != image:
            node_docker(1, "tag", image, target)
        pushed = node_docker(1, "push", target, check=False)
        if pushed.returncode != 0:
            raise SystemExit(f"lab: docker push {target} (on the manager) failed: {pushed.stderr.strip()}")


# -- the nodes ------------------------------------------------------------------------------------


def registry_cert() -> Path:
    """A server certificate for `registry` from the lab's CA (.lab/certs/ca-key.pem)."""
    subprocess.run(["sh", str(paths.SCRIPTS / "certs.sh"), str(paths.CERTS)], check=True, capture_output=True)
    out = OUT / "registry"
    out.mkdir(parents=True, exist_ok=True)
    if not (out / "registry.pem").is_file():
        key, csr, ext = out / "registry-key.pem", out / "registry.csr", out / "registry.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:registry\n"
        )
        openssl = ["openssl"]
        subprocess.run(
            [*openssl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)], check=True
        )
        subprocess.run(
            [*openssl, "req", "-new", "-key", str(key), "-subj", "/O=proxylab/CN=registry", "-out", str(csr)],
            check=True,
        )
        subprocess.run(
            [
                *openssl, "x509", "-req", "-in", str(csr), "-CA", str(paths.CA),
                "-CAkey", str(paths.CERTS / "ca-key.pem"), "-CAcreateserial", "-days", "30", "-sha256",
                "-extfile", str(ext), "-out", str(out / "registry.pem"),
            ],
            check=True, capture_output=True,
        )  # fmt: skip
        key.chmod(0o644)  # read by the registry's own user inside its container
    (out / "config.yml").write_text(REGISTRY_CONFIG)
    return out


def labels(node: int | None = None) -> list[str]:
    found = ["--label", f"{LABEL}={stack_name()}"]
    return found + (["--label", f"{NODE_LABEL}={node}"] if node is not None else [])


def start_registry(network: str) -> None:
    certs = registry_cert()
    host_docker(
        "run", "-d", "--name", f"{stack_name()}-registry", "--hostname", "registry", "--network", network,
        "--network-alias", "registry", *labels(),
        "-v", f"{stack_name()}-registry-data:/var/lib/docker-registry",
        "--mount", f"type=bind,src={certs},dst=/certs,readonly",
        offline.SWARM_NODE.name, "docker-registry", "serve", "/certs/config.yml",
    )  # fmt: skip


def start_node(node: int, network: str, ports: list[str]) -> None:
    (OUT / f"node{node}").mkdir(parents=True, exist_ok=True)
    published = (
        [arg for port in ports for arg in ("-p", f"127.0.0.1:{port.split('/')[0]}:{port}")]
        if node == 1
        else []
    )
    host_docker(
        "run", "-d", "--name", container(node), "--hostname", f"node{node}", "--network-alias", f"node{node}",
        *PRIVILEGES,
        "--network", network, *labels(node), *published,
        "-v", f"{stack_name()}-node{node}-docker:/var/lib/docker",
        "-v", f"{stack_name()}-node{node}-brick:{BRICK_ROOT}",
        "--mount", f"type=bind,src={paths.ROOT},dst={paths.ROOT},readonly",
        "--mount", f"type=bind,src={OUT / f'node{node}'},dst=/run/lab",
        "--mount", f"type=bind,src={paths.CA},dst=/etc/docker/certs.d/{REGISTRY_HOST}/ca.crt,readonly",
        offline.SWARM_NODE.name, "sh", "-c", NODE_START,
    )  # fmt: skip


def wait_engine(node: int) -> None:
    end = time.monotonic() + ENGINE_TIMEOUT_S
    while time.monotonic() < end:
        if node_docker(node, "info", "--format", "{{.ID}}", check=False).returncode == 0:
            return
        time.sleep(0.5)
    logs = host_docker("logs", "--tail", "20", container(node), check=False)
    raise SystemExit(f"lab: node {node}'s dockerd did not answer in {ENGINE_TIMEOUT_S}s:\n{logs.stderr}")


def up(count: int, env: Mapping[str, str], images: list[str]) -> None:
    """The nodes, joined; the registry, holding ``images`` (the host's stand-ins)."""
    started = time.monotonic()
    build_images()
    network = network_name()
    host_docker("network", "create", *labels(), network)
    start_registry(network)
    https, http = labsettings.HTTPS_PORT.value(env), labsettings.HTTP_PORT.value(env)
    for node in range(1, count + 1):
        start_node(node, network, [str(https), str(http), f"{https}/udp"])
    for node in range(1, count + 1):
        wait_engine(node)
    print(
        f"lab: {count} Docker engines up ({time.monotonic() - started:.0f}s); swarm init on node1", flush=True
    )
    node_docker(1, "swarm", "init", "--advertise-addr", "eth0")
    token = node_docker(1, "swarm", "join-token", "-q", "worker").stdout.strip()
    address = host_docker(
        "inspect",
        "--format",
        f"{{{{(index .NetworkSettings.Networks {json.dumps(network)}).IPAddress}}}}",
        container(1),
    ).stdout.strip()
    for node in range(2, count + 1):
        node_docker(node, "swarm", "join", "--token", token, f"{address}:2377")
    for node in range(1, count + 1):
        node_docker(1, "node", "update", "--label-add", f"{NODE_LABEL}={node}", f"node{node}")
    shared_uploads(count)
    STATE.write_text(json.dumps({"manager": socket_url(1), "nodes": count}) + "\n")
    print(f"lab: swarm of {count} nodes; pushing {len(images)} images to {REGISTRY_HOST}", flush=True)
    publish(images)
    print(f"lab: nodes and registry ready in {time.monotonic() - started:.0f}s", flush=True)


def on_node(node: int, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A command in node ``node``'s container (its gluster CLI, a mount)."""
    return host_docker("exec", container(node), *command, check=check)


def shared_uploads(count: int) -> None:
    """The GlusterFS volume every node mounts at SHARED_UPLOADS: the peers probed from node 1,
    a replica-``count`` volume of one brick per node, then the FUSE mount on each node."""
    started = time.monotonic()
    gluster = ("gluster", "--mode=script")
    for node in range(2, count + 1):
        on_node(1, *gluster, "peer", "probe", f"node{node}")
    bricks = [f"node{node}:{BRICK_ROOT}/{GLUSTER_VOLUME}" for node in range(1, count + 1)]
    end = time.monotonic() + GLUSTER_TIMEOUT_S
    # A peer just probed is not "in cluster" at once: volume create says so, and is asked again.
    create = (*gluster, "volume", "create", GLUSTER_VOLUME, "replica", str(count), *bricks, "force")
    while (made := on_node(1, *create, check=False)).returncode != 0:
        if time.monotonic() > end:
            raise SystemExit(f"lab: gluster volume create failed: {made.stdout}{made.stderr}".strip())
        time.sleep(1)
    on_node(1, *gluster, "volume", "start", GLUSTER_VOLUME)
    for node in range(1, count + 1):
        mount_shared(node)
    on_node(1, "chown", APP_UID_GID, SHARED_UPLOADS)
    print(
        f"lab: GlusterFS volume {GLUSTER_VOLUME} (replica {count}) mounted at {SHARED_UPLOADS} on every node "
        f"({time.monotonic() - started:.0f}s)",
        flush=True,
    )


def mount_shared(node: int) -> None:
    """The GlusterFS client mount (FUSE) on node ``node``, through its own glusterd."""
    on_node(node, "mkdir", "-p", SHARED_UPLOADS)
    on_node(node, "mount", "-t", "glusterfs", f"node{node}:/{GLUSTER_VOLUME}", SHARED_UPLOADS)


def host_pid(node: int, pid: int) -> int:
    """The host's PID of the process that node ``node``'s engine knows as ``pid`` (its State.Pid,
    in the node container's PID namespace): a process under the node's container whose NSpid
    (its PID in each namespace, the host's first) has ``pid`` second."""
    root = int(host_docker("inspect", "--format", "{{.State.Pid}}", container(node)).stdout)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        ids = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
        if len(ids) > 1 and int(ids[1]) == pid and _descends(int(entry.name), root):
            return int(entry.name)
    raise SystemExit(f"lab: no process of node{node}'s container is its pid {pid}")


def _descends(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int(procs.stat_fields(pid)[1])
        except (OSError, IndexError, ValueError):
            return False
    return False


def engines() -> dict[str, dict[str, str]]:
    """The environment of a docker command on each node's engine, by node name (one node: this
    process's engine, named "")."""
    if (state := read_state()) is None:
        return {"": dict(os.environ)}
    return {f"node{n}": {**host_env(), "DOCKER_HOST": socket_url(n)} for n in range(1, state["nodes"] + 1)}


def stop(node: int) -> None:
    """`docker stop` of node ``node``'s container: the machine lost, as its peers see it."""
    host_docker("stop", container(node))


def restart(node: int) -> None:
    """The stopped node's container started again: its dockerd rejoins the swarm by itself (its
    state is on its volume), glusterd heals the brick; the FUSE mount is made again. Returns once
    the manager sees the node ready."""
    host_docker("start", container(node))
    wait_engine(node)
    mount_shared(node)
    end = time.monotonic() + ENGINE_TIMEOUT_S
    while (
        node_docker(1, "node", "inspect", "--format", "{{.Status.State}}", f"node{node}").stdout.strip()
        != "ready"
    ):
        if time.monotonic() > end:
            raise SystemExit(f"lab: node{node} not ready again in the swarm after {ENGINE_TIMEOUT_S}s")
        time.sleep(0.5)


def down() -> None:
    """Every node, the registry, their volumes and network: by label, whatever state they are in."""
    os.environ.pop("DOCKER_HOST", None)
    label = f"label={LABEL}={stack_name()}"
    found = host_docker("ps", "-aq", "--filter", label, check=False).stdout.split()
    if found:
        host_docker("rm", "-f", "-v", *found, check=False)
    ours = (f"{stack_name()}-node", f"{stack_name()}-registry-data")
    volumes = [
        name
        for name in host_docker("volume", "ls", "-q", check=False).stdout.split()
        if name.startswith(ours)
    ]
    if volumes:
        host_docker("volume", "rm", "-f", *volumes, check=False)
    networks = host_docker("network", "ls", "-q", "--filter", label, check=False).stdout.split()
    if networks:
        host_docker("network", "rm", *networks, check=False)
    STATE.unlink(missing_ok=True)
    if found:
        print(f"lab: removed {len(found)} node and registry containers, their volumes and network")
