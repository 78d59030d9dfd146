#!/usr/bin/env bash
# Synthesizes the example app (PrismaMigrator-CODE, PrismaMigrator-PROD) into
# infra/cdk.out, offline: env-agnostic stacks, no lookups, no Docker, no Rust
# build (the Lambda asset is target/lambda/migrator/bootstrap.zip when
# `make package` has run, else infra/assets/placeholder). cdk-nag runs during
# synth: an unacknowledged finding fails it.
# Extra arguments go to `cdk synth`, e.g. -c longMigrations=true
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_node_modules
rm -rf cdk.out
log "cdk synth -> infra/cdk.out"
# The placeholder is fine for looking at templates; `cdk deploy` (deploy.sh) does not allow it.
cdk synth --quiet --output cdk.out -c allowPlaceholder=true "$@"
ls -1 cdk.out/*.template.json
