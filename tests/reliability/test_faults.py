"""Faults under a bounded background load: the workers SIGKILLed, gunicorn and nginx reloaded, the
app down and back. nginx is never restarted; every GET of the load must succeed."""

from __future__ import annotations

import os
import signal
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import requests

import labsettings
from labctl import native
from support.lab import Lab, assert_json_error

from . import report, stackctl
from .load import THREADS, background_load
from .rawhttp import parse_response, read_until_close, tls_socket
from .wsclient import assert_echoes, close_code, open_echo

BOUNDARY = "reliability-boundary"


def start_inflight_upload(lab: Lab, name: str, sent: int = 1 << 20, declared: int = 64 << 20):
    """A multipart POST /upload that stops after ``sent`` of ``declared`` bytes and stays open."""
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    sock = tls_socket(lab, timeout=20)
    sock.sendall(
        (
            f"POST /upload HTTP/1.1\r\nHost: {lab.host}\r\nConnection: close\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(head) + declared}\r\n\r\n"
        ).encode()
        + head
        + b"x" * sent
    )
    return sock


FRESH_INFLIGHT = 4


def upstream_tries(request_id: str, since_offset: int) -> list[str]:
    """The upstream statuses nginx logged for one request: one per try, e.g. ["502", "200"]."""
    for entry in stackctl.nginx_entries_since(since_offset):
        if entry["request_id"] == request_id:
            return entry["upstream_status"].split(", ")
    raise AssertionError(f"request {request_id} is not in nginx's access log")


def retry_met_a_dead_connection(tries: list[str]) -> bool:
    """nginx did retry, but the retry took another pooled keep-alive connection to the dead
    worker before nginx had seen it close, and no peer was left (upstream_addr "APP, APP,
    lab_app"): the one failure the backup line cannot prevent."""
    return len(tries) >= 2 and set(tries) == {"502"}


def fresh_connection_gets(lab: Lab, pool: ThreadPoolExecutor) -> list[Future]:
    """GETs that sit 2 s inside the worker on upstream connections nginx has just opened.

    nginx also retries a request whose *pooled* keep-alive connection failed (even with one
    server); a request on a *fresh* connection it retries only when the group has a next server.
    After a reload nginx's workers have empty pools, so these are on fresh connections.
    """

    def get() -> tuple[int, str]:
        with lab.session() as session:
            response = session.get(lab.url + "/slow?seconds=2", timeout=30)
            return response.status_code, response.headers["X-Request-ID"]

    return [pool.submit(get) for _ in range(FRESH_INFLIGHT)]


def test_worker_sigkill_gets_retried_posts_fail_and_no_file_is_left(lab: Lab, upload_dir: Path) -> None:
    master = stackctl.gunicorn_master()
    # Every worker at once: the kernel spreads connections over them, so killing all of them is
    # what puts the upload and each fresh GET below on a dying worker, however many there are.
    workers = stackctl.children(master)
    stackctl.reload_nginx()
    log_mark = stackctl.log_offset(native.NGINX_ACCESS_LOG)
    upload = start_inflight_upload(lab, "cut-by-sigkill.bin")
    stackctl.wait_for(
        lambda: [
            p
            for pid in workers
            for p in upload_dir.glob(f"{labsettings.temp_prefix(socket.gethostname(), pid)}*")
        ],
        10,
        "the upload's temp file in a worker",
    )
    with ThreadPoolExecutor(FRESH_INFLIGHT) as pool, background_load(lab, 30) as load:
        fresh = fresh_connection_gets(lab, pool)
        time.sleep(0.5)  # the fresh GETs and a /slow per load thread are inside the workers now
        for worker in workers:
            os.kill(worker, signal.SIGKILL)
        new_workers = stackctl.wait_for_new_workers(master, workers)
        time.sleep(1)  # and the load goes on against the new worker
        fresh_results = [future.result() for future in fresh]
    cut = parse_response(read_until_close(upload))
    upload.close()

    fresh_tries = [upstream_tries(request_id, log_mark) for _, request_id in fresh_results]
    killed = f"{len(workers)} workers SIGKILLed"
    report.note(f"{killed}: GETs on fresh upstream connections, upstream tries", str(fresh_tries))
    report.note(f"{killed} under load", load.recording.summary())
    assert all(len(tries) >= 2 for tries in fresh_tries), (
        f"GETs in flight on fresh upstream connections were not retried ({fresh_tries}): nginx "
        "retries those only when the upstream group has a next server (the backup line in nginx.conf)"
    )
    unlucky = [t for (status, _), t in zip(fresh_results, fresh_tries, strict=True) if status != 200]
    unlucky += [upstream_tries(f.rsplit(" ", 1)[-1], log_mark) for f in load.recording.failures(cut=False)]
    report.note("workers SIGKILLed: GETs whose retry met another dead pooled connection", str(len(unlucky)))
    assert all(retry_met_a_dead_connection(tries) for tries in unlucky), (
        f"GETs failed when a worker was killed, not explained by a dead pooled connection: {unlucky}; "
        f"load: {load.recording.summary()}"
    )
    assert len(unlucky) <= FRESH_INFLIGHT, f"too many retries met dead connections: {unlucky}"
    # A response whose headers were already forwarded when the worker died cannot be retried;
    # at most the requests in flight at that instant (one per load thread) can be caught so.
    assert load.recording.cut_after_headers <= THREADS, load.recording.summary()
    assert cut.status == 502 and cut.is_json, (
        f"the POST cut by the kill should get JSON 502: {cut.describe()}"
    )
    assert not (upload_dir / "cut-by-sigkill.bin").exists(), "a killed upload appeared under its name"
    assert stackctl.partial_files(upload_dir) == [], (
        "the killed worker's temp file is still there: gunicornhooks' child_exit should remove it"
    )
    assert new_workers, "gunicorn's master did not respawn the workers"


def test_gunicorn_hup_serves_on_and_websockets_get_a_close_then_reconnect(lab: Lab) -> None:
    master = stackctl.gunicorn_master()
    old = stackctl.children(master)
    conn = open_echo(lab, "before")
    app_log_mark = stackctl.log_offset(native.APP_LOG)
    with background_load(lab, 40) as load:
        os.kill(master, signal.SIGHUP)
        code = close_code(conn, timeout=30)
        # At once: not when graceful_timeout runs out (the old worker logs that, then kills the rest).
        waited = [
            line
            for line in stackctl.log_lines_since(native.APP_LOG, app_log_mark)
            if "graceful timeout" in line
        ]
        stackctl.wait_for_new_workers(master, old)
        # The load covers the whole replacement: until the old workers have exited, and a moment on
        # the new ones.
        stackctl.wait_for(lambda: not any(stackctl.alive(pid) for pid in old), 10, "the old workers to exit")
        time.sleep(0.5)
    report.note("gunicorn kill -HUP under load", load.recording.summary())
    assert load.recording.failed == 0, (
        f"GETs failed across `kill -HUP` of gunicorn: {load.recording.summary()}"
    )
    assert code == 1001, f"across a gunicorn reload the websocket should be closed with 1001, got {code}"
    assert waited == [], (
        f"the websocket was closed only once graceful_timeout ran out ({waited}): an old worker should "
        "close its websockets as soon as it is told to stop (websockets.close_all_going_away)"
    )
    # Idle keep-alive connections from nginx may keep an old worker (and its listening socket) up
    # to graceful_timeout; a client that reconnects before it exits can land there and get 1001
    # again: the reconnect comes after the old workers have exited (waited for above).
    open_echo(lab, "reconnected after the gunicorn reload").close()


def test_nginx_reload_under_load_keeps_websockets_open(lab: Lab) -> None:
    nginx = stackctl.nginx_master()
    conn = open_echo(lab, "before reload")
    with background_load(lab, 30) as load:
        time.sleep(0.5)
        stackctl.reload_nginx()
        time.sleep(1)
    assert_echoes(conn, "after reload", "an open websocket did not survive `nginx -s reload`")
    open_echo(lab, "new after the nginx reload").close()
    assert stackctl.nginx_master() == nginx, "the reload replaced the nginx master"
    report.note("nginx reload under load", load.recording.summary())
    assert load.recording.failed == 0, f"GETs failed across an nginx reload: {load.recording.summary()}"


def test_app_down_answers_json_502_fast_and_recovers_without_nginx_restart(
    lab: Lab, http: requests.Session
) -> None:
    nginx = stackctl.nginx_master()
    stackctl.stop_gunicorn()
    try:
        for method, path in (("GET", "/healthz"), ("GET", "/debug/request"), ("POST", "/landing")):
            # timeout=5: a hang (nginx waiting on a dead upstream) fails here.
            body = b"x" if method == "POST" else None
            response = http.request(method, lab.url + path, data=body, timeout=5)
            assert_json_error(response, 502, f"{method} {path} with the app down")
    finally:
        stackctl.start_gunicorn()
    response = http.get(lab.url + "/healthz", timeout=10)
    assert response.status_code == 200, "nginx did not reach the restarted app (max_fails=0 in nginx.conf?)"
    assert stackctl.nginx_master() == nginx, "nginx was restarted; recovery must not need that"
