"""`make watch`: each saved edit of a .conf file under nginx/ is re-rendered, checked with
`nginx -t` and, when nginx accepts it, live in the running stack a moment later. A refused edit
prints nginx's own message and the running config keeps serving; save a fix and it goes live.

Both modes, one mechanism: a file watcher (watchfiles, from .venv) calling the same reload as
`make reload` (labctl.stack). Not Compose's `develop.watch`: its `sync+exec` action, the one that
could run the reload, makes Compose older than 2.32 refuse the whole compose.yaml (docs/COMPOSE.md).
Ctrl-C stops the watcher only: nginx and gunicorn run in their own sessions, or in containers.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import stack
from .venv import reexec_in_venv


def is_config(path: str) -> bool:
    """What nginx-ctl.sh renders: .conf files (an editor's swap and backup files are not)."""
    return path.endswith(".conf")


def reload(changed: list[str]) -> None:
    print(f"lab: changed: {', '.join(changed)}", flush=True)
    try:
        code = stack.reload()
    except SystemExit as error:  # the stack went away: say so, keep watching
        print(error, flush=True)
        return
    if code == 0:
        print("lab: live", flush=True)
    else:
        print("lab: not applied (nginx's message above); the running config keeps serving", flush=True)


def main(_args: argparse.Namespace) -> int:
    mode = stack.require().MODE
    reexec_in_venv(["watch"])
    # Only here, from .venv: scripts/labctl itself imports with the standard library alone.
    from watchfiles import watch

    source = stack.nginx_source().resolve()
    ready = False
    try:
        # yield_on_timeout: an empty batch once the watcher is in place (and each idle second), so
        # "watching" is printed only when an edit can no longer be missed.
        changes_seen = watch(
            source,
            watch_filter=lambda _change, path: is_config(path),
            rust_timeout=1000,
            yield_on_timeout=True,
        )
        for changes in changes_seen:
            if not ready:
                ready = True
                print(
                    f"lab: watching {source} for the {mode} stack: each saved .conf is checked "
                    "(nginx -t) and reloaded; Ctrl-C stops the watcher, not the stack",
                    flush=True,
                )
            if not changes:
                continue
            reload(sorted({str(Path(path).relative_to(source)) for _, path in changes}))
    except KeyboardInterrupt:
        pass
    print(f"lab: watch stopped; the {mode} stack keeps running", flush=True)
    return 0
