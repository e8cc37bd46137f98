# Everything a fresh machine needs: `make run` runs the suite against the sandbox and writes
# reports; `make test` passes the tests. Both bootstrap .venv first (idempotent).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
REPORTS ?= reports

.PHONY: setup run test lint unit features replay record check-rerecord blackbox bench calling-sdk msal-browser chromium clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: $(STAMP)

## The real ACS Calling SDK from npm, bundled for the browser driver into .cache/ (never committed:
## Microsoft's proprietary licence). Its version is pinned in one place: harness/client/calling/browser.py.
SDK_DIR := .cache/calling-sdk
SDK_VERSION := $(shell sed -n 's/^SDK_VERSION = "\(.*\)"/\1/p' harness/client/calling/browser.py)
ESBUILD_VERSION := 0.28.2
SDK_STAMP := $(SDK_DIR)/.installed-$(SDK_VERSION)-$(ESBUILD_VERSION)

# Installs with apt-get where it can (as root); otherwise says what to install.
APT_INSTALL = if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
	else echo "$(2) is not installed and cannot be installed here (needs root and apt-get): apt-get install -y $(1)"; fi

$(SDK_STAMP): harness/client/calling/browser_page/entry.js
	@command -v npm >/dev/null || { $(call APT_INSTALL,nodejs npm,npm); }
	@command -v npm >/dev/null || { echo "the Calling SDK needs npm: apt-get install -y nodejs npm"; exit 1; }
	mkdir -p $(SDK_DIR)
	cd $(SDK_DIR) && npm install --no-audit --no-fund --silent \
	  @azure/communication-calling@$(SDK_VERSION) esbuild@$(ESBUILD_VERSION)
	cp harness/client/calling/browser_page/entry.js $(SDK_DIR)/entry.js
	cd $(SDK_DIR) && node_modules/.bin/esbuild entry.js --bundle --format=iife --platform=browser \
	  --outfile=calling-sdk.js --log-level=warning
	@rm -f $(SDK_DIR)/.installed-*
	@touch $@

calling-sdk: $(SDK_STAMP)

## Microsoft's @azure/msal-browser from npm, bundled with esbuild into .cache/ for the browser sign-in's SPA
## page (never committed). Its version is pinned in one place: harness/client/browser_sign_in.py.
MSAL_DIR := .cache/msal-browser
MSAL_VERSION := $(shell sed -n 's/^MSAL_BROWSER_VERSION = "\(.*\)"/\1/p' harness/client/browser_sign_in.py)
MSAL_STAMP := $(MSAL_DIR)/.installed-$(MSAL_VERSION)-$(ESBUILD_VERSION)

$(MSAL_STAMP): harness/client/browser_sign_in_page/entry.js
	@command -v npm >/dev/null || { $(call APT_INSTALL,nodejs npm,npm); }
	@command -v npm >/dev/null || { echo "msal-browser needs npm: apt-get install -y nodejs npm"; exit 1; }
	mkdir -p $(MSAL_DIR)
	cd $(MSAL_DIR) && npm install --no-audit --no-fund --silent --save-exact \
	  @azure/msal-browser@$(MSAL_VERSION) esbuild@$(ESBUILD_VERSION)
	cp harness/client/browser_sign_in_page/entry.js $(MSAL_DIR)/entry.js
	cd $(MSAL_DIR) && node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --platform=browser \
	  --outfile=msal-browser.js --log-level=warning
	@rm -f $(MSAL_DIR)/.installed-*
	@touch $@

msal-browser: $(MSAL_STAMP)

## Debian's Chromium for the browser tests (the HTML report, the real Calling SDK, the browser sign-in).
## Without it they skip with the reason, except under CI=true, where they fail.
chromium:
	@command -v chromium >/dev/null || { $(call APT_INSTALL,chromium,chromium); }

## The main job: the full suite against the embedded sandbox tenant, reports in reports/<run-id>/.
## Without npm (not installable here) the browser sign-in scenarios SKIP, naming `make msal-browser`.
run: setup chromium
	@$(MAKE) --no-print-directory msal-browser \
	  || echo "msal-browser is not installed: the browser sign-in scenarios will SKIP (make msal-browser)"
	$(BIN)/cte run

## All tests: lint, unit and property tests, the suite in sandbox and replay modes, and the
## check that re-recording the cassettes against the sandbox changes nothing.
test: setup lint unit features replay check-rerecord blackbox audit

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

## The plain tests, two workers (they start their own servers and browsers; none shares state).
unit: setup chromium calling-sdk msal-browser
	$(BIN)/python -m pytest tests -q -n 2 --alluredir $(REPORTS)/make-test-allure

## The Gherkin suite; its Allure results join the plain tests' in one folder.
features: setup chromium msal-browser
	$(BIN)/cte run --mode sandbox --quiet --report-dir $(REPORTS)/make-test-sandbox \
	  --alluredir $(REPORTS)/make-test-allure

## Replay, with every step's definition looked up both ways (the plugin's shortcut and pytest-bdd's own).
replay: setup chromium msal-browser
	CTE_CHECK_STEP_LOOKUP=1 $(BIN)/cte run --mode replay --quiet --report-dir $(REPORTS)/make-test-replay

## Re-record every cassette against the sandbox (deterministic clock and ids).
record: setup chromium msal-browser
	$(BIN)/cte record --report-dir $(REPORTS)/make-record --cassette-dir cassettes --overwrite

## Records into a fresh folder and compares it with cassettes/ (which it never touches).
check-rerecord: setup chromium msal-browser
	@rm -rf $(REPORTS)/make-test-record
	$(BIN)/cte record --report-dir $(REPORTS)/make-test-record
	@diff -r cassettes $(REPORTS)/make-test-record/cassettes > $(REPORTS)/cassettes.diff \
	  && echo "re-recording against the sandbox reproduced cassettes/ exactly" \
	  || { echo "re-recording differs from cassettes/ (see $(REPORTS)/cassettes.diff): make record and commit, or fix the nondeterminism"; exit 1; }

## The live path from the outside: a served sandbox known only by its profile; verdicts as the sandbox's.
blackbox: setup chromium calling-sdk msal-browser
	$(BIN)/python tests/blackbox_check.py --out $(REPORTS)/make-test-blackbox \
	  $$(test -f $(REPORTS)/make-test-sandbox/conformance.json && echo --sandbox-report $(REPORTS)/make-test-sandbox/conformance.json) \
	  $$(test -d $(REPORTS)/make-test-record/cassettes && echo --sandbox-cassettes $(REPORTS)/make-test-record/cassettes)

## Scan cassettes and the reports the test run wrote for secrets (exit 1 on any finding).
audit: setup
	$(BIN)/cte cassettes audit --profile sandbox cassettes $$(ls -d $(REPORTS)/make-test-* 2>/dev/null)

## Every script in benchmarks/, each figure beside its baseline from the same run; prints a table and
## writes benchmarks/results.json (a few minutes; not part of `make test`).
bench: setup
	$(BIN)/python benchmarks/run_all.py --out benchmarks/results.json

clean:
	rm -rf $(REPORTS) .pytest_cache .ruff_cache
