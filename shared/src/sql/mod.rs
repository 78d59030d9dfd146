//! SQL text utilities: statement splitting for migration scripts.

pub mod split;

pub use split::{Flavor, SqlToken, Statement, TokenKind, split, split_pg};
