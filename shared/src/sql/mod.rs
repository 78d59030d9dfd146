//! SQL text utilities: statement splitting for migration scripts.

mod literals;
pub mod split;

pub use literals::without_literals;
pub use split::{Flavor, SqlToken, Statement, TokenKind, split, split_mysql, split_pg};
