"""`scripts/lab COMMAND`: what each Makefile target calls."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

import labsettings

from . import (
    balancer,
    compose,
    conformance,
    deploy,
    docs,
    doctor,
    lint,
    logs,
    native,
    offline,
    paths,
    scenarios,
    setup,
    stack,
    swarm,
    upload,
    venv,
    verdict,
    watch,
)
from .bench import runner as bench
from .diagnose import options as check_options
from .venv import ensure_venv


def cmd_certs(_args: argparse.Namespace) -> int:
    return subprocess.run(["sh", str(paths.SCRIPTS / "certs.sh"), str(paths.CERTS)]).returncode


def cmd_native_up(_args: argparse.Namespace) -> int:
    stack.start(native)
    return 0


def cmd_native_down(_args: argparse.Namespace) -> int:
    native.down()
    return 0


def cmd_balancer_up(_args: argparse.Namespace) -> int:
    print(f"lab: balancer up: {balancer.up()} -> the lab's nginx (CA: {paths.CA.relative_to(paths.ROOT)})")
    return 0


def cmd_balancer_down(_args: argparse.Namespace) -> int:
    balancer.down()
    return 0


def cmd_up(_args: argparse.Namespace) -> int:
    stack.start(compose)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    compose.down(volumes=args.volumes)
    return 0


def cmd_swarm_up(_args: argparse.Namespace) -> int:
    stack.start(swarm)
    return 0


def cmd_swarm_down(args: argparse.Namespace) -> int:
    swarm.down(volumes=args.volumes)
    return 0


def cmd_swarm_deploy(args: argparse.Namespace) -> int:
    """`make deploy` of the swarm stack: the same bounded load and timeline (labctl.deploy)."""
    stack.require(swarm)
    return deploy.main(args)


def cmd_offline_images(args: argparse.Namespace) -> int:
    return offline.build(force=args.force)


def cmd_reload(_args: argparse.Namespace) -> int:
    code = stack.reload()
    if code == 0:  # what nginx now does, for the lab page (labctl.verdict)
        print(verdict.refresh(), flush=True)
    return code


def cmd_dump(_args: argparse.Namespace) -> int:
    print(stack.require().dump_config())
    return 0


def pytest(*args: str) -> int:
    """Run pytest from .venv; exit status 5 (nothing collected) counts as a failure."""
    ensure_venv()
    return subprocess.run([str(paths.VENV_PYTHON), "-m", "pytest", *args], cwd=paths.ROOT).returncode


# The pytest suites, each a command that passes its extra arguments on to pytest.
SUITES = {
    "unit-test": ("tests/unit", "unit tests (no network)"),
    "integration-test": ("tests/integration", "integration suite against LAB_URL (default: the local stack)"),
    "reliability-test": ("tests/reliability", "faults, bad input, TLS checks (needs/starts a native stack)"),
    "browser-test": ("tests/browser", "headless Chromium through the lab page (starts a stack if none)"),
    "compose-test": (
        "tests/compose",
        "compose-only checks against the running compose stack (tests/compose)",
    ),
    "swarm-test": ("tests/swarm", "swarm-only checks against the running swarm stack (tests/swarm)"),
    "scenarios": (
        "tests/scenarios",
        "the matrix: each symptom reproduced under its scenario, absent under the baseline",
    ),
    "diagnose-test": (
        "tests/diagnose",
        "lab check on the corpus of public configs (precision, recall), the doctor on a plain Flask app",
    ),
}


def suite_command(path: str) -> Callable[[argparse.Namespace], int]:
    return lambda args: pytest(path, *args.pytest_args)


def summary(title: str, results: dict[str, int]) -> int:
    """Print one line with every suite's outcome; non-zero unless every suite ran and passed."""
    print(
        f"\n{title}: " + ", ".join(f"{k} {'ok' if v == 0 else f'FAILED ({v})'}" for k, v in results.items())
    )
    return 0 if results and all(code == 0 for code in results.values()) else 1


TEST_UPLOAD_LIMIT_MB = "512"
TEST_APP_REPLICAS = "3"


def cmd_test(_args: argparse.Namespace) -> int:
    """The README's test command: unit; a native stack for integration, reliability and browser;
    the scenario matrix; `lab check` on the corpus; everything down at the end."""
    # The over-the-limit upload tests stream limit + 1 MiB: a smaller limit keeps them quick.
    os.environ.setdefault("LAB_MAX_UPLOAD_MB", TEST_UPLOAD_LIMIT_MB)
    results: dict[str, int] = {"unit": pytest("tests/unit")}
    try:
        native.up()
        results["integration"] = pytest("tests/integration")
        # On the same stack: it kills and restarts workers but leaves the stack up and healthy.
        results["reliability"] = pytest("tests/reliability")
        results["browser"] = pytest("tests/browser")
    finally:
        native.down()
    # The scenario suite starts a stack per scenario and stops the last; this also covers a killed run.
    try:
        results["scenarios"] = pytest("tests/scenarios")
    finally:
        native.down(quiet=True)
    # `lab check` runs each config of the corpus on its own (a network namespace, or the lab's ports).
    results["diagnose"] = pytest("tests/diagnose")
    return summary("lab test summary", results)


def cmd_test_compose(_args: argparse.Namespace) -> int:
    """The compose path of CI: `make up` with three app replicas, the integration suite unchanged
    (its HTTP/3 tests run here), Chromium over QUIC, the compose-only checks, then down with its
    volumes (checked: none left). With no registry, `make offline-images` first."""
    os.environ.setdefault("LAB_MAX_UPLOAD_MB", TEST_UPLOAD_LIMIT_MB)
    # The integration suite, unchanged, against several replicas behind the one nginx.
    os.environ.setdefault("LAB_APP_REPLICAS", TEST_APP_REPLICAS)
    results: dict[str, int] = {}
    started = time.monotonic()
    try:
        stack.start(compose)
        results["integration (compose)"] = pytest("tests/integration")
        # Chromium over QUIC: the compose stack's nginx speaks HTTP/3, the native one may not.
        results["browser h3 (compose)"] = pytest("tests/browser/test_http3.py")
        results["compose checks"] = pytest("tests/compose")
    finally:
        compose.down(volumes=True)  # the test uploads and certificates with it: nothing left behind
    left = compose.volumes_of(compose.project())
    if left:
        print(f"lab test-compose: down --volumes left {left}")
    results["no volume of the stack left"] = int(bool(left))
    return summary(f"lab test-compose summary ({time.monotonic() - started:.0f}s)", results)


def cmd_test_swarm(_args: argparse.Namespace) -> int:
    """CI's swarm path: `make swarm-up`, the integration suite unchanged, the swarm-only checks
    (chat across tasks, the client address, a rolling update under load), then swarm-down, which
    leaves the swarm again if swarm-up made it."""
    os.environ.setdefault("LAB_MAX_UPLOAD_MB", TEST_UPLOAD_LIMIT_MB)
    results: dict[str, int] = {}
    started = time.monotonic()
    engine_before = swarm.node_state() if setup.engine_answers() else "no engine"
    try:
        stack.start(swarm)
        results["integration (swarm)"] = pytest("tests/integration")
        results["swarm checks"] = pytest("tests/swarm")
    finally:
        swarm.down(volumes=True)
    # The engine is shared: its swarm state after the run must be the one it had before.
    engine_after = swarm.node_state()
    if engine_after != engine_before:
        print(f"lab test-swarm: the engine's swarm state was {engine_before!r}, is {engine_after!r} now")
    results["engine's swarm state as found"] = int(engine_after != engine_before)
    left = swarm.stack_volumes()
    if left:
        print(f"lab test-swarm: swarm-down --volumes left {left}")
    results["no volume of the stack left"] = int(bool(left))
    return summary(f"lab test-swarm summary ({time.monotonic() - started:.0f}s)", results)


def cmd_lint(_args: argparse.Namespace) -> int:
    return lint.run()


def cmd_scenario(args: argparse.Namespace) -> int:
    """In .venv: the Socket.IO scenarios' checks drive python-socketio's client."""
    venv.reexec_in_venv(args.lab_argv)
    return scenarios.run_one(args.name)


def cmd_check(args: argparse.Namespace) -> int:
    """`lab check FILE` runs in .venv (crossplane, the lab's app): imported only there."""
    venv.reexec_in_venv(args.lab_argv)
    from .diagnose import check

    return check.main(args, args.lab_argv)


def cmd_diagnose_score(args: argparse.Namespace) -> int:
    """Recall and precision of `lab check` on its corpora, and its mutation score (in .venv)."""
    venv.reexec_in_venv(args.lab_argv)
    from .diagnose import score

    return score.run(args)


def cmd_settings(_args: argparse.Namespace) -> int:
    for group, declared in labsettings.by_group():
        print(f"{group}:")
        for setting in declared:
            current = os.environ.get(setting.name)
            shown = f"{current!r} (set)" if current is not None else f"{setting.default!r}"
            print(f"  {setting.name:<30} {shown:<28} {setting.why}")
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    **{name: (suite_command(path), help_text) for name, (path, help_text) in SUITES.items()},
    "up": (cmd_up, "docker compose: build, start, wait until healthy, print the URLs"),
    "down": (cmd_down, "docker compose: stop and remove the stack (--volumes: the uploads too)"),
    "offline-images": (
        cmd_offline_images,
        "local stand-ins for the public base images + a wheelhouse, for engines with no registry",
    ),
    "certs": (cmd_certs, "generate the lab CA and server certificate under .lab/certs (once)"),
    "native-up": (cmd_native_up, "start nginx + gunicorn natively (LAB_SCENARIO honoured)"),
    "native-down": (cmd_native_down, "stop the native stack"),
    "balancer-up": (cmd_balancer_up, "a TLS-ending balancer (a second nginx) in front of the native stack"),
    "balancer-down": (cmd_balancer_down, "stop the balancer"),
    "reload": (cmd_reload, "nginx -t the edited config, then reload it in the running stack"),
    "deploy": (deploy.main, "replace every app process under a bounded load; print and plot the timeline"),
    "dump": (cmd_dump, "nginx -T of the running stack"),
    "test": (cmd_test, "unit + native stack + integration + reliability + browser + scenarios, then down"),
    "test-compose": (cmd_test_compose, "compose stack + integration suite + compose checks, then down"),
    "swarm-up": (
        cmd_swarm_up,
        "Docker Swarm (swarm init if in none): the same stack via docker stack deploy",
    ),
    "swarm-deploy": (
        cmd_swarm_deploy,
        "rolling update of the swarm stack's app under a bounded load; timeline",
    ),
    "swarm-down": (
        cmd_swarm_down,
        "remove the swarm stack; leave the swarm if swarm-up made it (--volumes too)",
    ),
    "test-swarm": (cmd_test_swarm, "swarm stack + integration suite + swarm checks, then swarm-down"),
    "lint": (cmd_lint, "ruff check, ruff format --check, gixy on the rendered baseline nginx config"),
    "upload": (upload.main, "stream FILE to the lab over verified TLS, check the server's sha256"),
    "logs": (logs.main, "nginx's access log and the app's log side by side, joined by request id"),
    "scenario": (cmd_scenario, "one scenario natively: its symptom, likely cause and fix"),
    "doctor": (doctor.main, "probe LAB_URL (any deployment) and name the likely cause of each failure"),
    "bench": (bench.cmd_bench, "benchmarks, each beside its reference: .lab/bench/results.json + chart"),
    "conformance": (
        conformance.main,
        "Autobahn|Testsuite against /ws/echo, direct and through nginx TLS (set up once in .lab/autobahn)",
    ),
    "docs": (docs.main, "rewrite the derived parts of the docs (scenario and settings tables)"),
    "check": (cmd_check, "run YOUR nginx config in front of the lab's app: what breaks, which line, the fix"),
    "diagnose-score": (
        cmd_diagnose_score,
        "lab check's recall and precision on its corpus and the held-out one, and its mutation score",
    ),
    "settings": (cmd_settings, "every setting: its value here, its default and why it exists"),
    "setup": (
        setup.main,
        "install what the lab needs where it is missing (--docker: the engine, Compose v2)",
    ),
    "watch": (watch.main, "reload the running stack on each saved edit under nginx/ (nginx -t first)"),
}


ARGUMENTS = {
    "upload": upload.add_arguments,
    "logs": logs.add_arguments,
    "scenario": lambda command: command.add_argument("name", help="a folder under nginx/scenarios/"),
    "bench": bench.add_arguments,
    "conformance": conformance.add_arguments,
    "deploy": deploy.add_arguments,
    "swarm-deploy": deploy.add_arguments,
    "docs": docs.add_arguments,
    "doctor": doctor.add_arguments,
    "check": check_options.add_arguments,
    "diagnose-score": check_options.add_score_arguments,
    "down": lambda command: command.add_argument(
        "--volumes", action="store_true", help="also remove the uploads volume"
    ),
    "swarm-down": lambda command: command.add_argument(
        "--volumes", action="store_true", help="also remove the stack's uploads volume"
    ),
    "setup": setup.add_arguments,
    "offline-images": lambda command: command.add_argument(
        "--force", action="store_true", help="rebuild the stand-ins and the wheelhouse even when present"
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lab", description="proxylab's commands")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name in SUITES:
            command.add_argument("pytest_args", nargs=argparse.REMAINDER)
        if name in ARGUMENTS:
            ARGUMENTS[name](command)
    args = parser.parse_args(argv)
    args.lab_argv = list(sys.argv[1:] if argv is None else argv)
    if getattr(args, "pytest_args", None) and args.pytest_args[0] == "--":
        args.pytest_args = args.pytest_args[1:]  # `lab browser-test -- -k chat`: argparse keeps the "--"
    try:
        # What this command needs from the system (nginx, Chromium, wrk...): installed if missing.
        if code := setup.ensure(args.command):
            return code
        return COMMANDS[args.command][0](args)
    except KeyboardInterrupt:
        return 130
    except subprocess.CalledProcessError as error:
        print(f"lab: {error}", file=sys.stderr)
        return error.returncode or 1
