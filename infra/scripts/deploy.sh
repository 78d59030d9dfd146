#!/usr/bin/env bash
# Deploys one stage of the example app: bash infra/scripts/deploy.sh CODE|PROD [cdk args]
# Needs AWS credentials and a bootstrapped account/region (`npx cdk bootstrap`),
# Docker only with -c longMigrations=true. Not run by the tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
STAGE="${1:-${STAGE:-}}"
shift || true
case "$STAGE" in
  CODE|PROD) ;;
  *) echo "usage: deploy.sh CODE|PROD [extra cdk deploy args]" >&2; exit 2 ;;
esac
ZIP="${MIGRATOR_LAMBDA_ZIP:-../target/lambda/migrator/bootstrap.zip}"
if [[ ! -f "$ZIP" && "${ALLOW_PLACEHOLDER:-0}" != 1 ]]; then
  echo "deploy.sh: $ZIP is missing: run 'make package' first (the placeholder only exits 1)." >&2
  exit 1
fi
ensure_node_modules
cdk deploy "PrismaMigrator-$STAGE" --require-approval broadening "$@"
