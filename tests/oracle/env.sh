# Sourced by install.sh and prisma.sh: where the oracle lives, and whether it is installed.
#
#   PRISMA_ORACLE_DIR   the install dir (default: target/prisma-oracle in this checkout)

ORACLE_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE_DIR="${PRISMA_ORACLE_DIR:-$ORACLE_SRC/../../target/prisma-oracle}"
# What an install is made of: a change to any of these files means a new install.
ORACLE_FILES=(package.json package-lock.json schema.prisma prisma.config.ts schema-engine-shim exit-fast.cjs)

oracle_stamp() { (cd "$ORACLE_SRC" && cat "${ORACLE_FILES[@]}") | sha256sum | cut -d' ' -f1; }

oracle_ready() {
  [ -f "$ORACLE_DIR/node_modules/prisma/build/index.js" ] &&
    [ "$(cat "$ORACLE_DIR/.installed" 2>/dev/null)" = "$(oracle_stamp)" ]
}
