"""`make deploy` on the compose stack under load, Socket.IO clients connected: new replicas start
beside the old ones, the old ones stop gracefully and go; no request fails, websockets are closed
with 1001/1012 and come back, an upload in flight on a replica being stopped finishes, nothing
partial is left, every Socket.IO client reconnects by itself to a new replica."""

from __future__ import annotations

from support.composectl import upload_dir_names
from support.deploying import assert_dropped_nothing, delete_upload, run_deploy, temp_file_holder


def test_deploy_under_load_replaces_every_replica_and_drops_nothing(stack, lab, held_socketio):
    before = set(stack.containers("app"))
    run = run_deploy(
        lab,
        upload_holder=lambda _: temp_file_holder(lambda: upload_dir_names(stack.container("nginx"))),
        # The deploy names each old replica with its hostname: "stopping <name> (<host>): SIGTERM".
        stops_holder=lambda line, host: f"({host})" in line and "SIGTERM" in line,
    )
    try:
        assert_dropped_nothing(
            run, lambda: [n for n in upload_dir_names(stack.container("nginx")) if n.startswith(".partial-")]
        )
        after = set(stack.containers("app"))
        assert len(after) == len(before) and not after & before, (
            f"the deploy should replace all {len(before)} replicas: {sorted(before)} -> {sorted(after)}"
        )
        print(f"make deploy (compose), Socket.IO: {held_socketio.assert_every_client_came_back()}")
    finally:
        delete_upload(lab, run.upload.name)
