"""`scripts/lab COMMAND`: what each Makefile target calls."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

from . import compose, native, offline, paths
from .venv import ensure_venv


def _mode_or_exit() -> str:
    mode = paths.running_mode()
    if mode is None:
        raise SystemExit("lab: no stack is running here: `make native-up` or `make up` first")
    return mode


def cmd_certs(_args: argparse.Namespace) -> int:
    return subprocess.run(["sh", str(paths.SCRIPTS / "certs.sh"), str(paths.CERTS)]).returncode


def cmd_native_up(_args: argparse.Namespace) -> int:
    native.up()
    return 0


def cmd_native_down(_args: argparse.Namespace) -> int:
    native.down()
    return 0


def cmd_up(_args: argparse.Namespace) -> int:
    compose.up()
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    compose.down(volumes=args.volumes)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    if _mode_or_exit() == "compose":
        return compose.logs(follow=args.follow)
    files = [str(path) for path in native.log_files().values()]
    return subprocess.run(["tail", "-n", "50", *(["-F"] if args.follow else []), *files]).returncode


def cmd_offline_images(args: argparse.Namespace) -> int:
    return offline.build(force=args.force)


def cmd_reload(_args: argparse.Namespace) -> int:
    if _mode_or_exit() == "compose":
        return compose.reload()
    return native.reload()


def cmd_dump(_args: argparse.Namespace) -> int:
    if _mode_or_exit() == "compose":
        print(compose.dump_config())
    else:
        print(native.dump_config())
    return 0


def pytest(*args: str) -> int:
    """Run pytest from .venv; exit status 5 (nothing collected) counts as a failure."""
    ensure_venv()
    return subprocess.run([str(paths.VENV_PYTHON), "-m", "pytest", *args], cwd=paths.ROOT).returncode


def cmd_unit_test(args: argparse.Namespace) -> int:
    return pytest("tests/unit", *args.pytest_args)


def cmd_integration_test(args: argparse.Namespace) -> int:
    return pytest("tests/integration", *args.pytest_args)


def cmd_compose_test(args: argparse.Namespace) -> int:
    return pytest("tests/compose", *args.pytest_args)


TEST_UPLOAD_LIMIT_MB = "512"


def cmd_test(_args: argparse.Namespace) -> int:
    """The README's test command: unit, then a native stack for integration, then down."""
    # The over-the-limit upload tests stream limit + 1 MiB: a smaller limit keeps them quick.
    os.environ.setdefault("LAB_MAX_UPLOAD_MB", TEST_UPLOAD_LIMIT_MB)
    results: dict[str, int] = {"unit": pytest("tests/unit")}
    try:
        native.up()
        results["integration"] = pytest("tests/integration")
    finally:
        native.down()
    print(
        "\nlab test summary: "
        + ", ".join(f"{k} {'ok' if v == 0 else f'FAILED ({v})'}" for k, v in results.items())
    )
    return 0 if all(code == 0 for code in results.values()) else 1


def cmd_test_compose(_args: argparse.Namespace) -> int:
    """The compose path of CI: `make up`, the integration suite unchanged, the compose-only checks,
    then down. With no registry, `make offline-images` first."""
    os.environ.setdefault("LAB_MAX_UPLOAD_MB", TEST_UPLOAD_LIMIT_MB)
    results: dict[str, int] = {}
    started = time.monotonic()
    try:
        compose.up()
        results["integration (compose)"] = pytest("tests/integration")
        results["compose checks"] = pytest("tests/compose")
    finally:
        compose.down()
    print(
        f"\nlab test-compose summary ({time.monotonic() - started:.0f}s): "
        + ", ".join(f"{k} {'ok' if v == 0 else f'FAILED ({v})'}" for k, v in results.items())
    )
    return 0 if len(results) == 2 and all(code == 0 for code in results.values()) else 1


def cmd_lint(_args: argparse.Namespace) -> int:
    ensure_venv()
    ruff = str(paths.VENV / "bin" / "ruff")
    checks = [[ruff, "check", "."], [ruff, "format", "--check", "."]]
    return max(subprocess.run(check, cwd=paths.ROOT).returncode for check in checks)


COMMANDS: dict[str, tuple[Callable[[argparse.Namespace], int], str]] = {
    "up": (cmd_up, "docker compose: build, start, wait until healthy, print the URLs"),
    "down": (cmd_down, "docker compose: stop and remove the stack (--volumes: the uploads too)"),
    "logs": (cmd_logs, "the running stack's logs (--follow to keep reading)"),
    "offline-images": (
        cmd_offline_images,
        "local stand-ins for the public base images + a wheelhouse, for engines with no registry",
    ),
    "compose-test": (
        cmd_compose_test,
        "compose-only checks against the running compose stack (tests/compose)",
    ),
    "certs": (cmd_certs, "generate the lab CA and server certificate under .lab/certs (once)"),
    "native-up": (cmd_native_up, "start nginx + gunicorn natively (LAB_SCENARIO honoured)"),
    "native-down": (cmd_native_down, "stop the native stack"),
    "reload": (cmd_reload, "nginx -t the edited config, then reload it in the running stack"),
    "dump": (cmd_dump, "nginx -T of the running stack"),
    "unit-test": (cmd_unit_test, "unit tests (no network)"),
    "integration-test": (
        cmd_integration_test,
        "integration suite against LAB_URL (default: the local stack)",
    ),
    "test": (cmd_test, "unit + native stack + integration, then down"),
    "test-compose": (cmd_test_compose, "compose stack + integration suite + compose checks, then down"),
    "lint": (cmd_lint, "ruff check and ruff format --check"),
}

PASSES_PYTEST_ARGS = {"unit-test", "integration-test", "compose-test"}
FLAGS: dict[str, list[tuple[str, str]]] = {
    "down": [("--volumes", "also remove the uploads volume")],
    "logs": [("--follow", "keep printing new lines (Ctrl-C stops)")],
    "offline-images": [("--force", "rebuild the stand-ins and the wheelhouse even when present")],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/lab", description="proxylab's commands")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (_, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text)
        if name in PASSES_PYTEST_ARGS:
            command.add_argument("pytest_args", nargs=argparse.REMAINDER)
        for flag, flag_help in FLAGS.get(name, []):
            command.add_argument(flag, action="store_true", help=flag_help)
    # argparse's REMAINDER does not take a leading "-k x": pass every unknown option to pytest.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command not in PASSES_PYTEST_ARGS:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.pytest_args = [*unknown, *args.pytest_args]
    try:
        return COMMANDS[args.command][0](args)
    except KeyboardInterrupt:
        return 130
    except subprocess.CalledProcessError as error:
        print(f"lab: {error}", file=sys.stderr)
        return error.returncode or 1
