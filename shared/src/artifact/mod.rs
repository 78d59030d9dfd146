//! Reading the `prisma/` folder of an artifact, from a directory or from a zip.
//!
//! Both sources implement the internal [`tree::FileTree`] trait (list a folder, read a file with a
//! size cap), and everything else — finding the migrations folder ([`discover`]) and building the
//! [`MigrationSet`] ([`build`]) — runs over that trait only. A zip is read in memory and never
//! extracted.

mod archive;
mod build;
mod directory;
mod discover;
mod error;
mod headers;
pub mod prisma_config;
mod schema;
mod tree;

use crate::checksum::sha256_hex;
use crate::migration::MigrationSet;
use serde::Serialize;
use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use error::ArtifactError;

/// Bounds on what reading an artifact may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries a zip may hold (every central directory entry counts).
    pub max_entries: usize,
    /// Most uncompressed bytes: the declared total of a zip, and the bytes actually read from
    /// either source.
    pub max_total_bytes: u64,
    /// Highest uncompressed/compressed ratio of one zip entry.
    pub max_entry_ratio: u64,
    /// The ratio is only checked for entries at least this large uncompressed, since small text
    /// files compress very well.
    pub ratio_check_min_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_total_bytes: 256 * 1024 * 1024,
            max_entry_ratio: 250,
            ratio_check_min_bytes: 1024 * 1024,
        }
    }
}

/// Where an artifact was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    Directory,
    Zip,
}

/// An artifact that was read: where from, its fingerprint and its migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// The path or URL the artifact was read from, as given.
    pub location: String,
    pub kind: ArtifactKind,
    /// Lowercase sha256 hex. For a zip: of the zip bytes. For a directory: of the files that were
    /// read (every `migration.sql`, the lock file and `schema.prisma` when present), sorted by their
    /// `/`-separated path relative to the directory, each fed as `path`, NUL, file bytes, NUL.
    pub sha256: String,
    pub set: MigrationSet,
}

/// Read an artifact from `path`: a directory, or a file that is a zip (recognised by its
/// `PK\x03\x04` / `PK\x05\x06` signature, whatever its extension).
pub fn read_path(path: &Path, limits: &Limits) -> Result<Artifact, ArtifactError> {
    let location = path.display().to_string();
    let io_error = |source| ArtifactError::Io {
        path: location.clone(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io_error)?;
    if metadata.is_dir() {
        let mut tree = directory::DirTree::new(path);
        let built = build::build(&mut tree, &location, limits)?;
        return Ok(Artifact {
            location,
            kind: ArtifactKind::Directory,
            sha256: built.content_sha256,
            set: built.set,
        });
    }
    if !metadata.is_file() {
        return Err(ArtifactError::NotAnArtifact { path: location });
    }
    let mut file = File::open(path).map_err(io_error)?;
    let mut magic = Vec::with_capacity(4);
    file.by_ref()
        .take(4)
        .read_to_end(&mut magic)
        .map_err(io_error)?;
    if !is_zip_magic(&magic) {
        return Err(ArtifactError::NotAnArtifact { path: location });
    }
    let mut bytes = magic;
    file.read_to_end(&mut bytes).map_err(io_error)?;
    read_zip(&location, &bytes, limits)
}

/// Read a zip held in memory; `location` names it in messages and in the result.
pub fn read_zip(location: &str, bytes: &[u8], limits: &Limits) -> Result<Artifact, ArtifactError> {
    let mut tree = archive::ZipTree::open(location, bytes, limits)?;
    let built = build::build(&mut tree, location, limits)?;
    Ok(Artifact {
        location: location.to_owned(),
        kind: ArtifactKind::Zip,
        sha256: sha256_hex(bytes),
        set: built.set,
    })
}

/// Whether `start` begins with a local file header or an end-of-central-directory record.
fn is_zip_magic(start: &[u8]) -> bool {
    start.starts_with(b"PK\x03\x04") || start.starts_with(b"PK\x05\x06")
}

#[cfg(test)]
mod tests;
