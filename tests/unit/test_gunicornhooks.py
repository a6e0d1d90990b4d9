"""gunicorn's lifecycle hooks (services/app/gunicornhooks.py) without a running gunicorn: a fake
server holding a log, a fake worker, and a cgroup written out as the kernel writes it (v2)."""

from __future__ import annotations

import runpy
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from gunicorn.config import KNOWN_SETTINGS
from gunicorn.errors import HaltServer

import gunicornhooks
import labsettings

pytestmark = pytest.mark.no_stack

GUNICORN_CONF = Path(gunicornhooks.__file__).with_name("gunicorn.conf.py")


@dataclass
class Log:
    said: list[tuple[str, str]] = field(default_factory=list)

    def warning(self, message: str, *args: object) -> None:
        self.said.append(("warning", message % args))

    def error(self, message: str, *args: object) -> None:
        self.said.append(("error", message % args))


@dataclass
class Server:
    """What the hooks read of gunicorn's Arbiter: its log, and its listeners (empty once stopping)."""

    log: Log = field(default_factory=Log)
    LISTENERS: list[object] = field(default_factory=lambda: [object()])


@dataclass
class Worker:
    pid: int


def cgroup(root: Path, oom_kills: int = 0, refused: int = 0) -> Path:
    root.mkdir(exist_ok=True)
    (root / "cgroup.controllers").write_text("memory pids\n")
    (root / "memory.events").write_text(f"low 0\nhigh 0\nmax 0\noom 0\noom_kill {oom_kills}\n")
    (root / "pids.events").write_text(f"max {refused}\n")
    return root


def uploads(tmp_path: Path, *names: str) -> Path:
    directory = tmp_path / "uploads"
    directory.mkdir()
    for name in names:
        (directory / name).write_bytes(b"part")
    return directory


def test_a_dead_workers_partial_uploads_are_removed_and_no_one_elses(tmp_path: Path) -> None:
    directory = uploads(
        tmp_path, ".partial-web1-123-a", ".partial-web1-1234-b", ".partial-web2-123-c", "kept.bin"
    )
    lifecycle = gunicornhooks.Lifecycle(directory, "web1", watch_limits=False)
    server = Server()
    lifecycle.child_exit(server, Worker(pid=123))
    assert sorted(p.name for p in directory.iterdir()) == [
        ".partial-web1-1234-b",
        ".partial-web2-123-c",
        "kept.bin",
    ]
    assert server.log.said == [("warning", "removed .partial-web1-123-a left by worker 123")]


@pytest.mark.parametrize(("watching", "left"), [(True, [".partial-web2-7-b"]), (False, None)])
def test_a_restarted_container_removes_what_its_last_run_left(
    tmp_path: Path, watching: bool, left: list[str] | None
) -> None:
    """Only with LAB_RESTART_ON_LIMIT (a container): natively a second master of the same host may
    be serving (USR2), with uploads in flight."""
    directory = uploads(tmp_path, ".partial-web1-7-a", ".partial-web2-7-b")
    lifecycle = gunicornhooks.Lifecycle(directory, "web1", watching, cgroup(tmp_path / "cg"))
    lifecycle.on_starting(Server())
    names = sorted(p.name for p in directory.iterdir())
    assert names == (left if left is not None else [".partial-web1-7-a", ".partial-web2-7-b"])


@pytest.mark.parametrize(("graceful", "longest", "kept"), [(3, 2, True), (2, 2, False), (2, 2.5, False)])
def test_graceful_timeout_must_stay_above_the_longest_request(
    graceful: float, longest: float, kept: bool
) -> None:
    problem = gunicornhooks.graceful_timeout_problem(graceful, longest)
    if kept:
        assert problem is None
    else:
        assert problem == (
            f"GUNICORN_GRACEFUL_TIMEOUT={graceful:g} must stay above LAB_LONGEST_REQUEST_S={longest:g}: "
            "a graceful stop would cut requests it promises to finish"
        )


def test_a_worker_killed_at_the_memory_limit_halts_the_master_with_the_restart_status(
    tmp_path: Path,
) -> None:
    root = cgroup(tmp_path / "cg", oom_kills=2)
    lifecycle = gunicornhooks.Lifecycle(uploads(tmp_path), "web1", watch_limits=True, cgroup=root)
    server = Server()
    lifecycle.child_exit(server, Worker(pid=5))  # no rise since the start: a worker that just ended

    cgroup(root, oom_kills=3)
    with pytest.raises(HaltServer) as halted:
        lifecycle.child_exit(server, Worker(pid=6))
    assert halted.value.exit_status == gunicornhooks.LIMIT_HIT_EXIT == 75
    assert "memory limit hit: the kernel killed 1 process(es)" in halted.value.reason
    assert halted.value.reason.endswith(gunicornhooks.LIMIT_HIT_STOPS)
    lifecycle.on_exit(server)  # said once: on_exit keeps quiet and the status stays HaltServer's
    assert server.log.said == []


def test_a_worker_ending_while_gunicorn_stops_is_not_a_limit_hit(tmp_path: Path) -> None:
    root = cgroup(tmp_path / "cg")
    lifecycle = gunicornhooks.Lifecycle(uploads(tmp_path), "web1", watch_limits=True, cgroup=root)
    cgroup(root, oom_kills=1)
    lifecycle.child_exit(Server(LISTENERS=[]), Worker(pid=5))  # listeners closed: stopping


def test_a_hit_that_killed_no_worker_sets_the_exit_status(tmp_path: Path) -> None:
    root = cgroup(tmp_path / "cg")
    lifecycle = gunicornhooks.Lifecycle(uploads(tmp_path), "web1", watch_limits=True, cgroup=root)
    server = Server()
    lifecycle.on_exit(server)  # no hit: gunicorn's own status
    cgroup(root, refused=4)
    with pytest.raises(SystemExit) as exited:
        lifecycle.on_exit(server)
    assert exited.value.code == 75
    assert server.log.said == [("error", f"lab: {lifecycle.limit_hit()}; {gunicornhooks.LIMIT_HIT_STOPS}")]
    assert "pids limit hit: the kernel refused 4 fork(s)" in server.log.said[0][1]


def test_without_restart_on_limit_no_hit_is_ever_seen(tmp_path: Path) -> None:
    root = cgroup(tmp_path / "cg")
    lifecycle = gunicornhooks.Lifecycle(uploads(tmp_path), "web1", watch_limits=False, cgroup=root)
    cgroup(root, oom_kills=9, refused=9)
    assert lifecycle.limit_hit() is None
    lifecycle.child_exit(Server(), Worker(pid=5))
    lifecycle.on_exit(Server())


def test_the_servers_a_worker_starts_are_kept_to_stop_accepting() -> None:
    class GeventServer:
        started = 0

        def start(self) -> None:
            GeventServer.started += 1

    class FakeWorker:
        server_class = GeventServer

    worker = FakeWorker()
    servers = gunicornhooks.stop_accepting_servers(worker)
    assert servers == []
    one, two = worker.server_class(), worker.server_class()
    one.start()
    two.start()
    assert servers == [one, two] and GeventServer.started == 2
    assert gunicornhooks.stop_accepting_servers(Worker(pid=1)) == []  # a worker without one


def test_every_gunicorn_mark_names_a_gunicorn_setting() -> None:
    known = {setting.name for setting in KNOWN_SETTINGS}
    marked = {s.gunicorn for s in labsettings.SETTINGS.values() if s.gunicorn}
    assert marked and marked <= known, marked - known


def test_a_bad_app_setting_stops_the_master_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_MAX_UPLOAD_MB", "lots")
    with pytest.raises(SystemExit, match=r"^lab: bad setting LAB_MAX_UPLOAD_MB: invalid literal"):
        gunicornhooks.read_settings()


def test_gunicorn_conf_is_the_marked_settings_and_the_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAB_SCENARIO", raising=False)
    monkeypatch.delenv("GUNICORN_PIDFILE", raising=False)
    monkeypatch.setenv("GUNICORN_BIND", "127.0.0.1:1,unix:/tmp/lab.sock")
    conf = runpy.run_path(str(GUNICORN_CONF))
    expected = labsettings.gunicorn_settings()
    assert {name: conf[name] for name in expected} == expected
    assert conf["bind"] == ["127.0.0.1:1", "unix:/tmp/lab.sock"] and conf["pidfile"] is None
    for hook in ("on_starting", "child_exit", "on_exit", "post_fork", "post_worker_init"):
        assert conf[hook].__self__.__class__ is gunicornhooks.Lifecycle, hook
