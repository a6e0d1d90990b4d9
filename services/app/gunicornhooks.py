"""gunicorn's side of the lab: its settings read and checked, and its lifecycle hooks.

``gunicorn.conf.py`` only names what is here. Importable without gevent or the app (the master
loads it before any worker has patched anything; the unit tests load it as it is): the app is
imported by ``post_worker_init``, in the worker, after gevent's patching.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
from pathlib import Path
from typing import Any

from gunicorn.errors import HaltServer

import cgrouplimits
import labsettings as lab

# LAB_RESTART_ON_LIMIT (compose): a container that hit its memory or pids limit stops with this
# status, which its `restart: on-failure` policy answers by starting it again. EX_TEMPFAIL: the
# failure passes, a retry (the restart) is the cure; gunicorn's own statuses are 3 and 4.
LIMIT_HIT_EXIT = os.EX_TEMPFAIL
LIMIT_HIT_STOPS = "stopping for the engine to restart the container"
# How often each worker reads the cgroup's counters: two small files, so a hit is seen within this.
LIMIT_POLL_S = 1.0


def apply_scenario_env() -> None:
    """A scenario may ship an ``app.env``: with LAB_SCENARIO set, its values go into the
    environment before anything reads it, so the same file works in compose and native mode."""
    name = lab.SCENARIO.value()
    env_file = lab.SCENARIOS_DIR.value() / name / "app.env"
    if name and env_file.is_file():
        os.environ.update(lab.read_env_file(env_file))


def raise_open_files_limit() -> None:
    """Each websocket holds a descriptor in its worker: take the hard limit the engine (or the
    shell) allows rather than a soft one of 1024, instead of asking Docker for a number (compose
    `ulimits` above dockerd's own hard limit stop the container from starting). Workers inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def graceful_timeout_problem(graceful_timeout: float, longest_request: float) -> str | None:
    """Why this graceful_timeout breaks the promise of LAB_LONGEST_REQUEST_S, None if it keeps it."""
    if graceful_timeout > longest_request:
        return None
    return (
        f"GUNICORN_GRACEFUL_TIMEOUT={graceful_timeout:g} must stay above "
        f"LAB_LONGEST_REQUEST_S={longest_request:g}: a graceful stop would cut requests it promises "
        "to finish"
    )


def read_settings() -> dict[str, Any]:
    """gunicorn's settings from their declarations (labsettings, ``gunicorn=``), checked here, in
    the master: a bad one stops the start with one line (SystemExit) instead of a traceback
    from every worker that fails to boot. The app's own settings are checked here too."""
    try:
        settings = lab.gunicorn_settings()
        problem = graceful_timeout_problem(
            lab.GUNICORN_GRACEFUL_TIMEOUT.value(), lab.LONGEST_REQUEST_S.value()
        )
        lab.AppSettings.from_env()
    except ValueError as error:
        raise SystemExit(f"lab: bad setting {error}") from None
    if problem:
        raise SystemExit(f"lab: {problem}")
    return settings


class Lifecycle:
    """The hooks of one gunicorn master (``gunicorn.conf.py`` names its methods as gunicorn's hooks).

    ``watch_limits`` (LAB_RESTART_ON_LIMIT): the kernel's counts of ``cgroup`` when this master
    started are kept, and a rise since then is a limit hit in this run."""

    def __init__(
        self, upload_dir: Path, host: str, watch_limits: bool, cgroup: Path = cgrouplimits.ROOT
    ) -> None:
        self.upload_dir = upload_dir
        self.host = host
        self.cgroup = cgroup
        self.limit_hits_at_start = cgrouplimits.hits(cgroup) if watch_limits else None
        # Set once the master has said why it halts (child_exit), so that on_exit does not say it again.
        self.limit_hit_told = False

    @classmethod
    def from_env(cls) -> Lifecycle:
        return cls(lab.UPLOAD_DIR.value(), socket.gethostname(), lab.RESTART_ON_LIMIT.value())

    def limit_hit(self) -> str | None:
        """One line naming each limit hit since this master started; None if none was (or when
        not watching)."""
        if self.limit_hits_at_start is None:
            return None
        return cgrouplimits.hit_since(self.limit_hits_at_start, self.cgroup)

    def remove_partial_uploads(self, server: Any, pattern: str, whose: str) -> None:
        for path in self.upload_dir.glob(pattern):
            path.unlink(missing_ok=True)
            server.log.warning("removed %s left by %s", path.name, whose)

    def on_starting(self, server: Any) -> None:
        # A container the engine starts again keeps its host name: a temp file with it was left by
        # the run before, killed whole (an OOM kill of its master, a SIGKILL), when no master was
        # left to clean up after its workers. Only there (LAB_RESTART_ON_LIMIT): natively a second
        # master of the same host may be serving (USR2), its uploads in flight.
        if self.limit_hits_at_start is not None:
            self.remove_partial_uploads(
                server, f"{lab.TEMP_PREFIX}{self.host}-*", "an earlier run of this container"
            )

    def child_exit(self, server: Any, worker: Any) -> None:
        # A worker killed mid-upload (SIGKILL, OOM, timeout) cannot discard its temp file: the
        # master removes it when it reaps the worker.
        self.remove_partial_uploads(
            server, f"{lab.temp_prefix(self.host, worker.pid)}*", f"worker {worker.pid}"
        )
        # A worker that ends while gunicorn is not stopping (its listeners are closed first) and
        # the kernel's counters risen: the OOM killer took it. The whole container stops,
        # gracefully (the other workers finish what they have), with the status the restart
        # policy answers; raised here, as gunicorn halts for a worker that failed to boot, before
        # a replacement is forked.
        if server.LISTENERS:
            hit = self.limit_hit()
            if hit:
                self.limit_hit_told = True
                raise HaltServer(f"lab: {hit}; {LIMIT_HIT_STOPS}", LIMIT_HIT_EXIT)

    def on_exit(self, server: Any) -> None:
        # A hit that killed no worker (the OOM killer took another process of the container, a
        # fork or thread was refused): a worker saw it and sent this master SIGTERM
        # (post_worker_init), which stops gunicorn the usual way, listeners first, with status 0;
        # the status becomes 75 here (SystemExit from this hook is gunicorn's exit, halt() calls
        # it last).
        if not self.limit_hit_told:
            hit = self.limit_hit()
            if hit:
                server.log.error("lab: %s; %s", hit, LIMIT_HIT_STOPS)
                raise SystemExit(LIMIT_HIT_EXIT)

    def post_fork(self, server: Any, worker: Any) -> None:
        # LAB_GEVENT_MONITOR: gevent's monitor thread, which prints the stack of whatever holds the
        # loop past max_blocking_time to stderr (the app's log). gevent reads both when its hub
        # starts running, so here, in the new worker before init_process: the master never starts one.
        if lab.GEVENT_MONITOR.value():
            import gevent

            gevent.config.monitor_thread = True
            gevent.config.max_blocking_time = lab.GEVENT_MAX_BLOCKING_S.value()

    def post_worker_init(self, worker: Any) -> None:
        # Imported here, in the worker, after gevent's patching.
        from labapp import chat, realtime, sioslots
        from labapp.middleware import CloseWhenStopping
        from labapp.views.websockets import close_all_going_away

        # This worker's chat relay: one greenlet subscribed to the broker (labapp.chat).
        chat.room_of(worker.wsgi).start()
        # Socket.IO's clients told when that broker goes and comes back (labapp.realtime).
        realtime.start(worker.wsgi)

        # The worker's servers (gevent's), to stop accepting the moment it is told to stop:
        # gunicorn closes them only at its loop's next tick, up to a second later, and the
        # websocket clients sent away below would reconnect to this worker, to be sent away again.
        # Their connections wait in the shared listen backlog until a new worker takes them.
        servers = stop_accepting_servers(worker)
        if getattr(worker, "server_class", None) is not None:
            # This worker's own /socket.io/ port, which nginx sends its sessions to (labapp.sioslots).
            sioslots.serve(worker)

        def handle_exit(sig: int, frame: Any) -> None:
            # On SIGTERM (graceful stop, also what HUP sends old workers) the app closes each
            # keep-alive connection after its response and every websocket with 1001 at once, so
            # nothing is still in flight when graceful_timeout runs out
            # (labapp.middleware.CloseWhenStopping, labapp.views.websockets.going_away_on_shutdown).
            # First: no new Socket.IO session here, and this worker's slot port freed for the
            # worker replacing it (labapp.sioslots).
            sioslots.stop()
            for server in servers:
                server.stop_accepting()
            CloseWhenStopping.stop()
            close_all_going_away()
            realtime.going_away(worker.wsgi)
            worker.handle_exit(sig, frame)

        signal.signal(signal.SIGTERM, handle_exit)

        if self.limit_hits_at_start is not None:
            import gevent

            gevent.spawn(self.stop_the_master_on_a_limit_hit, worker)

    def stop_the_master_on_a_limit_hit(self, worker: Any) -> None:
        # What the master cannot see on its own (it has no timer to hang a check on): a limit hit
        # that killed no worker. The master is told to stop (SIGTERM): it closes the listening
        # socket first, so nginx's connects are refused and retried on another replica at once,
        # then stops every worker gracefully, this one included (on_exit sets the status). Were
        # the workers to stop on their own, the master would keep the socket open meanwhile, and
        # connections queued in its backlog would be reset seconds later, too old for nginx to
        # retry (measured: 502s).
        import gevent

        while worker.alive:
            gevent.sleep(LIMIT_POLL_S)
            hit = self.limit_hit()
            if hit:
                worker.log.error("lab: %s; worker %s asks the master to stop", hit, worker.pid)
                os.kill(worker.ppid, signal.SIGTERM)
                return


def stop_accepting_servers(worker: Any) -> list[Any]:
    """The servers ``worker`` starts from now on, kept in the list returned: its server class
    becomes a subclass that records each one as it starts (workers without one: none)."""
    servers: list[Any] = []
    if getattr(worker, "server_class", None) is not None:

        class StopsAccepting(worker.server_class):
            def start(self) -> None:
                super().start()
                servers.append(self)

        worker.server_class = StopsAccepting
    return servers
