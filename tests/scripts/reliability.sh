#!/usr/bin/env bash
# The long reliability run (`make reliability`): crash trials, connection faults, the
# concurrency soak, the bad-input corpus and the property tests, then a summary table.
# Override the knobs from the environment: RELIABILITY_TRIALS, SOAK_ROUNDS, PROPERTY_CASES.
set -uo pipefail
cd "$(dirname "$0")/../.."
CARGO=${CARGO:-cargo}
export RELIABILITY_TRIALS=${RELIABILITY_TRIALS:-50}
export SOAK_ROUNDS=${SOAK_ROUNDS:-3}
export PROPERTY_CASES=${PROPERTY_CASES:-50000}
mkdir -p target/reliability
log=target/reliability/run.log
: >"$log"
start=$(date +%s)

$CARGO build --workspace --all-targets || exit 1
status=0
for suite in reliability bad_inputs properties tls; do
  echo "== $suite" | tee -a "$log"
  $CARGO test --workspace --test "$suite" -- --nocapture 2>&1 | tee -a "$log"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "== event/payload parser properties" | tee -a "$log"
$CARGO test --workspace --bin migrator properties -- --nocapture 2>&1 | tee -a "$log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

sum() { grep -o "^reliability: .*" "$log" | grep -o "\b$1=[0-9]*" | cut -d= -f2 | awk '{s+=$1} END {print s+0}'; }
failed_tests=$(grep -c -- "--- FAILED\|^test .* FAILED$" "$log")
failures=$(( $(sum failures) + failed_tests ))
[ "$status" -eq 0 ] || [ "$failures" -gt 0 ] || failures=1
elapsed=$(( $(date +%s) - start ))

printf '\n%-34s %s\n' "reliability summary" "(log: $log)"
printf '%-34s %s\n' "crash trials (SIGKILL)" "$(grep -o 'test=crash trials=[0-9]*' "$log" | cut -d= -f3)"
printf '%-34s %s\n' "faults injected" "$(sum faults)"
printf '%-34s %s\n' "soak invocations" "$(sum invocations)"
printf '%-34s %s\n' "bad-input corpus cases" "$(grep -o 'test=bad-inputs cases=[0-9]*' "$log" | cut -d= -f3)"
printf '%-34s %s\n' "secrets checks (CLI outputs)" "$(grep -o 'test=secrets cases=[0-9]*' "$log" | cut -d= -f3)"
printf '%-34s %s\n' "property executions" "$(sum executions)"
printf '%-34s %s\n' "failures" "$failures"
printf '%-34s %s s\n' "duration" "$elapsed"
[ "$failures" -eq 0 ]
