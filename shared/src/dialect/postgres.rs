//! PostgreSQL: Prisma's bookkeeping, `pg_advisory_lock(72707369)`, and each migration in one
//! transaction with its `_prisma_migrations` row (unless it holds a statement that cannot run
//! in a transaction block).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgErrorPosition, PgSeverity, PgSslMode,
};
use sqlx::{AssertSqlSafe, Connection, Row};
use url::Url;

use super::bookkeeping::{self, BookkeepingSql, Conn, Placeholders, SqlBookkeeping, table_gone};
use super::connect_error::{ConnectError, describe_tls};
use super::server::{self, Refusals, Server, decode, read_ca_file};
use super::{
    Applied, ApplyError, Commits, Dialect, FailedStatement, Held, Interruption, Migrating,
    MigrationRow, OneByOne, ScriptFailure, StatementLimits, Steps, Tables, TransactionError,
    Unsupported, left_open_failure, one_by_one, transaction_control_reason,
};
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::preflight::Blocker;
use crate::preflight::live::{blocker_from_row, holders_query};
use crate::sql::{Statement, split_pg};

/// Prisma's advisory lock key (`72707369`, "prisma" on a phone keypad, more or less).
pub const ADVISORY_LOCK_KEY: i64 = 72707369;

/// Prisma's DDL for PostgreSQL, byte for byte (`flavour/postgres.rs`).
pub const CREATE_MIGRATIONS_TABLE: &str = r#"CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);"#;

/// How often the server checks that our connection is still there while a statement runs
/// (PostgreSQL 14+): a killed deploy's backend is cancelled within this, freeing the lock.
const CONNECTION_CHECK_INTERVAL_MS: u32 = 2000;

/// SQLSTATEs our own finishing block raises (class `MG` is not used by PostgreSQL).
const ENDED_BY_SCRIPT: &str = "MGR01";
const LEFT_OPEN_BY_SCRIPT: &str = "MGR02";
const ROW_GONE: &str = "MGR03";
const UNDEFINED_TABLE: &str = "42P01";
const QUERY_CANCELED: &str = "57014";
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// PostGIS tables that do not make a schema "non-empty" for Prisma.
const IGNORED_TABLES: [&str; 5] = [
    "spatial_ref_sys",
    "geometry_columns",
    "geography_columns",
    "raster_columns",
    "raster_overviews",
];

/// Where to connect, from a `postgresql://` URL.
#[derive(Debug, Clone)]
pub struct Target {
    options: PgConnectOptions,
    /// Prisma's notion of the schema: `?schema=` or `public`.
    schema: String,
    connect_timeout: Duration,
    info: DatabaseInfo,
}

impl Target {
    /// Reads a Prisma-style PostgreSQL URL. Prisma-only parameters (`schema`, `connection_limit`,
    /// `pgbouncer` …) are consumed here; libpq-style TLS parameters are honoured.
    pub fn from_url(url: &Url) -> Result<Target, EngineError> {
        let invalid = |reason: String| EngineError::InvalidDatabaseUrl { reason };
        let host = server::host(url);
        let port = url.port().unwrap_or(5432);
        let user = decode(url.username());
        let password = url.password().map(decode);
        let database = decode(url.path().trim_start_matches('/'));

        let mut options = PgConnectOptions::new_without_pgpass()
            .port(port)
            .application_name("migrator");
        if let Some(host) = &host {
            options = options.host(host);
        }
        if !user.is_empty() {
            options = options.username(&user);
        }
        if let Some(password) = &password {
            options = options.password(password);
        }
        if !database.is_empty() {
            options = options.database(&database);
        }

        let mut schema = None;
        let mut connect_timeout = Duration::from_secs(10);
        for (key, value) in url.query_pairs() {
            match &*key {
                "schema" => schema = Some(value.to_string()),
                "sslmode" => {
                    let mode: PgSslMode = value
                        .parse()
                        .map_err(|_| invalid(format!("Unknown sslmode `{value}`.")))?;
                    options = options.ssl_mode(mode);
                }
                "sslrootcert" => {
                    let pem = read_ca_file(&value).map_err(invalid)?;
                    options = options.ssl_root_cert_from_pem(pem);
                }
                "host" if value.starts_with('/') => options = options.socket(&*value),
                "host" => options = options.host(&value),
                "application_name" => options = options.application_name(&value),
                "options" => options = options.options(parse_options(&value)),
                "connect_timeout" => {
                    connect_timeout =
                        server::connect_timeout(&value, connect_timeout).map_err(invalid)?;
                }
                // Prisma pool and driver settings that mean nothing for one migration connection.
                "connection_limit"
                | "pool_timeout"
                | "socket_timeout"
                | "pgbouncer"
                | "statement_cache_size"
                | "sslaccept"
                | "sslcert"
                | "sslidentity"
                | "sslpassword" => {}
                other => {
                    return Err(invalid(format!(
                        "Unknown parameter `{other}` in the PostgreSQL URL."
                    )));
                }
            }
        }
        let schema_in_url = schema.is_some();
        let schema = schema.unwrap_or_else(|| "public".to_string());
        if schema_in_url {
            options = with_search_path(options, &schema);
        }
        let name = if database.is_empty() {
            user.clone()
        } else {
            database
        };
        let info = DatabaseInfo {
            engine: "postgresql".into(),
            host: Some(host.unwrap_or_else(|| "localhost".into())),
            port: Some(port),
            name,
            schema: Some(schema.clone()),
        };
        Ok(Target {
            options,
            schema,
            connect_timeout,
            info,
        })
    }

    pub fn info(&self) -> &DatabaseInfo {
        &self.info
    }

    /// A target from its parts (the function's stage configuration), TLS `verify-full` with
    /// `ca_pem` as the only trusted roots. The password may be an IAM auth token.
    pub fn from_parts(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        database: &str,
        schema: Option<&str>,
        ca_pem: &[u8],
    ) -> Target {
        let options = PgConnectOptions::new_without_pgpass()
            .host(host)
            .port(port)
            .username(user)
            .password(password)
            .database(database)
            .application_name("migrator")
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert_from_pem(ca_pem.to_vec());
        let schema_in_url = schema.is_some();
        let schema = schema.unwrap_or("public").to_string();
        let options = if schema_in_url {
            with_search_path(options, &schema)
        } else {
            options
        };
        let info = DatabaseInfo {
            engine: "postgresql".into(),
            host: Some(host.to_string()),
            port: Some(port),
            name: database.to_string(),
            schema: Some(schema.clone()),
        };
        Target {
            options,
            schema,
            connect_timeout: Duration::from_secs(10),
            info,
        }
    }

    /// Connects; with `create_database`, a missing database is created first, as Prisma's deploy does.
    pub async fn connect(
        &self,
        create_database: bool,
    ) -> Result<(Postgres, Option<String>), EngineError> {
        let open = async || self.open(&self.options).await;
        let (conn, created) = self
            .server()
            .connect(create_database, open, async || self.create_database().await)
            .await?;
        let mut pg = Postgres {
            conn,
            target: self.clone(),
            locked: false,
            unflushed: false,
            sql: BookkeepingSql::new(
                format!("{}.\"_prisma_migrations\"", quote_ident(&self.schema)),
                Placeholders::Numbered,
            ),
            standard_strings: true,
            session_defaults: String::new(),
            warnings: Vec::new(),
        };
        pg.setup_session().await?;
        Ok((pg, created))
    }

    /// A plain connection with the same options (and so the same `search_path`), for
    /// preflight's read-only probes.
    pub async fn read_connection(&self) -> Result<PgConnection, EngineError> {
        self.open(&self.options)
            .await
            .map_err(|e| e.into_engine(&self.info, 5432))
    }

    fn server(&self) -> Server<'_> {
        Server {
            label: "PostgreSQL",
            default_port: 5432,
            info: &self.info,
        }
    }

    async fn open(&self, options: &PgConnectOptions) -> Result<PgConnection, ConnectError> {
        let refusals = Refusals {
            missing_database: |e| e.code().as_deref() == Some("3D000"),
            auth: |e| matches!(e.code().as_deref(), Some("28P01" | "28000")),
        };
        server::open(options, self.connect_timeout, &refusals, |e| {
            describe_connect_error(e, options)
        })
        .await
    }

    async fn create_database(&self) -> Result<(), EngineError> {
        let admin = self.open(&self.options.clone().database("postgres")).await;
        // Another deploy created it at the same moment: 42P04, or 23505 on
        // `pg_database_datname_index` when both inserts raced in the catalog.
        let exists = |e: &dyn sqlx::error::DatabaseError| {
            matches!(e.code().as_deref(), Some("42P04" | "23505"))
        };
        self.server()
            .create_database(admin, quote_ident(&self.info.name), exists)
            .await
    }
}

/// Says what went wrong with a connection in words a person can act on (TLS above all).
fn describe_connect_error(error: &sqlx::Error, options: &PgConnectOptions) -> String {
    let raw = error.to_string();
    if let Some(text) = describe_tls(&raw, options.get_host(), "sslrootcert") {
        return text;
    }
    if raw.contains("server does not support TLS") {
        let mode = match options.get_ssl_mode() {
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
            _ => "the sslmode",
        };
        return format!("the server does not accept TLS (sslmode={mode} requires it)");
    }
    raw
}

/// `-c search_path="schema"` in the startup packet: the session's own default, which
/// `RESET` and `RESET ALL` in a script return to (Prisma's `?schema=`).
fn with_search_path(options: PgConnectOptions, schema: &str) -> PgConnectOptions {
    options.options([("search_path", quote_ident(schema))])
}

/// One PostgreSQL session.
pub struct Postgres {
    conn: PgConnection,
    target: Target,
    locked: bool,
    /// Migrations were committed with `synchronous_commit = off` and not flushed since.
    unflushed: bool,
    /// `"schema"."_prisma_migrations"`: the bookkeeping never depends on `search_path`.
    sql: BookkeepingSql,
    /// The server's `standard_conforming_strings` for this session (how `'\'` lexes).
    standard_strings: bool,
    /// Our session settings, applied at connect and after every `RESET ALL`.
    session_defaults: String,
    /// What the last apply found worth telling (see [`Dialect::take_warnings`]).
    warnings: Vec<String>,
}

impl Postgres {
    /// Reads how the server lexes strings and sets our session defaults: the connection
    /// check lets the server cancel the statement of a deploy that was killed (14+).
    async fn setup_session(&mut self) -> Result<(), EngineError> {
        let (standard, checks): (bool, bool) = sqlx::query_as(
            "SELECT current_setting('standard_conforming_strings') = 'on', current_setting('server_version_num')::int >= 140000",
        )
        .fetch_one(&mut self.conn)
        .await
        .map_err(EngineError::database("reading the session settings"))?;
        self.standard_strings = standard;
        if checks {
            let set =
                format!("SET client_connection_check_interval = {CONNECTION_CHECK_INTERVAL_MS}; ");
            match sqlx::raw_sql(AssertSqlSafe(set.clone()))
                .execute(&mut self.conn)
                .await
            {
                Ok(_) => self.session_defaults = set,
                // A server (or a compatible one) without it: killed deploys then keep their
                // backend until its statement ends, as with Prisma.
                Err(e) => tracing::debug!("client_connection_check_interval not set: {e}"),
            }
        }
        Ok(())
    }

    /// `RESET ALL` and our defaults: what one migration's script set for the session
    /// (`statement_timeout`, `search_path`, `role` …) does not reach the next migration.
    fn reset_sql(&self) -> String {
        format!("RESET ALL; {}", self.session_defaults)
    }

    /// Ends a failed transaction and resets the session; the connection may already be
    /// gone, which ends it too.
    async fn rollback(&mut self) {
        let sql = format!("ROLLBACK; {}", self.reset_sql());
        let _ = sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut self.conn)
            .await;
    }

    fn statements<'s>(&self, script: &'s str) -> Vec<Statement<'s>> {
        split_pg(script, self.standard_strings)
    }

    /// Whether a transaction block is open: `SAVEPOINT` is refused outside one (25P01).
    async fn transaction_open(&mut self) -> bool {
        sqlx::raw_sql("SAVEPOINT migrator_probe")
            .execute(&mut self.conn)
            .await
            .is_ok()
    }

    /// Whether the row with this id is committed (after a rollback: the script committed it).
    async fn row_committed(&mut self, id: &str) -> bool {
        let sql = format!(
            "SELECT EXISTS(SELECT 1 FROM {} WHERE id = $1)",
            self.sql.table()
        );
        sqlx::query_scalar::<_, bool>(AssertSqlSafe(sql))
            .bind(id)
            .fetch_one(&mut self.conn)
            .await
            .unwrap_or(false)
    }
}

#[async_trait]
impl OneByOne for Postgres {
    fn failure(&self, error: &sqlx::Error, text: &str, limits: StatementLimits) -> ScriptFailure {
        script_failure(error, text, limits)
    }

    /// A script that opened its own transaction leaves it aborted.
    async fn end_own_transaction(&mut self) {
        self.rollback().await;
    }

    async fn left_open(&mut self, _commits: &Commits) -> bool {
        let open = self.transaction_open().await;
        if open {
            self.rollback().await;
        }
        open
    }
}

/// What the logs say when a script committed the migrator's transaction itself.
const ENDED_NOTE: &str = "The script ended the migrator's transaction itself (a COMMIT inside it that the migrator could not see as one): what ran up to that COMMIT is committed, together with this migration's row.";

/// Why a script cannot run in the migrator's one transaction.
enum Leaves {
    /// A statement PostgreSQL refuses in a transaction block (`CREATE INDEX CONCURRENTLY` …).
    Statement(String),
    /// Only the script's own `BEGIN` / `COMMIT` / `ROLLBACK`.
    OwnTransactions(String),
}

impl Postgres {
    fn leaves_transaction(&self, script: &str) -> Option<Leaves> {
        let mut own = None;
        for statement in self.statements(script) {
            if statement.is_blank() {
                continue;
            }
            let words = statement.keywords(6);
            let Some(reason) = non_transactional_reason(&words, statement.trimmed()) else {
                continue;
            };
            let plain_control = matches!(
                words.first().map(String::as_str),
                Some("BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT")
            );
            if !plain_control {
                return Some(Leaves::Statement(reason));
            }
            own.get_or_insert(reason);
        }
        own.map(Leaves::OwnTransactions)
    }

    /// A script whose only transaction statements are its own, run the way Prisma's single
    /// simple-query message runs it: statements before its `BEGIN` belong to that
    /// transaction, everything up to a `COMMIT` stands or falls together, and statements
    /// after its last `COMMIT` are one more all-or-nothing group. Run one by one inside such
    /// groups, a failure names its statement and exactly what was committed.
    async fn run_in_blocks(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        let mut number = 0;
        let mut committed: Vec<usize> = Vec::new();
        let mut group: Vec<usize> = Vec::new();
        let mut opened: Option<FailedStatement> = None;
        let mut group_open = false;
        for statement in self.statements(script) {
            if statement.is_blank() {
                continue;
            }
            number += 1;
            let words = statement.keywords(2);
            let first = words.first().map(String::as_str);
            let to_savepoint = words.get(1).map(String::as_str) == Some("TO");
            if !group_open {
                // The group a single message would run in (a script's BEGIN inside it only
                // warns that a transaction is already open, as it does there).
                if let Err(e) = sqlx::raw_sql("BEGIN").execute(&mut self.conn).await {
                    let mut failure = script_failure(&e, script, limits);
                    failure.committed = committed;
                    return Err(failure);
                }
                group_open = true;
            }
            if let Err(e) = sqlx::raw_sql(AssertSqlSafe(statement.text.to_owned()))
                .execute(&mut self.conn)
                .await
            {
                self.rollback().await;
                let mut failure = script_failure(&e, statement.text, limits);
                failure.statement = Some(failed_statement(number, &statement));
                failure.committed = committed;
                return Err(failure);
            }
            group.push(number);
            match first {
                Some("BEGIN" | "START") if opened.is_none() => {
                    opened = Some(failed_statement(number, &statement));
                }
                Some("COMMIT" | "END") => {
                    committed.append(&mut group);
                    opened = None;
                    group_open = false;
                }
                Some("ROLLBACK" | "ABORT") if !to_savepoint => {
                    group.clear();
                    committed.push(number);
                    opened = None;
                    group_open = false;
                }
                _ => {}
            }
        }
        if let Some(begin) = opened {
            self.rollback().await;
            let mut failure = left_open_failure(committed);
            failure.statement = Some(begin);
            return Err(failure);
        }
        if group_open && let Err(e) = sqlx::raw_sql("COMMIT").execute(&mut self.conn).await {
            self.rollback().await;
            let mut failure = script_failure(&e, script, limits);
            failure.committed = committed;
            return Err(failure);
        }
        Ok(number)
    }
}

fn failed_statement(number: usize, statement: &Statement<'_>) -> FailedStatement {
    FailedStatement {
        number,
        line: statement.line,
        text: statement.trimmed().to_string(),
    }
}

#[async_trait]
impl Dialect for Postgres {
    fn provider(&self) -> &'static str {
        "postgresql"
    }

    fn info(&self) -> DatabaseInfo {
        self.target.info.clone()
    }

    async fn lock(&mut self, wait: Duration) -> Result<(), EngineError> {
        let statement = format!("SELECT pg_advisory_lock({ADVISORY_LOCK_KEY})");
        let timeout = || EngineError::LockTimeout {
            lock: "postgres advisory",
            statement: statement.clone(),
            timeout: wait,
        };
        // The server enforces the wait (lock_timeout also covers advisory locks), so a
        // timed-out wait does not linger on the server like Prisma's client-side timeout.
        // The three statements run as one implicit transaction: on a timeout the SET is undone.
        let millis = wait.as_millis().max(1);
        let sql = format!(
            "SET lock_timeout = '{millis}ms'; SELECT pg_advisory_lock({ADVISORY_LOCK_KEY}); RESET lock_timeout;"
        );
        let attempt = sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut self.conn);
        match tokio::time::timeout(wait + Duration::from_secs(5), attempt).await {
            Err(_) => Err(timeout()),
            Ok(Err(sqlx::Error::Database(e))) if e.code().as_deref() == Some("55P03") => {
                Err(timeout())
            }
            Ok(Err(e)) => Err(EngineError::database("taking the advisory lock")(e)),
            Ok(Ok(_)) => {
                self.locked = true;
                Ok(())
            }
        }
    }

    async fn lock_holders(&mut self, held: Held) -> Result<Vec<Blocker>, EngineError> {
        // Read-only and bounded by the server, like preflight's probes.
        sqlx::raw_sql(
            "BEGIN READ ONLY; SET LOCAL statement_timeout = '2000ms'; SET LOCAL lock_timeout = '1000ms'",
        )
        .execute(&mut self.conn)
        .await
        .map_err(EngineError::database("asking who holds the lock"))?;
        let rows = match held {
            Held::MigrationLock => {
                sqlx::query(AssertSqlSafe(holders_query("false")))
                    .fetch_all(&mut self.conn)
                    .await
            }
            Held::Tables => {
                let in_schema = "l.relation IN (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1)";
                sqlx::query(AssertSqlSafe(holders_query(in_schema)))
                    .bind(&self.target.schema)
                    .fetch_all(&mut self.conn)
                    .await
            }
        };
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let rows = rows.map_err(EngineError::database("asking who holds the lock"))?;
        Ok(rows.iter().map(blocker_from_row).collect())
    }

    async fn unlock(&mut self) -> Result<(), EngineError> {
        if self.locked {
            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(ADVISORY_LOCK_KEY)
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("releasing the advisory lock"))?;
            self.locked = false;
        }
        Ok(())
    }

    async fn prepare_namespace(&mut self) -> Result<(), EngineError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS(SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(&self.target.schema)
                .fetch_one(&mut self.conn)
                .await
                .map_err(EngineError::database("looking for the schema"))?;
        if !exists {
            let sql = format!("CREATE SCHEMA {}", quote_ident(&self.target.schema));
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("creating the schema"))?;
        }
        Ok(())
    }

    async fn tables(&mut self) -> Result<Tables, EngineError> {
        // The usual case is one index lookup; the schema's tables are listed (for P3005) only
        // when `_prisma_migrations` is missing.
        let has_table: bool = sqlx::query_scalar(
            "SELECT EXISTS(SELECT 1 FROM pg_class AS tbl INNER JOIN pg_namespace AS namespace ON namespace.oid = tbl.relnamespace WHERE tbl.relname = '_prisma_migrations' AND tbl.relkind = 'r' AND namespace.nspname = $1)",
        )
        .bind(&self.target.schema)
        .fetch_one(&mut self.conn)
        .await
        .map_err(EngineError::database("looking for _prisma_migrations"))?;
        if has_table {
            return Ok(Tables {
                has_migrations_table: true,
                others: Vec::new(),
            });
        }
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT tbl.relname::text FROM pg_class AS tbl INNER JOIN pg_namespace AS namespace ON namespace.oid = tbl.relnamespace WHERE tbl.relkind = 'r' AND namespace.nspname = $1 ORDER BY tbl.relname",
        )
        .bind(&self.target.schema)
        .fetch_all(&mut self.conn)
        .await
        .map_err(EngineError::database("listing tables"))?;
        // PostGIS's tables do not make a schema "non-empty".
        Ok(Tables::classify(names, &IGNORED_TABLES))
    }

    async fn create_migrations_table(&mut self) -> Result<(), EngineError> {
        let ddl = CREATE_MIGRATIONS_TABLE.replacen("_prisma_migrations", self.sql.table(), 1);
        bookkeeping::create_table(self, ddl).await
    }

    async fn rows(&mut self) -> Result<Vec<MigrationRow>, EngineError> {
        bookkeeping::read_rows::<_, i32>(self).await
    }

    fn steps(&mut self) -> &mut dyn Steps {
        self
    }

    fn execution(&self, script: &str) -> Execution {
        match self.leaves_transaction(script) {
            None => Execution::Transaction,
            Some(Leaves::Statement(reason)) => Execution::StatementByStatement { reason },
            Some(Leaves::OwnTransactions(reason)) => Execution::StatementByStatement {
                reason: format!(
                    "{reason}; they are committed where its own COMMITs are, as Prisma's single-message execution commits them"
                ),
            },
        }
    }

    fn unsupported(&self, script: &str) -> Option<Unsupported> {
        self.statements(script).iter().find_map(|statement| {
            let text = statement.trimmed();
            let words = statement.keywords(1);
            if words.first().map(String::as_str) != Some("COPY") {
                return None;
            }
            let reason = if contains_word(text, "STDIN") {
                "which waits for data the client sends after the statement; the migrator has none to send and the deploy would hang holding the migration lock"
            } else if contains_word(text, "STDOUT") {
                "which streams rows to the client, and a migration has nowhere to put them"
            } else {
                return None;
            };
            Some(Unsupported {
                line: statement.line,
                statement: text.chars().take(200).collect(),
                reason: reason.into(),
            })
        })
    }

    async fn apply(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError> {
        match self.execution(m.script) {
            Execution::Transaction => {
                let result = self.apply_in_transaction(m).await;
                super::in_transaction(result, m.row, std::mem::take(&mut self.warnings))
            }
            Execution::StatementByStatement { reason } => {
                super::by_statement(self, m, reason).await
            }
        }
    }

    async fn flush(&mut self) -> Result<(), EngineError> {
        if self.unflushed {
            // A transaction holding an xid writes a commit record; committing it synchronously
            // flushes the WAL up to here, which holds every earlier asynchronous commit.
            sqlx::raw_sql("SELECT txid_current()")
                .execute(&mut self.conn)
                .await
                .map_err(EngineError::database("flushing the commits to disk"))?;
            self.unflushed = false;
        }
        Ok(())
    }

    async fn close(self: Box<Self>) {
        let _ = self.conn.close().await;
    }
}

#[async_trait]
impl SqlBookkeeping for Postgres {
    type Db = sqlx::Postgres;
    type Time = DateTime<Utc>;
    const REMOVED_ROW: &'static str = "the script deleted it or emptied the table";
    const REMOVED_TABLE: &'static str = "the script dropped, renamed or moved it";

    fn bookkeeping(&mut self) -> (&mut Conn<Self>, &BookkeepingSql) {
        (&mut self.conn, &self.sql)
    }

    fn table_is_missing(error: &dyn sqlx::error::DatabaseError) -> bool {
        error.code().as_deref() == Some(UNDEFINED_TABLE)
    }

    async fn run_each_statement(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        let set = set_limits("SET", limits);
        if !set.is_empty()
            && let Err(e) = sqlx::raw_sql(AssertSqlSafe(set))
                .execute(&mut self.conn)
                .await
        {
            return Err(script_failure(&e, script, limits));
        }
        let result = match self.leaves_transaction(script) {
            Some(Leaves::OwnTransactions(_)) => self.run_in_blocks(script, limits).await,
            _ => {
                let statements = self.statements(script);
                let statements = statements.into_iter().filter(|s| !s.is_blank()).collect();
                one_by_one(self, statements, Commits::new(false), limits).await
            }
        };
        // Our limits off, and whatever the script set for the session with them.
        let _ = sqlx::raw_sql(AssertSqlSafe(self.reset_sql()))
            .execute(&mut self.conn)
            .await;
        result
    }
}

impl Postgres {
    async fn apply_in_transaction(&mut self, m: &Migrating<'_>) -> Result<(), TransactionError> {
        let Migrating {
            row,
            script,
            limits,
            clock,
        } = *m;
        // Three round trips: open the transaction with its limits and the started row; the
        // script alone (so error positions are the script's); the finished row and COMMIT.
        // The commit does not wait for the WAL flush: the migration and its row stand or fall
        // together, and `flush` makes them durable before any outcome reports them.
        let begin = format!(
            "BEGIN; SET LOCAL synchronous_commit = off; {}INSERT INTO {} (id, checksum, started_at, migration_name) VALUES ({}, {}, {}, {}); SELECT txid_current();",
            set_limits("SET LOCAL", limits),
            self.sql.table(),
            literal(&row.id),
            literal(&row.checksum),
            timestamp(row.started_at),
            literal(&row.migration_name),
        );
        let xid: i64 = match sqlx::raw_sql(AssertSqlSafe(begin))
            .fetch_all(&mut self.conn)
            .await
            .and_then(|rows| match rows.last() {
                Some(row) => row.try_get(0),
                None => Err(sqlx::Error::RowNotFound),
            }) {
            Ok(xid) => xid,
            Err(e) => {
                self.rollback().await;
                return Err(TransactionError::Bookkeeping(EngineError::database(
                    "recording the migration start",
                )(e)));
            }
        };
        if let Err(e) = sqlx::raw_sql(AssertSqlSafe(script.to_owned()))
            .execute(&mut self.conn)
            .await
        {
            self.rollback().await;
            let mut failure = script_failure(&e, script, limits);
            if self.row_committed(&row.id).await {
                // The script committed our transaction itself (a COMMIT the splitter did
                // not see as one): what ran before it stays, as it would with Prisma.
                failure.row_recorded = true;
                failure.note = Some(ENDED_NOTE.into());
            } else {
                failure.rolled_back = true;
            }
            return Err(TransactionError::Script(failure));
        }
        // Finish only if the transaction is still the one we opened and our row is still
        // there; all under our own settings, whatever the script set.
        let body = format!(
            "BEGIN IF txid_current_if_assigned() IS DISTINCT FROM {xid} THEN IF now() = statement_timestamp() THEN RAISE EXCEPTION 'the script ended the transaction' USING ERRCODE = '{ENDED_BY_SCRIPT}'; END IF; RAISE EXCEPTION 'the script left a transaction open' USING ERRCODE = '{LEFT_OPEN_BY_SCRIPT}'; END IF; UPDATE {} SET applied_steps_count = applied_steps_count + 1, finished_at = {} WHERE id = {}; IF NOT FOUND THEN RAISE EXCEPTION 'the row is gone' USING ERRCODE = '{ROW_GONE}'; END IF; END",
            self.sql.table(),
            timestamp(clock.now()),
            literal(&row.id),
        );
        let finish = format!(
            "{}SET LOCAL synchronous_commit = off; {}DO {}; COMMIT;",
            self.reset_sql(),
            set_limits("SET LOCAL", limits),
            literal(&body)
        );
        match sqlx::raw_sql(AssertSqlSafe(finish))
            .execute(&mut self.conn)
            .await
        {
            Ok(_) => {
                self.unflushed = true;
                Ok(())
            }
            Err(e) => {
                self.rollback().await;
                let code = match &e {
                    sqlx::Error::Database(db) => db.code().map(|c| c.to_string()),
                    _ => None,
                };
                match code.as_deref() {
                    Some(ENDED_BY_SCRIPT) => {
                        // Every statement ran and is committed (the part after the script's
                        // COMMIT in an implicit transaction of its own): record it as
                        // applied, as Prisma does, and say it was not atomic.
                        self.mark_finished(&row.id, clock.now())
                            .await
                            .map_err(|e| {
                                TransactionError::Bookkeeping(match e {
                                    // Its statements are committed: nothing was rolled back.
                                    EngineError::RowMissing { what } => EngineError::Bookkeeping {
                                        migration: row.migration_name.clone(),
                                        what,
                                        rolled_back: false,
                                    },
                                    other => other,
                                })
                            })?;
                        self.warnings.push(format!(
                            "Migration `{}` ended the migrator's transaction itself (a COMMIT inside the script): all its statements ran and are committed, but not as one transaction.",
                            row.migration_name
                        ));
                        Ok(())
                    }
                    Some(LEFT_OPEN_BY_SCRIPT) => Err(TransactionError::Script(ScriptFailure {
                        row_recorded: true,
                        note: Some(format!(
                            "{ENDED_NOTE} After it, the script opened a transaction it never committed; the migrator rolled that one back."
                        )),
                        ..left_open_failure(Vec::new())
                    })),
                    Some(ROW_GONE) => Err(TransactionError::Bookkeeping(EngineError::RowMissing {
                        what: format!(
                            "it deleted its own row from {} (DELETE or TRUNCATE)",
                            self.sql.table()
                        ),
                    })),
                    Some(UNDEFINED_TABLE) => {
                        Err(TransactionError::Bookkeeping(EngineError::RowMissing {
                            what: table_gone(self.sql.table(), Self::REMOVED_TABLE),
                        }))
                    }
                    _ => Err(TransactionError::Bookkeeping(EngineError::database(
                        "committing the migration",
                    )(e))),
                }
            }
        }
    }
}

/// `SET [LOCAL] statement_timeout …; SET [LOCAL] lock_timeout …;` for the limits given.
fn set_limits(set: &str, limits: StatementLimits) -> String {
    let mut sql = String::new();
    if let Some(t) = limits.statement_timeout {
        sql.push_str(&format!(
            "{set} statement_timeout = '{}ms'; ",
            t.as_millis().max(1)
        ));
    }
    if let Some(t) = limits.lock_timeout {
        sql.push_str(&format!(
            "{set} lock_timeout = '{}ms'; ",
            t.as_millis().max(1)
        ));
    }
    sql
}

/// A string literal that means the same whatever `standard_conforming_strings` says: dollar
/// quoting with a tag the text does not contain.
fn literal(text: &str) -> String {
    let mut tag = String::from("$m$");
    let mut n = 0;
    // The closing tag must first appear where we put it: not inside the text, nor
    // straddling its end.
    while format!("{text}{tag}").find(&tag) != Some(text.len()) {
        n += 1;
        tag = format!("$m{n}$");
    }
    format!("{tag}{text}{tag}")
}

/// A `timestamptz` literal with microseconds, in UTC.
fn timestamp(at: DateTime<Utc>) -> String {
    format!("'{}'::timestamptz", at.format("%Y-%m-%d %H:%M:%S%.6f+00"))
}

/// Why a statement cannot run inside a transaction block, if it cannot.
fn non_transactional_reason(words: &[String], text: &str) -> Option<String> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let says = |what: &str| {
        Some(format!(
            "it holds `{what}`, which PostgreSQL cannot run inside a transaction block"
        ))
    };
    match w.as_slice() {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => says("CREATE INDEX CONCURRENTLY"),
        ["DROP", "INDEX", "CONCURRENTLY", ..] => says("DROP INDEX CONCURRENTLY"),
        ["REINDEX", ..] if contains_word(text, "CONCURRENTLY") => says("REINDEX CONCURRENTLY"),
        ["REINDEX", "DATABASE" | "SYSTEM", ..] => says("REINDEX DATABASE"),
        ["VACUUM", ..] => says("VACUUM"),
        ["ALTER", "SYSTEM", ..] => says("ALTER SYSTEM"),
        ["CREATE" | "DROP", "DATABASE", ..] => says(&format!("{} DATABASE", w[0])),
        ["CREATE" | "DROP", "TABLESPACE", ..] => says(&format!("{} TABLESPACE", w[0])),
        ["CREATE" | "DROP", "SUBSCRIPTION", ..] => says(&format!("{} SUBSCRIPTION", w[0])),
        ["ALTER", "TABLE", ..]
            if contains_word(text, "DETACH") && contains_word(text, "CONCURRENTLY") =>
        {
            says("ALTER TABLE … DETACH PARTITION … CONCURRENTLY")
        }
        ["PREPARE", "TRANSACTION", ..] | ["COMMIT" | "ROLLBACK", "PREPARED", ..] => {
            transaction_control_reason(words)
        }
        ["PREPARE", ..] => None,
        _ => transaction_control_reason(words),
    }
}

fn contains_word(text: &str, word: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w.eq_ignore_ascii_case(word))
}

/// Renders a database error the way psql does, with the position turned into a line, and
/// says whether it was one of our limits taking effect.
fn script_failure(error: &sqlx::Error, script: &str, limits: StatementLimits) -> ScriptFailure {
    let interruption = match error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(LOCK_NOT_AVAILABLE) => Some(Interruption::LockTimeout),
            Some(QUERY_CANCELED)
                if limits.statement_timeout.is_some()
                    && db.message().contains("statement timeout") =>
            {
                Some(Interruption::StatementTimeout)
            }
            _ => None,
        },
        _ => None,
    };
    let (code, message) = match error {
        sqlx::Error::Database(db) => match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => (Some(pg.code().to_string()), render_pg_error(pg, script)),
            None => (db.code().map(|c| c.to_string()), db.message().to_string()),
        },
        other => (
            None,
            format!("{other} (the connection to the database was lost or failed)"),
        ),
    };
    ScriptFailure {
        code,
        message,
        interruption,
        ..ScriptFailure::default()
    }
}

fn render_pg_error(pg: &PgDatabaseError, script: &str) -> String {
    let severity = match pg.severity() {
        PgSeverity::Fatal => "FATAL",
        PgSeverity::Panic => "PANIC",
        _ => "ERROR",
    };
    let mut text = format!("{severity}: {}", pg.message());
    if let Some(detail) = pg.detail() {
        text.push_str(&format!("\nDETAIL: {detail}"));
    }
    if let Some(hint) = pg.hint() {
        text.push_str(&format!("\nHINT: {hint}"));
    }
    if let Some(PgErrorPosition::Original(position)) = pg.position()
        && let Some((line, column, source)) = locate(script, position)
    {
        text.push_str(&format!(
            "\nPosition: line {line}, column {column}:\n{source}"
        ));
    }
    text
}

/// Turns PostgreSQL's 1-based character position into (line, column, line text).
fn locate(script: &str, position: usize) -> Option<(usize, usize, &str)> {
    let byte = script
        .char_indices()
        .nth(position.checked_sub(1)?)
        .map(|(i, _)| i)?;
    let line_start = script[..byte].rfind('\n').map_or(0, |i| i + 1);
    let line_end = script[byte..].find('\n').map_or(script.len(), |i| byte + i);
    let line = script[..byte].matches('\n').count() + 1;
    let column = script[line_start..byte].chars().count() + 1;
    Some((line, column, script[line_start..line_end].trim_end()))
}

/// `"name"` with embedded quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `-c key=value -c other=x` from the libpq `options` parameter.
fn parse_options(value: &str) -> Vec<(String, String)> {
    value
        .split_whitespace()
        .filter(|part| *part != "-c")
        .filter_map(|part| {
            let part = part.strip_prefix("-c").unwrap_or(part);
            part.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn concurrently_and_friends_leave_the_transaction() {
        for w in [
            &["CREATE", "INDEX", "CONCURRENTLY"][..],
            &["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"],
            &["DROP", "INDEX", "CONCURRENTLY"],
            &["VACUUM"],
            &["ALTER", "SYSTEM", "SET"],
            &["CREATE", "DATABASE"],
            &["COMMIT"],
            &["BEGIN"],
        ] {
            assert!(non_transactional_reason(&words(w), "").is_some(), "{w:?}");
        }
        assert!(
            non_transactional_reason(
                &words(&["REINDEX", "TABLE"]),
                "REINDEX TABLE CONCURRENTLY x"
            )
            .is_some()
        );
        assert!(non_transactional_reason(&words(&["CREATE", "INDEX", "x"]), "").is_none());
        assert!(non_transactional_reason(&words(&["PREPARE", "q"]), "").is_none());
        assert!(
            non_transactional_reason(
                &words(&["ALTER", "TABLE"]),
                "ALTER TABLE x ADD COLUMN y int"
            )
            .is_none()
        );
    }

    #[test]
    fn url_keeps_prisma_schema_and_never_the_password() {
        let url = Url::parse("postgresql://u:s%40cret@db.example:6543/app?schema=tenant&connection_limit=1&sslmode=require").unwrap();
        let target = Target::from_url(&url).unwrap();
        assert_eq!(target.schema, "tenant");
        assert!(format!("{:?}", target.options).contains("search_path"));
        assert_eq!(target.info.port, Some(6543));
        assert_eq!(target.info.name, "app");
        assert!(!format!("{:?}", target.info).contains("cret"));
    }

    #[test]
    fn unknown_url_parameters_are_refused() {
        let url = Url::parse("postgresql://u@h/db?shcema=x").unwrap();
        assert!(matches!(
            Target::from_url(&url),
            Err(EngineError::InvalidDatabaseUrl { .. })
        ));
    }

    #[test]
    fn positions_become_lines() {
        let script = "CREATE TABLE a (id int);\nSELEC 1;\n";
        assert_eq!(locate(script, 26), Some((2, 1, "SELEC 1;")));
        assert_eq!(locate(script, 1000), None);
    }

    #[test]
    fn literals_survive_any_text() {
        assert_eq!(literal("20240101_init"), "$m$20240101_init$m$");
        assert_eq!(literal("a$m$b"), "$m1$a$m$b$m1$");
        assert_eq!(literal("ends with $m"), "$m1$ends with $m$m1$");
        assert_eq!(literal("it's"), "$m$it's$m$");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
