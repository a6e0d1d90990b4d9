"""Compose mode: the stack of compose.yaml, through Compose v2 (`docker compose`). `up --wait`
waits for Docker's own health status; then the real HTTPS URL is checked, verified against the
lab CA. Compose v1 (`docker-compose` 1.29, end of life since 2023) is not supported: docs/COMPOSE.md.

Exec, logs and inspection go straight to `docker` with the compose labels: quicker than a Compose
round trip.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import labsettings
from labsettings import read_env_file

from . import catalogue, paths, procs, runstate
from .endpoints import print_ready
from .health import StartFailed, wait_healthy

MODE = "compose"
UP, DOWN = "make up", "make down"

COMPOSE_FILE = paths.ROOT / "compose.yaml"
# What `make offline-images` leaves behind: the stand-in images and wheelhouse for `make up`.
OFFLINE_ENV = paths.LAB / "offline-images.env"
SERVICES = ("certs", "redis", "app", "nginx")
# What the nginx container renders its config from (compose.yaml bind-mounts it): the checkout's.
NGINX_SOURCE = paths.ROOT / "nginx"
# `up --wait`: the app's healthcheck, then nginx's (Docker probes each first after one interval).
UP_TIMEOUT_S = 120
NGINX_CTL = "/lab/scripts/nginx-ctl.sh"  # where compose.yaml mounts scripts/ in the nginx container

SETUP_HINT = "`make setup-docker` installs what is missing (Debian/Ubuntu as root: docker.io, Compose v2)"
ENGINE_HINT = (
    "no Docker engine answers here. Install and start one, then run this again:\n"
    f"  {SETUP_HINT}\n"
    "  elsewhere: Docker Desktop, or Docker Engine with the Compose plugin\n"
    "Without Docker: `make native-up` runs the same stack with the system's nginx."
)


def project() -> str:
    """The compose project: COMPOSE_PROJECT_NAME from the env, else from .env (what bare
    `docker compose` reads too), else proxylab."""
    name = os.environ.get("COMPOSE_PROJECT_NAME", "").strip()
    dotenv = paths.ROOT / ".env"
    if not name and dotenv.is_file():
        name = read_env_file(dotenv).get("COMPOSE_PROJECT_NAME", "")
    return name or "proxylab"


def v2_version() -> str | None:
    """The version of the Compose v2 plugin (`docker compose`), None when there is none."""
    if not shutil.which("docker"):
        return None
    probe = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True)
    version = probe.stdout.strip().lstrip("v")
    return version if probe.returncode == 0 and version.startswith("2.") else None


@functools.cache
def compose_version() -> str:
    """Compose v2's version; exits with what to install when `docker compose` is missing."""
    version = v2_version()
    if version is None:
        v1 = (
            " (`docker-compose` v1 is installed: it is not supported)"
            if shutil.which("docker-compose")
            else ""
        )
        raise SystemExit(f"lab: Compose v2 (`docker compose`) is not installed{v1}.\n  {SETUP_HINT}")
    return version


def require_engine() -> None:
    if not shutil.which("docker"):
        raise SystemExit("lab: the docker CLI is not installed.\n" + ENGINE_HINT)
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise SystemExit("lab: " + ENGINE_HINT)


def image_exists(name: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def offline_settings(quiet: bool = True) -> dict[str, str]:
    """The stand-ins of `make offline-images`, when built here and not overridden by the env.

    LAB_OFFLINE=0 ignores them (use the public images); variables already set in the environment
    win over the file."""
    if not labsettings.OFFLINE.value() or not OFFLINE_ENV.is_file():
        return {}
    values = {k: v for k, v in read_env_file(OFFLINE_ENV).items() if k not in os.environ}
    missing = [v for k, v in values.items() if k.endswith("_IMAGE") and not image_exists(v)]
    if missing:
        if not quiet:
            print(
                f"lab: ignoring {OFFLINE_ENV.relative_to(paths.ROOT)}: image(s) {missing} are gone "
                "(`make offline-images` builds them again)",
                file=sys.stderr,
            )
        return {}
    return values


def scenario_settings(env: dict[str, str]) -> dict[str, str]:
    """The app.env of the scenario LAB_SCENARIO names, for Compose to interpolate as well: how a
    compose-only scenario, still one folder, changes compose.yaml's settings (grace-period-kill's
    LAB_APP_STOP_GRACE_PERIOD). Inside the app container gunicorn.conf.py applies the same file."""
    name = labsettings.SCENARIO.value(env)
    if not name or not (paths.SCENARIOS / name).is_dir():
        return {}
    app_env = catalogue.load(name).app_env
    return read_env_file(app_env) if app_env else {}


def compose_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **offline_settings(), **(extra or {})}
    env.update(scenario_settings(env))
    return env


def run(
    *args: str,
    project_name: str | None = None,
    extra_env: dict[str, str] | None = None,
    overrides: Sequence[Path] = (),
    check: bool = True,
    capture: bool = False,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """One Compose command on compose.yaml (plus any override files) for this checkout's project,
    with compose_env(extra_env), or ``env``: one compose_env() made already."""
    compose_version()  # exits with what to install when Compose v2 is missing
    files = [arg for path in (COMPOSE_FILE, *overrides) for arg in ("-f", str(path))]
    command = ["docker", "compose", "-p", project_name or project(), *files, *args]
    return subprocess.run(
        command,
        cwd=paths.ROOT,
        env=dict(env) if env is not None else compose_env(extra_env),
        check=check,
        text=True,
        capture_output=capture,
        stdin=subprocess.DEVNULL,
    )


def docker(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], check=check, text=True, capture_output=capture)


def volumes_of(name: str, run_docker: Callable[..., subprocess.CompletedProcess[str]] = docker) -> list[str]:
    """The volumes of project or stack ``name`` on the engine (Compose and `docker stack` both name
    them ``<name>_<volume>``)."""
    listed = run_docker("volume", "ls", "--format", "{{.Name}}", check=False)
    return [volume for volume in listed.stdout.split() if volume.startswith(f"{name}_")]


def container_id(service: str, project_name: str | None = None) -> str | None:
    """The (newest) container of a service of the project, running or not."""
    ids = containers(service, project_name, running=False)
    return ids[0] if ids else None


def containers(service: str, project_name: str | None = None, running: bool = True) -> list[str]:
    """Every container Compose made for a service of the project (its replicas), newest first.

    oneoff=False: Compose v2 puts the project and service labels on the image it builds too, so
    any `docker run` of the app image carries them (the tests' address holders); only the
    containers Compose creates for the service say oneoff=False (`compose run` ones say True)."""
    result = docker(
        "ps", "-q", *([] if running else ["-a"]),
        "--filter", f"label=com.docker.compose.project={project_name or project()}",
        "--filter", f"label=com.docker.compose.service={service}",
        "--filter", "label=com.docker.compose.oneoff=False",
        check=False,
    )  # fmt: skip
    return result.stdout.split()


def running_here() -> bool:
    """A running nginx container of this project, started from this checkout (by `make up` or by
    plain `docker compose up`): Compose labels the working directory."""
    if not shutil.which("docker"):
        return False
    result = docker(
        "ps", "-q", "--filter", "status=running",
        "--filter", f"label=com.docker.compose.project={project()}",
        "--filter", f"label=com.docker.compose.project.working_dir={paths.ROOT}",
        "--filter", "label=com.docker.compose.service=nginx",
        check=False,
    )  # fmt: skip
    return result.returncode == 0 and bool(result.stdout.strip())


def nginx_env(project_name: str | None = None) -> dict[str, str]:
    """The environment the nginx container runs with (its ports, scenario, ...), {} if none."""
    cid = container_id("nginx", project_name)
    return container_env(cid) if cid else {}


def container_env(container: str) -> dict[str, str]:
    return dict(item.partition("=")[::2] for item in inspect(container)["Config"]["Env"] or [])


def inspect(container: str) -> dict:
    return json.loads(docker("inspect", container).stdout)[0]


def _state(info: dict) -> str:
    """running / healthy / starting / unhealthy / exited(N) / ..."""
    state = info["State"]
    if state["Status"] != "running":
        return f"{state['Status']}({state.get('ExitCode')})"
    health = state.get("Health")
    return health["Status"] if health else "running"


def _worst(replicas: list[str]) -> str:
    """One state for a service's replicas: the first that failed, else starting until all are up."""
    for state in replicas:
        if state.startswith(("exited", "dead", "unhealthy")) and state != "exited(0)":
            return state
    for state in replicas:
        if state != "healthy":
            return state
    return "healthy"


def states(project_name: str | None = None) -> dict[str, str]:
    """Each service's state; the app's is its replicas' worst (healthy when all of them are)."""
    found = {}
    for service in SERVICES:
        if service == "app":
            replicas = [_state(inspect(cid)) for cid in containers("app", project_name)]
            found[service] = _worst(replicas) if replicas else "missing"
            continue
        cid = container_id(service, project_name)
        found[service] = _state(inspect(cid)) if cid else "missing"
    return found


def up_and_wait(
    project_name: str | None = None, extra_env: dict[str, str] | None = None, overrides: Sequence[Path] = ()
) -> None:
    """`up -d --wait` (Docker's health status of every service), then the HTTPS URL itself,
    verified against the lab CA; RuntimeError naming what failed. The app image is built before
    (up() builds it, quietly; a second project reuses the first one's)."""
    env = compose_env(extra_env)
    result = run(
        "up", "-d", "--no-build", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), "--remove-orphans",
        project_name=project_name, env=env, overrides=overrides, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(
            f"`docker compose up --wait` exited with {result.returncode}: {states(project_name)}"
        )
    wait_healthy(f"https://localhost:{labsettings.HTTPS_PORT.value(env)}/healthz", paths.CA, 15)


def build_app(env: Mapping[str, str], project_name: str | None = None) -> None:
    """`docker compose build app` with ``env`` (a compose_env()), quietly; its output and
    SystemExit when it fails."""
    build = run("build", "app", project_name=project_name, env=env, capture=True, check=False)
    if build.returncode != 0:
        print(build.stdout + build.stderr, file=sys.stderr)
        raise SystemExit(
            "lab: building the app image failed (output above). With no registry: "
            "`make offline-images` first."
        )


def up() -> None:
    if (scenario := labsettings.SCENARIO.value()) and not (paths.SCENARIOS / scenario).is_dir():
        raise SystemExit(f"lab: no scenario named {scenario!r} (see nginx/scenarios/)")
    require_engine()
    offline = offline_settings(quiet=False)
    env = compose_env()
    images = (
        f"python base {labsettings.PYTHON_IMAGE.value(env)}, nginx {labsettings.NGINX_IMAGE.value(env)}, "
        f"redis {labsettings.REDIS_IMAGE.value(env)}"
        + (f", wheels from services/app/{env['LAB_WHEELHOUSE']}/" if env.get("LAB_WHEELHOUSE") else "")
    )
    print(f"lab: compose up (Compose {compose_version()}, project {project()}): {images}")
    if offline:
        where = OFFLINE_ENV.relative_to(paths.ROOT)
        print(f"     (local stand-ins from {where}; LAB_OFFLINE=0 for the public images)", flush=True)
    # Made here, as the user: a bind mount's missing source would be created by Docker, as root.
    paths.CERTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print("lab: building the app image (services/app/Dockerfile)", flush=True)
    build_app(env)
    print(f"lab: app image built in {time.monotonic() - started:.1f}s", flush=True)
    try:
        up_and_wait()
    except RuntimeError as error:
        left = "the containers are left as they are for `make logs`; `make down` removes them"
        raise StartFailed(str(error), left) from None
    runstate.record(MODE, env)
    replicas = labsettings.APP_REPLICAS.value(env)
    apps = "app" if replicas == 1 else f"{replicas} app replicas"
    print_ready(f"compose ({project()}: nginx + {apps}, app not published)", time.monotonic() - started)


def down(volumes: bool = False) -> None:
    require_engine()
    if other := runstate.other_than(MODE):
        print(f"lab: note: the running stack is a {other} one (`make {other}-down` stops it)")
    # The balancer's profile too: `down` leaves a profile's running containers alone otherwise.
    run("--profile", "balancer", "down", "--remove-orphans", *(["--volumes"] if volumes else []))
    runstate.clear(MODE)


def started_env() -> dict[str, str]:
    """LAB_* / GUNICORN_* settings of the running stack, as `make up` passed them to Compose."""
    return {k: v for k, v in runstate.read().items() if k != runstate.MODE_KEY}


def _nginx_ctl(command: str, capture: bool, nginx: str | None = None) -> subprocess.CompletedProcess[str]:
    cid = nginx or container_id("nginx")
    if cid is None:
        raise SystemExit("lab: the compose stack has no nginx container: `make up` first")
    return subprocess.run(
        ["docker", "exec", cid, "sh", NGINX_CTL, command], text=True, capture_output=capture
    )


def reload(nginx: str | None = None) -> int:
    """nginx-ctl.sh reload inside the nginx container (``nginx``: this one, e.g. a swarm task's):
    the bind-mounted nginx/ is rendered and `nginx -t`-ed first, so a broken edit is refused with
    nginx's message and the old config serves. The scenario stays the container's own: switching
    one means the app too (`make up`)."""
    running = (container_env(nginx) if nginx else nginx_env()).get("LAB_SCENARIO", "")
    wanted = labsettings.SCENARIO.value() if labsettings.SCENARIO.is_set() else running
    if wanted != running:
        print(
            f"lab: the compose stack runs config {running or 'baseline'!r}; a reload cannot switch it "
            f"to {wanted or 'baseline'!r}: `LAB_SCENARIO={wanted} make up` recreates nginx and the app",
            file=sys.stderr,
        )
        return 2
    print(f"lab: reloading nginx with config: {running or 'baseline'}", flush=True)
    return _nginx_ctl("reload", capture=False, nginx=nginx).returncode


def nginx_container() -> str | None:
    return container_id("nginx")


def nginx_source() -> Path:
    return NGINX_SOURCE


def process_groups(
    nginx: str | None = None, apps: Sequence[str] | None = None, host_pid: Callable[[int], int] = int
) -> dict[str, list[int]]:
    """The workers of nginx (``nginx``: this container) and of every app replica (``apps``: these
    containers), by their host PIDs: the children of each container's first process. ``host_pid``:
    the host's PID of the engine's State.Pid (another for an engine in a container of its own)."""

    def workers(containers: Sequence[str]) -> list[int]:
        return sorted(
            pid for cid in containers for pid in procs.children(host_pid(inspect(cid)["State"]["Pid"]))
        )

    nginx = nginx or container_id("nginx")
    return {
        "nginx": workers([nginx] if nginx else []),
        "app": workers(containers("app") if apps is None else apps),
    }


def nginx_has_http3(nginx: str | None = None) -> bool:
    """Whether the nginx of the running container (``nginx``: this one) was built with the HTTP/3
    module (`nginx -V`)."""
    cid = nginx or container_id("nginx")
    if cid is None:
        return False
    built = docker("exec", cid, "nginx", "-V", check=False)
    return "--with-http_v3_module" in built.stderr


def dump_config(nginx: str | None = None) -> str:
    result = _nginx_ctl("dump", capture=True, nginx=nginx)
    return result.stdout + result.stderr


def log_tail(lines: int = 60, project_name: str | None = None) -> dict[str, str]:
    """nginx's access log (its stdout), error log (stderr) and the app's output."""
    return _logs(["--tail", str(lines)], project_name)


@contextlib.contextmanager
def logs_written(project_name: str | None = None) -> Iterator[dict[str, str]]:
    """What each log got during the block, by name as log_tail (filled when it ends)."""
    since = f"{time.time():.6f}"  # `docker logs --since` takes a Unix timestamp
    written: dict[str, str] = {}
    yield written
    written.update(_logs(["--since", since], project_name))


def _logs(which: list[str], project_name: str | None) -> dict[str, str]:
    """The logs (nginx access, nginx error, app) as `docker logs` with ``which`` selects them."""
    tails: dict[str, str] = {}
    nginx = container_id("nginx", project_name)
    if nginx:
        result = docker("logs", *which, nginx, check=False)
        tails["nginx access"] = result.stdout
        tails["nginx error"] = result.stderr
    else:
        tails["nginx"] = "(no nginx container)"
    apps = containers("app", project_name, running=False)
    # Every replica's output, one after the other (the request ids join them to nginx's log).
    tails["app"] = (
        "".join(
            subprocess.run(
                ["docker", "logs", *which, app],
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ).stdout
            for app in apps
        )
        if apps
        else "(no app container)"
    )
    return tails


# `make deploy`: the app replaced under traffic. nginx finds the replicas by the service's DNS
# name, re-resolved every `valid` (snippets/upstream.conf): a new replica is in rotation within
# that, and a stopped one's refusals are retried on another at once. A removed replica's address
# can stay in nginx's cache for `valid` after it is gone, where a connect hangs until
# proxy_connect_timeout before the retry: so the old replicas go one at a time, each once the
# last one's address has left every cache, and a request pays that timeout once at most (several
# vanished addresses in a row add up, and proxy_next_upstream_timeout bounds the sum).
UPSTREAM_SNIPPET = paths.NGINX_SRC / "snippets" / "upstream.conf"
RESOLVER_MARGIN_S = 0.5


def resolver_valid_s() -> float:
    """How long nginx keeps a DNS answer (snippets/upstream.conf's `resolver ... valid=`)."""
    found = re.search(r"^resolver .*\bvalid=(\S+?);?\s", UPSTREAM_SNIPPET.read_text(), re.MULTILINE)
    return labsettings.seconds(found.group(1)) if found else 30.0  # nginx's default: the DNS TTL


def _short(cid: str) -> str:
    return inspect(cid)["Name"].lstrip("/")


def wait_containers_healthy(ids: list[str], deadline_s: float = 90) -> None:
    end = time.monotonic() + deadline_s
    while True:
        current = {cid: _state(inspect(cid)) for cid in ids}
        if all(state == "healthy" for state in current.values()):
            return
        failed = {c: st for c, st in current.items() if st.startswith(("exited", "dead", "unhealthy"))}
        if failed or time.monotonic() > end:
            raise SystemExit(f"lab deploy: new replicas not healthy: {failed or current}")
        time.sleep(0.3)


def deploy(
    note: Callable[[str], None], project_name: str | None = None, env: dict[str, str] | None = None
) -> None:
    """Replace every app container: build the image, start as many new replicas beside the old,
    wait until they are healthy and in nginx's rotation, then stop the old ones gracefully
    (SIGTERM: gunicorn refuses new connections, finishes its requests, closes its websockets)
    and remove them. LAB_FIX_ROLLING_DEPLOY=0 recreates in place instead (deploy-drops-requests).
    ``env``: the Compose settings of the stack (default: what `make up` recorded)."""
    require_engine()
    name = project_name or project()
    env = env if env is not None else started_env()
    old = containers("app", name)
    if not old or not nginx_env(name):
        raise SystemExit("lab: no compose stack with an app is running here: `make up` first")
    replicas = len(old)
    merged = compose_env(env)  # made once: each compose_env() runs `docker image inspect` per stand-in
    # `LAB_FIX_ROLLING_DEPLOY=0 make deploy`, else as the stack runs (its scenario's app.env included)
    rolling_fix = labsettings.FIX_ROLLING_DEPLOY
    rolling = rolling_fix.value(None if rolling_fix.is_set() else merged)

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        return run(*args, project_name=name, env=merged)

    note("building the app image")
    build_app(merged, name)
    if not rolling:
        note(f"recreating {replicas} app container(s) in place (LAB_FIX_ROLLING_DEPLOY=0)")
        compose("up", "-d", "--no-deps", "--force-recreate", "--scale", f"app={replicas}", "app")
        wait_containers_healthy(containers("app", name))
        note("recreated app healthy")
        return
    note(f"starting {replicas} new replica(s) beside the old")
    compose("up", "-d", "--no-deps", "--no-recreate", "--scale", f"app={2 * replicas}", "app")
    new = [cid for cid in containers("app", name) if cid not in old]
    wait_containers_healthy(new)
    valid = resolver_valid_s()
    note(f"new replicas healthy: {', '.join(_short(cid) for cid in new)}")
    time.sleep(valid + RESOLVER_MARGIN_S)  # every nginx worker has asked Docker's DNS since
    for index, cid in enumerate(old):
        # The container's hostname is its short id: the name its upload temp files carry.
        label = f"{_short(cid)} ({cid[:12]})"
        note(f"stopping {label}: SIGTERM")
        docker("stop", cid)  # waits up to the container's stop_grace_period, then SIGKILL
        code = inspect(cid)["State"]["ExitCode"]
        docker("rm", cid)
        note(f"removed {label}, exit code {code}{' (SIGKILLed)' if code == 137 else ''}")
        if index < len(old) - 1:
            time.sleep(valid + RESOLVER_MARGIN_S)  # its address has left nginx's caches
