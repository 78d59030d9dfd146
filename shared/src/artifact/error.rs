//! Why an artifact could not be read.

use thiserror::Error;

/// Every way reading an artifact can fail. Paths inside the artifact use `/` separators.
#[derive(Debug, Error)]
pub enum ArtifactError {
    #[error("could not read `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "`{path}` is neither a folder nor a zip file (a zip file starts with `PK\\x03\\x04` or `PK\\x05\\x06`)"
    )]
    NotAnArtifact { path: String },

    #[error(
        "no migrations folder found in `{location}`: looked for a folder at most 3 levels below the top that holds a `migration_lock.toml` file or a `<name>/migration.sql` file"
    )]
    NoMigrationsFolder { location: String },

    #[error(
        "`{location}` holds Prisma 8 migrations (`{folder}`: a folder of migration.ts / ops.json / migration.json, applied by `prisma db migrate`), a format migrator does not read. migrator applies Prisma Migrate's SQL migrations (Prisma ORM up to 7: `<name>/migration.sql` folders with a migration_lock.toml, applied by `prisma migrate deploy`). Keep this project on Prisma 7 (`npm install prisma@7 @prisma/client@7`) to use migrator, or apply these migrations with `prisma db migrate`"
    )]
    Prisma8Migrations { location: String, folder: String },

    #[error(
        "more than one migrations folder found in `{location}`: {}; the artifact must hold exactly one",
        .candidates.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ")
    )]
    AmbiguousMigrationsFolder {
        location: String,
        candidates: Vec<String>,
    },

    #[error("the zip `{location}` could not be read: {source}")]
    ZipUnreadable {
        location: String,
        #[source]
        source: zip::result::ZipError,
    },

    #[error("zip entry `{entry}` could not be read: {reason}")]
    ZipEntryUnreadable { entry: String, reason: String },

    #[error("`{path}` has an unusable name: {reason}")]
    InvalidName { path: String, reason: String },

    #[error("zip entry `{entry}` is rejected: its path contains a `..` component")]
    PathTraversal { entry: String },

    #[error("zip entry `{entry}` is rejected: its path is absolute")]
    AbsolutePath { entry: String },

    #[error("zip entry `{entry}` is rejected: it is a symbolic link")]
    SymlinkEntry { entry: String },

    #[error("zip entry `{entry}` is rejected: it is encrypted")]
    EncryptedEntry { entry: String },

    #[error(
        "zip entry `{entry}` is rejected: its local header and the central directory disagree on the {field} (central directory: {central}; local: {local}), so different tools would read different files"
    )]
    HeaderMismatch {
        entry: String,
        field: &'static str,
        central: String,
        local: String,
    },

    #[error("zip entry `{entry}` is rejected: {reason}")]
    CorruptHeader { entry: String, reason: String },

    #[error(
        "zip entries `{first}` and `{second}` are rejected: they overlap (share bytes of the zip), so one part of the file would be read as two"
    )]
    OverlappingEntries { first: String, second: String },

    #[error(
        "zip entry `{entry}` is rejected: its data runs to byte {end}, past the start of the central directory at byte {limit}"
    )]
    DataPastEnd { entry: String, end: u64, limit: u64 },

    #[error("the zip `{location}` has {count} entries, more than the limit of {max}")]
    TooManyEntries {
        location: String,
        count: u64,
        max: usize,
    },

    #[error(
        "the zip `{location}` declares {declared} bytes of uncompressed content, more than the limit of {max}"
    )]
    TooLarge {
        location: String,
        declared: u64,
        max: u64,
    },

    #[error(
        "zip entry `{entry}` expands from {compressed} to {size} bytes, a ratio above the limit of {max_ratio}"
    )]
    SuspiciousRatio {
        entry: String,
        size: u64,
        compressed: u64,
        max_ratio: u64,
    },

    #[error("zip entry `{entry}` holds more than the {declared} bytes its header declares")]
    EntryLargerThanDeclared { entry: String, declared: u64 },

    #[error(
        "reading `{path}` would take the content read over the limit of {max} uncompressed bytes in total"
    )]
    ReadLimitExceeded { path: String, max: u64 },

    #[error("the zip holds `{entry}` more than once")]
    DuplicateEntry { entry: String },

    #[error(
        "the migration folders {first} and {second} differ only by Unicode normalisation: they look the same but would be applied as two migrations; keep one"
    )]
    NormalisationTwins { first: String, second: String },

    #[error("the zip holds `{entry}` both as a file and as a folder")]
    FileAndFolder { entry: String },

    #[error(
        "`{path}` is not a regular file (a symbolic link, folder or special file); a migration script must be a plain file"
    )]
    ScriptNotRegularFile { path: String },

    #[error(
        "`{path}` is not valid UTF-8 (first invalid byte at offset {offset}); save it as UTF-8"
    )]
    ScriptNotUtf8 { path: String, offset: usize },

    #[error(
        "`{path}` starts with a UTF-8 byte order mark (BOM), which PostgreSQL rejects as a syntax error; save the file without a BOM"
    )]
    ScriptHasBom { path: String },
}
