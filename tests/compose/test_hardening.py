"""The stack hardened to the CIS Docker Benchmark (sections 4 and 5): what `docker inspect` says of
every container, what each of its processes holds (from /proc on the host), and what the
hardening must not cost: uploads in the volume, certificates written once. Reload, `make watch`,
`make deploy` and the integration suite run on this same stack (test_reload, test_watch,
test_deploy; `make test-compose`)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import capacity
import labsettings
from labctl import compose, paths

NO_NEW_PRIVILEGES = "no-new-privileges:true"


@dataclass(frozen=True)
class Expected:
    user: str  # Config.User: "" only for the one-shot that starts as root to hand over
    writable: frozenset[str]  # the mounts it may write; its root filesystem is read-only
    cpus: float
    memory: int  # bytes
    pids: int
    cap_add: frozenset[str] = frozenset()
    restart: tuple[str, int] = ("on-failure", 5)


def expected(env: dict[str, str]) -> dict[str, Expected]:
    """What compose.yaml gives each service, with the limits the stack was started with."""
    env = compose.compose_env(env)

    def limits(prefix: str) -> dict[str, float | int]:
        return {
            "cpus": labsettings.SETTINGS[f"LAB_{prefix}_CPUS"].value(env),
            "memory": labsettings.SETTINGS[f"LAB_{prefix}_MEMORY"].value(env),
            "pids": labsettings.SETTINGS[f"LAB_{prefix}_PIDS"].value(env),
        }

    return {
        "certs": Expected(
            user="",
            writable=frozenset({"/lab/state", "/lab/tls", "/lab/ca", "/tmp"}),
            cpus=1.0,
            memory=64 * capacity.MIB,
            pids=16,
            cap_add=frozenset({"CAP_CHOWN", "CAP_SETUID", "CAP_SETGID"}),
            restart=("", 0),
        ),
        "app": Expected(
            user="app", writable=frozenset({labsettings.UPLOAD_DIR.default, "/tmp"}), **limits("APP")
        ),
        "redis": Expected(user="redis", writable=frozenset(), **limits("REDIS")),
        "nginx": Expected(user="nginx", writable=frozenset({"/tmp", "/var/tmp"}), **limits("NGINX")),
    }


def service_containers(stack) -> dict[str, list[str]]:
    """Every container of each service, the exited one-shot included."""
    found = {service: compose.containers(service, stack.project) for service in ("app", "redis", "nginx")}
    certs = compose.container_id("certs", stack.project)
    assert certs, "the certs one-shot's container is gone: `make up` leaves it, exited"
    return {"certs": [certs], **found}


def image_volumes(info: dict) -> set[str]:
    """VOLUMEs the image declares (the official redis image's /data): Docker mounts them anyway."""
    image = compose.docker("image", "inspect", info["Image"], "--format", "{{json .Config.Volumes}}")
    return set(json.loads(image.stdout) or {})


def test_every_container_is_read_only_unprivileged_and_limited(stack):
    wanted = expected(stack.env)
    for service, ids in service_containers(stack).items():
        assert ids, f"no {service} container"
        want = wanted[service]
        for cid in ids:
            info = compose.inspect(cid)
            host, name = info["HostConfig"], info["Name"].lstrip("/")
            assert host["ReadonlyRootfs"] is True, f"{name}: root filesystem writable (CIS 5.13)"
            assert NO_NEW_PRIVILEGES in (host["SecurityOpt"] or []), (
                f"{name}: {host['SecurityOpt']} (CIS 5.26)"
            )
            assert host["CapDrop"] == ["ALL"], f"{name}: cap_drop {host['CapDrop']}, want [ALL]"
            assert set(host["CapAdd"] or []) == want.cap_add, f"{name}: cap_add {host['CapAdd']}"
            assert host["Privileged"] is False, name
            assert info["Config"]["User"] == want.user, f"{name}: user {info['Config']['User']!r} (CIS 4.1)"
            limits = (host["NanoCpus"] / 1e9, host["Memory"], host["PidsLimit"])
            wanted_limits = (want.cpus, want.memory, want.pids)
            assert limits == wanted_limits, (
                f"{name}: cpus, memory, pids {limits}; want {wanted_limits} (CIS 5.11, 5.12, 5.29)"
            )
            policy = host["RestartPolicy"]
            assert (policy["Name"], policy["MaximumRetryCount"]) == want.restart, f"{name}: restart {policy}"
            writable = {m["Destination"] for m in info["Mounts"] if m["RW"]} - image_volumes(info)
            assert writable == want.writable, f"{name}: writable mounts {sorted(writable)}"


def process_status(pid: str) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def test_no_process_of_the_stack_runs_as_root_or_holds_a_capability(stack):
    """Every process of every running container, as the host's kernel sees it."""
    checked: dict[str, int] = {}
    for service, ids in service_containers(stack).items():
        if service == "certs":
            continue  # exited: it has no process (its one root moment: test_certs_...)
        for cid in ids:
            for pid in compose.docker("top", cid, "-eo", "pid").stdout.split()[1:]:
                status = process_status(pid)
                what = f"{service} pid {pid} ({status['Name']})"
                assert all(uid != "0" for uid in status["Uid"].split()), (
                    f"{what} runs as uid 0: {status['Uid']}"
                )
                for caps in ("CapEff", "CapPrm", "CapBnd"):
                    assert int(status[caps], 16) == 0, f"{what} holds capabilities {caps}={status[caps]}"
                assert status["NoNewPrivs"] == "1", f"{what}: no_new_privs not set"
                assert status["Seccomp"] == "2", f"{what}: not under Docker's seccomp filter"
                root = [
                    line
                    for line in Path(f"/proc/{pid}/mounts").read_text().splitlines()
                    if line.split()[1] == "/"
                ]
                assert root and "ro" in root[-1].split()[3].split(","), f"{what}: / mounted {root}"
                checked[service] = checked.get(service, 0) + 1
    assert checked.get("app", 0) >= 3 and checked.get("nginx", 0) >= 2 and checked.get("redis", 0) >= 1, (
        checked
    )
    print(f"processes checked: {checked}")


def certs_state() -> dict[str, tuple[int, int, int, str]]:
    """(uid, mode, mtime_ns, sha256) of each file in .lab/certs."""
    return {
        path.name: (
            path.stat().st_uid,
            path.stat().st_mode & 0o777,
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in sorted(paths.CERTS.glob("*.pem"))
    }


def test_certs_are_written_once_by_the_checkout_owner_and_nginx_reads_its_own_copy(stack):
    certs = compose.container_id("certs", stack.project)
    assert compose.inspect(certs)["State"]["ExitCode"] == 0, compose.log_tail(20, stack.project)
    owner = (paths.SCRIPTS / "certs.sh").stat().st_uid
    before = certs_state()
    assert {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"} <= set(before), sorted(before)
    for name, (uid, mode, _, _) in before.items():
        assert uid == owner, f".lab/certs/{name} is owned by uid {uid}, not the checkout's owner {owner}"
        assert mode == (0o600 if name.endswith("-key.pem") else 0o644), f".lab/certs/{name}: mode {mode:o}"
    # Run the one-shot again, as every `make up` does: nothing is rewritten.
    again = compose.docker("start", "--attach", certs, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "updated" not in again.stdout and "new CA" not in again.stdout, again.stdout
    assert certs_state() == before, "a second run of the certs one-shot rewrote .lab/certs"
    nginx = stack.container("nginx")
    copy = compose.docker(
        "exec", nginx, "stat", "-c", "%n %U %a", "/lab/tls/server-key.pem", "/lab/tls/server.pem"
    )
    assert copy.stdout.split("\n")[:2] == [
        "/lab/tls/server-key.pem nginx 400",
        "/lab/tls/server.pem nginx 444",
    ], copy.stdout


def test_uploads_land_in_the_volume_and_nginx_serves_them_from_it(stack, lab, http):
    name = f"hardening-{uuid.uuid4().hex[:8]}.bin"
    body = os.urandom(256 * 1024)
    created = http.put(f"{lab.url}/upload/{name}", data=body, timeout=30)
    assert created.status_code == 201, created.text
    try:
        volume = f"{stack.project}_uploads"
        for service in ("app", "nginx"):
            mounts = compose.inspect(stack.container(service))["Mounts"]
            at = {m["Destination"]: m for m in mounts}[labsettings.UPLOAD_DIR.default]
            assert (at["Type"], at["Name"]) == ("volume", volume), f"{service}: {at}"
        listed = compose.docker("exec", stack.container("nginx"), "ls", labsettings.UPLOAD_DIR.default).stdout
        assert name in listed.split(), f"{name} is not in the uploads volume: {listed}"
        served = http.get(f"{lab.url}/files/{name}", timeout=30)
        assert served.status_code == 200 and served.content == body, served.status_code
    finally:
        http.delete(f"{lab.url}/files/{name}", timeout=30)


@pytest.mark.parametrize("service", ["nginx", "app", "redis"])
def test_a_write_outside_the_declared_mounts_is_refused(stack, service):
    """The kernel answers EROFS before it looks at permissions: the refusal is the read-only
    root filesystem's, whatever the user."""
    probe = "for d in / /etc /var/cache; do touch $d/.lab-probe 2>&1; done; true"
    out = compose.docker("exec", stack.container(service), "sh", "-c", probe).stdout
    assert out.count("Read-only file system") == 3, f"{service}: {out}"
