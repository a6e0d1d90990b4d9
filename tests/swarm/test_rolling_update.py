"""`make swarm-deploy` under load: Swarm replaces every app task start-first, the load's requests
all succeed, its websockets are closed with 1001/1012 and reconnect, an upload in flight on a
task being stopped finishes, nothing partial is left."""

from __future__ import annotations

from labctl import swarm
from support.deploying import assert_dropped_nothing, delete_upload, run_deploy, temp_file_holder
from support.swarmctl import spec, upload_dir_names


def test_a_rolling_update_under_load_replaces_every_task_and_drops_nothing(lab):
    before = {task.id for task in swarm.running_tasks("app")}
    run = run_deploy(
        lab,
        upload_holder=lambda _: temp_file_holder(upload_dir_names),
        # swarm.deploy names each old task with its hostname: "stopping <task> (<host>): SIGTERM".
        stops_holder=lambda line, host: f"({host})" in line and "SIGTERM" in line,
    )
    try:
        assert run.timeline["mode"] == swarm.MODE
        assert_dropped_nothing(run, lambda: [n for n in upload_dir_names() if n.startswith(".partial-")])
        after = {task.id for task in swarm.running_tasks("app")}
        assert len(after) == len(before) and not after & before, (
            f"the update should replace all {len(before)} tasks: {sorted(before)} -> {sorted(after)}"
        )
        assert spec("app")["UpdateConfig"]["Order"] == "start-first"
    finally:
        delete_upload(lab, run.upload.name)
