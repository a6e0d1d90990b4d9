"""labctl.stack.start: the guard against another mode's stack and the failed-start report,
written once for the three modes, on a driver that fails the way compose's and swarm's do."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import pytest

from labctl import native, runstate, stack
from labctl.health import StartFailed


class FailingStack:
    """A stack whose start fails after it left containers behind (compose's `up --wait` timing out)."""

    MODE, UP, DOWN = "compose", "make up", "make down"

    def __init__(self) -> None:
        self.started = 0

    def up(self) -> None:
        self.started += 1
        raise StartFailed("`docker compose up --wait` exited with 1", "`make down` removes them")

    def down(self) -> None: ...

    def reload(self) -> int:
        return 0

    def dump_config(self) -> str:
        return ""

    def log_tail(self, lines: int = 60) -> dict[str, str]:
        return {"app": f"({lines} lines) worker failed to boot\n"}

    def logs_written(self) -> contextlib.AbstractContextManager[dict[str, str]]:
        return contextlib.nullcontext({})

    def nginx_container(self) -> str | None:
        return None

    def nginx_source(self) -> Path:
        return Path()

    def nginx_has_http3(self) -> bool:
        return False

    def deploy(self, note: Callable[[str], None]) -> None: ...

    def process_groups(self) -> dict[str, list[int]]:
        return {}


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """runstate's record in a temporary file: record(mode) as that mode's `up` would."""
    monkeypatch.setattr(runstate, "STATE", tmp_path / "stack.env")
    return lambda mode: runstate.record(mode, {})


def test_a_failed_start_shows_the_logs_and_what_is_left(
    record: Callable[[str], None], capsys: pytest.CaptureFixture[str]
) -> None:
    driver = FailingStack()
    with pytest.raises(SystemExit) as stopped:
        stack.start(driver)
    assert driver.started == 1
    assert str(stopped.value) == (
        "lab: the compose stack failed to start: `docker compose up --wait` exited with 1\n"
        "  `make down` removes them"
    )
    assert "--- app (last lines)\n(40 lines) worker failed to boot" in capsys.readouterr().err


@pytest.mark.parametrize(("running", "down"), [("native", "make native-down"), ("swarm", "make swarm-down")])
def test_another_modes_stack_is_never_started_over(
    record: Callable[[str], None], running: str, down: str
) -> None:
    record(running)
    driver = FailingStack()
    with pytest.raises(SystemExit, match=f"a {running} stack is running from this checkout: `{down}` first"):
        stack.start(driver)
    assert driver.started == 0


def test_the_same_modes_stack_is_started_again(record: Callable[[str], None]) -> None:
    record("compose")
    driver = FailingStack()
    with pytest.raises(SystemExit, match="failed to start"):
        stack.start(driver)
    assert driver.started == 1


def test_each_mode_is_one_driver() -> None:
    assert sorted(stack.BY_MODE) == ["compose", "native", "swarm"]
    assert {driver.DOWN for driver in stack.DRIVERS} == {"make native-down", "make down", "make swarm-down"}


def test_native_logs_written_are_what_each_log_got_during_the_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, error = tmp_path / "app.log", tmp_path / "error.log"
    app.write_text("before\n")
    monkeypatch.setattr(native, "log_files", lambda: {"app": app, "nginx error": error})
    with native.logs_written() as written:
        assert written == {}  # filled when the block ends
        with app.open("a") as log:
            log.write("WORKER TIMEOUT\n")
        error.write_text("upstream prematurely closed connection\n")  # a log the block saw begin
    assert written == {"app": "WORKER TIMEOUT\n", "nginx error": "upstream prematurely closed connection\n"}
