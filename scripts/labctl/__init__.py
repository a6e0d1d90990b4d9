"""Commands behind the Makefile: stacks in either mode, certs, reload, tests, diagnostics."""
