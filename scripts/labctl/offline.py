"""`make offline-images`: run the compose stack on an engine that cannot pull (no registry).

Builds, with debootstrap, local stand-ins for the public images, on the same Debian release
(trixie) and Python minor (3.13), and downloads a wheelhouse on the host (pip inside a container
may be unable to verify PyPI's TLS; the host's pip can):

  proxylab/python-standin:3.13-slim-trixie   for python:3.13-slim-trixie (Debian's python3 + venv)
  proxylab/nginx-standin:trixie              for nginx:1.30-trixie (Debian's nginx + openssl, user nginx)
  proxylab/redis-standin:trixie              for redis:8-trixie (Debian's redis-server + redis-cli)
  services/app/wheelhouse/*.whl              requirements.txt for CPython 3.13, manylinux

then writes .lab/offline-images.env, which `make up` reads (LAB_PYTHON_IMAGE, LAB_NGINX_IMAGE,
LAB_REDIS_IMAGE, LAB_WHEELHOUSE). Nothing else changes: without that file compose.yaml uses the
public images.
Needs root (debootstrap) and a Debian mirror (LAB_DEBIAN_MIRROR, default: debootstrap's own).
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import labsettings

from . import compose, paths
from .venv import ensure_venv

SUITE = "trixie"
PYTHON_MINOR = "3.13"
WHEELHOUSE = paths.APP_DIR / "wheelhouse"
WHEEL_STAMP = WHEELHOUSE / ".requirements.sha256"
# pip downloads here first; the wheelhouse is replaced only once the download is complete.
WHEEL_DOWNLOAD = WHEELHOUSE / ".download"
# trixie has glibc 2.41: every manylinux_2_X wheel with X <= 41 runs there.
GLIBC_MINOR = 41
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Trimmed from the rootfs before import: not needed at run time, like the slim images.
TRIM = (
    "var/cache/apt/archives",
    "var/cache/apt/pkgcache.bin",
    "var/cache/apt/srcpkgcache.bin",
    "var/lib/apt/lists",
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
)


@dataclass(frozen=True)
class StandIn:
    name: str  # the image built here
    replaces: str  # the public image it stands in for
    packages: tuple[str, ...]
    setup: str  # shell, run chrooted in the rootfs after debootstrap
    changes: tuple[str, ...]  # for `docker import --change` (no STOPSIGNAL there: compose.yaml sets it)


STANDINS = (
    StandIn(
        name=f"proxylab/python-standin:{PYTHON_MINOR}-slim-{SUITE}",
        replaces=f"python:{PYTHON_MINOR}-slim-{SUITE}",
        packages=("python3", "python3-venv", "ca-certificates"),
        # The official image answers to `python` as well as `python3`.
        setup="ln -sf /usr/bin/python3 /usr/local/bin/python",
        changes=("ENV LANG=C.UTF-8", f"ENV PATH={HOST_PATH}", 'CMD ["python3"]'),
    ),
    StandIn(
        name=f"proxylab/nginx-standin:{SUITE}",
        replaces=f"nginx:1.30-{SUITE}",
        packages=("nginx", "openssl", "ca-certificates"),
        # The official image's worker user: uid/gid 101, no login.
        setup=(
            "groupadd --system --gid 101 nginx && "
            "useradd --system --gid nginx --no-create-home --home-dir /nonexistent "
            "--comment 'nginx user' --shell /bin/false --uid 101 nginx"
        ),
        changes=(
            f"ENV PATH={HOST_PATH}",
            "EXPOSE 80",
            'CMD ["nginx", "-g", "daemon off;"]',
        ),
    ),
    StandIn(
        name=f"proxylab/redis-standin:{SUITE}",
        replaces=f"redis:8-{SUITE}",
        packages=("redis-server",),
        # Debian's package makes the user redis and its home; the official image runs as redis too.
        setup="test -d /var/lib/redis && id redis >/dev/null",
        changes=(
            f"ENV PATH={HOST_PATH}",
            "WORKDIR /var/lib/redis",
            "USER redis",
            "EXPOSE 6379",
            'CMD ["redis-server"]',
        ),
    ),
)
PYTHON, NGINX, REDIS = STANDINS
# The swarm's nodes (LAB_SWARM_NODES > 1, scripts/labctl/swarmnodes.py) and their registry: one
# image, Debian's dockerd, GlusterFS (the uploads' shared volume) and docker-registry. Built here
# beside the stand-ins when LAB_SWARM_NODES > 1 (CI: its debootstrap overlaps theirs), else by
# swarm-up when missing.
SWARM_NODE = StandIn(
    name=f"proxylab/swarm-node:{SUITE}",
    replaces="docker:dind",
    packages=(
        "docker.io",
        "iptables",
        "ca-certificates",
        "procps",
        "glusterfs-server",
        "glusterfs-client",
        "docker-registry",
    ),
    setup="command -v dockerd && command -v glusterd && command -v docker-registry",
    changes=(f"ENV PATH={HOST_PATH}", 'CMD ["dockerd"]'),
)


def standins() -> tuple[StandIn, ...]:
    """What `make offline-images` builds: the stand-ins, and the swarm nodes' image when
    LAB_SWARM_NODES > 1."""
    return (*STANDINS, SWARM_NODE) if labsettings.SWARM_NODES.value() > 1 else STANDINS


def env_file_text() -> str:
    return (
        "# Written by `make offline-images`: local stand-ins for the public base images, so that\n"
        "# `make up` builds and runs with no registry. Delete this file (or LAB_OFFLINE=0) to use\n"
        "# the public images again. Bare compose:\n"
        "#   docker compose --env-file .lab/offline-images.env up --build\n"
        "COMPOSE_PROJECT_NAME=proxylab\n"
        f"LAB_PYTHON_IMAGE={PYTHON.name}\n"
        f"LAB_NGINX_IMAGE={NGINX.name}\n"
        f"LAB_REDIS_IMAGE={REDIS.name}\n"
        "LAB_WHEELHOUSE=wheelhouse\n"
    )


def _requirements_digest() -> str:
    return hashlib.sha256((paths.APP_DIR / "requirements.txt").read_bytes()).hexdigest()


def wheelhouse_current() -> bool:
    return (
        WHEEL_STAMP.is_file()
        and WHEEL_STAMP.read_text().strip() == _requirements_digest()
        and any(WHEELHOUSE.glob("*.whl"))
    )


def wheel_platforms() -> list[str]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine())
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(GLIBC_MINOR, 16, -1)]
    return [*tags, f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]


def download_wheelhouse() -> subprocess.Popen[str]:
    """pip download on the host, for the image's interpreter: CPython 3.13, manylinux, wheels only."""
    ensure_venv()
    shutil.rmtree(WHEEL_DOWNLOAD, ignore_errors=True)
    command = [
        str(paths.VENV_PYTHON), "-m", "pip", "download", "--disable-pip-version-check", "-q",
        "-r", str(paths.APP_DIR / "requirements.txt"), "-d", str(WHEEL_DOWNLOAD),
        "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_MINOR,
    ]  # fmt: skip
    for tag in wheel_platforms():
        command += ["--platform", tag]
    return subprocess.Popen(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def debootstrap(standin: StandIn, rootfs: Path, log: Path) -> subprocess.Popen[bytes]:
    # Without a mirror argument debootstrap uses Debian's default one; LAB_DEBIAN_MIRROR overrides it.
    mirror = labsettings.DEBIAN_MIRROR.value()
    command = [
        "debootstrap", "--variant=minbase", f"--include={','.join(standin.packages)}",
        SUITE, str(rootfs), *([mirror] if mirror else []),
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def import_rootfs(standin: StandIn, rootfs: Path) -> None:
    subprocess.run(["chroot", str(rootfs), "sh", "-c", standin.setup], check=True)
    for relative in TRIM:
        target = rootfs / relative
        if target.is_dir() and not target.is_symlink():
            for child in target.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        elif target.exists():
            target.unlink()
    changes = [
        *standin.changes,
        f'LABEL org.opencontainers.image.description="proxylab stand-in for {standin.replaces}"',
    ]
    command = ["docker", "import"]
    for change in changes:
        command += ["--change", change]
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run([*command, "-", standin.name], stdin=tar.stdout, capture_output=True, text=True)
    assert tar.stdout is not None
    tar.stdout.close()
    if tar.wait() != 0 or imported.returncode != 0:
        raise SystemExit(f"lab: importing {standin.name} failed: {imported.stderr.strip()}")


def build_standins(todo: Sequence[StandIn], started: float) -> None:
    """Each of ``todo`` debootstrapped into /var/tmp and imported as its image. The debootstraps
    run side by side (downloads, then dpkg unpacking: one core each at most), each imported as
    soon as it is done; nothing keeps running or is left behind when one fails."""
    paths.LOGS.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="proxylab-standins-", dir="/var/tmp"))
    running: dict[StandIn, tuple[subprocess.Popen[bytes], Path]] = {}
    try:
        for standin in todo:
            log = paths.LOGS / f"debootstrap-{standin.name.split('/')[1].split(':')[0]}.log"
            print(
                f"lab: debootstrap {SUITE} for {standin.name} (stands in for {standin.replaces}; "
                f"log {log.relative_to(paths.ROOT)})",
                flush=True,
            )
            running[standin] = (debootstrap(standin, work / standin.name.replace("/", "_"), log), log)
        for standin, (process, log) in running.items():
            rootfs = work / standin.name.replace("/", "_")
            if process.wait() != 0:
                # A mirror hiccup is the usual cause: one more try, alone, before giving up.
                print(f"lab: debootstrap for {standin.name} failed, retrying once", flush=True)
                shutil.rmtree(rootfs, ignore_errors=True)
                if debootstrap(standin, rootfs, log).wait() != 0:
                    tail = log.read_text(errors="replace").splitlines()[-15:]
                    raise SystemExit(f"lab: debootstrap for {standin.name} failed:\n  " + "\n  ".join(tail))
            import_rootfs(standin, rootfs)
            # The rootfs is not needed once imported: free the disk while the others finish.
            shutil.rmtree(rootfs, ignore_errors=True)
            print(f"lab: imported {standin.name} ({time.monotonic() - started:.0f}s)", flush=True)
    except BaseException:
        # Nothing keeps writing into the directories about to be removed.
        for process, _ in running.values():
            if process.poll() is None:
                process.terminate()
                process.wait()
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verify() -> None:
    """The stand-ins must match what they replace: Python minor, nginx + openssl + user nginx,
    redis-server + redis-cli (the healthcheck) + user redis."""
    checks = {
        PYTHON.name: [
            "python3", "-c",
            f"import sys, venv, ensurepip; assert sys.version.startswith('{PYTHON_MINOR}.'), sys.version; "
            "print('python', sys.version.split()[0])",
        ],
        NGINX.name: ["sh", "-c", "nginx -v 2>&1 && openssl version && id nginx"],
        REDIS.name: ["sh", "-c", "redis-server --version && redis-cli --version && id"],
    }  # fmt: skip
    for image, check in checks.items():
        result = subprocess.run(
            ["docker", "run", "--rm", "--network", "none", image, *check], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise SystemExit(f"lab: stand-in {image} is not usable: {result.stdout}{result.stderr}")
        print(f"lab:   {image}: " + " | ".join(result.stdout.split("\n")).strip(" |"))


def build(force: bool = False) -> int:
    compose.require_engine()
    started = time.monotonic()
    wanted = standins()
    todo = [s for s in wanted if force or not compose.image_exists(s.name)]
    if todo:
        if os.geteuid() != 0:
            raise SystemExit("lab: debootstrap needs root: `sudo make offline-images`")
        if not shutil.which("debootstrap"):
            raise SystemExit(
                "lab: debootstrap is missing: `make setup-docker` installs it (Debian package debootstrap)"
            )

    wheels = None
    if force or not wheelhouse_current():
        print(
            "lab: downloading the wheelhouse (CPython 3.13, manylinux) into services/app/wheelhouse/",
            flush=True,
        )
        wheels = download_wheelhouse()

    try:
        build_standins(todo, started)
    except BaseException:
        if wheels is not None and wheels.poll() is None:
            wheels.terminate()
            wheels.wait()
        shutil.rmtree(WHEEL_DOWNLOAD, ignore_errors=True)
        raise
    for standin in wanted:
        if standin not in todo:
            print(f"lab: {standin.name} already built (--force rebuilds it)")

    if wheels is not None:
        output, _ = wheels.communicate()
        if wheels.returncode != 0:
            shutil.rmtree(WHEEL_DOWNLOAD, ignore_errors=True)
            raise SystemExit(f"lab: pip download failed:\n{output}")
        for old in WHEELHOUSE.glob("*.whl"):
            old.unlink()
        for new in WHEEL_DOWNLOAD.glob("*.whl"):
            new.rename(WHEELHOUSE / new.name)
        shutil.rmtree(WHEEL_DOWNLOAD, ignore_errors=True)
        WHEEL_STAMP.write_text(_requirements_digest() + "\n")
    count = len(list(WHEELHOUSE.glob("*.whl")))
    print(f"lab: wheelhouse: {count} wheels in services/app/wheelhouse/")

    verify()
    paths.LAB.mkdir(parents=True, exist_ok=True)
    compose.OFFLINE_ENV.write_text(env_file_text())
    print(
        f"lab: offline images ready in {time.monotonic() - started:.0f}s; "
        f"{compose.OFFLINE_ENV.relative_to(paths.ROOT)} makes `make up` use them (LAB_OFFLINE=0 to ignore)",
        flush=True,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(build("--force" in sys.argv))
