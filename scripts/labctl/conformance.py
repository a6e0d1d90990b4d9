"""`lab conformance`: Autobahn|Testsuite's fuzzingclient against the app's /ws/echo, straight to
gunicorn and through nginx over verified TLS, a table per section and one closing line.

The suite (PyPI ``autobahntestsuite``) runs on Python 2 only. It is set up once under
``.lab/autobahn/``, leaving the system's packages alone: CPython 2.7 from Debian 11's packages,
fetched by apt-get with a state of its own (its own source list, lists, cache; no dpkg status)
and unpacked with ``dpkg -x``; pip 20.3.4 (the last for Python 2) from its wheel; then the suite
with the pins it ships (its egg-info's requires.txt), built with gcc where there is no wheel.

``--core`` (CI): sections 1-7 and 10 through nginx only; fails on any FAILED case, or on more
NON-STRICT ones than CORE_NON_STRICT_BASELINE.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import subprocess
import tarfile
import time
from collections import Counter
from pathlib import Path

import labsettings

from . import endpoints, native, paths
from .venv import ensure_venv

HOME = paths.LAB / "autobahn"
ROOT = HOME / "root"  # Debian 11's python2.7, unpacked
SITE = HOME / "site"  # the suite and its pins (pip --target)
DOWNLOADS = HOME / "downloads"
REPORTS = HOME / "reports"
READY = HOME / "ready"
SUITE = "autobahntestsuite==25.10.1"
PIP_WHEEL = "pip==20.3.4"
# Build tools for the suite's sdists (pip --target runs setup.py with them on the path).
BUILD_PINS = ("setuptools==44.0.0", "wheel==0.37.1")
DEBIAN_SOURCE = "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} bullseye main\n"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_PACKAGES = (
    "python2.7",
    "python2.7-minimal",
    "libpython2.7",
    "libpython2.7-minimal",
    "libpython2.7-stdlib",
    "libpython2.7-dev",
    "python2.7-dev",
    "libssl1.1",
    "libffi7",
)
PYTHON2_WHEELS = (
    "--python-version",
    "2.7",
    "--abi",
    "cp27mu",
    "--platform",
    "manylinux1_x86_64",
    "--only-binary=:all:",
)
PYTHON2 = ROOT / "usr" / "bin" / "python2.7"
LIBS = ROOT / "usr" / "lib" / "x86_64-linux-gnu"

BEHAVIOURS = ("OK", "NON-STRICT", "INFORMATIONAL", "FAILED", "UNIMPLEMENTED")
CORE_CASES = [f"{section}.*" for section in (1, 2, 3, 4, 5, 6, 7, 10)]
# NON-STRICT cases of the core through nginx, measured with this branch: 6.4.3 and 6.4.4 (invalid
# UTF-8 noticed only once the whole frame was in) were the two before labapp.patches.wsread.
CORE_NON_STRICT_BASELINE = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--core",
        action="store_true",
        help="CI: sections 1-7 and 10 through nginx only; fails on FAILED or NON-STRICT over the baseline",
    )
    parser.add_argument(
        "--setup",
        action="store_true",
        help="only set the suite up under .lab/autobahn (CI does it in the background of make test)",
    )
    parser.add_argument("--cases", default="*", help="comma-separated case patterns (default: all)")
    parser.add_argument(
        "--via", choices=("both", "direct", "nginx"), default="both", help="which agents (default: both)"
    )


def python2_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONHOME": str(ROOT / "usr"),
        "LD_LIBRARY_PATH": str(LIBS),
        "PIP_CONFIG_FILE": os.devnull,  # the host's pip config names indexes for Python 3
        "PYTHONWARNINGS": "ignore",
        "CFLAGS": f"-I{ROOT / 'usr' / 'include'} -I{ROOT / 'usr' / 'include' / 'python2.7'}",
    }


def _run(command: list[str], what: str, **kwargs: object) -> None:
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"lab conformance: {what} failed (exit {done.returncode}):\n{tail}")


def _python2_from_debian() -> None:
    apt = HOME / "apt"
    for folder in (apt / "lists" / "partial", apt / "cache" / "archives" / "partial", DOWNLOADS):
        folder.mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(
        DEBIAN_SOURCE.format(mirror=labsettings.DEBIAN_MIRROR.value() or DEBIAN_MIRROR)
    )
    private = [
        f"-oDir::Etc::SourceList={apt / 'sources.list'}",
        "-oDir::Etc::SourceParts=/dev/null",
        f"-oDir::State::Lists={apt / 'lists'}",
        f"-oDir::Cache={apt / 'cache'}",
        "-oDir::State::status=/dev/null",
        f"-oAPT::Sandbox::User={pwd.getpwuid(os.getuid()).pw_name}",  # downloads into our own folder
        "-oDebug::NoLocking=1",
    ]
    _run(["apt-get", "-q", *private, "update"], "apt-get update (Debian 11 lists, private state)")
    _run(["apt-get", "-q", *private, "download", *DEBIAN_PACKAGES], "apt-get download", cwd=DOWNLOADS)
    shutil.rmtree(ROOT, ignore_errors=True)
    for deb in sorted(DOWNLOADS.glob("*.deb")):
        _run(["dpkg", "-x", str(deb), str(ROOT)], f"dpkg -x {deb.name}")


def suite_pins(sdist: Path) -> list[str]:
    """The suite's own pins: the requires.txt of its sdist's egg-info."""
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("egg-info/requires.txt"))
        extracted = archive.extractfile(member)
        assert extracted is not None
        text = extracted.read().decode()
    pins = []
    for line in text.splitlines():
        if line.startswith("["):
            break  # an extra's requirements follow: not the suite's own
        if line.strip():
            pins.append(line.strip())
    return pins


def install() -> None:
    """The suite under .lab/autobahn (once): Python 2.7, pip, the suite with its pins."""
    if READY.is_file():
        return
    started = time.monotonic()
    print(
        f"lab conformance: setting up Autobahn|Testsuite under {HOME.relative_to(paths.ROOT)} (once)",
        flush=True,
    )
    _python2_from_debian()
    ensure_venv()  # its pip fetches pip for Python 2.7, which has none yet
    host_pip = [
        str(paths.VENV_PYTHON),
        "-m",
        "pip",
        "download",
        "-q",
        "--disable-pip-version-check",
        "--no-deps",
        "-d",
    ]
    _run(
        [*host_pip, str(DOWNLOADS), PIP_WHEEL, *PYTHON2_WHEELS],
        "pip download pip (Python 2.7)",
    )
    _run([*host_pip, str(DOWNLOADS), SUITE, "--no-binary=:all:"], f"pip download {SUITE}")
    wheel = next(DOWNLOADS.glob("pip-*.whl"))
    sdist = next(DOWNLOADS.glob("autobahntestsuite-*.tar.gz"))
    shutil.rmtree(SITE, ignore_errors=True)
    env = {**python2_env(), "PYTHONPATH": str(SITE)}
    quiet = ["-q", "--disable-pip-version-check", "--no-python-version-warning", "--no-warn-script-location"]
    _run(
        [str(PYTHON2), str(wheel / "pip"), "install", *quiet, "--target", str(SITE), str(wheel)],
        "pip (Python 2.7)",
        env=env,
    )
    pip2 = [str(PYTHON2), "-m", "pip", "install", *quiet, "--target", str(SITE)]
    _run([*pip2, *BUILD_PINS], "setuptools and wheel (Python 2.7)", env=env)
    pins = [pin for pin in suite_pins(sdist) if not pin.lower().startswith("setuptools")]
    _run([*pip2, "--upgrade", str(sdist), *pins], "the suite with its pins (Python 2.7)", env=env)
    READY.write_text(f"{SUITE}\n")
    print(f"lab conformance: suite ready in {time.monotonic() - started:.0f}s", flush=True)


def wstest(spec: Path) -> None:
    """The fuzzingclient with ``spec``; the lab's CA verifies nginx's certificate."""
    launcher = (
        "import site, sys; site.addsitedir(sys.argv[1]); "  # the .pth files of zope's namespace
        "sys.argv = ['wstest', '-m', 'fuzzingclient', '-s', sys.argv[2]]; "
        "from autobahntestsuite.wstest import run; run()"
    )
    env = {**python2_env(), "SSL_CERT_FILE": str(paths.CA)}
    done = subprocess.run(
        [str(PYTHON2), "-c", launcher, str(SITE), str(spec)], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise SystemExit(f"lab conformance: wstest failed (exit {done.returncode}):\n{tail}")


def servers(via: str) -> list[dict[str, str]]:
    """The suite's agents: straight to gunicorn, and through nginx over verified TLS."""
    agents = {
        "direct": {"agent": "direct", "url": f"ws://127.0.0.1:{endpoints.app_port()}/ws/echo"},
        "nginx": {
            "agent": "nginx",
            "url": f"wss://localhost:{endpoints.https_port()}/ws/echo",
            "hostname": "localhost",  # with it the suite verifies the certificate (SSL_CERT_FILE)
        },
    }
    return list(agents.values()) if via == "both" else [agents[via]]


def section_of(case: str) -> int:
    return int(case.split(".")[0])


def tables(index: dict[str, dict[str, dict[str, object]]]) -> tuple[str, Counter[str]]:
    """A table per agent (a row per section, a column per behaviour) and the totals of all."""
    lines: list[str] = []
    totals: Counter[str] = Counter()
    for agent, cases in index.items():
        by_section: dict[int, Counter[str]] = {}
        for case, result in cases.items():
            behaviour = str(result["behavior"])
            by_section.setdefault(section_of(case), Counter())[
                behaviour if behaviour in BEHAVIOURS else "FAILED"
            ] += 1
        lines.append(f"\n{agent}:")
        lines.append(f"  {'section':<8}{'cases':>6}" + "".join(f"{b:>15}" for b in BEHAVIOURS))
        for section, counts in sorted(by_section.items()):
            lines.append(
                f"  {section:<8}{sum(counts.values()):>6}" + "".join(f"{counts[b]:>15}" for b in BEHAVIOURS)
            )
            totals.update(counts)
        notable = sorted(
            (
                case
                for case, result in cases.items()
                if result["behavior"] not in ("OK", "INFORMATIONAL", "UNIMPLEMENTED")
            ),
            key=lambda case: [int(part) for part in case.split(".")],
        )
        if notable:
            lines.append("  not OK: " + ", ".join(f"{case} {cases[case]['behavior']}" for case in notable))
    return "\n".join(lines), totals


def closing_line(totals: Counter[str]) -> str:
    return f"conformance: {sum(totals.values())} cases, " + ", ".join(f"{totals[b]} {b}" for b in BEHAVIOURS)


def run(via: str, cases: list[str]) -> Counter[str]:
    shutil.rmtree(REPORTS, ignore_errors=True)
    REPORTS.mkdir(parents=True)
    spec = HOME / "fuzzingclient.json"
    spec.write_text(
        json.dumps(
            {
                "outdir": str(REPORTS),
                "servers": servers(via),
                "cases": cases,
                "exclude-cases": [],
                "exclude-agent-cases": {},
            },
            indent=2,
        )
    )
    started = time.monotonic()
    wstest(spec)
    index = json.loads((REPORTS / "index.json").read_text())
    table, totals = tables(index)
    print(table)
    print(f"\nreports: {(REPORTS / 'index.html').relative_to(paths.ROOT)}; {time.monotonic() - started:.0f}s")
    print(closing_line(totals))
    return totals


def main(args: argparse.Namespace) -> int:
    install()
    if args.setup:
        return 0
    cases = CORE_CASES if args.core else [case.strip() for case in args.cases.split(",") if case.strip()]
    native.up()
    try:
        totals = run("nginx" if args.core else args.via, cases)
    finally:
        native.down()
    if totals["FAILED"]:
        print(f"lab conformance: {totals['FAILED']} case(s) FAILED")
        return 1
    if args.core and totals["NON-STRICT"] > CORE_NON_STRICT_BASELINE:
        print(
            f"lab conformance: {totals['NON-STRICT']} NON-STRICT, the baseline is {CORE_NON_STRICT_BASELINE}"
        )
        return 1
    return 0
