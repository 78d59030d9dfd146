//! Reading the first row of a preflight question, the same over every sqlx driver.

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::preflight::ProbeError;
use crate::preflight::questions::OffenderRow;

/// The first of `rows`: its first `shown` columns as text, then the count column
/// (`questions::Asker::first_row`'s answer).
pub(crate) fn first_row<R>(rows: &[R], shown: usize) -> Result<Option<OffenderRow>, ProbeError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let cannot = |e: sqlx::Error| ProbeError::Cannot(e.to_string());
    let values = (0..shown)
        .map(|i| row.try_get::<Option<String>, _>(i))
        .collect::<Result<Vec<_>, _>>()
        .map_err(cannot)?;
    let n: Option<i64> = row.try_get(shown).map_err(cannot)?;
    Ok(Some((values, n)))
}

/// The first column of every row, as text (a catalog question's list of names).
pub(crate) fn texts<R>(rows: &[R]) -> Result<Vec<String>, ProbeError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>(0)
                .map_err(|e| ProbeError::Cannot(e.to_string()))
        })
        .collect()
}
