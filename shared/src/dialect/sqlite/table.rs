//! Before a migration's row is finished: `main._prisma_migrations` is still Prisma's table,
//! as the database's own catalogue says (a table, not a view; Prisma's defaults and
//! nullability; no trigger on it, in `main` or `temp`). Checked inside the migration's
//! transaction, so a script that changed it is rolled back with it.

use sqlx::sqlite::SqliteConnection;

use crate::error::EngineError;

/// Prisma's columns: (name, NOT NULL, default as SQLite keeps its text).
const COLUMNS: [(&str, bool, Option<&str>); 8] = [
    ("id", true, None),
    ("checksum", true, None),
    ("finished_at", false, None),
    ("migration_name", true, None),
    ("logs", false, None),
    ("rolled_back_at", false, None),
    ("started_at", true, Some("current_timestamp")),
    ("applied_steps_count", true, Some("0")),
];

/// What is wrong with `main._prisma_migrations`, as [`EngineError::RowMissing`].
pub(super) async fn check(conn: &mut SqliteConnection) -> Result<(), EngineError> {
    let wrong = |what: String| Err(EngineError::RowMissing { what });
    let read = || EngineError::database("checking _prisma_migrations");
    let kind: Option<String> = sqlx::query_scalar(
        "SELECT type FROM main.sqlite_master WHERE lower(name) = '_prisma_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(read())?;
    match kind.as_deref() {
        None => {
            return wrong(
                "_prisma_migrations no longer exists in main (the script dropped or renamed it)"
                    .into(),
            );
        }
        Some("table") => {}
        Some(other) => {
            return wrong(format!(
                "_prisma_migrations is no longer a table (the script replaced it with a {other})"
            ));
        }
    }
    let trigger: Option<String> = sqlx::query_scalar(
        "SELECT name FROM main.sqlite_master WHERE type = 'trigger' AND lower(tbl_name) = '_prisma_migrations' \
         UNION ALL SELECT name FROM temp.sqlite_master WHERE type = 'trigger' AND lower(tbl_name) = '_prisma_migrations' LIMIT 1",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(read())?;
    if let Some(name) = trigger {
        return wrong(format!("a trigger on _prisma_migrations: {name}"));
    }
    let columns: Vec<(String, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, \"notnull\", dflt_value FROM pragma_table_info('_prisma_migrations', 'main')",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(read())?;
    for (name, not_null, default) in COLUMNS {
        let Some((_, found_not_null, found_default)) = columns.iter().find(|c| c.0 == name) else {
            return wrong(format!(
                "a column of _prisma_migrations was dropped or renamed ({name})"
            ));
        };
        if (*found_not_null != 0) != not_null {
            return wrong(format!(
                "the nullability of _prisma_migrations.{name} was changed"
            ));
        }
        let same = match (default, found_default.as_deref()) {
            (None, None) => true,
            (Some(want), Some(found)) => want.eq_ignore_ascii_case(found.trim()),
            _ => false,
        };
        if !same {
            return wrong(format!(
                "the default of _prisma_migrations.{name} was changed (to {})",
                found_default.as_deref().unwrap_or("none")
            ));
        }
    }
    Ok(())
}
