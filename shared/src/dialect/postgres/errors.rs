//! A database error as psql shows it, with its position turned into a line, and whether it
//! was one of our limits taking effect.

use super::*;

/// Renders a database error the way psql does, with the position turned into a line, and
/// says whether it was one of our limits taking effect.
pub(super) fn script_failure(
    error: &sqlx::Error,
    script: &str,
    _limits: StatementLimits,
) -> ScriptFailure {
    script_failure_after(error, script, 0)
}

/// [`script_failure`] for a script sent after `skip` characters of our own in the same
/// message: the server's position counts them, the script's lines do not.
pub(super) fn script_failure_after(
    error: &sqlx::Error,
    script: &str,
    skip: usize,
) -> ScriptFailure {
    let interruption = match error {
        sqlx::Error::Database(db) => match db.code().as_deref() {
            Some(LOCK_NOT_AVAILABLE) => Some(Interruption::LockTimeout),
            _ => None,
        },
        _ => None,
    };
    ScriptFailure::from_sqlx(error, interruption, |db| {
        match db.try_downcast_ref::<PgDatabaseError>() {
            Some(pg) => (
                Some(pg.code().to_string()),
                render_pg_error(pg, script, skip),
            ),
            None => (db.code().map(|c| c.to_string()), db.message().to_string()),
        }
    })
}

pub(super) fn render_pg_error(pg: &PgDatabaseError, script: &str, skip: usize) -> String {
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
        && let Some(position) = position.checked_sub(skip).filter(|p| *p > 0)
        && let Some((line, column, source)) = locate(script, position)
    {
        text.push_str(&format!(
            "\nPosition: line {line}, column {column}:\n{source}"
        ));
    }
    text
}

/// Turns PostgreSQL's 1-based character position into (line, column, line text).
pub(super) fn locate(script: &str, position: usize) -> Option<(usize, usize, &str)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_become_lines() {
        let script = "CREATE TABLE a (id int);\nSELEC 1;\n";
        assert_eq!(locate(script, 26), Some((2, 1, "SELEC 1;")));
        assert_eq!(locate(script, 1000), None);
    }
}
