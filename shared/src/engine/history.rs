//! Prisma's rules for comparing the artifact's migrations with `_prisma_migrations`.

use std::collections::{HashMap, HashSet};

use crate::checksum::script_matches_checksum;
use crate::dialect::MigrationRow;
use crate::migration::{Migration, MigrationSet};
use crate::ordering::nfc;

/// What the rows say about the artifact's migrations.
#[derive(Debug, Default)]
pub struct Comparison<'a> {
    /// Not applied, in artifact order, with whether each sorts before an applied one.
    pub pending: Vec<(&'a Migration, bool)>,
    /// Rows Prisma calls failed: `finished_at` and `rolled_back_at` both NULL.
    pub failed: Vec<&'a MigrationRow>,
    /// Names recorded (not rolled back) that the artifact does not have.
    pub missing_locally: Vec<String>,
    /// Applied migrations whose file no longer matches the recorded checksum.
    pub edited: Vec<String>,
    /// Pending migrations whose name equals a recorded one (missing locally) once both are in
    /// Unicode NFC: `(local, recorded)`. They look the same, but Prisma compares bytes and would
    /// apply the migration a second time.
    pub renamed: Vec<(String, String)>,
}

/// Prisma's deploy rule: a migration is pending when no row with its name has
/// `rolled_back_at` NULL (so a rolled-back migration is applied again). On top of it we
/// work out what Prisma does not report: drift and out-of-order migrations.
pub fn compare<'a>(set: &'a MigrationSet, rows: &'a [MigrationRow]) -> Comparison<'a> {
    let live: Vec<&MigrationRow> = rows.iter().filter(|r| r.rolled_back_at.is_none()).collect();
    let live_names: HashSet<&str> = live.iter().map(|r| r.migration_name.as_str()).collect();

    let last_applied = set
        .migrations
        .iter()
        .rposition(|m| live_names.contains(m.name.as_str()));
    let pending: Vec<(&Migration, bool)> = set
        .migrations
        .iter()
        .enumerate()
        .filter(|(_, m)| !live_names.contains(m.name.as_str()))
        .map(|(i, m)| (m, last_applied.is_some_and(|last| i < last)))
        .collect();

    let local: HashSet<&str> = set.migrations.iter().map(|m| m.name.as_str()).collect();
    let mut missing_locally: Vec<String> = Vec::new();
    let mut seen_missing: HashSet<&str> = HashSet::new();
    for row in &live {
        let name = row.migration_name.as_str();
        if !local.contains(name) && seen_missing.insert(name) {
            missing_locally.push(row.migration_name.clone());
        }
    }

    // Compare with the newest finished row of each name, not Prisma's first row of any state
    // (which reports a fixed and re-applied migration as edited, prisma/prisma#16927).
    // One pass over the rows (a search per migration was quadratic in the history's length);
    // on equal `started_at` the later row wins, as `max_by_key` would choose.
    let mut newest_finished: HashMap<&str, &MigrationRow> = HashMap::new();
    for row in live.iter().copied().filter(|r| r.finished_at.is_some()) {
        newest_finished
            .entry(row.migration_name.as_str())
            .and_modify(|newest| {
                if row.started_at >= newest.started_at {
                    *newest = row;
                }
            })
            .or_insert(row);
    }
    let mut edited = Vec::new();
    for migration in &set.migrations {
        let Some(script) = &migration.script else {
            continue;
        };
        if let Some(row) = newest_finished.get(migration.name.as_str())
            && !script_matches_checksum(script, &row.checksum)
        {
            edited.push(migration.name.clone());
        }
    }

    let renamed = normalisation_twins(&pending, &missing_locally);
    Comparison {
        pending,
        failed: rows.iter().filter(|r| r.is_failed()).collect(),
        missing_locally,
        edited,
        renamed,
    }
}

/// The pending migrations that a recorded name equals once both are NFC.
fn normalisation_twins(
    pending: &[(&Migration, bool)],
    missing_locally: &[String],
) -> Vec<(String, String)> {
    pending
        .iter()
        .filter_map(|(m, _)| {
            let local = nfc(&m.name);
            missing_locally
                .iter()
                .find(|recorded| nfc(recorded) == local)
                .map(|recorded| (m.name.clone(), recorded.clone()))
        })
        .collect()
}

/// Prisma's P3009 details: one line per failed row; unlike Prisma we include the logs.
pub fn failed_details(failed: &[&MigrationRow]) -> String {
    failed
        .iter()
        .map(|row| {
            let logs = match row.logs.as_deref() {
                Some(logs) if !logs.is_empty() => format!(" with the following logs:\n{logs}"),
                _ => String::new(),
            };
            format!(
                "The `{}` migration started at {} failed{logs}\n",
                row.migration_name, row.started_at
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::checksum::sha256_hex;

    fn migration(name: &str, script: &str) -> Migration {
        Migration {
            name: name.into(),
            script: Some(script.into()),
            checksum: Some(sha256_hex(script.as_bytes())),
        }
    }

    fn set(migrations: Vec<Migration>) -> MigrationSet {
        MigrationSet {
            path: ".".into(),
            migrations,
            lockfile: None,
            schema_provider: None,
            warnings: vec![],
        }
    }

    fn row(
        name: &str,
        script: &str,
        minute: u32,
        finished: bool,
        rolled_back: bool,
    ) -> MigrationRow {
        let at = Utc.with_ymd_and_hms(2024, 1, 1, 0, minute, 0).unwrap();
        MigrationRow {
            id: format!("{name}-{minute}"),
            checksum: sha256_hex(script.as_bytes()),
            finished_at: finished.then_some(at),
            migration_name: name.into(),
            logs: None,
            rolled_back_at: rolled_back.then_some(at),
            started_at: at,
            applied_steps_count: i64::from(finished),
        }
    }

    #[test]
    fn rolled_back_rows_do_not_count_as_applied() {
        let s = set(vec![migration("1_a", "A"), migration("2_b", "B")]);
        let rows = vec![
            row("1_a", "A", 1, true, false),
            row("2_b", "B", 2, false, true),
        ];
        let c = compare(&s, &rows);
        assert_eq!(
            c.pending
                .iter()
                .map(|(m, _)| m.name.as_str())
                .collect::<Vec<_>>(),
            ["2_b"]
        );
        assert!(c.failed.is_empty());
    }

    #[test]
    fn failed_rows_and_out_of_order_and_drift() {
        let s = set(vec![
            migration("1_a", "A"),
            migration("2_b", "B changed"),
            migration("3_c", "C"),
        ]);
        let rows = vec![
            row("2_b", "B", 1, true, false),
            row("3_c", "C", 2, false, false),
            row("9_gone", "G", 3, true, false),
        ];
        let c = compare(&s, &rows);
        assert_eq!(c.pending.len(), 1);
        assert_eq!(c.pending[0].0.name, "1_a");
        assert!(c.pending[0].1, "1_a sorts before applied 2_b");
        assert_eq!(c.failed.len(), 1);
        assert_eq!(c.missing_locally, ["9_gone"]);
        assert_eq!(c.edited, ["2_b"]);
    }

    #[test]
    fn crlf_checkouts_are_not_edits() {
        let s = set(vec![migration("1_a", "CREATE TABLE a ();\r\n")]);
        let rows = vec![row("1_a", "CREATE TABLE a ();\n", 1, true, false)];
        assert!(compare(&s, &rows).edited.is_empty());
    }

    #[test]
    fn reapplied_after_rollback_compares_with_the_newest_row() {
        let s = set(vec![migration("1_a", "fixed")]);
        let rows = vec![
            row("1_a", "broken", 1, false, true),
            row("1_a", "fixed", 2, true, false),
        ];
        assert!(compare(&s, &rows).edited.is_empty());
    }

    #[test]
    fn p3009_details_show_the_logs() {
        let mut r = row("1_a", "A", 1, false, false);
        r.logs = Some("boom".into());
        assert_eq!(
            failed_details(&[&r]),
            "The `1_a` migration started at 2024-01-01 00:01:00 UTC failed with the following logs:\nboom\n"
        );
    }
}
