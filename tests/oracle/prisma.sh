#!/usr/bin/env bash
# prisma.sh [--migrations DIR] ARGS... — runs the real Prisma CLI (the oracle of install.sh),
# installing it first when needed. Exit code, stdout and stderr are the CLI's own.
#
#   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/db \
#     tests/oracle/prisma.sh --migrations path/to/migrations migrate deploy
#
#   DATABASE_URL               required (PostgreSQL only)
#   PRISMA_ORACLE_MIGRATIONS   the migrations folder (<name>/migration.sql, migration_lock.toml);
#                              --migrations DIR does the same; default ./prisma/migrations.
#                              Relative paths are relative to the caller's working directory.
#   PRISMA_ORACLE_DIR          install dir (default: target/prisma-oracle of this checkout)
#   PRISMA_ORACLE_SCRIPT_MODE  simple (default) | adapter — see prisma.config.ts
#   PRISMA_ORACLE_FAST_EXIT=0  keep Prisma's ~10 s linger after its work (see exit-fast.cjs)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

migrations="${PRISMA_ORACLE_MIGRATIONS:-prisma/migrations}"
if [ "${1:-}" = "--migrations" ]; then
  migrations="$2"
  shift 2
fi
case "$migrations" in
  /*) ;;
  *) migrations="$PWD/$migrations" ;;
esac

if ! oracle_ready; then
  mkdir -p "$ORACLE_DIR"
  # Tests call this in parallel: one installs, the others wait for it.
  ( flock 9; oracle_ready || bash "$ORACLE_SRC/install.sh" >&2 ) 9>"$ORACLE_DIR/.install.lock"
fi
ORACLE_DIR="$(cd "$ORACLE_DIR" && pwd)"

: "${DATABASE_URL:?prisma.sh: set DATABASE_URL}"
export DATABASE_URL
export PRISMA_ORACLE_DIR="$ORACLE_DIR"
export PRISMA_ORACLE_MIGRATIONS="$migrations"
export PRISMA_QUERY_ENGINE_LIBRARY="$ORACLE_DIR/fake-engine.node"
export PRISMA_SCHEMA_ENGINE_BINARY="$ORACLE_DIR/schema-engine-shim"
export PRISMA_HIDE_UPDATE_MESSAGE=1
export CHECKPOINT_DISABLE=1

cd "$ORACLE_DIR"
preload=()
[ "${PRISMA_ORACLE_FAST_EXIT:-1}" = 0 ] || preload=(--require "$ORACLE_DIR/exit-fast.cjs")
exec node "${preload[@]}" "$ORACLE_DIR/node_modules/prisma/build/index.js" "$@"
