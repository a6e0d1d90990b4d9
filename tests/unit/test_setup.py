"""`make setup`'s decisions: what each command needs, which commands install what is missing on
which system, where Compose v2 goes. Nothing is installed here: only the plans are looked at, and
``install`` is run only where it must print the commands instead of running them."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl import setup
from labctl.setup import Need, System

pytestmark = pytest.mark.no_stack

DEBIAN_ROOT = System(manager="apt", distro="debian", root=True, sudo=False)
DEBIAN_SUDO = System(manager="apt", distro="debian", root=False, sudo=True)
DEBIAN_USER = System(manager="apt", distro="debian", root=False, sudo=False)


def names(needs) -> set[str]:
    return {need.name for need in needs}


def by_name(*wanted: str) -> list[Need]:
    found = {need.name: need for need in setup.NEEDS}
    return [found[name] for name in wanted]


def test_each_command_checks_only_what_it_uses():
    # The native stack runs its own redis-server (the chat's broker).
    assert names(setup.needed_by("native-up")) == {"nginx", "openssl", "python3 -m venv", "redis-server"}
    assert names(setup.needed_by("test")) == {
        "nginx", "openssl", "python3 -m venv", "chromium", "certutil", "redis-server",
    }  # fmt: skip
    assert names(setup.needed_by("bench")) == {
        "nginx", "openssl", "python3 -m venv", "redis-server", "wrk", "h2load",
    }  # fmt: skip
    assert names(setup.needed_by("docs")) == set()


def test_setup_checks_everything_and_docker_only_when_asked():
    everything = names(setup.NEEDS)
    assert names(setup.needed_by("setup")) == everything - {"docker", "debootstrap"}
    assert names(setup.needed_by("setup", docker=True)) == everything
    assert not any(need.docker for need in setup.needed_by("test")), "make test never installs Docker"


def test_root_on_debian_installs_exactly_what_is_missing_in_one_apt_call():
    todo = setup.plan(by_name("nginx", "chromium", "certutil", "wrk"), DEBIAN_ROOT)
    assert todo.packages == ("nginx-light", "chromium", "libnss3-tools", "wrk")
    assert todo.run == (
        ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-qq"),
        (
            "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq",
            "--no-install-recommends", "nginx-light", "chromium", "libnss3-tools", "wrk",
        ),
    )  # fmt: skip
    assert (
        todo.show[-1] == "apt-get install -y --no-install-recommends nginx-light chromium libnss3-tools wrk"
    )
    assert todo.by_hand == ()


def test_passwordless_sudo_runs_the_same_through_sudo_n():
    todo = setup.plan(by_name("redis-server"), DEBIAN_SUDO)
    assert [command[:3] for command in todo.run] == [("sudo", "-n", "env")] * 2
    assert todo.run[1][-1] == "redis-server"
    assert todo.show == (
        "sudo apt-get update",
        "sudo apt-get install -y --no-install-recommends redis-server",
    )


def test_a_user_who_cannot_install_gets_the_exact_commands_and_exit_2(capsys):
    missing = by_name("nginx", "python3 -m venv")
    todo = setup.plan(missing, DEBIAN_USER)
    assert todo.run == ()
    assert setup.install(missing, DEBIAN_USER) == 2
    err = capsys.readouterr().err
    assert "sudo apt-get install -y --no-install-recommends nginx-light python3-venv" in err
    assert "the native stack's nginx" in err, "why each package is needed is printed beside it"
    assert err.count("nginx-light") == 2, f"each package is listed once, plus the command: {err}"


def test_ubuntu_gets_its_own_chromium_package():
    ubuntu = System(manager="apt", distro="ubuntu", root=True, sudo=False)
    assert setup.plan(by_name("chromium"), ubuntu).packages == ("chromium-browser",)


def test_other_systems_get_their_package_manager_printed_never_run(capsys):
    fedora = System(manager="dnf", distro="fedora", root=False, sudo=True)
    todo = setup.plan(by_name("nginx", "certutil", "wrk"), fedora)
    assert (todo.run, todo.show) == ((), ("sudo dnf install -y nginx nss-tools wrk",))
    mac = System(manager="brew", distro="", root=False, sudo=False)
    todo = setup.plan(by_name("nginx", "chromium", "python3 -m venv"), mac)
    assert todo.show == ("brew install nginx",)
    assert names(todo.by_hand) == {"chromium", "python3 -m venv"}
    assert setup.install(list(todo.missing), mac) == 2
    err = capsys.readouterr().err
    assert "brew install nginx" in err and "install by hand" in err and "chromium" in err


def test_no_known_package_manager_lists_what_and_why(capsys):
    unknown = System(manager=None, distro="", root=True, sudo=False)
    missing = by_name("nginx", "wrk")
    assert setup.plan(missing, unknown).packages == ()
    assert setup.install(missing, unknown) == 2
    err = capsys.readouterr().err
    assert "nginx: the native stack's nginx" in err and "wrk: HTTP load" in err


def test_ensure_is_silent_when_nothing_is_missing(monkeypatch, capsys):
    present = Need("tool", "why", lambda: True, {"apt": "tool"}, ("test",))
    monkeypatch.setattr(setup, "NEEDS", (present,))
    monkeypatch.setattr(setup, "this_system", lambda: pytest.fail("no system lookup when nothing is missing"))
    assert setup.ensure("test") == 0
    assert capsys.readouterr() == ("", "")


def test_ensure_asks_only_for_what_the_command_is_missing(monkeypatch, capsys):
    monkeypatch.setattr(
        setup,
        "NEEDS",
        (
            Need("here", "why", lambda: True, {"apt": "here-pkg"}, ("test",)),
            Need("gone", "the reason", lambda: False, {"apt": "gone-pkg"}, ("test",)),
            Need("other", "not for test", lambda: False, {"apt": "other-pkg"}, ("bench",)),
        ),
    )
    monkeypatch.setattr(setup, "this_system", lambda: DEBIAN_USER)
    assert setup.ensure("test") == 2
    err = capsys.readouterr().err
    assert "sudo apt-get install -y --no-install-recommends gone-pkg\n" in err
    assert "here-pkg" not in err and "other-pkg" not in err


def test_compose_v2_goes_where_the_docker_cli_looks():
    home = Path("/home/someone")
    assert setup.compose_plugin_dir({"DOCKER_CONFIG": "/tmp/dc"}, True, home) == Path("/tmp/dc/cli-plugins")
    assert setup.compose_plugin_dir({}, True, home) == Path("/usr/local/lib/docker/cli-plugins")
    assert setup.compose_plugin_dir({}, False, home) == home / ".docker" / "cli-plugins"


def test_compose_v2_is_pinned_with_a_hash():
    assert setup.pinned_compose_version() == "2.40.3"
    assert "--hash=sha256:" in setup.COMPOSE_PIN.read_text()
