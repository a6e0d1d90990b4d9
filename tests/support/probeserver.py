"""A server block of its own, picked by Host, that a compose or swarm test drops into the
bind-mounted nginx/conf.d/ (a probe file, removed afterwards): nothing the rest of the suite
relies on changes. Also `make reload` checked with it, in either containerised mode."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from labctl import compose, paths, stack

PROBE_HOST = "reload-probe.invalid"


def probe_config(token: str) -> str:
    return (
        "server {\n"
        "    listen {{LAB_LISTEN_HTTPS}} ssl;\n"
        f"    server_name {PROBE_HOST};\n"
        "    include snippets/tls.conf;\n"
        "    default_type application/json;\n"
        f'    return 200 \'{{"probe":"{token}"}}\';\n'
        "}\n"
    )


def probe(lab, expect: int | None = None, within: float = 5.0) -> requests.Response:
    """GET the probe server on a fresh connection (a kept-alive one may still be served by an
    old worker: a reload is a signal, the new workers start a moment later). With ``expect``,
    retry until that status shows up, for at most ``within`` seconds."""
    end = time.monotonic() + within
    while True:
        with lab.session() as fresh:
            answer = fresh.get(lab.url + "/", headers={"Host": PROBE_HOST, "Connection": "close"}, timeout=5)
        if expect is None or answer.status_code == expect or time.monotonic() > end:
            return answer
        time.sleep(0.1)


@contextmanager
def probe_file() -> Iterator[Path]:
    """A conf.d file of the checkout's nginx/ (the one the containers mount), removed at the end
    and the removal reloaded (.gitignore'd, in case a killed run leaves it)."""
    path = compose.NGINX_SOURCE / "conf.d" / f"zz-compose-test-{uuid.uuid4().hex[:8]}.conf"
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
        reload_and_wait()


# The nginx workers running in a container, by pid: what a reload replaces.
WORKERS = (
    'for d in /proc/[0-9]*; do case "$(tr "\\0" " " < $d/cmdline 2>/dev/null)" in '
    '"nginx: worker process"*) echo "${d#/proc/}";; esac; done'
)


def nginx_workers(container: str) -> set[str]:
    return set(compose.docker("exec", container, "sh", "-c", WORKERS, check=False).stdout.split())


def reload_and_wait(timeout_s: float = 15) -> None:
    """`make reload`, then wait until the old config's workers have exited: a reload is a signal,
    and until they are gone an old worker may still take a new connection, which it then closes
    at worker_shutdown_timeout (a long upload of the next test, cut 5 s in)."""
    container = stack.nginx_container()
    old = nginx_workers(container) if container else set()
    lab_reload()
    end = time.monotonic() + timeout_s
    while container and old & nginx_workers(container):
        assert time.monotonic() < end, f"old nginx workers {old} still run {timeout_s:.0f}s after a reload"
        time.sleep(0.2)


def lab_reload() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), "reload"], capture_output=True, text=True, timeout=60
    )


def check_reload_applies_and_refuses(lab, http: requests.Session, probe_path: Path) -> None:
    """`make reload`: an edit applies without a rebuild or a restart; a broken edit is refused with
    nginx's own message and the running config keeps serving; removing the edit removes it."""
    assert probe(lab).status_code == 421, "the probe Host must be refused before the edit"

    token = uuid.uuid4().hex
    probe_path.write_text(probe_config(token))
    result = lab_reload()
    assert result.returncode == 0, f"reload failed: {result.stdout}{result.stderr}"
    answer = probe(lab, expect=200)
    assert answer.status_code == 200 and answer.json() == {"probe": token}, (
        f"the edit did not take effect after `make reload`: {answer.status_code} {answer.text[:200]}"
    )

    probe_path.write_text(probe_config(token) + "this_is_not_a_directive on;\n")
    result = lab_reload()
    output = result.stdout + result.stderr
    assert result.returncode != 0, f"a broken config was accepted: {output}"
    assert 'nginx: [emerg] unknown directive "this_is_not_a_directive"' in output, (
        f"the refusal must carry nginx's own message: {output}"
    )
    time.sleep(0.5)
    answer = probe(lab)
    assert answer.status_code == 200 and answer.json() == {"probe": token}, "the old config must keep serving"
    assert http.get(lab.url + "/healthz", timeout=5).status_code == 200

    probe_path.unlink()
    assert lab_reload().returncode == 0
    assert probe(lab, expect=421).status_code == 421, "removing the file plus reload must remove the server"
