"""The running stack, whichever mode started it: config dump and logs for reports and tests."""

from __future__ import annotations

from collections import deque

from . import compose, native, paths


def dump_config() -> str:
    """nginx -T of the running stack, or a note saying why there is none."""
    mode = paths.running_mode()  # without a mode file this asks docker: once per call
    if mode == "native":
        return native.dump_config()
    if mode == "compose":
        return compose.dump_config()
    return "(no stack started from this checkout is running)"


def log_tail(lines: int = 60) -> dict[str, str]:
    """The last lines of each log, by name ("nginx access", "nginx error", "app")."""
    mode = paths.running_mode()
    if mode == "compose":
        return compose.log_tail(lines)
    tails = {}
    if mode == "native":
        for name, path in native.log_files().items():
            try:
                with open(path, errors="replace") as handle:
                    tails[name] = "".join(deque(handle, maxlen=lines))
            except OSError as error:
                tails[name] = f"({error})"
    return tails


def access_log_entries(lines: int = 2000) -> list[str]:
    """Recent raw lines of nginx's JSON access log."""
    return log_tail(lines).get("nginx access", "").splitlines()
