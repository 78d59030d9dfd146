#!/usr/bin/env bash
# install.sh — installs the Prisma CLI oracle the compatibility tests run (prisma.sh).
#
# The oracle is the real Prisma CLI, pinned by package-lock.json in this folder:
#   prisma 6.19.3              the CLI; with `engine: "js"` (prisma.config.ts) it runs Prisma's
#                              schema engine compiled to WebAssembly, shipped inside the package
#   @prisma/adapter-pg 7.0.0   the driver adapter that engine reaches PostgreSQL through (6.x
#                              adapters cannot read a `name` column and `migrate deploy` fails
#                              with "Column type 'name' could not be deserialized")
#   pg 8.23.1                  node-postgres
#
# Everything comes from the npm registry with `npm ci` (exact versions and integrity hashes
# from the lockfile); nothing is downloaded from binaries.prisma.sh. Install scripts are
# skipped and the native engines are never fetched: prisma.sh points Prisma at an empty
# query-engine file and at schema-engine-shim. Once npm's cache holds the packages, a
# reinstall works without a network (`--prefer-offline`; PRISMA_ORACLE_OFFLINE=1 forbids the
# network altogether). PostgreSQL only: no published schema-engine wasm has a MySQL flavour.
#
# Idempotent: does nothing when the install dir matches this folder's files.
#
#   PRISMA_ORACLE_DIR       install dir (default: target/prisma-oracle of this checkout)
#   PRISMA_ORACLE_OFFLINE=1 install from npm's cache only
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if oracle_ready; then
  echo "Prisma oracle: up to date in $(cd "$ORACLE_DIR" && pwd)"
  exit 0
fi
command -v npm >/dev/null || { echo "install.sh: npm is missing (make setup installs it)" >&2; exit 1; }

mkdir -p "$ORACLE_DIR"
ORACLE_DIR="$(cd "$ORACLE_DIR" && pwd)"
rm -f "$ORACLE_DIR/.installed"
for f in "${ORACLE_FILES[@]}"; do
  cp "$ORACLE_SRC/$f" "$ORACLE_DIR/$f"
done
chmod +x "$ORACLE_DIR/schema-engine-shim"
: > "$ORACLE_DIR/fake-engine.node"

network=(--prefer-offline)
[ "${PRISMA_ORACLE_OFFLINE:-0}" = 1 ] && network=(--offline)
(
  cd "$ORACLE_DIR"
  PRISMA_QUERY_ENGINE_LIBRARY="$ORACLE_DIR/fake-engine.node" \
  PRISMA_SCHEMA_ENGINE_BINARY="$ORACLE_DIR/schema-engine-shim" \
  PRISMA_SKIP_POSTINSTALL_GENERATE=1 PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING=1 CHECKPOINT_DISABLE=1 \
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error "${network[@]}" >/dev/null
)
oracle_stamp > "$ORACLE_DIR/.installed"

echo "Prisma oracle installed in $ORACLE_DIR:"
for p in prisma @prisma/adapter-pg pg; do
  printf '  %s %s\n' "$p" "$(node -p "require('$ORACLE_DIR/node_modules/$p/package.json').version")"
done
