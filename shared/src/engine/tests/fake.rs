//! A [`Dialect`] held in memory: `_prisma_migrations` as a vector, scripted script failures,
//! a lock that can be held by someone else, and a log of every call, so that tests can say
//! exactly what the engine asked of the database.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::dialect::{
    Applied, ApplyError, Dialect, FailedStatement, Held, Interruption, Migrating, MigrationRow,
    NewRow, ScriptFailure, StatementLimits, Steps, Tables, TransactionError, by_statement,
    in_transaction,
};
use crate::error::EngineError;
use crate::outcome::{DatabaseInfo, Execution};
use crate::preflight::Blocker;

/// A script holding this runs statement by statement (as `CREATE INDEX CONCURRENTLY` would).
pub const BY_STATEMENT: &str = "-- fake: statement by statement";

#[derive(Debug, Default)]
pub struct Fake {
    /// Whether `_prisma_migrations` exists.
    pub has_table: bool,
    /// Other tables of the schema (for P3005).
    pub others: Vec<String>,
    pub rows: Vec<MigrationRow>,
    /// Another session holds the migration lock: `lock` times out.
    pub lock_held: bool,
    /// Script failures by migration name, used up one per attempt.
    pub failures: HashMap<String, VecDeque<ScriptFailure>>,
    /// `insert_failed_row` fails (the connection broke after the rollback).
    pub failed_row_write_fails: bool,
    /// Every call, in order, as `method` or `method name`.
    pub calls: Vec<String>,
    /// The limits each applied script was given.
    pub limits: Vec<StatementLimits>,
    /// The waits `lock` was given.
    pub lock_waits: Vec<Duration>,
    /// Whether this session holds the lock now.
    pub locked: bool,
    /// The sessions `lock_holders` names.
    pub holders: Vec<Blocker>,
    /// What `lock_holders` was asked about, in order (not in `calls`: asking writes nothing).
    pub asked: Vec<Held>,
}

impl Fake {
    /// An empty database: no `_prisma_migrations`, no tables.
    pub fn empty() -> Fake {
        Fake::default()
    }

    /// A database whose `_prisma_migrations` holds `rows`.
    pub fn with_rows(rows: Vec<MigrationRow>) -> Fake {
        Fake {
            has_table: true,
            rows,
            ..Fake::default()
        }
    }

    /// The next `times` attempts of `migration` fail with `failure`.
    pub fn fail(&mut self, migration: &str, failure: ScriptFailure, times: usize) {
        let queue = self.failures.entry(migration.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(failure, times));
    }

    /// Calls that change the database.
    pub fn writes(&self) -> Vec<&str> {
        const WRITES: [&str; 9] = [
            "prepare_namespace",
            "create_migrations_table",
            "apply_in_transaction",
            "insert_started_row",
            "mark_finished",
            "set_logs",
            "insert_failed_row",
            "insert_resolved_row",
            "mark_rolled_back",
        ];
        self.calls
            .iter()
            .map(String::as_str)
            .filter(|c| WRITES.contains(&c.split(' ').next().unwrap_or_default()))
            .collect()
    }

    pub fn was_called(&self, method: &str) -> bool {
        self.calls
            .iter()
            .any(|c| c.split(' ').next() == Some(method))
    }

    pub fn row(&self, name: &str) -> &MigrationRow {
        self.rows
            .iter()
            .rev()
            .find(|r| r.migration_name == name)
            .unwrap_or_else(|| panic!("no row for {name}: {:?}", self.rows))
    }

    fn next_failure(&mut self, name: &str) -> Option<ScriptFailure> {
        self.failures.get_mut(name).and_then(VecDeque::pop_front)
    }

    fn row_mut(&mut self, id: &str) -> Result<&mut MigrationRow, EngineError> {
        self.rows
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| EngineError::InvalidRequest {
                reason: format!("fake: no row with id {id}"),
            })
    }

    fn push(&mut self, row: &NewRow, finished_at: Option<DateTime<Utc>>, logs: Option<&str>) {
        self.rows.push(MigrationRow {
            id: row.id.clone(),
            checksum: row.checksum.clone(),
            finished_at,
            migration_name: row.migration_name.clone(),
            logs: logs.map(str::to_owned),
            rolled_back_at: None,
            started_at: row.started_at,
            applied_steps_count: i64::from(finished_at.is_some()),
        });
    }
}

/// A script failure as a database would report it.
pub fn failure(code: &str, message: &str) -> ScriptFailure {
    ScriptFailure {
        code: Some(code.to_owned()),
        message: message.to_owned(),
        statement: None,
        committed: vec![],
        rolled_back: true,
        // As the real dialects classify it: the engine sees the meaning, not the code.
        interruption: (code == "55P03").then_some(Interruption::LockTimeout),
        ..ScriptFailure::default()
    }
}

/// A statement-by-statement failure at statement `number`, after `committed`.
pub fn statement_failure(number: usize, committed: Vec<usize>) -> ScriptFailure {
    ScriptFailure {
        code: Some("42P01".to_owned()),
        message: "relation \"missing\" does not exist".to_owned(),
        statement: Some(FailedStatement {
            number,
            line: number,
            text: "DROP TABLE missing;".to_owned(),
        }),
        committed,
        rolled_back: false,
        ..ScriptFailure::default()
    }
}

#[async_trait]
impl Dialect for Fake {
    fn provider(&self) -> &'static str {
        "postgresql"
    }

    fn info(&self) -> DatabaseInfo {
        DatabaseInfo {
            engine: "postgresql".into(),
            host: Some("fake".into()),
            port: Some(5432),
            name: "fake".into(),
            schema: None,
        }
    }

    async fn lock(&mut self, wait: Duration) -> Result<(), EngineError> {
        self.calls.push("lock".into());
        self.lock_waits.push(wait);
        if self.lock_held {
            return Err(EngineError::LockTimeout {
                lock: "fake advisory",
                statement: "SELECT fake_lock()".into(),
                timeout: wait,
            });
        }
        self.locked = true;
        Ok(())
    }

    async fn lock_holders(&mut self, held: Held) -> Result<Vec<Blocker>, EngineError> {
        self.asked.push(held);
        Ok(self.holders.clone())
    }

    async fn unlock(&mut self) -> Result<(), EngineError> {
        if self.locked {
            self.calls.push("unlock".into());
            self.locked = false;
        }
        Ok(())
    }

    async fn prepare_namespace(&mut self) -> Result<(), EngineError> {
        self.calls.push("prepare_namespace".into());
        Ok(())
    }

    async fn tables(&mut self) -> Result<Tables, EngineError> {
        self.calls.push("tables".into());
        Ok(Tables {
            has_migrations_table: self.has_table,
            others: if self.has_table {
                Vec::new()
            } else {
                self.others.clone()
            },
        })
    }

    async fn create_migrations_table(&mut self) -> Result<(), EngineError> {
        self.calls.push("create_migrations_table".into());
        self.has_table = true;
        Ok(())
    }

    async fn rows(&mut self) -> Result<Vec<MigrationRow>, EngineError> {
        self.calls.push("rows".into());
        let mut rows = self.rows.clone();
        rows.sort_by_key(|r| r.started_at);
        Ok(rows)
    }

    fn steps(&mut self) -> &mut dyn Steps {
        self
    }

    fn execution(&self, script: &str) -> Execution {
        if script.contains(BY_STATEMENT) {
            Execution::StatementByStatement {
                reason: "the fake says so".into(),
            }
        } else {
            Execution::Transaction
        }
    }

    async fn apply(&mut self, m: &Migrating<'_>) -> Result<Applied, ApplyError> {
        match self.execution(m.script) {
            Execution::Transaction => {
                let name = &m.row.migration_name;
                self.calls.push(format!("apply_in_transaction {name}"));
                self.limits.push(m.limits);
                let result = match self.next_failure(name) {
                    Some(failure) => Err(TransactionError::Script(failure)),
                    None => {
                        self.push(m.row, Some(m.clock.now()), None);
                        Ok(())
                    }
                };
                in_transaction(result, m.row, Vec::new())
            }
            Execution::StatementByStatement { reason } => by_statement(self, m, reason).await,
        }
    }

    async fn close(self: Box<Self>) {}
}

#[async_trait]
impl Steps for Fake {
    async fn insert_started_row(&mut self, row: &NewRow) -> Result<(), EngineError> {
        self.calls
            .push(format!("insert_started_row {}", row.migration_name));
        self.push(row, None, None);
        Ok(())
    }

    async fn run_statements(
        &mut self,
        script: &str,
        limits: StatementLimits,
    ) -> Result<usize, ScriptFailure> {
        self.calls.push("run_statements".into());
        self.limits.push(limits);
        let name = self
            .rows
            .last()
            .map(|r| r.migration_name.clone())
            .unwrap_or_default();
        match self.next_failure(&name) {
            Some(failure) => Err(failure),
            None => Ok(script.matches(';').count()),
        }
    }

    async fn mark_finished(&mut self, id: &str, at: DateTime<Utc>) -> Result<(), EngineError> {
        self.calls.push("mark_finished".into());
        let row = self.row_mut(id)?;
        row.finished_at = Some(at);
        row.applied_steps_count += 1;
        Ok(())
    }

    async fn set_logs(&mut self, id: &str, logs: &str) -> Result<(), EngineError> {
        self.calls.push("set_logs".into());
        self.row_mut(id)?.logs = Some(logs.to_owned());
        Ok(())
    }

    async fn insert_failed_row(&mut self, row: &NewRow, logs: &str) -> Result<(), EngineError> {
        self.calls
            .push(format!("insert_failed_row {}", row.migration_name));
        if self.failed_row_write_fails {
            return Err(EngineError::InvalidRequest {
                reason: "fake: the connection is gone".into(),
            });
        }
        self.push(row, None, Some(logs));
        Ok(())
    }
    async fn delete_row(&mut self, id: &str) -> Result<(), EngineError> {
        self.calls.push("delete_row".into());
        self.rows.retain(|r| r.id != id);
        Ok(())
    }

    async fn insert_resolved_row(&mut self, row: &NewRow) -> Result<(), EngineError> {
        self.calls
            .push(format!("insert_resolved_row {}", row.migration_name));
        self.push(row, Some(row.started_at), Some(""));
        if let Some(last) = self.rows.last_mut() {
            last.applied_steps_count = 0;
        }
        Ok(())
    }

    async fn mark_rolled_back(
        &mut self,
        ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        self.calls.push(format!("mark_rolled_back {}", ids.len()));
        for id in ids {
            self.row_mut(id)?.rolled_back_at = Some(at);
        }
        Ok(())
    }
}
