"""Each setting has one home, services/app/labsettings.py: what repeats a value elsewhere (a
compose.yaml fallback, a path the image or a mount must agree on) is checked against it here."""

from __future__ import annotations

import math
import re
import runpy

import pytest

import capacity
import labsettings
from labctl import paths

pytestmark = pytest.mark.no_stack

COMPOSE = (paths.ROOT / "compose.yaml").read_text()
# Laid over compose.yaml by `make swarm-up` (labctl/swarm.py): its fallbacks are checked the same way.
SWARM_OVERLAY = (paths.ROOT / "compose.swarm.yaml").read_text()
DOCKERFILE = (paths.APP_DIR / "Dockerfile").read_text()


def code(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


COMPOSE_CODE = code(COMPOSE)
FALLBACKS = re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", COMPOSE_CODE + "\n" + code(SWARM_OVERLAY))


def test_compose_yaml_has_fallbacks_to_check():
    assert len(FALLBACKS) >= 8, FALLBACKS


@pytest.mark.parametrize(("name", "fallback"), sorted(set(FALLBACKS)), ids=lambda v: str(v))
def test_every_compose_fallback_is_the_declared_default(name, fallback):
    assert name in labsettings.SETTINGS, f"compose files read {name}, which labsettings.py does not declare"
    declared = labsettings.SETTINGS[name].default
    assert fallback == declared, (
        f"a compose file falls back to {name}={fallback!r}; labsettings.py: {declared!r}"
    )


def test_the_upload_dir_is_the_same_in_the_image_compose_and_the_declaration():
    default = labsettings.UPLOAD_DIR.default
    assert f"x-upload-dir: &upload-dir {default}\n" in COMPOSE
    assert f"mkdir -p {default};" in DOCKERFILE and f"chown app:app {default}" in DOCKERFILE


def test_compose_mounts_the_scenarios_where_the_app_looks():
    assert f"./nginx/scenarios:{labsettings.SCENARIOS_DIR.default}:ro" in COMPOSE


@pytest.mark.parametrize(
    "source", ["labapp", "gunicorn.conf.py", "gunicornhooks.py", "capacity.py", "healthcheck.py"]
)
def test_the_app_reads_no_setting_around_the_declarations(source):
    path = paths.APP_DIR / source
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    reads = [
        f"{f.name}: {line.strip()}"
        for f in files
        for line in f.read_text().splitlines()
        if "os.environ.get(" in line or "getenv(" in line
    ]
    assert reads == [], f"settings read outside labsettings.py: {reads}"


def test_settings_are_unique_and_explained():
    for setting in labsettings.SETTINGS.values():
        assert setting.name.startswith(("LAB_", "GUNICORN_")), setting.name
        assert setting.group in labsettings.GROUPS, setting
        assert len(setting.why) > 15, f"{setting.name}: say why it exists"
        setting.value({})  # the default parses


def test_a_graceful_stop_keeps_its_promises_in_order():
    """stop_grace_period > graceful_timeout > the longest request a stop promises to finish:
    otherwise Docker SIGKILLs what gunicorn is finishing (grace-period-kill), or gunicorn cuts
    what it promised."""
    assert "    stop_grace_period: ${LAB_APP_STOP_GRACE_PERIOD:-" in COMPOSE_CODE, (
        "the app service's stop_grace_period must come from LAB_APP_STOP_GRACE_PERIOD"
    )
    grace = labsettings.APP_STOP_GRACE_PERIOD.value({})
    graceful = labsettings.GUNICORN_GRACEFUL_TIMEOUT.value({})
    longest = labsettings.LONGEST_REQUEST_S.value({})
    assert grace > graceful > longest, (
        f"stop_grace_period {grace:g}s, graceful_timeout {graceful}s, longest request {longest:g}s"
    )


def test_gunicorn_refuses_a_graceful_timeout_that_cuts_the_longest_request(monkeypatch):
    monkeypatch.setenv("GUNICORN_GRACEFUL_TIMEOUT", "2")
    monkeypatch.setenv("LAB_LONGEST_REQUEST_S", "2")
    with pytest.raises(SystemExit, match="must stay above LAB_LONGEST_REQUEST_S=2"):
        runpy.run_path(str(paths.APP_DIR / "gunicorn.conf.py"))


def test_nginx_memory_counts_the_connections_nginx_conf_allows_a_worker():
    """worker_connections counts both sides of a proxied connection: the limit's figure
    (capacity.NGINX_PROXIED_PER_WORKER) is half of it."""
    nginx_conf = (paths.NGINX_SRC / "nginx.conf").read_text()
    found = re.search(r"^\s*worker_connections (\d+);", nginx_conf, re.MULTILINE)
    assert found, "nginx.conf sets no worker_connections"
    assert int(found.group(1)) // 2 == capacity.NGINX_PROXIED_PER_WORKER


def test_the_app_memory_figure_counts_gunicorns_own_cap_per_worker():
    """The figure holds every websocket a worker's gevent pool accepts: the memory limit is never
    the first cap (a cap nobody sees is the bug worker_connections had)."""
    workers = max(2, math.ceil(float(labsettings.APP_CPUS.default)))  # GUNICORN_WORKERS=auto in that quota
    pool = int(labsettings.GUNICORN_WORKER_CONNECTIONS.default)
    held = workers * pool * capacity.APP_WEBSOCKET_KIB * capacity.KIB
    assert capacity.byte_size(labsettings.APP_MEMORY.default) > held, (
        f"LAB_APP_MEMORY {labsettings.APP_MEMORY.default} is below {workers} full gevent pools of "
        f"{pool} websockets: the memory limit would be hit before gunicorn's own cap"
    )
