#!/usr/bin/env bash
# The infra tests (`npm test` in infra/, called by `make test`):
#   type-check → assertion + cdk-nag tests → synth (cdk.out) + nag report check
#   → variant stacks (cdk.out.variants) → the consumer project (scripts/consumer.sh: npm pack,
#   install offline, a two-stage app → cdk.out.consumer) → cfn-lint over every template.
# Offline; never compiles Rust, never needs Docker.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
started=$SECONDS

ensure_node_modules

log "tsc --noEmit"
tsc --noEmit

log "node --test (assertions, cdk-nag)"
TAP=cdk.out.test-results.tap
node --test --import tsx \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$TAP" \
  test/construct.test.ts test/platform.test.ts test/adoption.test.ts test/nag.test.ts test/fleet.test.ts test/recovery-point.test.ts
passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$TAP")
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$TAP")

bash scripts/synth.sh

log "cdk-nag report check (cdk.out/validation-report.json)"
node -e '
  const r = require("./cdk.out/validation-report.json");
  const v = (r.pluginReports || []).flatMap((p) => p.violations || []);
  if (v.length) { console.error(JSON.stringify(v, null, 2)); process.exit(1); }
  console.log("no unacknowledged cdk-nag findings");
'

log "variant stacks -> infra/cdk.out.variants"
tsx test/synth-variants.ts

bash scripts/consumer.sh

ensure_cfn_lint
templates=(cdk.out/*.template.json cdk.out.variants/*.template.json cdk.out.consumer/*.template.json)
log "cfn-lint $CFN_LINT_VERSION over ${#templates[@]} templates (errors fail; warnings are printed)"
.venv/bin/cfn-lint --non-zero-exit-code error -- "${templates[@]}"
echo "cfn-lint: no errors"

log "done in $((SECONDS - started)) s (cdk-nag acknowledgements: infra/cdk.out.nag-acknowledgements.md)"
echo "infra: ${passed:-0} passed, ${failed:-0} failed"
