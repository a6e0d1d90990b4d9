"""`lab conformance`: the suite's own pins, the tables and the closing line (Autobahn's index.json)."""

from __future__ import annotations

import io
import tarfile

import pytest

from labctl import conformance

pytestmark = pytest.mark.no_stack

INDEX = {
    "direct": {
        "1.1.1": {"behavior": "OK"},
        "6.4.3": {"behavior": "NON-STRICT"},
        "7.1.6": {"behavior": "INFORMATIONAL"},
        "12.1.1": {"behavior": "UNIMPLEMENTED"},
        "10.1.1": {"behavior": "OK"},
    },
    "nginx": {
        "1.1.1": {"behavior": "OK"},
        "7.9.1": {"behavior": "FAILED"},
        "7.9.2": {"behavior": "WRONG CODE"},
    },
}


def test_tables_count_each_behaviour_per_section_and_agent():
    table, totals = conformance.tables(INDEX)
    assert dict(totals) == {"OK": 3, "NON-STRICT": 1, "INFORMATIONAL": 1, "UNIMPLEMENTED": 1, "FAILED": 2}
    direct, nginx = table.split("\nnginx:")
    assert "  6            1              0              1" in direct  # section 6: one case, NON-STRICT
    assert direct.index("\n  7 ") < direct.index("\n  10 ") < direct.index("\n  12 ")  # sections in order
    assert "not OK: 6.4.3 NON-STRICT" in direct
    assert "not OK: 7.9.1 FAILED, 7.9.2 WRONG CODE" in nginx  # an unknown behaviour counts as FAILED


def test_the_closing_line_is_the_contracts():
    _, totals = conformance.tables(INDEX)
    assert conformance.closing_line(totals) == (
        "conformance: 8 cases, 3 OK, 1 NON-STRICT, 1 INFORMATIONAL, 2 FAILED, 1 UNIMPLEMENTED"
    )


def test_the_suites_own_pins_come_from_its_sdist(tmp_path):
    requires = b"six==1.16.0\nTwisted==19.10.0\n\n[dev]\npytest\n"
    sdist = tmp_path / "autobahntestsuite-25.10.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        member = tarfile.TarInfo("autobahntestsuite-25.10.1/autobahntestsuite.egg-info/requires.txt")
        member.size = len(requires)
        archive.addfile(member, io.BytesIO(requires))
    assert conformance.suite_pins(sdist) == ["six==1.16.0", "Twisted==19.10.0"]


def test_nginx_is_reached_over_verified_tls():
    (server,) = conformance.servers("nginx")
    assert server["url"].startswith("wss://localhost:") and server["hostname"] == "localhost"
    assert [s["agent"] for s in conformance.servers("both")] == ["direct", "nginx"]
    assert [s["url"].split(":")[0] for s in conformance.servers("direct")] == ["ws"]
    assert conformance.CORE_CASES == ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "10.*"]
