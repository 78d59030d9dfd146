//! SQLite's deadline, kept from outside the script: SQLite has no second session to cancel
//! from (the migration lock is the file's exclusive lock), so the connection's progress
//! handler, which SQLite calls every few thousand virtual-machine instructions of whatever
//! statement runs, interrupts it once the deadline has come (`SQLITE_INTERRUPT`). A script
//! cannot change it: no SQL statement sets or clears a progress handler.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use sqlx::sqlite::SqliteConnection;

use crate::dialect::ScriptFailure;

/// How many virtual-machine instructions run between two looks at the clock (a look is a
/// clock read: well under a microsecond every few hundred microseconds of work).
const INSTRUCTIONS_PER_CHECK: i32 = 10_000;

/// SQLite's result code for an interrupted statement.
const SQLITE_INTERRUPT: &str = "9";

/// The deadline set on a connection; says afterwards whether it interrupted something.
pub(super) struct Watch {
    fired: Option<Arc<AtomicBool>>,
}

impl Watch {
    /// Interrupts any statement still running on `conn` at `deadline` (nothing without one).
    pub(super) async fn set(conn: &mut SqliteConnection, deadline: Option<Instant>) -> Watch {
        let Some(deadline) = deadline else {
            return Watch { fired: None };
        };
        let fired = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&fired);
        match conn.lock_handle().await {
            Ok(mut handle) => handle.set_progress_handler(INSTRUCTIONS_PER_CHECK, move || {
                if Instant::now() < deadline {
                    return true;
                }
                flag.store(true, Ordering::Relaxed);
                false
            }),
            Err(e) => {
                tracing::warn!("the SQLite deadline could not be set: {e}");
                return Watch { fired: None };
            }
        }
        Watch { fired: Some(fired) }
    }

    /// Removes the handler; whether it interrupted a statement.
    pub(super) async fn clear(self, conn: &mut SqliteConnection) -> bool {
        let Some(fired) = self.fired else {
            return false;
        };
        if let Ok(mut handle) = conn.lock_handle().await {
            handle.remove_progress_handler();
        }
        fired.load(Ordering::Relaxed)
    }
}

/// Whether a failure is SQLite's interruption (with [`Watch::clear`]: ours).
pub(super) fn is_interruption(failure: &ScriptFailure) -> bool {
    failure.code.as_deref() == Some(SQLITE_INTERRUPT)
}
