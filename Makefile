# One Makefile for people and CI: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
DEMO_DIR ?= build/demo

.PHONY: demo test soak lint bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# unixODBC + the MariaDB ODBC driver (the ODBC path is tested for real), systemd-analyze
# (the unit's security score is tested), WordPress with PHP (a real third-party REST
# portal on loopback), Postfix + Dovecot (real bounces read over IMAP on loopback), and
# Chromium (the support console is tested in a real browser).
# Installed with apt when missing and we are root; no service is started by installing.
system-deps:
	@missing=""; \
	command -v odbcinst >/dev/null 2>&1 || missing="$$missing unixodbc"; \
	odbcinst -q -d 2>/dev/null | grep -qi mariadb || missing="$$missing odbc-mariadb"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v php >/dev/null 2>&1 || missing="$$missing php-cli"; \
	php -m 2>/dev/null | grep -qi '^mysqli$$' || missing="$$missing php-mysql"; \
	[ -f /usr/share/wordpress/wp-settings.php ] || missing="$$missing wordpress"; \
	command -v postfix >/dev/null 2>&1 || [ -x /usr/sbin/postfix ] || missing="$$missing postfix"; \
	command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-imapd"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing (run: sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

demo: $(STAMP)
	$(BIN)/syncd demo $(DEMO_DIR)

test: $(STAMP) system-deps
	$(BIN)/pytest -q

# The crash-consistency suite with 200 SIGKILLs per portal (make test runs 26 per portal).
soak: $(STAMP)
	SYNCD_SOAK_KILLS=200 $(BIN)/pytest -q tests/integration/test_crash_consistency.py

lint: $(STAMP)
	$(BIN)/ruff check syncd connectors tests
	$(BIN)/ruff format --check syncd connectors tests
	$(BIN)/mypy

# N = 100,000 and 2N on SQLite and PostgreSQL (127.0.0.1:5432), mail, the daemon, CLI start;
# figures in build/bench.json. E.g. `make bench BENCH_ARGS=--quick` (see docs/benchmark.md).
BENCH_ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m tests.bench.bench_cycle $(BENCH_ARGS)
	# 1,000 creates against a REST portal answering after 50 ms, default concurrency 4
	$(BIN)/python -m tests.rest_server

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
