"""`scripts/lab check`'s and `scripts/lab diagnose-score`'s options, apart from the check itself: the
CLI is built with the standard library before the virtualenv exists; the check (crossplane, the lab's
app) runs inside it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "conf", type=Path, help="your nginx config: a whole nginx.conf or a file of server blocks"
    )
    parser.add_argument(
        "--public-https-port", type=int, help="the HTTPS port clients use, if not the listen port"
    )
    parser.add_argument(
        "--public-http-port", type=int, help="the HTTP port clients use, if not the listen port"
    )
    parser.add_argument(
        "--idle", type=float, default=0, metavar="SECONDS", help="hold a websocket idle (e.g. 65)"
    )
    parser.add_argument(
        "--socketio-path",
        metavar="PATH",
        help="where your app answers Socket.IO (default: /socket.io/ where the config has such a location)",
    )
    parser.add_argument("--json", action="store_true", help="the rows as JSON on stdout")
    parser.add_argument(
        "--gunicorn",
        type=Path,
        metavar="GUNICORN_CONF",
        help="your gunicorn.conf.py (or a file with the gunicorn command line), judged with the nginx config",
    )
    parser.add_argument(
        "--html",
        type=Path,
        metavar="FILE",
        help="also write the report as one self-contained page (the config, its lines highlighted)",
    )
    parser.add_argument(
        "--no-namespace", action="store_true", help="remap ports instead of a network namespace"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="where the run writes (default .lab/check/): runs with their own run side by side (namespaces)",
    )


def add_score_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--corpus", choices=["corpus", "holdout", "all", "none"], default="all", help="which corpus to score"
    )
    parser.add_argument(
        "--mutations",
        choices=["static", "full", "none"],
        default="static",
        help="mutation score by the static rules (every mutant), the full lab check (slow), or none",
    )
