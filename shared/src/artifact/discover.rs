//! Finding the migrations folder of an artifact.
//!
//! A candidate is a folder at depth 0 to 3 (the root is depth 0, `a/b/c` is depth 3) that holds a
//! `migration_lock.toml` file or at least one `<name>/migration.sql` file. There must be exactly
//! one. `prisma/migrations` and `migrations` are just the usual cases of this rule. The walk does
//! not enter `node_modules`, `.git` or `__MACOSX`, nor symbolic links.

use super::error::ArtifactError;
use super::tree::{Entry, EntryKind, FileTree, display, join};
use std::collections::HashMap;

/// Deepest folder that can be the migrations folder.
const MAX_DEPTH: usize = 3;
/// Folders the walk never enters.
const SKIPPED: [&str; 3] = ["node_modules", ".git", "__MACOSX"];

pub(super) const LOCK_FILE: &str = "migration_lock.toml";
pub(super) const SCRIPT_FILE: &str = "migration.sql";

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
    found
        .pop()
        .ok_or_else(|| ArtifactError::NoMigrationsFolder {
            location: location.to_owned(),
        })
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
