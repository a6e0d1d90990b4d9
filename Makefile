# proxylab: every target is a thin call into scripts/lab (see `scripts/lab --help`).
LAB := sh scripts/with-python3 scripts/lab

.PHONY: up down native-up native-down balancer-up balancer-down integration-test unit-test test reload dump certs lint
.PHONY: browser-test logs upload scenario scenarios doctor reliability-test bench bench-quick conformance
.PHONY: offline-images compose-test test-compose check diagnose-test setup setup-docker watch deploy
.PHONY: swarm-up swarm-deploy swarm-down swarm-test test-swarm vendor-socketio

up:               ## docker compose: build, start, wait until healthy, print the URLs (LAB_SCENARIO too)
	$(LAB) up
down:             ## docker compose: stop and remove the stack
	$(LAB) down
offline-images:   ## local stand-ins for the base images + a wheelhouse: compose with no registry
	$(LAB) offline-images
compose-test:     ## compose-only checks (ports, user, reload, app restarts) against `make up`
	$(LAB) compose-test
test-compose:     ## CI's compose path: make up, integration suite, compose checks, then down
	$(LAB) test-compose

swarm-up:         ## Docker Swarm (swarm init when in none): the same stack by docker stack deploy, URLs printed
	$(LAB) swarm-up
swarm-deploy:     ## rolling update (start-first) of the swarm stack's app under a bounded load; timeline in .lab/deploy/
	$(LAB) swarm-deploy
swarm-down:       ## remove the swarm stack; leave the swarm only if swarm-up made it
	$(LAB) swarm-down
swarm-test:       ## swarm-only checks (chat across tasks, client address, rolling update) against `make swarm-up`
	$(LAB) swarm-test
test-swarm:       ## CI's swarm path: swarm-up, integration suite, swarm checks, then swarm-down (also when they fail)
	$(LAB) test-swarm || { status=$$?; $(LAB) swarm-down --volumes; exit $$status; }

setup:            ## install what the lab and its tests need where missing (make test does it first)
	$(LAB) setup
setup-docker:     ## the same plus the Docker engine (started), Compose v2 and debootstrap
	$(LAB) setup --docker

native-up:        ## nginx + gunicorn natively, no Docker (LAB_SCENARIO=name to pick a scenario)
	$(LAB) native-up
native-down:
	$(LAB) native-down
balancer-up:      ## a TLS-ending balancer (second nginx) in front of the native stack, on LAB_BALANCER_PORT
	$(LAB) balancer-up
balancer-down:
	$(LAB) balancer-down
integration-test: ## the integration suite against the running stack (LAB_URL / LAB_CA override)
	$(LAB) integration-test
unit-test:
	$(LAB) unit-test
reliability-test: ## faults under load, bad input, TLS (on the native stack; starts one if none)
	$(LAB) reliability-test
test:             ## unit; native stack: integration, reliability, browser; scenarios; lab check on the corpus
	$(LAB) test
reload:           ## nginx -t then reload, in the running stack (either mode)
	$(LAB) reload
watch:            ## reload on every saved edit under nginx/ (nginx -t first); Ctrl-C stops the watcher only
	$(LAB) watch
deploy:           ## replace every app process under a bounded load, dropping nothing; timeline in .lab/deploy/
	$(LAB) deploy
dump:             ## nginx -T of the running stack
	$(LAB) dump
certs:
	$(LAB) certs
vendor-socketio:  ## the lab page's socket.io-client, from its npm package (VERSION=4.8.4)
	sh scripts/vendor-socketio.sh $(VERSION)
lint:             ## ruff, mypy (labapp, labctl), gixy on the rendered baseline
	$(LAB) lint
browser-test:     ## headless Chromium through the lab page (reuses the running stack or starts one)
	$(LAB) browser-test
logs:             ## nginx access log and app log side by side, joined by request id
	$(LAB) logs
upload:           ## make upload FILE=path [NAME=name]: stream a file, verify the server's sha256
	$(LAB) upload "$(FILE)" $(if $(NAME),--name "$(NAME)")
scenario:         ## one scenario natively: what the user sees, the likely cause, the fix (NAME=...)
	$(if $(NAME),,$(error usage: make scenario NAME=host-drops-port  (folders under nginx/scenarios/)))
	$(LAB) scenario $(NAME)
scenarios:        ## the matrix: every symptom reproduced under its scenario, absent under the baseline
	$(LAB) scenarios
doctor:           ## probe a deployment (LAB_URL, LAB_CA, LAB_HTTP_URL) and name likely causes
	$(LAB) doctor
check:            ## make check CONF=path/to/site.conf: your nginx config in front of the lab's app, line by line
	$(if $(CONF),,$(error usage: make check CONF=path/to/nginx.conf-or-site.conf))
	$(LAB) check "$(CONF)" $(if $(GUNICORN),--gunicorn "$(GUNICORN)")
diagnose-test:    ## lab check on the corpus of public configs (precision, recall), the doctor on a plain app
	$(LAB) diagnose-test
bench:            ## benchmarks, each beside its reference (a few minutes): .lab/bench/results.json + chart
	$(LAB) bench
bench-quick:      ## the same with tiny sizes, under a minute (a smoke run)
	$(LAB) bench --quick
conformance:      ## Autobahn|Testsuite against /ws/echo, direct and via nginx TLS (CORE=1: CI's sections)
	$(LAB) conformance $(if $(CORE),--core)
