//! Finding the migrations folder of an artifact.
//!
//! A candidate is a folder at depth 0 to 3 (the root is depth 0, `a/b/c` is depth 3) that holds a
//! `migration_lock.toml` file or at least one `<name>/migration.sql` file. There must be exactly
//! one. `prisma/migrations` and `migrations` are just the usual cases of this rule. The walk does
//! not enter `node_modules`, `.git` or `__MACOSX`, nor symbolic links.
//!
//! Prisma 8's migrations (folders of `migration.ts`, `ops.json`, `migration.json`, applied by
//! `prisma db migrate`) are a different format: an artifact holding them is refused by name
//! ([`ArtifactError::Prisma8Migrations`]) instead of being read as folders without a script.

use super::error::ArtifactError;
use super::tree::{Entry, EntryKind, FileTree, display, join};
use std::collections::HashMap;

/// Deepest folder that can be the migrations folder.
const MAX_DEPTH: usize = 3;
/// Folders the walk never enters.
const SKIPPED: [&str; 3] = ["node_modules", ".git", "__MACOSX"];

pub(super) const LOCK_FILE: &str = "migration_lock.toml";
pub(super) const SCRIPT_FILE: &str = "migration.sql";
/// Files of a Prisma 8 migration folder (`prisma migration plan` writes them; `prisma db
/// migrate` applies `ops.json`). A folder holding one of them and no `migration.sql` is Prisma 8's.
const PRISMA8_FILES: [&str; 3] = ["migration.ts", "ops.json", "migration.json"];
/// How deep the Prisma 8 scan looks for such a folder (`prisma/migrations/app/<name>` is 4).
const PRISMA8_DEPTH: usize = 5;

/// The migrations folder that was found, with its entries.
pub(super) struct MigrationsFolder {
    /// Path inside the artifact, `""` for the root.
    pub path: String,
    pub entries: Vec<Entry>,
    /// The listings of its subfolders made while searching (name → entries), so building
    /// the migration set does not list each migration folder a second time.
    pub listings: HashMap<String, Vec<Entry>>,
}

/// Find the single migrations folder of `tree`; `location` names the artifact in errors.
pub(super) fn find(
    tree: &mut dyn FileTree,
    location: &str,
) -> Result<MigrationsFolder, ArtifactError> {
    let root = tree.children("")?;
    let mut found = Vec::new();
    visit(tree, "", 0, root, &mut found)?;
    if found.len() > 1 {
        let mut candidates: Vec<String> = found
            .into_iter()
            .map(|folder| display(&folder.path).to_owned())
            .collect();
        candidates.sort();
        return Err(ArtifactError::AmbiguousMigrationsFolder {
            location: location.to_owned(),
            candidates,
        });
    }
    match found.pop() {
        Some(folder) => {
            // A lock file beside Prisma 8 folders (or a project mid-upgrade) must not make
            // them "migrations without migration.sql".
            let prisma8 = folder
                .listings
                .iter()
                .find(|(_, entries)| is_prisma8_migration(entries))
                .map(|(name, _)| join(&folder.path, name));
            match prisma8 {
                Some(path) => Err(prisma8_error(location, &path)),
                None => Ok(folder),
            }
        }
        None => match find_prisma8(tree, "", 0)? {
            Some(path) => Err(prisma8_error(location, &path)),
            None => Err(ArtifactError::NoMigrationsFolder {
                location: location.to_owned(),
            }),
        },
    }
}

/// Whether a folder's `entries` are a Prisma 8 migration's: one of its files, no `migration.sql`.
fn is_prisma8_migration(entries: &[Entry]) -> bool {
    !has_file(entries, SCRIPT_FILE) && PRISMA8_FILES.iter().any(|f| has_file(entries, f))
}

/// The first folder (in name order, depth first) below `dir` that is a Prisma 8 migration.
fn find_prisma8(
    tree: &mut dyn FileTree,
    dir: &str,
    depth: usize,
) -> Result<Option<String>, ArtifactError> {
    if depth >= PRISMA8_DEPTH {
        return Ok(None);
    }
    let mut children: Vec<Entry> = tree.children(dir)?.into_iter().filter(walkable).collect();
    children.sort_by(|a, b| a.name.cmp(&b.name));
    for child in children {
        let path = join(dir, &child.name);
        if is_prisma8_migration(&tree.children(&path)?) {
            return Ok(Some(path));
        }
        if let Some(found) = find_prisma8(tree, &path, depth + 1)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

fn prisma8_error(location: &str, path: &str) -> ArtifactError {
    ArtifactError::Prisma8Migrations {
        location: location.to_owned(),
        folder: display(path).to_owned(),
    }
}

/// Check folder `dir` (at `depth`, holding `entries`) and the folders below it.
fn visit(
    tree: &mut dyn FileTree,
    dir: &str,
    depth: usize,
    entries: Vec<Entry>,
    found: &mut Vec<MigrationsFolder>,
) -> Result<(), ArtifactError> {
    let mut is_candidate = has_file(&entries, LOCK_FILE);
    let mut listings = HashMap::new();
    for child in entries.iter().filter(|e| walkable(e)) {
        let child_entries = tree.children(&join(dir, &child.name))?;
        is_candidate |= has_file(&child_entries, SCRIPT_FILE);
        listings.insert(child.name.clone(), child_entries);
    }
    // Visiting a folder of files costs no listing: only subfolders are listed.
    let mut below: Vec<(String, Vec<Entry>)> = if depth < MAX_DEPTH {
        listings
            .iter()
            .map(|(name, child_entries)| (join(dir, name), child_entries.clone()))
            .collect()
    } else {
        Vec::new()
    };
    below.sort_by(|a, b| a.0.cmp(&b.0));
    if is_candidate {
        found.push(MigrationsFolder {
            path: dir.to_owned(),
            entries,
            listings,
        });
    }
    for (path, child_entries) in below {
        visit(tree, &path, depth + 1, child_entries, found)?;
    }
    Ok(())
}

fn walkable(entry: &Entry) -> bool {
    entry.is_walkable_dir() && !SKIPPED.contains(&entry.name.as_str())
}

/// Whether `entries` has a non-folder entry called `name`.
fn has_file(entries: &[Entry], name: &str) -> bool {
    entries
        .iter()
        .any(|e| e.name == name && e.kind != EntryKind::Dir)
}
