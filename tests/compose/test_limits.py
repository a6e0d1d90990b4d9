"""The containers' memory and pids limits: what each figure is made of, and what hitting one does.
On a side stack of two app replicas (its own ports), fresh, so that what it holds is what these
tests put there; its LAB_APP_MEMORY is lowered so that reaching it takes a moment, not a GiB (what
a hit does does not depend on the figure).

- The parts of each figure (labsettings: an idle container, one websocket, one upload in flight)
  measured again: a figure the code has outgrown fails here, not in production.
- A replica at its pids limit (a bounded loop of forks run inside it) or its memory limit (a
  process allocating past it; the OOM killer takes the worker that holds an upload) stops
  gracefully with status 75 and says which limit in its log; the engine starts it again; the
  other replica serves every GET meanwhile; the upload in flight on it gets nginx's JSON 502 and
  leaves no partial file.
"""

from __future__ import annotations

import datetime
import os
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

import capacity
import labsettings as lab
from labctl import compose, traffic, wsclient
from reliability.rawhttp import RawResponse, parse_response, read_until_close, tls_socket
from support.composectl import Stack, side_stack
from support.lab import Lab

REPLICAS = 2
LOWERED_APP_MEMORY = "320m"
WEBSOCKETS = 600  # 150 per worker: the cost of one, measured over many
UPLOADS = 48  # enough that what nginx allocates once (a pool, a log buffer) is lost in them
UPLOAD_SENT = 4 * capacity.MIB  # each upload sends this much, then waits
HIT_TIMEOUT_S = 30
# The cgroup's memory less its inactive page cache: what `docker stats` shows (cgroup v2, then v1).
WORKING_SET = (
    "if [ -f /sys/fs/cgroup/memory.stat ]; then echo usage $(cat /sys/fs/cgroup/memory.current); "
    "sed s/^inactive_file/inactive/ /sys/fs/cgroup/memory.stat; "
    "else echo usage $(cat /sys/fs/cgroup/memory/memory.usage_in_bytes); "
    "sed s/^total_inactive_file/inactive/ /sys/fs/cgroup/memory/memory.stat; fi"
)


@pytest.fixture(scope="module")
def limited(lab: Lab) -> Iterator[Stack]:
    with side_stack(
        "limits", 400, LAB_SCENARIO="", LAB_APP_REPLICAS=str(REPLICAS), LAB_APP_MEMORY=LOWERED_APP_MEMORY
    ) as stack:
        stack.up()
        yield stack


@pytest.fixture(scope="module")
def limited_lab(limited: Stack, lab: Lab) -> Lab:
    return Lab(url=limited.url, ca=lab.ca, direct_url=None, http_url=None)


def working_set(cid: str) -> int:
    values = dict(
        line.split() for line in compose.docker("exec", cid, "sh", "-c", WORKING_SET).stdout.splitlines()
    )
    return int(values["usage"]) - int(values["inactive"])


def working_sets(stack: Stack) -> dict[str, int]:
    return {
        "app": sum(working_set(c) for c in stack.containers("app")),
        "nginx": working_set(stack.container("nginx")),
    }


def port_of(stack_lab: Lab) -> int:
    return int(stack_lab.host.rsplit(":", 1)[1])


def stalled_upload(stack_lab: Lab, sent: int = capacity.MIB) -> ssl.SSLSocket:
    """PUT /upload/<name> declaring 64 MiB, ``sent`` of them sent, then nothing: in flight."""
    sock = tls_socket(stack_lab, timeout=HIT_TIMEOUT_S)
    sock.sendall(
        f"PUT /upload/limits-{uuid.uuid4().hex[:8]}.bin HTTP/1.1\r\nHost: {stack_lab.host}\r\n"
        f"Connection: close\r\nContent-Length: {64 * capacity.MIB}\r\n\r\n".encode()
    )
    block = os.urandom(64 * 1024)
    for _ in range(sent // len(block)):
        sock.sendall(block)
    return sock


def partial_uploads(stack: Stack) -> list[str]:
    """The temp files in the uploads volume (any running replica sees all of them)."""
    for cid in stack.containers("app"):
        listed = compose.docker("exec", cid, "ls", "-a", lab.UPLOAD_DIR.default, check=False)
        if listed.returncode == 0:
            return [name for name in listed.stdout.split() if name.startswith(".partial-")]
    raise AssertionError("no app replica answers `docker exec`")


def test_what_the_limits_are_made_of_still_holds(limited: Stack, limited_lab: Lab) -> None:
    """Each cost on fresh containers: an allocator keeps what was freed and hands it out again,
    so what is measured after something else looks cheaper than it is (websockets after uploads
    came out at 12 KiB, not 39)."""
    # GUNICORN_WORKERS=auto counts the CPU quota of the container, which only the container sees.
    workers = int(
        compose.docker(
            "exec", limited.containers("app")[0], "python3", "-c",
            "import os, labsettings; print(labsettings.GUNICORN_WORKERS.value(os.environ))",
        ).stdout
    )  # fmt: skip
    idle = working_sets(limited)

    port = port_of(limited_lab)
    context = limited_lab.ssl_context()

    def open_echo(_: int) -> wsclient.WebSocket:
        answer, ws = wsclient.connect(("127.0.0.1", port), "/ws/echo", f"localhost:{port}", context)
        assert ws is not None, f"/ws/echo answered {answer.status}, not 101"
        return ws

    # TLS handshakes release the GIL: a pool of threads opens them about as fast as nginx takes them.
    with ThreadPoolExecutor(max_workers=50) as pool:
        held = list(pool.map(open_echo, range(WEBSOCKETS), timeout=120))
    try:
        time.sleep(2)
        with_websockets = working_sets(limited)
    finally:
        for ws in held:
            ws.sock.close()  # no closing handshake: hundreds go at once

    limited.compose("restart", "app", "nginx")
    for service in ("app", "nginx"):
        limited.wait_healthy(service)
    fresh = working_sets(limited)
    uploads = [stalled_upload(limited_lab, UPLOAD_SENT) for _ in range(UPLOADS)]
    time.sleep(2)
    with_uploads = working_sets(limited)
    for upload in uploads:
        upload.close()
    time.sleep(2)  # the app discards the aborted uploads' temp files

    def per(after: dict[str, int], before: dict[str, int], service: str, count: int, unit: int) -> float:
        return (after[service] - before[service]) / count / unit

    app_idle_mib, nginx_idle_mib = idle["app"] / REPLICAS / capacity.MIB, idle["nginx"] / capacity.MIB
    app_ws_kib = per(with_websockets, idle, "app", WEBSOCKETS, capacity.KIB)
    nginx_ws_kib = per(with_websockets, idle, "nginx", WEBSOCKETS, capacity.KIB)
    app_upload_mib = per(with_uploads, fresh, "app", UPLOADS, capacity.MIB)
    nginx_upload_kib = per(with_uploads, fresh, "nginx", UPLOADS, capacity.KIB)
    print(
        f"measured: app replica idle {app_idle_mib:.1f} MiB ({workers} workers), nginx idle "
        f"{nginx_idle_mib:.1f} MiB; per websocket ({WEBSOCKETS}) app {app_ws_kib:.1f} KiB, nginx "
        f"{nginx_ws_kib:.1f} KiB; per upload in flight ({UPLOADS}) app {app_upload_mib:.2f} MiB, nginx "
        f"{nginx_upload_kib:.1f} KiB"
    )
    assert partial_uploads(limited) == [], "the aborted uploads left temp files"
    assert app_idle_mib <= capacity.APP_MASTER_MIB + workers * capacity.APP_WORKER_MIB, app_idle_mib
    assert nginx_idle_mib <= capacity.NGINX_MASTER_MIB + 2 * capacity.NGINX_WORKER_MIB, nginx_idle_mib
    assert 0 < app_ws_kib <= capacity.APP_WEBSOCKET_KIB, f"a websocket costs the app {app_ws_kib:.1f} KiB"
    assert 0 < nginx_ws_kib <= capacity.NGINX_CONNECTION_KIB, (
        f"a websocket costs nginx {nginx_ws_kib:.1f} KiB"
    )
    assert 0 < app_upload_mib <= capacity.APP_UPLOAD_MIB, f"an upload costs the app {app_upload_mib:.2f} MiB"
    assert 0 < nginx_upload_kib <= capacity.NGINX_CONNECTION_KIB, (
        f"an upload costs nginx {nginx_upload_kib:.1f} KiB"
    )


@dataclass
class Hit:
    exit_code: int | None  # the replica's status when it stopped
    upload: RawResponse  # what the upload in flight on it got
    log: str  # the replica's output since the hit
    restarts: int  # RestartCount after, minus before
    state: str
    recording: traffic.Recording
    partials: list[str]


def holder_of(stack: Stack) -> tuple[str, int]:
    """The replica and worker (its pid inside the container) holding the one upload in flight."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        found = partial_uploads(stack)
        if found:
            _, host, pid, _ = found[0].split("-", 3)
            return next(c for c in stack.containers("app") if c.startswith(host)), int(pid)
        time.sleep(0.2)
    raise AssertionError("the upload never reached a replica (no .partial- file)")


def died_with(cid: str, since: str) -> int | None:
    """The exit code of the container's first `die` event since ``since``, None if none yet."""
    until = datetime.datetime.now(datetime.UTC).isoformat()
    events = compose.docker(
        "events", "--since", since, "--until", until, "--filter", f"container={cid}", "--filter", "event=die",
        "--format", "{{.Actor.Attributes.exitCode}}",
    ).stdout.split()  # fmt: skip
    return int(events[0]) if events else None


def hit_a_limit(stack: Stack, stack_lab: Lab, provoke: Callable[[str, int], None]) -> Hit:
    """An upload in flight, a GET and websocket load through nginx, then ``provoke(replica,
    worker)`` on the replica holding the upload; everything until it is healthy again."""
    since = datetime.datetime.now(datetime.UTC).isoformat()
    upload = stalled_upload(stack_lab)
    target, worker = holder_of(stack)
    # What a run killed whole leaves (no master was left to clean up): the next start removes it.
    leftover = f"{lab.UPLOAD_DIR.default}/.partial-{target[:12]}-999999-leftover"
    compose.docker("exec", target, "touch", leftover)
    restarts = compose.inspect(target)["RestartCount"]
    state = "?"
    load = traffic.Load(stack_lab.endpoint, http_threads=4, websockets=2, max_requests=6000, max_seconds=90)
    with load:
        time.sleep(1)
        load.note("provoke")
        provoke(target, worker)
        end = time.monotonic() + HIT_TIMEOUT_S
        while (exit_code := died_with(target, since)) is None and time.monotonic() < end:
            time.sleep(0.3)
        answer = parse_response(read_until_close(upload))
        upload.close()
        while time.monotonic() < end + HIT_TIMEOUT_S:
            info = compose.inspect(target)
            state = info["State"]["Health"]["Status"] if info["State"]["Running"] else info["State"]["Status"]
            if info["RestartCount"] > restarts and state == "healthy":
                break
            time.sleep(0.3)
        load.note(f"replica {state}")
        time.sleep(3)  # the websockets reconnect
    logs = compose.docker("logs", "--since", since, target, check=False)
    return Hit(
        exit_code=exit_code,
        upload=answer,
        log=logs.stdout + logs.stderr,
        restarts=compose.inspect(target)["RestartCount"] - restarts,
        state=state,
        recording=load.recording,
        partials=partial_uploads(stack),
    )


def assert_restarted_and_nothing_lost(hit: Hit, limit: str) -> None:
    print(f"{limit} limit: exit {hit.exit_code}, restarts {hit.restarts}, upload {hit.upload.status}; "
          f"{hit.recording.summary()}")  # fmt: skip
    said = [line for line in hit.log.splitlines() if "limit hit" in line]
    print("\n".join(said))
    assert hit.exit_code == 75, (
        f"the replica stopped with {hit.exit_code}, not 75 (LIMIT_HIT_EXIT):\n{hit.log}"
    )
    assert any(
        f"{limit} limit hit" in line and "stopping for the engine to restart" in line for line in said
    ), f"the replica's log does not say the {limit} limit was hit:\n{hit.log[-3000:]}"
    assert (hit.restarts, hit.state) == (1, "healthy"), f"restarted {hit.restarts} times, now {hit.state}"
    assert hit.upload.status == 502 and hit.upload.is_json, (
        f"the upload in flight got {hit.upload.describe()}"
    )
    assert hit.partials == [], f"partial uploads left: {hit.partials}"
    assert hit.recording.failed == 0, f"GETs failed: {hit.recording.failures()[:10]}"
    closed = sum(hit.recording.close_codes().values())
    assert hit.recording.reconnected >= closed, hit.recording.summary()


FORKS = 2 * lab.APP_PIDS.value({})  # more than the limit can hold: some are refused; bounded


def test_a_replica_at_its_pids_limit_stops_says_so_and_is_restarted(limited: Stack, limited_lab: Lab) -> None:
    def fork_until_refused(replica: str, _worker: int) -> None:
        # Each child sleeps 20 s and dies with the container; the loop stops after FORKS tries.
        loop = f"i=0; while [ $i -lt {FORKS} ]; do sleep 20 & i=$((i+1)); done 2>/dev/null; wait"
        compose.docker("exec", "--detach", replica, "sh", "-c", loop)

    hit = hit_a_limit(limited, limited_lab, fork_until_refused)
    assert_restarted_and_nothing_lost(hit, "pids")
    # A graceful stop: its websockets were closed 1001 and reconnected elsewhere, none was cut.
    assert hit.recording.cut_websockets == 0, hit.recording.summary()


def test_a_replica_at_its_memory_limit_stops_says_so_and_is_restarted(
    limited: Stack, limited_lab: Lab
) -> None:
    limit = lab.APP_MEMORY.value(compose.compose_env(limited.env))

    def allocate_past_the_limit(replica: str, worker: int) -> None:
        # The OOM killer takes the likeliest process: this worker, the one holding the upload. Its
        # own user may raise its score (no root on the host needed): exec runs as the image's user.
        compose.docker("exec", replica, "sh", "-c", f"echo 1000 > /proc/{worker}/oom_score_adj")
        chunks = limit // (16 * capacity.MIB) + 1  # 16 MiB at a time, to past the limit: bounded
        hog = f"c = []\nfor _ in range({chunks}):\n    c.append(b'x' * {16 * capacity.MIB})"
        compose.docker("exec", "--detach", replica, "python3", "-c", hog)

    hit = hit_a_limit(limited, limited_lab, allocate_past_the_limit)
    assert_restarted_and_nothing_lost(hit, "memory")
    assert "was sent SIGKILL! Perhaps out of memory?" in hit.log, "the OOM killer did not take the worker"
