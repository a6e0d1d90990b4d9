"""`make doctor` against an app that is not the lab's, behind a correct config: no failure; the
probes that need a lab route say "not probed"; the ones that need nothing from the app still run;
`--redirect-path` points the redirect probes at the app's own route."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import labsettings
from labctl import behaviours, doctor, paths
from labctl.diagnose import check, sandbox
from labctl.diagnose.adapt import adapt
from labctl.diagnose.config import load

CLEAN = Path(__file__).parent / "corpus" / "clean-adapted-reference" / "site.conf"
PLAIN_APP = Path(__file__).parent / "plain_app"
# Probes that need nothing from the app: they must run (ok, or a note such as "no HTTP/2"), not be skipped.
APP_INDEPENDENT = {
    "unknown-host",
    "absolute-form-host",
    "https-redirect",
    "upload-limit",
    "h2",
    "tls-versions",
}


@pytest.fixture(scope="module")
def plain_deployment() -> Iterator[check.Endpoint]:
    config = load(CLEAN)
    site = check.site_for(config, None, None)
    place = sandbox.where(
        False, labsettings.HTTPS_PORT.value(), labsettings.HTTP_PORT.value(), labsettings.APP_PORT.value()
    )
    sandbox.prepare(place)
    plan = adapt(config, place)
    sandbox.mint_certificate(plan.names, place.certs)
    sandbox.nginx_test(plan, place)
    gunicorn = [str(paths.VENV / "bin" / "gunicorn"), "--workers", "1", "--chdir", str(PLAIN_APP), "app:app"]
    with sandbox.running(plan, place, app_command=gunicorn):
        yield check.endpoint_for(site, plan)


def test_no_false_alarm_and_the_app_independent_probes_run(plain_deployment) -> None:
    diagnosis = doctor.diagnose(plain_deployment, behaviours.Options())
    report = doctor.report(diagnosis)
    assert not diagnosis.failed, report
    verdicts = {r.behaviour.id: r.verdict for r in diagnosis.results}
    skipped = {b for b in APP_INDEPENDENT if verdicts.get(b) not in (behaviours.OK, behaviours.NOTE)}
    assert skipped == set(), report
    assert verdicts["redirect-port"] == behaviours.NOT_PROBED, report  # no /redirect/external there
    assert diagnosis.matches == [], report


def test_the_app_s_own_redirect_route_is_probed(plain_deployment) -> None:
    options = behaviours.Options(routes=behaviours.Routes.for_app("/account", None, None))
    diagnosis = doctor.diagnose(plain_deployment, options)
    report = doctor.report(diagnosis)
    assert not diagnosis.failed, report
    probed = {r.behaviour.id for r in diagnosis.results if r.verdict == behaviours.OK}
    assert {"redirect-scheme", "redirect-host", "redirect-port", "forged-host", "forged-proto"} <= probed, (
        report
    )
