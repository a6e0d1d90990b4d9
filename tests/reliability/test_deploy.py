"""`make deploy` natively, under load, Socket.IO clients connected: gunicorn's graceful reload
(HUP) replaces every worker; no request fails, websockets are closed with 1001/1012 and come back,
an upload in flight on the old worker finishes, nothing partial is left, every Socket.IO client
reconnects by itself to a new worker (a worker's are closed with 1001 when it stops)."""

from __future__ import annotations

from pathlib import Path

from support.deploying import assert_dropped_nothing, delete_upload, names_in, run_deploy, temp_file_holder

from . import report, stackctl


def test_deploy_under_load_replaces_every_worker_and_drops_nothing(
    lab, upload_dir: Path, held_socketio
) -> None:
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
        report.note("make deploy (native), Socket.IO", held_socketio.assert_every_client_came_back())
    finally:
        delete_upload(lab, run.upload.name)
