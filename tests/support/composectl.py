"""Driving a compose stack from tests: containers by service, their IPs, and the one move that
shows whether nginx re-resolves the app (recreate the app container at a different address).

Every call goes through labctl.compose (Compose v2).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

import labsettings
from labctl import compose

APP_IMAGE_DEFAULT = "proxylab-app:latest"


@dataclass
class Stack:
    """One compose project of this checkout: its name, public URL and Compose environment."""

    project: str
    url: str  # https://localhost:<port>
    env: dict[str, str] = field(default_factory=dict)  # LAB_* given to Compose for this project
    overrides: tuple[Path, ...] = ()  # compose files applied over compose.yaml

    def compose(self, *args: str, check: bool = True, capture: bool = True):
        return compose.run(
            *args,
            project_name=self.project,
            extra_env=self.env,
            overrides=self.overrides,
            check=check,
            capture=capture,
        )

    def up(self, scenario: str = "") -> None:
        """`up -d --wait` with that scenario ("" = baseline), then the HTTPS URL answers."""
        self.env["LAB_SCENARIO"] = scenario
        compose.up_and_wait(project_name=self.project, extra_env=self.env, overrides=self.overrides)

    def container(self, service: str) -> str:
        cid = compose.container_id(service, self.project)
        assert cid, f"project {self.project} has no {service} container"
        return cid

    def containers(self, service: str) -> list[str]:
        """Every running container of the service: its replicas."""
        return compose.containers(service, self.project)

    def inspect(self, service: str) -> dict:
        return compose.inspect(self.container(service))

    @property
    def network(self) -> str:
        return f"{self.project}_default"

    def ip(self, service: str) -> str:
        return self.inspect(service)["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    def ip_of(self, container: str) -> str:
        return compose.inspect(container)["NetworkSettings"]["Networks"][self.network]["IPAddress"]

    def scale_app(self, replicas: int) -> list[str]:
        """Add or remove app replicas (the others are left as they are); the running ones."""
        self.compose("up", "-d", "--no-deps", "--no-recreate", "--scale", f"app={replicas}", "app")
        self.wait_healthy("app")
        return self.containers("app")

    def state(self, service: str) -> str:
        return compose.states(self.project)[service]

    def wait_healthy(self, service: str, timeout: float = 60) -> None:
        end, state = time.monotonic() + timeout, "?"
        while time.monotonic() < end:
            state = self.state(service)
            if state == "healthy":
                return
            assert not state.startswith(("exited", "unhealthy")), f"{service} is {state}"
            time.sleep(0.3)
        raise AssertionError(f"{service} not healthy after {timeout:.0f}s: {state}")

    def app_log_since(self, since: str) -> str:
        """The app container's output (stdout and stderr) since an RFC 3339 time."""
        result = compose.docker("logs", "--since", since, self.container("app"), check=False)
        return result.stdout + result.stderr

    def nginx_error_log(self, lines: int = 200) -> str:
        return compose.docker("logs", "--tail", str(lines), self.container("nginx"), check=False).stderr


@contextmanager
def side_stack(name: str, offset: int, overrides: tuple[Path, ...] = (), **env: str) -> Iterator[Stack]:
    """A second compose project of this checkout (its own ports, network and volume), so the stack
    the rest of the suite tests is left alone; removed at the end, even when a test fails. Its
    ports are the main stack's + ``offset``, distinct per side stack: one may still be up (the
    session's) while another starts."""
    main = compose.nginx_env()
    # nginx publishes the balancer's ports too (it runs in nginx's network namespace): offset alike.
    ports = {
        key: str(int(main[key]) + offset)
        for key in ("LAB_HTTPS_PORT", "LAB_HTTP_PORT", "LAB_BALANCER_PORT", "LAB_BALANCER_HTTP_PORT")
    }
    stack = Stack(
        project=f"{compose.project()}-{name}",
        url=f"https://localhost:{ports['LAB_HTTPS_PORT']}",
        env={**compose.started_env(), **ports, **env},
        overrides=overrides,
    )
    stack.compose("down", "--volumes", "--remove-orphans", check=False)
    try:
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans", check=False)


def upload_dir_names(container: str) -> list[str]:
    """The uploads volume as ``container`` mounts it (nginx's: read-only, the volume every replica
    or task writes)."""
    listing = compose.docker("exec", container, "ls", "-a", str(labsettings.UPLOAD_DIR.default), check=False)
    return [name for name in listing.stdout.split() if name not in (".", "..")]


@contextmanager
def ip_holder(stack: Stack) -> Iterator[list[str]]:
    """Throwaway containers on the stack's network, each holding one address (Docker hands out
    the lowest free one): started right after the app stops, one takes the app's old address, so
    the recreated app must get another. Holds nothing open: connections to it are refused."""
    started: list[str] = []
    try:
        yield started
    finally:
        for cid in started:
            compose.docker("rm", "-f", cid, check=False)


def recreate_app_elsewhere(stack: Stack, holders: list[str]) -> tuple[str, str]:
    """Stop the app, park a holder on each replica's address, `up -d --force-recreate app`: the
    old and new addresses, comma-separated."""
    old_ips = sorted(stack.ip_of(cid) for cid in stack.containers("app"))
    image = stack.inspect("app")["Config"]["Image"] or APP_IMAGE_DEFAULT
    stack.compose("stop", "app")
    # Holders until every old address is held (Docker hands out the lowest free one, and a
    # deploy may have left lower ones free), at most a few more than there are replicas.
    held: set[str] = set()
    for _ in range(len(old_ips) + 8):
        if held >= set(old_ips):
            break
        holder = compose.docker(
            "run", "-d", "--rm", "--network", stack.network,
            "--name", f"{stack.project}-ipholder-{uuid.uuid4().hex[:8]}",
            "--label", "proxylab.test=ip-holder", "--entrypoint", "sleep", image, "600",
        ).stdout.strip()  # fmt: skip
        holders.append(holder)
        held.add(stack.ip_of(holder))
    stack.compose("up", "-d", "--no-deps", "--force-recreate", "app")
    stack.wait_healthy("app")
    new_ips = sorted(stack.ip_of(cid) for cid in stack.containers("app"))
    assert not set(new_ips) & set(old_ips), (
        f"the recreated app got old addresses {sorted(set(new_ips) & set(old_ips))} back, so this "
        "check proves nothing: the holder containers did not take them (Docker's IPAM changed?)"
    )
    return ", ".join(old_ips), ", ".join(new_ips)


def statuses(session: requests.Session, url: str, seconds: float, pause: float = 0.25) -> list[int]:
    """GET url repeatedly for ``seconds``: the status codes seen, in order (0 = no answer)."""
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            seen.append(session.get(url, timeout=5).status_code)
        except requests.RequestException:
            seen.append(0)
        time.sleep(pause)
    return seen


def until_ok(session: requests.Session, url: str, timeout: float) -> float:
    """Seconds until url answers 200; AssertionError with the statuses seen if it never does."""
    start, seen = time.monotonic(), []
    while time.monotonic() - start < timeout:
        try:
            status = session.get(url, timeout=5).status_code
        except requests.RequestException as error:
            status = type(error).__name__
        if status == 200:
            return time.monotonic() - start
        seen.append(status)
        time.sleep(0.25)
    raise AssertionError(f"{url} never answered 200 within {timeout:.0f}s; saw {seen[-10:]}")
