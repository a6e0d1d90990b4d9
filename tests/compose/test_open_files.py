"""Open files in the containers: compose.yaml asks the engine for no number (a `nofile` above
dockerd's own hard limit stops runc from starting the container); gunicorn and nginx raise their
soft limit to the hard one the engine gives. Each websocket holds 2 descriptors in an nginx worker
and 1 in a gunicorn worker, so that limit is what caps them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl import compose
from support.composectl import Stack, side_stack

LOW_SOFT_LIMIT = Path(__file__).with_name("low-soft-nofile.yaml")
LOW_SOFT = 1024
# The long-running processes of each service (comm), master and workers alike.
SERVERS = {"app": "gunicorn", "nginx": "nginx"}
# One line per process of the container: "<pid> <comm> <soft> <hard>" (nginx's image has no python).
LIST_LIMITS = r"""
for dir in /proc/[0-9]*; do
    limits=$(grep '^Max open files' "$dir/limits" 2>/dev/null) || continue
    set -- $limits
    echo "${dir#/proc/} $(cat "$dir/comm") $4 $5"
done
"""


def engine_hard_limit(image: str) -> int:
    """The hard open-files limit a container of this engine gets when it asks for none."""
    result = compose.docker(
        "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", "ulimit -H -n"
    )
    return int(result.stdout.strip())


def server_limits(stack: Stack, service: str) -> dict[str, tuple[int, int]]:
    """(soft, hard) open-files limit of each of the service's server processes, by "pid comm"."""
    rows = compose.docker("exec", stack.container(service), "sh", "-c", LIST_LIMITS).stdout.splitlines()
    found = {}
    for pid, comm, soft, hard in (row.split() for row in rows):
        if comm == SERVERS[service]:
            found[f"{pid} {comm}"] = (int(soft), int(hard))
    return found


def assert_soft_raised_to(stack: Stack, hard: int) -> None:
    for service in SERVERS:
        limits = server_limits(stack, service)
        assert len(limits) >= 2, f"{service}: expected a master and a worker, found {sorted(limits)}"
        wrong = {name: pair for name, pair in limits.items() if pair != (hard, hard)}
        assert not wrong, f"{service}: (soft, hard) should be ({hard}, {hard}): {wrong}"


@pytest.fixture(scope="module")
def hard_limit(stack: Stack) -> int:
    return engine_hard_limit(stack.inspect("nginx")["Config"]["Image"])


def test_the_stack_asks_the_engine_for_no_number(stack: Stack) -> None:
    for service in SERVERS:
        assert not stack.inspect(service)["HostConfig"]["Ulimits"], f"{service} sets ulimits"


def test_gunicorn_and_nginx_run_with_the_engines_hard_limit(stack: Stack, hard_limit: int) -> None:
    assert_soft_raised_to(stack, hard_limit)
    print(f"open files: {hard_limit} per gunicorn and nginx process (the engine's hard limit)")


@pytest.fixture(scope="module")
def low_soft_stack(stack: Stack, hard_limit: int) -> Iterator[Stack]:
    with side_stack(
        "nofile", 200, overrides=(LOW_SOFT_LIMIT,), LAB_TEST_NOFILE_HARD=str(hard_limit)
    ) as stack:
        stack.up()
        yield stack


def test_a_low_soft_limit_from_the_engine_is_raised_at_start(low_soft_stack: Stack, hard_limit: int) -> None:
    assert hard_limit > LOW_SOFT, f"the engine's hard limit {hard_limit} leaves nothing to raise"
    for service in SERVERS:
        # What the engine starts the container's processes with. (Not `docker exec sh -c 'ulimit -S
        # -n'`: on Engine 20.10 an exec right after the start came back with 20000, the next ones
        # with 1024, measured five times in a row.)
        given = low_soft_stack.inspect(service)["HostConfig"]["Ulimits"]
        wanted = [{"Name": "nofile", "Soft": LOW_SOFT, "Hard": hard_limit}]
        assert given == wanted, f"{service}: the override did not apply: {given}"
    assert_soft_raised_to(low_soft_stack, hard_limit)
