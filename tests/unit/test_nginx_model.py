"""The config model of `lab check` (labctl.diagnose.config; the behaviours' rules): nginx's own
rules for which server and location take a request and what a location inherits. No nginx, no stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl import behaviours
from labctl.diagnose import config

pytestmark = pytest.mark.no_stack

SITE = """
server {
    listen 80 default_server;
    return 444;
}
server {
    listen 443 ssl;
    server_name example.com *.example.org;
    proxy_set_header Host $host;
    proxy_set_header X-Forwarded-Proto $scheme;
    client_max_body_size 8m;
    location / {
        proxy_pass http://127.0.0.1:8000;
    }
    location /ws/ {
        proxy_set_header Upgrade $http_upgrade;
        proxy_pass http://127.0.0.1:8000;
    }
    location = /exact { proxy_pass http://127.0.0.1:8000; }
    location ~ \\.php$ { return 403; }
    location ^~ /static/ { root /srv; }
    location /static/deep/ { root /srv; }
    location @app { proxy_pass http://127.0.0.1:8000; }
    location /try { try_files $uri @app; }
}
"""


@pytest.fixture
def site(tmp_path: Path) -> config.Config:
    path = tmp_path / "site.conf"
    path.write_text(SITE)
    return config.load(path)


@pytest.mark.parametrize(
    ("uri", "chosen"),
    [
        ("/", "/"),
        ("/anything", "/"),
        ("/ws/echo", "/ws/"),
        ("/exact", "/exact"),
        ("/x.php", "\\.php$"),
        ("/static/x.php", "/static/"),  # ^~ stops the regexes
        ("/try", "/try"),
    ],
)
def test_location_choice_is_nginx_s(site: config.Config, uri: str, chosen: str) -> None:
    server = site.servers()[1]
    location = config.location_for(server, uri)
    assert location is not None and location.args[-1] == chosen


def test_try_files_falls_back_to_the_named_location(site: config.Config) -> None:
    proxying = config.proxying_location(site.servers()[1], "/try")
    assert proxying is not None and proxying.args == ["@app"]


def test_a_location_s_own_header_drops_every_inherited_one(site: config.Config) -> None:
    server = site.servers()[1]
    assert set(config.proxy_headers(config.location_for(server, "/"))) == {"host", "x-forwarded-proto"}
    assert set(config.proxy_headers(config.location_for(server, "/ws/x"))) == {"upgrade"}


def test_server_choice_by_port_name_and_default(site: config.Config) -> None:
    assert config.server_for(site, 443, "example.com") is site.servers()[1]
    assert config.server_for(site, 443, "a.example.org") is site.servers()[1]
    assert config.server_for(site, 80, "example.com") is site.servers()[0]  # the default for :80
    assert config.default_server(site, 443) is site.servers()[1]  # the first, none says default


def test_a_system_include_is_reported_at_the_user_s_include_line(tmp_path: Path) -> None:
    system = tmp_path / "system"
    system.mkdir()
    (system / "params").write_text("proxy_set_header Host $http_host;\n")
    path = tmp_path / "site" / "site.conf"
    path.parent.mkdir()
    path.write_text(
        f"server {{\n  listen 80;\n  location / {{\n    include {system}/params;\n"
        "    proxy_pass http://x:1;\n  }\n}\n"
    )
    loaded = config.load(path)
    host = config.proxy_headers(config.location_for(loaded.servers()[0], "/"))["host"]
    assert host.file == str(system / "params") and host.where == (str(path), 4)


@pytest.mark.parametrize(
    ("text", "mib"), [("1m", 1), ("10M", 10), ("4G", 4096), ("512k", 0.5), ("0", 0), ("1048576", 1)]
)
def test_sizes(text: str, mib: float) -> None:
    assert config.size_mib(text) == mib


@pytest.mark.parametrize(("text", "seconds"), [("60s", 60), ("1h", 3600), ("1h30m", 5400), ("300", 300)])
def test_times(text: str, seconds: float) -> None:
    assert config.seconds(text) == seconds


@pytest.mark.parametrize(("name", "host"), [("example.com", "example.com"), ("your_domain", "your-domain")])
def test_probe_host(name: str, host: str) -> None:
    assert config.probe_host(name) == host


def test_the_explainer_names_missing_headers_at_the_location(site: config.Config) -> None:
    tls_server = site.servers()[1]
    found = behaviours.findings(
        behaviours.Site(site, "example.com", tls_server, 443, 80, 443, 80, (1, 22, 1))
    )
    by_behaviour = {f.behaviour.id: f for f in found}
    location_line = config.location_for(tls_server, "/").line
    assert by_behaviour["forged-host"].where[1] == location_line
    assert by_behaviour["forged-host"].directive == "missing: proxy_set_header X-Forwarded-Host"
    assert by_behaviour["upload-limit"].directive == "client_max_body_size 8m;"
    assert "redirect-port" not in by_behaviour  # $host is right on 443
    behind_8443 = behaviours.findings(
        behaviours.Site(site, "example.com", tls_server, 443, 80, 8443, 80, (1, 22, 1))
    )
    assert "redirect-port" in {f.behaviour.id for f in behind_8443}  # and wrong behind a port mapping


NESTED = """
server {
    listen 80;
    location / {
        proxy_pass http://127.0.0.1:8000;
        location /static/ { root /srv; }
    }
    location ~ \\.php$ { return 403; }
    location ~ ^/api {
        proxy_pass http://127.0.0.1:8000;
        location ~ \\.json$ { return 418; }
    }
    location ~ ^/(?<app>[^/]+)/named { return 204; }
}
server {
    listen 80;
    server_name *.example.com;
    location / { return 200; }
}
server {
    listen 80;
    server_name www.example.com;
    location / { return 201; }
}
server {
    listen 80;
    server_name ~^(?<sub>.+)\\.named\\.test$;
    location / { return 202; }
}
"""


@pytest.fixture
def nested(tmp_path: Path) -> config.Config:
    path = tmp_path / "nested.conf"
    path.write_text(NESTED)
    return config.load(path)


@pytest.mark.parametrize(
    ("uri", "chosen"),
    [
        ("/static/a.php", "\\.php$"),  # a nested plain prefix does not stop the outer regexes
        ("/static/a.css", "/static/"),
        ("/api/x.json", "\\.json$"),  # a regex winner's own nested locations are searched
        ("/api/x", "^/api"),
        ("/blog/named", "^/(?<app>[^/]+)/named"),  # PCRE named groups, as nginx writes them
    ],
)
def test_nested_and_regex_locations(nested: config.Config, uri: str, chosen: str) -> None:
    location = config.location_for(nested.servers()[0], uri)
    assert location is not None and location.args[-1] == chosen


@pytest.mark.parametrize(
    ("host", "index"), [("www.example.com", 2), ("api.example.com", 1), ("a.named.test", 3), ("other", 0)]
)
def test_server_names_in_nginx_s_order(nested: config.Config, host: str, index: int) -> None:
    # An exact name beats a wildcard listed before it; a regex (named groups too) comes last.
    assert config.server_for(nested, 80, host) is nested.servers()[index]


def test_a_location_that_does_not_proxy_is_not_the_proxying_one(tmp_path: Path) -> None:
    path = tmp_path / "static.conf"
    path.write_text(
        "server {\n  listen 80;\n  location / { root /srv; try_files $uri /index.html; }\n"
        "  location /api/ { proxy_pass http://127.0.0.1:8000; }\n}\n"
    )
    server = config.load(path).servers()[0]
    assert config.proxying_location(server, "/redirect/external") is None
    assert config.proxying_location(server, "/api/x").args == ["/api/"]
