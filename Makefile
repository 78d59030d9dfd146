# migrator — see README.md. `make demo` and `make test` are the two commands that matter.
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

DEMO_DB := target/demo/demo.db
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# The local servers `make setup` starts (trust or the test password: both work).
SAMPLE_PG ?= postgresql://postgres:postgres@127.0.0.1:5432/migrator_sample
SAMPLE_MYSQL ?= mysql://root@127.0.0.1:3306/migrator_sample

.PHONY: demo test setup build lint unit e2e infra-test bench clean-demo synth deploy package reliability \
	examples example-postgres example-mysql try-function

## Apply the sample prisma.zip to a SQLite file and print the outcome (run it twice: up-to-date).
demo: examples/prisma.zip
	@mkdir -p $(dir $(DEMO_DB))
	$(CARGO) run -q -p migrator -- deploy --artifact examples/prisma.zip --database-url file:$(DEMO_DB)

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
example-postgres: examples/postgres/prisma.zip
	$(CARGO) run -q -p migrator -- deploy --artifact examples/postgres/prisma.zip --database-url "$(SAMPLE_PG)"

example-mysql: examples/mysql/prisma.zip
	$(CARGO) run -q -p migrator -- deploy --artifact examples/mysql/prisma.zip --database-url "$(SAMPLE_MYSQL)"

## Install what is missing, then run every test (unit, end-to-end, Prisma compatibility, the
## function under the Lambda emulator, infra). The release zip is `make package`'s job.
test: setup lint build unit e2e infra-test

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
	$(CARGO) test --workspace --lib --bins

# The function suite runs the debug `migrator` (just built) as the Lambda bootstrap under the
# emulator: the same code and runtime protocol as the release zip, without a 15-minute build.
e2e: build
	MIGRATOR_LAMBDA_BIN="$(TARGET_DIR)/debug/migrator" $(CARGO) test --workspace --test '*'

## The function end to end on this machine: moto (S3, SNS, SQS) and the Lambda emulator, the
## PostgreSQL sample uploaded and delivered as an S3 event, then `migrator invoke`.
try-function: setup build examples/postgres/prisma.zip
	MIGRATOR_LAMBDA_BIN="$(TARGET_DIR)/debug/migrator" "$(TARGET_DIR)/debug/try_function"

## The Lambda zip (bootstrap) for provided.al2023, x86_64: target/lambda/migrator/bootstrap.zip
package: setup
	PATH="$(CURDIR)/target/py/bin:$$PATH" $(CARGO) lambda build --release --output-format zip -p migrator
	@ls -l target/lambda/migrator/bootstrap.zip | awk '{print "package: " $$5 " bytes  " $$9}'

## The CDK app's tests: type-check, assertions, cdk-nag, cfn-lint (offline; no Rust build, no Docker).
infra-test:
	bash infra/scripts/test.sh

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
