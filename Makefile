# proxylab: every target is a thin call into scripts/lab (see `scripts/lab --help`).
LAB := python3 scripts/lab

.PHONY: up down logs offline-images compose-test test-compose native-up native-down integration-test unit-test test reload dump certs lint

up:               ## docker compose: build, start, wait until healthy, print the URLs (LAB_SCENARIO too)
	$(LAB) up
down:             ## docker compose: stop and remove the stack
	$(LAB) down
logs:             ## follow the running stack's logs (either mode)
	$(LAB) logs --follow
offline-images:   ## local stand-ins for the base images + a wheelhouse: compose with no registry
	$(LAB) offline-images
compose-test:     ## compose-only checks (ports, user, reload, app restarts) against `make up`
	$(LAB) compose-test
test-compose:     ## CI's compose path: make up, integration suite, compose checks, then down
	$(LAB) test-compose

native-up:        ## nginx + gunicorn natively, no Docker (LAB_SCENARIO=name to pick a scenario)
	$(LAB) native-up
native-down:
	$(LAB) native-down
integration-test: ## the integration suite against the running stack (LAB_URL / LAB_CA override)
	$(LAB) integration-test
unit-test:
	$(LAB) unit-test
test:             ## everything CI runs: unit, native stack + integration, then down
	$(LAB) test
reload:           ## nginx -t then reload, in the running stack (either mode)
	$(LAB) reload
dump:             ## nginx -T of the running stack
	$(LAB) dump
certs:
	$(LAB) certs
lint:
	$(LAB) lint
