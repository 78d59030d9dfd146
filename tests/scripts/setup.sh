#!/usr/bin/env bash
# Installs and starts what the tests need on a Debian machine, when it is missing.
# Idempotent: on a prepared machine it only checks. Needs root (or sudo) for installs.
#
#   MIGRATOR_TEST_PG   PostgreSQL server URL without a database
#                      (default postgresql://postgres:postgres@127.0.0.1:5432)
set -euo pipefail

PG_URL="${MIGRATOR_TEST_PG:-postgresql://postgres:postgres@127.0.0.1:5432}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

say() { printf '[setup] %s\n' "$*"; }

need_pkgs=()
command -v psql >/dev/null || need_pkgs+=(postgresql-client)
command -v pg_ctlcluster >/dev/null || need_pkgs+=(postgresql)
command -v pg_dump >/dev/null || need_pkgs+=(postgresql-client)
[ -x /usr/bin/time ] || need_pkgs+=(time)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v npm >/dev/null || need_pkgs+=(npm)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  say "installing ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

# PostgreSQL: start the local cluster when the server does not answer.
if ! psql "$PG_URL/postgres" -qAtXc 'SELECT 1' >/dev/null 2>&1; then
  if command -v pg_lsclusters >/dev/null && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
    version="$(pg_lsclusters -h | awk 'NR==1 {print $1}')"
    cluster="$(pg_lsclusters -h | awk 'NR==1 {print $2}')"
    say "starting PostgreSQL $version/$cluster"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start || true
  fi
  for _ in $(seq 1 30); do
    psql "$PG_URL/postgres" -qAtXc 'SELECT 1' >/dev/null 2>&1 && break
    # A fresh Debian cluster has no password for `postgres` over TCP: set the test one.
    if [ "$(id -u)" = 0 ] && runuser -u postgres -- psql -qAtXc 'SELECT 1' >/dev/null 2>&1; then
      password="$(python3 -c 'import sys,urllib.parse as u; print(u.unquote(u.urlsplit(sys.argv[1]).password or ""))' "$PG_URL")"
      if [ -n "$password" ]; then
        runuser -u postgres -- psql -qAtXc "ALTER USER postgres PASSWORD '${password//\'/\'\'}'" >/dev/null
      fi
    fi
    sleep 1
  done
  psql "$PG_URL/postgres" -qAtXc 'SELECT 1' >/dev/null || { echo "PostgreSQL does not answer at $PG_URL" >&2; exit 1; }
fi
say "PostgreSQL: $(psql "$PG_URL/postgres" -qAtXc 'SHOW server_version')"
# The recovery suite starts a hot standby with `pg_basebackup -R` (tests/tests/recovery.rs):
# replication connections from 127.0.0.1 must be allowed. Debian's pg_hba.conf has that rule; a
# server without one gets it, with the authentication of its `host all … 127.0.0.1` rule.
if [ "$(psql "$PG_URL/postgres" -qAtXc "SELECT count(*) FROM pg_hba_file_rules WHERE 'replication' = ANY(database) AND (address IS NULL OR address = '127.0.0.1')" 2>/dev/null)" = 0 ]; then
  hba="$(psql "$PG_URL/postgres" -qAtXc 'SHOW hba_file')"
  method="$(psql "$PG_URL/postgres" -qAtXc "SELECT auth_method FROM pg_hba_file_rules WHERE type = 'host' AND address = '127.0.0.1' ORDER BY line_number LIMIT 1")"
  say "allowing replication connections from 127.0.0.1 ($hba, ${method:-scram-sha-256})"
  echo "host replication all 127.0.0.1/32 ${method:-scram-sha-256}" | $SUDO tee -a "$hba" >/dev/null
  psql "$PG_URL/postgres" -qAtXc 'SELECT pg_reload_conf()' >/dev/null
fi


# Python tools for the tests, in a venv under target/: botocore (the reference for RDS IAM
# tokens), moto (S3, SNS, SQS, Secrets Manager on loopback) and cargo-lambda (packaging and
# the Lambda runtime emulator; the PyPI package carries the binary and zig).
VENV="$ROOT/target/py"
PY_PKGS=(botocore==1.44.5 "moto[server]==5.2.5" cargo-lambda==1.9.2)
if ! "$VENV/bin/python3" -c 'import botocore, moto' >/dev/null 2>&1 || [ ! -x "$VENV/bin/cargo-lambda" ]; then
  say "creating $VENV with ${PY_PKGS[*]}"
  python3 -m venv "$VENV" 2>/dev/null || { $SUDO apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PKGS[@]}"
fi
say "python tools: $("$VENV/bin/python3" -c 'import botocore, moto; print("botocore", botocore.__version__, "moto", moto.__version__)')"

# infra/node_modules (the CDK app, and aws-local-stepfunctions for tests/tests/fleet.rs, which
# executes the fleet's synthesized state machine): npm ci from infra/package-lock.json.
( source "$ROOT/infra/scripts/lib.sh" && ensure_node_modules ) | sed 's/^/[setup] /'

# The Prisma CLI oracle (tests/oracle: the pinned Prisma CLI from npm), installed once before
# the tests call it in parallel. PRISMA_ORACLE_DIR chooses where (default target/prisma-oracle).
bash "$ROOT/tests/oracle/install.sh" | sed 's/^/[setup] /'

# MariaDB for tests/tests/mysql.rs (MIGRATOR_TEST_MYSQL, default mysql://root@127.0.0.1:3306,
# root without a password over TCP): Debian's mariadb-server, listening on loopback only.
MY_URL="${MIGRATOR_TEST_MYSQL:-mysql://root@127.0.0.1:3306}"
my_rest="${MY_URL#mysql://}"; my_rest="${my_rest%%/*}"
my_auth="${my_rest%@*}"; my_addr="${my_rest##*@}"
[ "$my_auth" = "$my_rest" ] && my_auth=root
MY_USER="${my_auth%%:*}"; MY_PASS=""
[ "$my_auth" != "$MY_USER" ] && MY_PASS="${my_auth#*:}"
MY_HOST="${my_addr%%:*}"; MY_PORT=3306
[ "$my_addr" != "$MY_HOST" ] && MY_PORT="${my_addr##*:}"
my_ping() { MYSQL_PWD="$MY_PASS" mariadb --protocol=tcp -h"$MY_HOST" -P"$MY_PORT" -u"$MY_USER" -e 'SELECT 1' >/dev/null 2>&1; }
if ! my_ping; then
  if [ ! -x /usr/sbin/mariadbd ] || ! command -v mariadb >/dev/null; then
    say "installing mariadb-server mariadb-client"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mariadb-server mariadb-client >/dev/null
  fi
  if ! $SUDO mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    say "starting MariaDB on 127.0.0.1:$MY_PORT"
    $SUDO install -d -o mysql -g mysql /run/mysqld
    [ -d /var/lib/mysql/mysql ] || $SUDO mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    $SUDO start-stop-daemon --start --oknodo --background --chuid mysql \
      --pidfile /run/mysqld/mysqld.pid --exec /usr/sbin/mariadbd -- \
      --bind-address=127.0.0.1 --port="$MY_PORT" --skip-name-resolve
  fi
  for _ in $(seq 1 30); do
    $SUDO mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 1
  done
  # Debian's root logs in through the unix socket only: let the test user in over loopback TCP.
  if ! my_ping && [ "$MY_HOST" = 127.0.0.1 ]; then
    pass_sql="${MY_PASS//\'/\'\'}"
    $SUDO mariadb -uroot -e "CREATE USER IF NOT EXISTS '$MY_USER'@'127.0.0.1' IDENTIFIED BY '$pass_sql'; GRANT ALL PRIVILEGES ON *.* TO '$MY_USER'@'127.0.0.1' WITH GRANT OPTION;"
  fi
  my_ping || { echo "MariaDB does not answer at $MY_HOST:$MY_PORT as $MY_USER" >&2; exit 1; }
fi
say "MariaDB: $(MYSQL_PWD="$MY_PASS" mariadb --protocol=tcp -h"$MY_HOST" -P"$MY_PORT" -u"$MY_USER" -BNe 'SELECT VERSION()')"
