"""`make swarm-deploy` of a new app image under load, Socket.IO clients connected: Swarm replaces
every app task start-first, the load's requests all succeed, its websockets are closed with
1001/1012 and reconnect, an upload in flight on a task being stopped finishes, nothing partial is
left, every Socket.IO client reconnects by itself to a new task."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl import paths, swarm
from support.deploying import assert_dropped_nothing, delete_upload, run_deploy, temp_file_holder
from support.swarmctl import spec, upload_dir_names


@pytest.fixture
def new_app_code() -> Iterator[Path]:
    """A file in the app's build context (COPY labapp), so the deploy's build makes a new image,
    as an edit of the app would; removed at the end (.gitignore'd, in case a killed run leaves it)."""
    path = paths.APP_DIR / "labapp" / f"zz-swarm-deploy-probe-{uuid.uuid4().hex[:8]}.txt"
    path.write_text("a new image for the rolling-update test\n")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def running_image() -> str:
    return spec("app")["TaskTemplate"]["ContainerSpec"]["Image"].split("@")[0]


def test_a_rolling_update_to_a_new_image_under_load_drops_nothing(lab, new_app_code, held_socketio):
    before = {task.id for task in swarm.running_tasks("app")}
    image_before = running_image()
    run = run_deploy(
        lab,
        upload_holder=lambda _: temp_file_holder(upload_dir_names),
        # swarm.deploy names each old task with its hostname: "stopping <task> (<host>): SIGTERM".
        stops_holder=lambda line, host: f"({host})" in line and "SIGTERM" in line,
    )
    try:
        assert run.timeline["mode"] == swarm.MODE
        assert_dropped_nothing(run, lambda: [n for n in upload_dir_names() if n.startswith(".partial-")])
        assert running_image() != image_before, (
            f"the app still runs {image_before}: the build with {new_app_code.name} should have made a "
            "new image, and the deploy rolled the service onto its new tag"
        )
        after = {task.id for task in swarm.running_tasks("app")}
        assert len(after) == len(before) and not after & before, (
            f"the update should replace all {len(before)} tasks: {sorted(before)} -> {sorted(after)}"
        )
        assert not [line for line in run.output if "docker service update --force" in line], (
            "a new image must roll by itself (its new tag changes the service), not by --force"
        )
        print(f"make swarm-deploy, Socket.IO: {held_socketio.assert_every_client_came_back()}")
    finally:
        delete_upload(lab, run.upload.name)
