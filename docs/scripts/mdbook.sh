#!/usr/bin/env bash
# Prints the path of an mdbook of the pinned version, installing it first when missing.
#
# Debian has no mdbook package (checked with `apt-cache policy mdbook` on bookworm), so it comes
# from crates.io: `cargo install --locked` of the pinned version, without default features (no
# `serve`, `watch`, `search`: `mdbook build` needs none of them), into target/tools. That is 123
# crates, about 3 minutes on 2 cores (5 min under load); `make test` starts it in the background
# at the beginning so that it is ready when the docs part runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
version=0.5.4
root="${MDBOOK_ROOT:-$PWD/target/tools}"
bin="$root/bin/mdbook"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qx "mdbook v$version"; then
  echo "$bin"; exit 0
fi
if command -v mdbook >/dev/null 2>&1 && mdbook --version 2>/dev/null | grep -qx "mdbook v$version"; then
  command -v mdbook; exit 0
fi
echo "docs: installing mdbook $version into $root (first time only, about 3 minutes on 2 cores)" >&2
# Its own target dir: the workspace's is for the workspace (and another cargo may hold its lock).
cargo install --locked --no-default-features --version "$version" --root "$root" \
  --target-dir "$root/build" mdbook >&2
rm -rf "$root/build"
echo "$bin"
