# migrator — see README.md. `make demo` and `make test` are the two commands that matter.
SHELL := /bin/bash
CARGO ?= cargo
# rust-toolchain.toml pins 1.95.0: name the installed stable so when it is that version (offline).
TOOLCHAIN := $(shell bash .ci/toolchain)

DEMO_DB := target/demo/demo.db
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# The local servers `make setup` starts (trust or the test password: both work).
SAMPLE_PG ?= postgresql://postgres:postgres@127.0.0.1:5432/migrator_sample
SAMPLE_MYSQL ?= mysql://root@127.0.0.1:3306/migrator_sample

.PHONY: demo test setup build lint unit e2e infra-test bench clean-demo synth deploy package reliability \
	examples example-postgres example-mysql try-function try-fleet docs built-binary-notice

## Apply the sample prisma.zip to a SQLite file and print the outcome (run it twice: up-to-date).
demo: examples/prisma.zip built-binary-notice
	@mkdir -p $(dir $(DEMO_DB))
	$(CARGO) run -p migrator -- deploy --artifact examples/prisma.zip --database-url file:$(DEMO_DB)

# Never silent for minutes: the first build says what it is doing (cargo then shows its progress).
built-binary-notice:
	@[ -x "$(TARGET_DIR)/debug/migrator" ] || echo "Building migrator: the first time about 6 minutes on 2 cores (cargo shows each crate), then seconds."

clean-demo:
	rm -f $(DEMO_DB)

examples/prisma.zip: $(shell find examples/prisma -type f) examples/build_zip.py
	python3 examples/build_zip.py examples/prisma $@

## The samples' zips, rebuilt reproducibly from their folders (examples/*/prisma/).
examples: examples/prisma.zip examples/postgres/prisma.zip examples/mysql/prisma.zip

examples/postgres/prisma.zip: $(shell find examples/postgres/prisma -type f) examples/build_zip.py
	python3 examples/build_zip.py examples/postgres/prisma $@

examples/mysql/prisma.zip: $(shell find examples/mysql/prisma -type f) examples/build_zip.py
	python3 examples/build_zip.py examples/mysql/prisma $@

## Deploy the PostgreSQL / MySQL sample to the local server (SAMPLE_PG / SAMPLE_MYSQL).
example-postgres: examples/postgres/prisma.zip built-binary-notice
	$(CARGO) run -p migrator -- deploy --artifact examples/postgres/prisma.zip --database-url "$(SAMPLE_PG)"

example-mysql: examples/mysql/prisma.zip built-binary-notice
	$(CARGO) run -p migrator -- deploy --artifact examples/mysql/prisma.zip --database-url "$(SAMPLE_MYSQL)"

## Install what is missing, then run every part (lint, build, unit, end-to-end, infra, docs), each
## even when an earlier one failed, and print a table; exits 1 if any part failed. mdbook (for
## the docs part) installs in the background meanwhile, at low priority.
TEST_PARTS := setup lint build unit e2e infra-test docs
test:
	@mkdir -p target; \
	nice -n 10 bash docs/scripts/mdbook.sh >target/mdbook-install.log 2>&1 & mdbook=$$!; \
	rows=(); failed=0; \
	for part in $(TEST_PARTS); do \
	  echo "=== make $$part"; start=$$SECONDS; \
	  if [ $$part = docs ] && ! wait $$mdbook; then cat target/mdbook-install.log; fi; \
	  if $(MAKE) --no-print-directory $$part; then result=passed; else result=FAILED; failed=$$((failed + 1)); fi; \
	  rows+=("$$(printf '%-12s %-7s %5ss' $$part $$result $$((SECONDS - start)))"); \
	done; \
	echo; echo "make test: part         result   time"; \
	for row in "$${rows[@]}"; do echo "           $$row"; done; \
	echo "$$(( $(words $(TEST_PARTS)) - failed )) passed, $$failed failed"; \
	[ $$failed -eq 0 ]

setup:
	bash tests/scripts/setup.sh

# Every cargo command of `make test` selects the whole workspace, so features resolve once and
# nothing is compiled twice.
build:
	$(CARGO) build --workspace --all-targets

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace --lib --bins --no-fail-fast

# The function suite runs the debug `migrator` (just built) as the Lambda bootstrap under the
# emulator: the same code and runtime protocol as the release zip, without a 15-minute build.
e2e: build
	MIGRATOR_LAMBDA_BIN="$(TARGET_DIR)/debug/migrator" $(CARGO) test --workspace --test '*' --no-fail-fast

## The function end to end on this machine: moto (S3, SNS, SQS) and the Lambda emulator, the
## PostgreSQL sample uploaded and delivered as an S3 event, then `migrator invoke`.
try-function: setup build examples/postgres/prisma.zip
	MIGRATOR_LAMBDA_BIN="$(TARGET_DIR)/debug/migrator" "$(TARGET_DIR)/debug/try_function"

## A fleet of 20 databases on this machine: the construct's synthesized state machine executed
## by aws-local-stepfunctions, each child the real `migrator handle-event`; prints the rollups.
try-fleet: setup build
	"$(TARGET_DIR)/debug/try_fleet"

## The Lambda zip (bootstrap) for provided.al2023, x86_64: target/lambda/migrator/bootstrap.zip
package: setup
	PATH="$(CURDIR)/target/py/bin:$$PATH" $(CARGO) lambda build --release --output-format zip -p migrator
	@ls -l target/lambda/migrator/bootstrap.zip | awk '{print "package: " $$5 " bytes  " $$9}'

## The CDK app's tests: type-check, assertions, cdk-nag, cfn-lint (offline; no Rust build, no Docker).
infra-test:
	bash infra/scripts/test.sh

## The book (docs/src) into target/book: open target/book/index.html. Installs mdbook (pinned,
## into target/tools) the first time. Its links and its CLI reference are checked by
## tests/tests/docs.rs (part of `make e2e`).
docs:
	"$$(bash docs/scripts/mdbook.sh)" build docs

## CloudFormation templates into infra/cdk.out.
synth:
	bash infra/scripts/synth.sh

## make deploy STAGE=CODE|PROD — needs AWS credentials and `cd infra && npx cdk bootstrap` once.
deploy: package
	@case "$(STAGE)" in CODE|PROD) ;; *) echo "usage: make deploy STAGE=CODE|PROD" >&2; exit 2;; esac
	bash infra/scripts/deploy.sh $(STAGE)

## Faults, load and hostile input at full length: 50 SIGKILL trials, connection faults, 3 soak
## rounds, the bad-input corpus, 50,000 property cases per property; prints a summary table.
## (`make test` runs the same tests with 10 trials, 1 round and 2,000 cases.)
reliability: setup build
	bash tests/scripts/reliability.sh

## Benchmarks (not tests): PostgreSQL apply/no-op timings and peak RSS → target/bench/engine.json
bench: setup
	$(CARGO) build --release -p migrator
	$(CARGO) run --release -p migrator-e2e --bin bench
