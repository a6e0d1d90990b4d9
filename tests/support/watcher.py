"""`scripts/lab watch` as a user runs it, from a test: its output read as it comes, waits bounded,
and Ctrl-C as a terminal sends it (SIGINT to the watcher's whole process group)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from labctl import paths

READY = "lab: watching "


class Watcher:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        """The first line (from now on) that contains ``text``; AssertionError after ``timeout``."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                line = self._lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"the watcher exited ({self.process.wait()}): {''.join(self.output)}")
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} from the watcher within {timeout:.0f}s: {''.join(self.output)}")

    def since(self, start: int) -> str:
        return "".join(self.output[start:])

    def ctrl_c(self, timeout: float = 10) -> int:
        """SIGINT to the watcher's process group, as Ctrl-C in its terminal; its exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=timeout)
        self.wait_for("watch stopped", timeout=5)
        return code


def _as_a_terminal_starts_it() -> None:
    """SIGINT as a shell in a terminal leaves it for the command it starts: the default. A suite
    run in the background of a non-interactive shell (`make test &`) inherits SIGINT ignored, and
    Python then installs no KeyboardInterrupt: the watcher would never see the test's Ctrl-C
    (seen: the test timing out only when so launched)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def watching(env: Mapping[str, str] | None = None) -> Iterator[Watcher]:
    """`scripts/lab watch` in its own process group (its own "terminal"), until it says it watches;
    killed at the end if a test left it running."""
    process = subprocess.Popen(
        [str(paths.SCRIPTS / "lab"), "watch"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        preexec_fn=_as_a_terminal_starts_it,
    )
    try:
        watcher = Watcher(process)
        watcher.wait_for(READY, timeout=60)  # the first run may install .venv's pins
        yield watcher
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
