# Shared by scripts/*.sh (sourced). Runs from infra/.
INFRA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$INFRA_DIR"

export CDK_DISABLE_VERSION_CHECK=1
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
export PATH="$INFRA_DIR/node_modules/.bin:$PATH"

CFN_LINT_VERSION=1.58.0

log() { printf '\n== infra [%ss]: %s\n' "$SECONDS" "$*"; }

# npm ci when node_modules is missing or older than the lockfile.
ensure_node_modules() {
  if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    log "npm ci"
    npm ci --no-audit --no-fund --loglevel=error
  fi
}

# cfn-lint (PyPI) in infra/.venv, installed when missing or of another version.
ensure_cfn_lint() {
  if [[ ! -x .venv/bin/cfn-lint ]] || [[ "$(.venv/bin/cfn-lint --version 2>/dev/null)" != "cfn-lint $CFN_LINT_VERSION" ]]; then
    log "installing cfn-lint==$CFN_LINT_VERSION into infra/.venv"
    rm -rf .venv
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
  fi
}
