"""Several nodes (`LAB_SWARM_NODES=3 make swarm-up`; CI's swarm path): app tasks on every node,
uploads taken on any node downloaded intact through the manager's nginx, a node drained under
load dropping nothing, a worker lost under load (`docker stop` of its container) costing at most
the requests in flight, its tasks rescheduled, the websockets reconnected."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import pytest

import labsettings
from labctl import swarm, swarmnodes, traffic
from support.lab import Lab
from support.swarmctl import spec, upload_dir_names, uploads_over_nodes

UPLOADS = 12  # spread by nginx over 3 nodes: each node takes some (asserted)
UPLOAD_BYTES = 4 * 1024 * 1024
RESCHEDULE_TIMEOUT_S = 120
LOAD_S = 90


@pytest.fixture(scope="module", autouse=True)
def nodes() -> dict[str, dict[str, str]]:
    engines = swarmnodes.engines()
    if not swarmnodes.running():
        pytest.skip("one node: these run on LAB_SWARM_NODES=3 (CI's swarm path, docs/SCALING.md)")
    return engines


def app_nodes() -> dict[str, int]:
    """How many running app tasks each node has."""
    names = swarm.node_names()
    found: dict[str, int] = {}
    for task in swarm.running_tasks("app"):
        found[names[task.node_id]] = found.get(names[task.node_id], 0) + 1
    return found


def wait_for(condition, what: str, timeout_s: float = RESCHEDULE_TIMEOUT_S) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout_s, f"not within {timeout_s:.0f}s: {what}"
        time.sleep(1)
    return time.monotonic() - started


def test_app_tasks_run_on_every_node_and_say_which(http, lab, nodes):
    assert set(app_nodes()) == set(nodes), (
        f"app tasks per node {app_nodes()}: Swarm spreads a service's tasks over the nodes"
    )
    seen = {http.get(lab.url + "/debug/request", timeout=10).json()["served_by"]["node"] for _ in range(60)}
    assert seen == set(nodes), f"60 GETs answered by {seen}: nginx reaches tasks on other nodes (overlay)"


@pytest.fixture
def uploads(lab: Lab) -> Iterator[dict[str, str]]:
    made: dict[str, str] = {}
    yield made
    with lab.session() as session:
        for name in made:
            session.delete(f"{lab.url}/files/{name}", timeout=30)


def test_an_upload_taken_on_any_node_downloads_intact_through_nginx(http, lab, nodes, uploads):
    sent = uploads_over_nodes(http, lab, UPLOADS, UPLOAD_BYTES)
    uploads.update({upload.name: upload.sha256 for upload in sent})
    by_node = {node: [u.name for u in sent if u.node == node] for node in nodes}
    assert all(by_node.values()), f"uploads per node {by_node}: every node should have taken some"
    for upload in sent:
        download = http.get(f"{lab.url}/files/{upload.name}", timeout=60)
        assert download.status_code == 200, (
            f"{upload.name}, taken on {upload.node}: download {download.status_code} from nginx on node1: "
            "the uploads are not on storage every node shares (compose.swarm-shared.yaml's bind of "
            f"{swarmnodes.SHARED_UPLOADS}, the GlusterFS mount)"
        )
        assert hashlib.sha256(download.content).hexdigest() == upload.sha256, f"{upload.name} differs"
    assert not [n for n in upload_dir_names() if n.startswith(".partial-")], "a partial file is left"


def test_the_app_writes_onto_glusterfs_in_pieces_larger_than_a_local_disks(http, lab):
    """compose.swarm-shared.yaml's LAB_UPLOAD_WRITE_KIB reaches every task: through FUSE each
    os.write is a request to three replicas (docs/SCALING.md: 16 KiB pieces 44-51 MB/s, 1 MiB 53-66)."""
    env = dict(line.split("=", 1) for line in spec("app")["TaskTemplate"]["ContainerSpec"]["Env"])
    piece_kib = labsettings.UPLOAD_WRITE_KIB.value(env)
    assert piece_kib > labsettings.UPLOAD_WRITE_KIB.value({}), (
        f"the app's tasks write uploads onto GlusterFS in {piece_kib} KiB pieces, a local disk's default"
    )
    shown = {http.get(lab.url + "/debug/settings", timeout=10).json()["upload_write_kib"] for _ in range(30)}
    assert shown == {piece_kib}, f"30 GETs of /debug/settings said {shown}, the service sets {piece_kib}"


def load(lab: Lab) -> traffic.Load:
    return traffic.Load(lab.endpoint, http_threads=4, websockets=4, max_requests=50_000, max_seconds=LOAD_S)


def test_a_node_drained_under_load_drops_nothing(lab):
    (node, _), *_ = sorted(app_nodes().items(), key=lambda item: item[0] == "node1")
    try:
        with load(lab) as running:
            time.sleep(3)
            running.note(f"drain {node}")
            swarm.docker("node", "update", "--availability", "drain", node)
            took = wait_for(
                lambda: node not in app_nodes() and sum(app_nodes().values()) == 3, f"{node}'s tasks moved"
            )
            running.note(f"{node} drained in {took:.1f}s")
            time.sleep(3)
    finally:
        swarm.docker("node", "update", "--availability", "active", node)
    recording = running.recording
    print(f"drain {node}: tasks moved in {took:.1f}s; {recording.summary()}")
    assert recording.served > 0 and recording.failures() == [], (
        f"draining {node} failed requests: {recording.failures()[:10]}\n{recording.timeline()}"
    )
    assert recording.cut_websockets == 0, f"websockets cut (not closed 1001/1012): {recording.close_codes()}"


def test_a_worker_lost_under_load_costs_only_its_requests_in_flight(lab):
    workers = sorted(node for node in app_nodes() if node != "node1")
    assert workers, f"no app task on a worker: {app_nodes()}"
    node = workers[0]
    number = int(node.removeprefix("node"))
    try:
        with load(lab) as running:
            time.sleep(3)
            running.note(f"docker stop of {node}'s container")
            stopped = time.monotonic()
            swarmnodes.stop(number)
            took = wait_for(
                lambda: node not in app_nodes() and sum(app_nodes().values()) == 3,
                f"{node}'s tasks rescheduled on the other nodes",
            )
            running.note(f"tasks rescheduled {took:.1f}s after the stop began")
            time.sleep(5)
    finally:
        swarmnodes.restart(number)
    recording = running.recording
    lost = time.monotonic() - stopped
    print(f"{node} stopped: tasks rescheduled in {took:.1f}s (of {lost:.0f}s); {recording.summary()}")
    # Each of the load's HTTP threads has one request in flight at a time: at most that many can
    # have been on the lost node when it went; nginx retries what it had not started to answer.
    assert len(recording.failures()) <= recording.http_threads, (
        f"{len(recording.failures())} failed GETs, more than the {recording.http_threads} in flight: "
        f"{recording.failures()[:10]}\n{recording.timeline()}"
    )
    assert recording.reconnected >= recording.cut_websockets, (
        f"websockets cut {recording.cut_websockets}, reconnected {recording.reconnected}"
    )
    with lab.session() as session:
        seen = {
            session.get(lab.url + "/debug/request", timeout=10).json()["served_by"]["node"] for _ in range(30)
        }
    assert node not in seen, f"{node} is down but answered? {seen}"
