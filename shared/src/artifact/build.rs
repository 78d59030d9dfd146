//! Building the [`MigrationSet`] of an artifact from its [`FileTree`].
//!
//! Every direct subfolder of the migrations folder is a migration (no name validation, hidden
//! folders included) except `__MACOSX`; files at that level and symbolic links are ignored, as
//! Prisma does. Inside a migration folder only `migration.sql` is read. Files are read in path
//! order, and the bytes read are fingerprinted as documented on [`super::Artifact::sha256`].

use super::Limits;
use super::discover::{self, LOCK_FILE, SCRIPT_FILE};
use super::error::ArtifactError;
use super::schema::{self, Provider};
use super::tree::{Entry, EntryKind, FileTree, display, join, parent};
use crate::checksum::sha256_hex;
use crate::lockfile;
use crate::migration::{Lockfile, Migration, MigrationSet};
use crate::ordering::{nfc, prisma_cmp, spelled_out};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const SCHEMA_FILE: &str = "schema.prisma";
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The migration set, and the fingerprint of the files read for it.
pub(super) struct Built {
    pub set: MigrationSet,
    pub content_sha256: String,
}

/// Why a file is read.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    /// The `migration.sql` of `migrations[i]`.
    Script(usize),
    Lock,
    Schema,
}

/// The longest migration name `_prisma_migrations.migration_name` (VARCHAR(255)) holds.
const MAX_NAME_BYTES: usize = 255;

/// Two folders whose names differ only by Unicode normalisation look like one migration but
/// would be applied as two (a folder copied between macOS and elsewhere, both kept).
fn refuse_normalisation_twins(dirs: &[&Entry]) -> Result<(), ArtifactError> {
    let mut seen: HashMap<String, &str> = HashMap::with_capacity(dirs.len());
    for dir in dirs {
        if let Some(first) = seen.insert(nfc(&dir.name), &dir.name) {
            return Err(ArtifactError::NormalisationTwins {
                first: spelled_out(first),
                second: spelled_out(&dir.name),
            });
        }
    }
    Ok(())
}

/// Find the migrations folder of `tree` and read its migrations.
pub(super) fn build(
    tree: &mut dyn FileTree,
    location: &str,
    limits: &Limits,
) -> Result<Built, ArtifactError> {
    let folder = discover::find(tree, location)?;
    let mut warnings = Vec::new();
    let mut migrations = Vec::new();
    let mut reads = Vec::new();

    let mut migration_dirs: Vec<&Entry> = folder
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::Dir && e.name != "__MACOSX")
        .collect();
    migration_dirs.sort_by(|a, b| prisma_cmp(&a.name, &b.name));
    refuse_normalisation_twins(&migration_dirs)?;
    for dir in migration_dirs {
        let dir_path = join(&folder.path, &dir.name);
        if dir.lossy_name {
            return Err(ArtifactError::InvalidName {
                path: dir_path,
                reason: "the folder name is not valid UTF-8".to_owned(),
            });
        }
        // `_prisma_migrations.migration_name` is VARCHAR(255): Prisma would apply what comes
        // before such a migration and then fail to record it. Refuse before anything runs.
        if dir.name.len() > MAX_NAME_BYTES {
            return Err(ArtifactError::InvalidName {
                path: dir_path,
                reason: format!(
                    "the migration name is {} bytes long; _prisma_migrations.migration_name holds at most {MAX_NAME_BYTES}",
                    dir.name.len()
                ),
            });
        }
        if dir.name.chars().any(char::is_control) {
            return Err(ArtifactError::InvalidName {
                path: dir_path.escape_debug().to_string(),
                reason: "the migration name contains a control character".to_owned(),
            });
        }
        let script_path = join(&dir_path, SCRIPT_FILE);
        let listing = match folder.listings.get(&dir.name) {
            Some(listing) => listing.clone(),
            None => tree.children(&dir_path)?,
        };
        match listing.iter().find(|e| e.name == SCRIPT_FILE) {
            Some(e) if e.kind == EntryKind::File => {
                reads.push((script_path, Purpose::Script(migrations.len())));
            }
            Some(_) => return Err(ArtifactError::ScriptNotRegularFile { path: script_path }),
            None => warnings.push(format!(
                "migration `{}` has no {SCRIPT_FILE}; deploying fails (P3015) while it is pending",
                dir.name
            )),
        }
        migrations.push(Migration {
            name: dir.name.clone(),
            script: None,
            checksum: None,
        });
    }
    if migrations.is_empty() {
        warnings.push(format!(
            "the migrations folder `{}` holds no migrations",
            display(&folder.path)
        ));
    }

    match folder.entries.iter().find(|e| e.name == LOCK_FILE) {
        Some(e) if e.kind == EntryKind::File => {
            reads.push((join(&folder.path, LOCK_FILE), Purpose::Lock));
        }
        Some(_) => warnings.push(format!(
            "`{}` is not a regular file and was ignored, as if there were no lock file",
            join(&folder.path, LOCK_FILE)
        )),
        None => {}
    }
    if let Some(path) = find_schema(tree, &folder.path)? {
        reads.push((path, Purpose::Schema));
    }

    reads.sort_by(|a, b| a.0.cmp(&b.0));
    let paths: Vec<String> = reads.iter().map(|(path, _)| path.clone()).collect();
    tree.prefetch(&paths, limits.max_total_bytes);
    let mut reader = Reader::new(limits.max_total_bytes);
    let mut lockfile = None;
    let mut schema_provider = None;
    for (path, purpose) in reads {
        match purpose {
            Purpose::Script(i) => {
                let bytes = reader.read(tree, &path)?;
                let script = script_text(&path, bytes)?;
                if script.trim().is_empty() {
                    warnings.push(format!("`{path}` is empty or holds only whitespace"));
                }
                if let Some(migration) = migrations.get_mut(i) {
                    migration.checksum = Some(sha256_hex(script.as_bytes()));
                    migration.script = Some(script);
                }
            }
            Purpose::Lock => lockfile = read_lockfile(tree, &mut reader, &path, &mut warnings)?,
            Purpose::Schema => {
                schema_provider = read_schema_provider(tree, &mut reader, &path, &mut warnings)?;
            }
        }
    }

    Ok(Built {
        set: MigrationSet {
            path: display(&folder.path).to_owned(),
            migrations,
            lockfile,
            schema_provider,
            warnings,
        },
        content_sha256: reader.finish(),
    })
}

/// The `schema.prisma` to use: in the migrations folder's parent, else at the root, else in
/// `prisma/`.
fn find_schema(
    tree: &mut dyn FileTree,
    migrations_path: &str,
) -> Result<Option<String>, ArtifactError> {
    let mut dirs: Vec<&str> = Vec::new();
    if !migrations_path.is_empty() {
        dirs.push(parent(migrations_path));
    }
    dirs.extend(["", "prisma"]);
    let mut seen = Vec::new();
    for dir in dirs {
        if seen.contains(&dir) || !folder_exists(tree, dir)? {
            continue;
        }
        seen.push(dir);
        let holds_schema = tree
            .children(dir)?
            .iter()
            .any(|e| e.name == SCHEMA_FILE && e.kind == EntryKind::File);
        if holds_schema {
            return Ok(Some(join(dir, SCHEMA_FILE)));
        }
    }
    Ok(None)
}

/// Whether `dir` is a real folder (not a symbolic link) of the tree.
fn folder_exists(tree: &mut dyn FileTree, dir: &str) -> Result<bool, ArtifactError> {
    if dir.is_empty() {
        return Ok(true);
    }
    let name = dir.rsplit_once('/').map_or(dir, |(_, name)| name);
    Ok(tree
        .children(parent(dir))?
        .iter()
        .any(|e| e.name == name && e.is_walkable_dir()))
}

/// A migration script as text: valid UTF-8 without a byte order mark.
fn script_text(path: &str, bytes: Vec<u8>) -> Result<String, ArtifactError> {
    if bytes.starts_with(UTF8_BOM) {
        return Err(ArtifactError::ScriptHasBom {
            path: path.to_owned(),
        });
    }
    String::from_utf8(bytes).map_err(|e| ArtifactError::ScriptNotUtf8 {
        path: path.to_owned(),
        offset: e.utf8_error().valid_up_to(),
    })
}

/// The lock file, or `None` with a warning when it cannot be read or is not UTF-8 (Prisma then
/// treats it as absent).
fn read_lockfile(
    tree: &mut dyn FileTree,
    reader: &mut Reader,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<Lockfile>, ArtifactError> {
    match read_optional_text(tree, reader, path)? {
        Ok(text) => Ok(Some(lockfile::parse(&text))),
        Err(why) => {
            warnings.push(format!(
                "`{path}` {why}; it was treated as absent, so the provider is not checked against it"
            ));
            Ok(None)
        }
    }
}

/// The datasource provider of the schema, or `None` with a warning.
fn read_schema_provider(
    tree: &mut dyn FileTree,
    reader: &mut Reader,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, ArtifactError> {
    let problem = match read_optional_text(tree, reader, path)? {
        Err(why) => why,
        Ok(text) => match schema::datasource_provider(text.trim_start_matches('\u{feff}')) {
            Provider::Literal(provider) => return Ok(Some(provider)),
            Provider::NotLiteral => {
                "has a datasource provider that is not a plain string such as \"postgresql\""
                    .to_owned()
            }
            Provider::Missing => "has a datasource block without a provider".to_owned(),
            Provider::NoDatasource => "has no datasource block".to_owned(),
        },
    };
    warnings.push(format!(
        "`{path}` {problem}; the schema provider could not be determined"
    ));
    Ok(None)
}

/// Read a file that may be skipped. The inner `Err` says why it was skipped (an I/O failure or
/// text that is not UTF-8); limits and broken zips are still errors.
fn read_optional_text(
    tree: &mut dyn FileTree,
    reader: &mut Reader,
    path: &str,
) -> Result<Result<String, String>, ArtifactError> {
    let bytes = match reader.read(tree, path) {
        Ok(bytes) => bytes,
        Err(ArtifactError::Io { source, .. }) => {
            return Ok(Err(format!("could not be read ({source})")));
        }
        Err(e) => return Err(e),
    };
    Ok(String::from_utf8(bytes).map_err(|_| "is not valid UTF-8".to_owned()))
}

/// Reads files against the total byte budget and fingerprints what it read.
struct Reader {
    max_total: u64,
    remaining: u64,
    digest: Sha256,
}

impl Reader {
    fn new(max_total: u64) -> Self {
        Self {
            max_total,
            remaining: max_total,
            digest: Sha256::new(),
        }
    }

    fn read(&mut self, tree: &mut dyn FileTree, path: &str) -> Result<Vec<u8>, ArtifactError> {
        let bytes = tree.read(path, self.remaining).map_err(|e| match e {
            ArtifactError::ReadLimitExceeded { path, .. } => ArtifactError::ReadLimitExceeded {
                path,
                max: self.max_total,
            },
            other => other,
        })?;
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.remaining = self.remaining.saturating_sub(len);
        self.digest.update(path.as_bytes());
        self.digest.update([0]);
        self.digest.update(&bytes);
        self.digest.update([0]);
        Ok(bytes)
    }

    fn finish(self) -> String {
        self.digest
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}
