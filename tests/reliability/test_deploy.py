"""`make deploy` natively, under load: gunicorn's graceful reload (HUP) replaces every worker;
no request fails, websockets are closed with 1001/1012 and come back, an upload in flight on the
old worker finishes, nothing partial is left."""

from __future__ import annotations

from pathlib import Path

from labctl import native, sioclient
from support.deploying import assert_dropped_nothing, delete_upload, names_in, run_deploy, temp_file_holder

from . import report, stackctl

# A worker's Socket.IO clients are closed with 1001 when it stops; each reconnects on its backoff.
SETTLE_S = 30


def test_deploy_under_load_replaces_every_worker_and_drops_nothing(lab, upload_dir: Path) -> None:
    master = stackctl.gunicorn_master()
    before = stackctl.children(master)
    run = run_deploy(
        lab,
        upload_holder=lambda _: temp_file_holder(names_in(upload_dir)),
        stops_holder=lambda line, _host: "kill -HUP" in line,
    )
    try:
        report.note(
            "make deploy (native) under load",
            str(run.timeline["served"]) + " served, "
            f"{run.timeline['failed']} failed, websocket closes {run.close_codes}, "
            f"reconnected {run.timeline['websockets_reconnected']}, {run.timeline['deploy_seconds']}s",
        )
        assert_dropped_nothing(run, lambda: stackctl.partial_files(upload_dir))
        after = stackctl.children(master)
        assert after and not after & before, f"the deploy should replace every worker: {before} -> {after}"
        assert stackctl.gunicorn_master() == master, "a graceful reload keeps the master (and its socket)"
    finally:
        delete_upload(lab, run.upload.name)


def test_deploy_sends_socketio_clients_away_and_each_comes_back_by_itself(lab) -> None:
    transports = [t for t in sioclient.TRANSPORTS for _ in range(3)]
    clients = [sioclient.connect(lab.endpoint, t, reconnect=True) for t in transports]
    try:
        first = [client.connects.get(timeout=1) for client in clients]
        old = {pid for _, pid in sioclient.workers(clients)}
        native.deploy(lambda _line: None)
        again = [client.connects.get(timeout=SETTLE_S) for client in clients]
        assert all(a != b for a, b in zip(first, again, strict=True)), "a client kept its old session"
        for client in clients:
            served = client.info()["served_by"]
            assert served["pid"] not in old, f"a {client.transport} client is still on an old worker {served}"
            assert client.call("echo", "after the deploy") == "after the deploy"
    finally:
        sioclient.close_all(clients)
