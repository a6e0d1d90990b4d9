# proxylab: every target is a thin call into scripts/lab (see `scripts/lab --help`).
LAB := python3 scripts/lab

.PHONY: up down native-up native-down integration-test unit-test test reload dump certs lint bench bench-quick

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
bench:            ## benchmarks, each beside its reference (a few minutes): .lab/bench/results.json + chart
	$(LAB) bench
bench-quick:      ## the same with tiny sizes, under a minute (a smoke run)
	$(LAB) bench --quick
