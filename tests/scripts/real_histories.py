#!/usr/bin/env python3
"""Measures preflight's `willFail` against what deploy then does, on real Prisma histories.

Not a test (`make test` does not run it): the histories are fetched at run time and never
committed. For each history (a `prisma/migrations` folder, PostgreSQL or MySQL/MariaDB) it
cuts the history at about `--cuts` points; at each cut it

  1. deploys the prefix (`migrator deploy`) to a fresh database,
  2. fills every table with generic rows: parents before children, about 20 % NULLs in
     nullable columns, values repeated across rows so that a later unique index, NOT NULL,
     foreign key or cast can fail (a row the current schema refuses is retried with
     distinct values, then skipped),
  3. copies that database twice (PostgreSQL `CREATE DATABASE … TEMPLATE`; MySQL a dump),
  4. runs `migrator plan --json` on one copy and `migrator deploy --json` on the other, with
     the next `--window` migrations pending,
  5. compares, per pending migration up to the first that failed (deploy stops there), whether
     any finding said `willFail` with whether deploy failed it.

Prints one line per cut, then per history and overall: precision and recall of `willFail`,
`error` findings on migrations that deployed fine, and each miss and false alarm with the
deploy error or the finding, so a class of miss can be read off.

  tests/scripts/real_histories.py --migrator target/release/migrator \\
      documenso=/tmp/h/documenso/migrations rallly=/tmp/h/rallly/migrations \\
      umami-mysql=mysql:/tmp/h/umami-mysql/migrations

A history spec is NAME=PATH (PostgreSQL) or NAME=mysql:PATH. A history can be taken out of
a git checkout with `git archive REV PATH | tar -x -C DIR`.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

PG_SERVER = os.environ.get("MIGRATOR_TEST_PG", "postgresql://postgres:postgres@127.0.0.1:5432")
MY_SERVER = os.environ.get("MIGRATOR_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
ROWS = 8


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------------------- PostgreSQL


class Pg:
    flavor = "postgresql"

    def url(self, db):
        return f"{PG_SERVER}/{db}"

    def sql(self, db, text, check=True):
        r = run(["psql", self.url(db), "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", text])
        if check and r.returncode != 0:
            raise RuntimeError(f"psql {db}: {r.stderr.strip()}")
        return r.stdout

    def script(self, db, text):
        r = run(["psql", self.url(db), "-qAtX", "-f", "-"], input=text)
        return r.stdout, r.stderr

    def drop(self, db):
        self.sql("postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')

    def create(self, db, template=None):
        self.drop(db)
        t = f' TEMPLATE "{template}"' if template else ""
        self.sql("postgres", f'CREATE DATABASE "{db}"{t}')

    def tables(self, db):
        q = r"""
        SELECT json_agg(json_build_object(
          'name', c.relname,
          'columns', (SELECT json_agg(json_build_object(
               'name', a.attname,
               'type', format_type(a.atttypid, a.atttypmod),
               'base', CASE WHEN t.typcategory = 'A' THEN et.typname ELSE t.typname END,
               'array', t.typcategory = 'A',
               'enum', (SELECT json_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e
                        WHERE e.enumtypid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END),
               'nullable', NOT a.attnotnull,
               'hasDefault', a.atthasdef,
               'generated', a.attgenerated <> '' OR a.attidentity = 'a',
               'maxlen', CASE WHEN a.atttypmod > 4 AND t.typname IN ('varchar','bpchar') THEN a.atttypmod - 4 END,
               'pk', EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY(i.indkey)))
             ORDER BY a.attnum)
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_type et ON et.oid = t.typelem
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
          'fks', (SELECT coalesce(json_agg(json_build_object(
               'parent', pc.relname,
               'cols', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(f.conkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.n),
               'refs', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(f.confkey) WITH ORDINALITY k(n, i)
                        JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.n))), '[]')
             FROM pg_constraint f JOIN pg_class pc ON pc.oid = f.confrelid
             WHERE f.conrelid = c.oid AND f.contype = 'f')))
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> '_prisma_migrations'
        """
        out = self.sql(db, q).strip()
        return json.loads(out) if out else []

    def q(self, name):
        return '"' + name.replace('"', '""') + '"'

    def lit(self, s):
        return "'" + s.replace("'", "''") + "'"

    def value(self, col, i, distinct):
        """An SQL expression for row i of a column; `distinct` asks for a value no other row has."""
        base, typ = col["base"], col["type"]
        if col["array"]:
            if col["enum"]:
                return f"ARRAY[{self.lit(col['enum'][i % len(col['enum'])])}]::{typ}"
            return f"'{{}}'::{typ}"
        if col["enum"]:
            return f"{self.lit(col['enum'][i % len(col['enum'])])}::{typ}"
        n = i + 1 if distinct else i % 3 + 1
        if base in ("int2", "int4", "int8"):
            return str(3_000_000_000 if base == "int8" and not distinct and i == ROWS - 2 else n)
        if base in ("numeric", "float4", "float8", "money"):
            return f"{n}.5::{typ}"
        if base == "bool":
            return "true" if i % 2 == 0 else "false"
        if base in ("text", "varchar", "bpchar", "citext", "name"):
            words = ["alpha", "42", "Beta Gamma"]
            v = f"value {i} {col['name']}" if distinct else words[i % 3]
            if col["maxlen"]:
                v = v[: col["maxlen"]]
            return f"{self.lit(v)}::{typ}"
        if base == "uuid":
            return f"md5({self.lit(col['name'] + str(n if not distinct else 1000 + i))})::uuid"
        if base in ("timestamp", "timestamptz", "date"):
            return f"(timestamp '2024-01-01' + interval '{n} day')::{typ}"
        if base in ("time", "timetz"):
            return f"'12:0{n % 10}:00'::{typ}"
        if base == "interval":
            return f"interval '{n} day'"
        if base in ("json", "jsonb"):
            return f"'{{\"n\": {n}}}'::{typ}" if distinct or i % 2 else f"'{{}}'::{typ}"
        if base == "bytea":
            return f"'\\x0{n % 10}'::bytea"
        if base in ("inet", "cidr"):
            return f"'10.0.0.{n % 250}'::{typ}"
        if base == "tsvector":
            return f"to_tsvector('simple', 'word{n}')"
        return "DEFAULT" if col["hasDefault"] else "NULL"

    def attempt(self, table, columns, exprs):
        cols = ", ".join(self.q(c) for c in columns)
        return f"INSERT INTO {self.q(table)} ({cols}) VALUES ({', '.join(exprs)})"


    def run_attempts(self, db, attempts):
        blocks = []
        for tries in attempts:
            body = "NULL;"
            for a in reversed(tries):
                body = f"BEGIN {a}; EXCEPTION WHEN others THEN {body} END;"
            blocks.append(f"DO $seed$ BEGIN {body} END $seed$;")
        self.script(db, "\n".join(blocks))

    def analyze(self, db):
        self.sql(db, "ANALYZE")


# ---------------------------------------------------------------------------- MySQL/MariaDB


class My:
    flavor = "mysql"

    def url(self, db):
        return f"{MY_SERVER}/{db}"

    def args(self, db=None):
        rest = MY_SERVER.split("://", 1)[1]
        cred, host = rest.split("@", 1) if "@" in rest else ("root", rest)
        user, _, password = cred.partition(":")
        h, _, port = host.partition(":")
        a = ["mariadb" if shutil.which("mariadb") else "mysql", "-h", h, "-P", port or "3306", "-u", user, "-N", "-B"]
        if password:
            a.append(f"-p{password}")
        if db:
            a.append(db)
        return a

    def sql(self, db, text, check=True):
        r = run(self.args(db) + ["-e", text])
        if check and r.returncode != 0:
            raise RuntimeError(f"mysql {db}: {r.stderr.strip()}")
        return r.stdout

    def script(self, db, text):
        r = run(self.args(db) + ["--force"], input=text)
        return r.stdout, r.stderr

    def drop(self, db):
        self.sql(None, f"DROP DATABASE IF EXISTS `{db}`")

    def create(self, db, template=None):
        self.drop(db)
        self.sql(None, f"CREATE DATABASE `{db}`")
        if template:
            dump = "mariadb-dump" if shutil.which("mariadb-dump") else "mysqldump"
            d = run([dump] + self.args(template)[1:-1] + ["--routines", template])
            if d.returncode != 0:
                raise RuntimeError(d.stderr)
            r = run(self.args(db), input=d.stdout)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)

    def tables(self, db):
        cols = self.sql(
            db,
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, "
            "COLUMN_DEFAULT IS NOT NULL, EXTRA, COALESCE(CHARACTER_MAXIMUM_LENGTH, 0), COLUMN_KEY "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME <> '_prisma_migrations' ORDER BY TABLE_NAME, ORDINAL_POSITION",
        )
        fks = self.sql(
            db,
            "SELECT TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME, COLUMN_NAME, REFERENCED_COLUMN_NAME "
            "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
            "AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION",
        )
        tables = {}
        for line in cols.splitlines():
            t, c, dt, ct, nullable, has_def, extra, maxlen, key = line.split("\t")
            enum = None
            if dt == "enum":
                enum = [v.strip("'") for v in ct[5:-1].split("','")]
            tables.setdefault(t, {"name": t, "columns": [], "fks": []})["columns"].append({
                "name": c, "type": ct, "base": dt, "array": False, "enum": enum,
                "nullable": nullable == "YES",
                "hasDefault": has_def == "1" or "auto_increment" in extra,
                "generated": "GENERATED" in extra.upper(),
                "maxlen": int(maxlen) or None, "pk": key == "PRI"})
        byname = {}
        for line in fks.splitlines():
            t, name, parent, c, r = line.split("\t")
            fk = byname.get((t, name))
            if fk is None:
                fk = byname[(t, name)] = {"parent": parent, "cols": [], "refs": []}
                tables[t]["fks"].append(fk)
            fk["cols"].append(c)
            fk["refs"].append(r)
        return list(tables.values())

    def q(self, name):
        return "`" + name.replace("`", "``") + "`"

    def lit(self, s):
        return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"

    def value(self, col, i, distinct):
        base = col["base"]
        if col["enum"]:
            return self.lit(col["enum"][i % len(col["enum"])])
        n = i + 1 if distinct else i % 3 + 1
        if base in ("tinyint", "smallint", "mediumint", "int", "bigint"):
            if col["type"].startswith("tinyint(1)"):
                return str(i % 2)
            return str(3_000_000_000 if base == "bigint" and not distinct and i == ROWS - 2 else n)
        if base in ("decimal", "double", "float"):
            return f"{n}.5"
        if base in ("varchar", "char", "text", "tinytext", "mediumtext", "longtext"):
            words = ["alpha", "42", "Beta Gamma"]
            v = f"value {i} {col['name']}" if distinct else words[i % 3]
            if col["maxlen"]:
                v = v[: col["maxlen"]]
            return self.lit(v)
        if base in ("datetime", "timestamp", "date"):
            return f"'2024-01-{n:02d}'"
        if base == "time":
            return f"'12:0{n % 10}:00'"
        if base == "json":
            return f"'{{\"n\": {n}}}'" if distinct or i % 2 else "'{}'"
        if base in ("blob", "longblob", "binary", "varbinary"):
            return f"X'0{n % 10}'"
        return "DEFAULT" if col["hasDefault"] else "NULL"

    def attempt(self, table, columns, exprs):
        cols = ", ".join(self.q(c) for c in columns)
        return f"INSERT INTO {self.q(table)} ({cols}) VALUES ({', '.join(exprs)})"


    def run_attempts(self, db, attempts):
        def attempt(var, then):
            return (f"BEGIN DECLARE EXIT HANDLER FOR SQLEXCEPTION {then} "
                    f"SET @s = {var}; PREPARE st FROM @s; EXECUTE st; DEALLOCATE PREPARE st; END;")
        proc = ("CREATE PROCEDURE seed_try(IN a TEXT, IN b TEXT, IN c TEXT) BEGIN "
                + attempt("a", "BEGIN " + attempt("b", "BEGIN " + attempt("c", "BEGIN END;") + " END;") + " END;")
                + " END")
        lines = ["DROP PROCEDURE IF EXISTS seed_try;", "DELIMITER //", proc + " //", "DELIMITER ;"]
        for tries in attempts:
            a, b, c = (tries + tries + tries)[:3]
            lines.append(f"CALL seed_try({self.lit(a)}, {self.lit(b)}, {self.lit(c)});")
        lines.append("DROP PROCEDURE IF EXISTS seed_try;")
        self.script(db, "\n".join(lines))

    def analyze(self, db):
        for t in self.sql(db, "SHOW TABLES").split():
            self.sql(db, f"ANALYZE TABLE {self.q(t)}")


# ---------------------------------------------------------------------------- seeding


def parent_value(dbx, fk, ref, k):
    """The `ref` column of the parent's row number k (modulo its row count; NULL without rows).
    A derived table, so that MySQL reads the parent before inserting into it (a self reference)."""
    q = dbx.q
    order = ", ".join(q(r) for r in fk["refs"])
    return (f"(SELECT p.v FROM (SELECT {q(ref)} AS v, row_number() OVER (ORDER BY {order}) AS rn, "
            f"count(*) OVER () AS cnt FROM {q(fk['parent'])}) AS p WHERE p.rn = 1 + {k} % p.cnt)")


def seed(db, dbx):
    tables = dbx.tables(db)
    done, order = set(), []
    pending = {t["name"]: t for t in tables}
    while pending:
        ready = [t for n, t in pending.items()
                 if all(fk["parent"] in done or fk["parent"] == n for fk in t["fks"])]
        if not ready:  # a cycle: take the rest as they come (their nullable keys may be NULL)
            ready = list(pending.values())
        for t in sorted(ready, key=lambda t: t["name"]):
            order.append(t)
            done.add(t["name"])
            del pending[t["name"]]
    attempts = []
    for t in order:
        fk_of = {}
        for fk in t["fks"]:
            for c, r in zip(fk["cols"], fk["refs"]):
                fk_of.setdefault(c, (fk, r))
        cols = [c for c in t["columns"] if not c["generated"] and not (c["pk"] and c["hasDefault"])]
        if not cols:
            continue
        # Nullable keys, for a check that wants exactly one of them (`documentId` xor `templateId`).
        optional = [c["name"] for c in cols if c["nullable"] and c["name"] in fk_of]
        for i in range(ROWS):
            tries = []
            # repeated values (20 % NULL); then distinct ones; then distinct with one optional key
            for variant in (0, 1, 2):
                if variant == 2 and len(optional) < 2:
                    continue
                distinct = variant > 0
                exprs = []
                for c in cols:
                    if c["nullable"] and not distinct and i % 5 == 4:
                        exprs.append("NULL")
                    elif variant == 2 and c["name"] in optional and c["name"] != optional[i % len(optional)]:
                        exprs.append("NULL")
                    elif c["name"] in fk_of:
                        fk, r = fk_of[c["name"]]
                        exprs.append(parent_value(dbx, fk, r, i * (3 if distinct else 1)))
                    else:
                        exprs.append(dbx.value(c, i, distinct or c["pk"]))
                tries.append(dbx.attempt(t["name"], [c["name"] for c in cols], exprs))
            attempts.append(tries)
    dbx.run_attempts(db, attempts)
    dbx.analyze(db)


# ---------------------------------------------------------------------------- the measure


def artifact(src, names, dest):
    if os.path.exists(dest):
        shutil.rmtree(dest)
    os.makedirs(dest)
    lock = os.path.join(src, "migration_lock.toml")
    if os.path.exists(lock):
        shutil.copy(lock, dest)
    for n in names:
        shutil.copytree(os.path.join(src, n), os.path.join(dest, n))
    return dest


def migrator(binary, command, url, art):
    env = dict(os.environ, DATABASE_URL=url, MIGRATOR_ARTIFACT=art)
    # A long lock wait: other users of the same MySQL server take Prisma's server-wide lock.
    r = run([binary, command, "--json", "--lock-timeout", "300s"], env=env, cwd=os.path.dirname(art))
    try:
        return json.loads(r.stdout)
    except json.JSONDecodeError:
        raise RuntimeError(f"{command}: no JSON (exit {r.returncode}): {r.stderr[-2000:]}")


def cut_points(n, cuts, window):
    last = n - 1
    if last < 1:
        return []
    step = max(1, last // cuts)
    return sorted(set(range(1, last + 1, step)))[:cuts + 1]


def measure(name, dbx, src, args, tally):
    names = sorted(d for d in os.listdir(src) if os.path.isfile(os.path.join(src, d, "migration.sql")))
    work = tempfile.mkdtemp(prefix=f"rh-{name}-")
    base, pdb, ddb = f"rh_{name}_base".replace("-", "_"), f"rh_{name}_plan".replace("-", "_"), f"rh_{name}_deploy".replace("-", "_")
    h = tally.setdefault(name, {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "err_ok": 0, "unknown_fail": 0,
                                "fn_without_data": 0, "cuts": 0, "notes": []})
    empty = f"rh_{name}_empty".replace("-", "_")
    for k in cut_points(len(names), args.cuts, args.window):
        prefix, pending = names[:k], names[k:k + args.window]
        if not pending:
            continue
        dbx.create(base)
        out = migrator(args.migrator, "deploy", dbx.url(base), artifact(src, prefix, os.path.join(work, "prefix", "migrations")))
        if out.get("status") not in ("applied", "up-to-date"):
            print(f"  {name} cut {k}: the prefix does not deploy ({out.get('error', {}).get('message', '')[:120]}); skipped")
            continue
        seed(base, dbx)
        dbx.create(pdb, base)
        dbx.create(ddb, base)
        full = artifact(src, prefix + pending, os.path.join(work, "full", "migrations"))
        plan = migrator(args.migrator, "plan", dbx.url(pdb), full)
        dep = migrator(args.migrator, "deploy", dbx.url(ddb), full)
        applied = {a["name"] for a in dep.get("applied", [])}
        failed = {f["name"] for f in dep.get("failed", [])}
        findings = plan.get("findings", [])
        h["cuts"] += 1
        line = []
        for m in pending:
            if m in applied:
                ok = True
            elif m in failed:
                ok = False
            else:
                break  # not reached: deploy stopped earlier
            mine = [f for f in findings if f.get("migration") == m]
            predicted = any(f.get("willFail") for f in mine)
            errors = [f for f in mine if f.get("severity") == "error"]
            if ok and predicted:
                h["fp"] += 1
                h["notes"].append(f"false alarm {m}: " + "; ".join(f"{f['rule']}: {f['message'][:200]}" for f in mine if f.get("willFail")))
            elif ok:
                h["tn"] += 1
            elif predicted:
                h["tp"] += 1
            else:
                h["fn"] += 1
                # Does it fail without any rows too? Then no data decides it (the SQL, the server).
                dbx.create(empty)
                upto = prefix + pending[:pending.index(m) + 1]
                bare = migrator(args.migrator, "deploy", dbx.url(empty),
                                artifact(src, upto, os.path.join(work, "bare", "migrations")))
                if bare.get("status") == "failed":
                    h["fn_without_data"] += 1
                    h["notes"].append(f"  ({m} fails on an empty database too)")
                why = dep.get("error", {}).get("message", "")
                unk = [f"{f['rule']} s{f.get('statement')}: {f.get('evidence', {}).get('unknown', '')}" for f in mine]
                if any(f.get("evidence", {}).get("unknown") for f in mine):
                    h["unknown_fail"] += 1
                h["notes"].append(f"missed {m}: {why[:400]} | findings: {unk}")
            if ok and errors:
                h["err_ok"] += len(errors)
                h["notes"].append(f"error on a migration that deployed {m}: " + "; ".join(f"{f['rule']}: {f['message'][:160]}" for f in errors))
            line.append(("ok" if ok else "FAIL") + ("/willFail" if predicted else ""))
            if not ok:
                break
        print(f"  {name} cut {k}: {' '.join(line)}", flush=True)
    for db in (base, pdb, ddb, empty):
        dbx.drop(db)
    shutil.rmtree(work, ignore_errors=True)


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def report(name, h):
    p, r = ratio(h["tp"], h["tp"] + h["fp"]), ratio(h["tp"], h["tp"] + h["fn"])
    print(f"{name}: cuts {h['cuts']}, failed {h['tp'] + h['fn']} (predicted {h['tp']}), deployed {h['tn'] + h['fp']} "
          f"(false alarms {h['fp']}); precision {p}, recall {r}; error findings on deployed migrations {h['err_ok']}; "
          f"missed with an unknown finding {h['unknown_fail']}; missed that fail on an empty database too "
          f"{h['fn_without_data']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--migrator", default="target/release/migrator")
    ap.add_argument("--cuts", type=int, default=20)
    ap.add_argument("--window", type=int, default=5)
    ap.add_argument("histories", nargs="+", help="NAME=PATH or NAME=mysql:PATH")
    args = ap.parse_args()
    args.migrator = os.path.abspath(args.migrator)
    tally = {}
    for spec in args.histories:
        name, _, path = spec.partition("=")
        dbx = Pg()
        if path.startswith("mysql:"):
            dbx, path = My(), path[len("mysql:"):]
        print(f"{name}: {path}", flush=True)
        measure(name, dbx, os.path.abspath(path), args, tally)
        report(name, tally[name])
        for n in tally[name]["notes"]:
            print(f"    {n}")
    total = {k: sum(h[k] for h in tally.values())
             for k in ("tp", "fp", "fn", "tn", "err_ok", "unknown_fail", "fn_without_data", "cuts")}
    report("all", total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
