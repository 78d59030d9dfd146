//! A migration as read from an artifact, and the ordered set of them.

use serde::Serialize;

/// One `<migrations>/<name>/` folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The folder name, exactly as Prisma uses it (`20240101000000_init`).
    pub name: String,
    /// The `migration.sql` text, or `None` when the folder has no `migration.sql`
    /// (Prisma then fails with P3015 only if the migration is pending).
    pub script: Option<String>,
    /// Lowercase sha256 hex of the raw `migration.sql` bytes; `None` with `script`.
    pub checksum: Option<String>,
}

/// What `migration_lock.toml` says, parsed the way Prisma parses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lockfile {
    /// The provider as Prisma reads it (`<PROVIDER NOT FOUND>` when no line matches).
    pub provider: String,
}

/// The ordered migrations of one artifact, with what surrounds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationSet {
    /// Path of the migrations folder inside the artifact (`prisma/migrations`, `.` for the root).
    pub path: String,
    /// In Prisma's order (see `ordering`).
    pub migrations: Vec<Migration>,
    /// `None` when the artifact has no `migration_lock.toml` (Prisma accepts that).
    pub lockfile: Option<Lockfile>,
    /// The `provider` of the `datasource` block of `schema.prisma`, when a schema was found.
    pub schema_provider: Option<String>,
    /// Things worth telling a person that do not stop a deploy.
    pub warnings: Vec<String>,
}

impl MigrationSet {
    pub fn find(&self, name: &str) -> Option<&Migration> {
        self.migrations.iter().find(|m| m.name == name)
    }
}
