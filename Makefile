# Two commands do everything on a fresh machine:
#   make run   - set up and start the service on its embedded defaults (SQLite, built-in SMTP receiver and sink)
#   make test  - set up and pass the whole suite (installs Dovecot, Chromium and poppler from Debian when run as root)

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test venv system-deps lint typecheck format bench clean mutation calendar-table

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)
	@echo "Установлено. Командная строка: $(BIN)/mailservice --help   (или: source $(BIN)/activate)"

venv: $(STAMP)

run: $(STAMP)
	@echo "Командная строка: $(BIN)/mailservice --help   (или: source $(BIN)/activate, затем mailservice --help)"
	$(BIN)/mailservice run

system-deps:
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || missing="$$missing dovecot-imapd"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "Installing from Debian:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "The integration tests need:$$missing"; \
	    echo "Install them with: sudo apt-get install$$missing   (then run make test again)"; exit 1; \
	  fi; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check mailservice tests bench
	$(BIN)/ruff format --check mailservice tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format mailservice tests bench
	$(BIN)/ruff check --fix mailservice tests bench

# axe-core (accessibility checks of the site) from the npm registry, pinned by tests/.node/package-lock.json.
tests/.node/node_modules/axe-core/axe.min.js: tests/.node/package-lock.json
	npm ci --no-audit --no-fund --prefix tests/.node

# --dist loadgroup: one test at a time to whichever process is free, except that the tests of a module listed in
# tests/conftest.py SHARED_FIXTURE_MODULES (an expensive module-scoped fixture) stay in one process, and
# those groups, the largest first, start the run.
test: $(STAMP) system-deps lint typecheck tests/.node/node_modules/axe-core/axe.min.js
	MAILSERVICE_REQUIRE_DOVECOT=1 $(BIN)/pytest -n 2 --dist loadgroup -ra $(PYTEST_ARGS)

# Mutation testing of the security and legal core ([tool.mutmut] in pyproject.toml; report: docs/mutation.md). Long:
# MUTATION_CHILDREN test processes at the lowest CPU priority. Not part of `make test`.
MUTATION_MODULES ?= tokens inforequests.lifecycle inforequests.deadlines workdays mailings.consent web.staff.auth \
	inforequests.identity mail.triage history.service intake.pipeline mailings.sender
# Mutants tested at once: 1 on a shared machine; 2 on an idle two-core one halves the wall time.
MUTATION_CHILDREN ?= 1
# CPU priority of the run. mutmut's timeouts are wall-clock (a multiple of each test's time in the clean run), so at
# nice 19 on a machine busy with other work a starved mutant is recorded as a timeout that is no verdict on the tests:
# MUTATION_NICE=0 when the run should have the machine.
MUTATION_NICE ?= 19
mutation: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,mutation]'
	rm -rf mutants  # a fresh copy of the package: mutmut does not refresh templates and data it copied earlier
	@# The committed record (docs/mutation-results/) seeds mutmut's verdicts: only mutants of functions changed since
	@# it or never run are run; MUTATION_FRESH=1 ignores it (all of them, about a day). The record of each module run
	@# is written back after the run, also when it was interrupted, so the next run carries on.
	@if [ -z "$(MUTATION_FRESH)" ]; then $(BIN)/python -m tests.mutation_record prepare > /dev/null; fi
	@# One `mutmut run` for all the modules: mutmut's stats and clean runs of the whole selection (ten minutes and
	@# more each on a busy machine) are then made once, not once a module.
	@# mutants/kills/<mutant>.txt: the test that killed each mutant and how (tests/conftest.py), to tell a kill from
	@# a test that fails in mutmut's forked process whatever the mutant.
	@mkdir -p mutants/kills; export MUTATION_KILLS=$(CURDIR)/mutants/kills; \
	export MUTATION_COMMIT=$$(git describe --always --dirty --abbrev=40); names=""; run=""; \
	for module in $(MUTATION_MODULES); do \
	  if [ -n "$(MUTATION_FRESH)" ]; then more="mailservice.$$module.*"; \
	  else more=$$($(BIN)/python -m tests.mutation_record pending "mailservice.$$module") || exit 1; fi; \
	  echo "== mailservice.$$module: $$(echo $$more | wc -w) to run"; names="$$names $$more"; \
	  [ -z "$$(echo $$more)" ] || run="$$run $$module"; \
	done; \
	if [ -z "$$(echo $$names)" ]; then echo "   nothing to run: every mutant has its verdict in the record"; else \
	  nice -n $(MUTATION_NICE) $(BIN)/mutmut run --max-children $(MUTATION_CHILDREN) $$names > mutants/mutmut.log 2>&1; status=$$?; \
	  for module in $$run; do $(BIN)/python -m tests.mutation_record save "mailservice.$$module" || exit 1; done; \
	  [ $$status -eq 0 ] || { tail -c 2000 mutants/mutmut.log; exit $$status; }; \
	fi
	$(BIN)/python -m tests.mutation_report

# The pinned `holidays` package's calendar as a table the light commands read (tests/test_workdays.py checks it):
# generate it again after moving the pin.
calendar-table: $(STAMP)
	$(BIN)/python -c "from mailservice.workdays import write_package_table; write_package_table()"

bench: $(STAMP)
	$(BIN)/python bench/intake.py --quick

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
