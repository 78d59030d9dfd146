//! A MySQL error as Prisma reports it (its number and message), whether it was one of our
//! limits taking effect, and a long statement cut for `logs`.

use super::*;

/// The MySQL error number as the code and the server's message, as Prisma reports them,
/// and whether it was one of our limits taking effect.
pub(super) fn script_failure(error: &sqlx::Error, _limits: StatementLimits) -> ScriptFailure {
    let interruption = match error {
        sqlx::Error::Database(db) => match error_number(db.as_ref()) {
            Some(ER_LOCK_WAIT_TIMEOUT) => Some(Interruption::LockTimeout),
            _ => None,
        },
        _ => None,
    };
    ScriptFailure::from_sqlx(error, interruption, |db| {
        let code = error_number(db)
            .map(|n| n.to_string())
            .or_else(|| db.code().map(|c| c.to_string()));
        (code, db.message().to_string())
    })
}

/// The failing statement as quoted in `logs`: `logs` is a `TEXT` column (64 KiB), so a huge
/// statement (a data load) is cut rather than making the failure unrecordable.
pub(super) fn shorten(text: &str) -> String {
    let kept = crate::text::clip_bytes(text, 4000);
    if kept.len() == text.len() {
        return text.to_string();
    }
    format!(
        "{kept} … ({} more bytes not shown)",
        text.len() - kept.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_statements_are_cut_in_logs() {
        assert_eq!(shorten("SELECT 1;"), "SELECT 1;");
        let long = format!("INSERT INTO t VALUES ('{}');", "é".repeat(3000));
        let cut = shorten(&long);
        assert!(cut.len() < 4100 && cut.ends_with("more bytes not shown)"));
    }
}
