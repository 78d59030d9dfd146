//! A zip held in memory as a [`FileTree`].
//!
//! Opening the zip checks every entry before anything is read: its two headers must agree and
//! entries must not overlap ([`headers`]), names must stay inside the artifact, symbolic links
//! and encrypted entries are refused, and the entry count, the declared
//! uncompressed total and each entry's compression ratio must be within [`Limits`]. Declared sizes
//! can lie, so reads are capped as well. Folders may exist only as prefixes of file names.
//! Entries under `__MACOSX/` and `.DS_Store` files are left out (their names are still checked).

use super::error::ArtifactError;
use super::tree::{Entry, EntryKind, FileTree, parent};
use super::{Limits, headers};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Cursor, Read};
use zip::ZipArchive;

/// Folder that macOS's Archive Utility adds next to the real content.
const MACOSX: &str = "__MACOSX";
/// File name that Finder leaves everywhere.
const DS_STORE: &str = ".DS_Store";
/// File type bits of a unix mode, and the value for a symbolic link.
const S_IFMT: u32 = 0o170_000;
const S_IFLNK: u32 = 0o120_000;

/// A file of the zip: its index in the archive and its declared uncompressed size.
#[derive(Debug, Clone, Copy)]
struct FileRef {
    index: usize,
    size: u64,
}

pub(super) struct ZipTree<'a> {
    archive: ZipArchive<Cursor<&'a [u8]>>,
    /// Every folder (explicit or implied), with its entries by name. The root is `""`.
    folders: BTreeMap<String, BTreeMap<String, Entry>>,
    files: HashMap<String, FileRef>,
}

impl<'a> ZipTree<'a> {
    /// Open and check the zip `bytes`; `location` names it in errors.
    pub fn open(location: &str, bytes: &'a [u8], limits: &Limits) -> Result<Self, ArtifactError> {
        if let Some(count) = declared_entry_count(bytes)
            && count > limits.max_entries as u64
        {
            return Err(too_many(location, count, limits));
        }
        let archive =
            ZipArchive::new(Cursor::new(bytes)).map_err(|source| ArtifactError::ZipUnreadable {
                location: location.to_owned(),
                source,
            })?;
        if archive.len() > limits.max_entries {
            return Err(too_many(location, archive.len() as u64, limits));
        }
        headers::check(location, bytes, &archive)?;
        if archive.has_duplicate_names() {
            let entry = first_duplicate_name(bytes, archive.central_directory_start())
                .unwrap_or_else(|| "(name unknown)".to_owned());
            return Err(ArtifactError::DuplicateEntry { entry });
        }
        let mut tree = Self {
            archive,
            folders: BTreeMap::from([(String::new(), BTreeMap::new())]),
            files: HashMap::new(),
        };
        tree.index(location, limits)?;
        Ok(tree)
    }

    /// Check every entry and record the files and folders.
    fn index(&mut self, location: &str, limits: &Limits) -> Result<(), ArtifactError> {
        let mut declared_total: u64 = 0;
        for index in 0..self.archive.len() {
            let entry = self.archive.by_index_data(index).map_err(|source| {
                ArtifactError::ZipUnreadable {
                    location: location.to_owned(),
                    source,
                }
            })?;
            let raw_name = entry
                .name()
                .map_err(|e| ArtifactError::InvalidName {
                    path: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                    reason: e.to_string(),
                })?
                .into_owned();
            let Some(name) = normalize(&raw_name)? else {
                continue;
            };
            if is_ignored(&name.path) {
                continue;
            }
            if entry
                .unix_mode()
                .is_some_and(|mode| mode & S_IFMT == S_IFLNK)
            {
                return Err(ArtifactError::SymlinkEntry { entry: raw_name });
            }
            if name.is_dir {
                self.add_folder(&name.path)?;
                continue;
            }
            let size = entry.size();
            let compressed = entry.compressed_size();
            if size >= limits.ratio_check_min_bytes
                && size > compressed.saturating_mul(limits.max_entry_ratio)
            {
                return Err(ArtifactError::SuspiciousRatio {
                    entry: raw_name,
                    size,
                    compressed,
                    max_ratio: limits.max_entry_ratio,
                });
            }
            declared_total = declared_total.saturating_add(size);
            if declared_total > limits.max_total_bytes {
                return Err(ArtifactError::TooLarge {
                    location: location.to_owned(),
                    declared: declared_total,
                    max: limits.max_total_bytes,
                });
            }
            self.add_file(&name.path, FileRef { index, size })?;
        }
        Ok(())
    }

    /// Record folder `path` and the folders above it.
    fn add_folder(&mut self, path: &str) -> Result<(), ArtifactError> {
        if path.is_empty() || self.folders.contains_key(path) {
            return Ok(());
        }
        if self.files.contains_key(path) {
            return Err(ArtifactError::FileAndFolder {
                entry: path.to_owned(),
            });
        }
        let dir = parent(path);
        self.add_folder(dir)?;
        self.folders.insert(path.to_owned(), BTreeMap::new());
        let name = last_component(path);
        if let Some(siblings) = self.folders.get_mut(dir) {
            siblings.insert(name.to_owned(), entry(name, EntryKind::Dir, 0));
        }
        Ok(())
    }

    /// Record file `path` and the folders above it.
    fn add_file(&mut self, path: &str, file: FileRef) -> Result<(), ArtifactError> {
        if self.folders.contains_key(path) {
            return Err(ArtifactError::FileAndFolder {
                entry: path.to_owned(),
            });
        }
        if self.files.contains_key(path) {
            return Err(ArtifactError::DuplicateEntry {
                entry: path.to_owned(),
            });
        }
        let dir = parent(path);
        self.add_folder(dir)?;
        let name = last_component(path);
        if let Some(siblings) = self.folders.get_mut(dir) {
            siblings.insert(name.to_owned(), entry(name, EntryKind::File, file.size));
        }
        self.files.insert(path.to_owned(), file);
        Ok(())
    }
}

impl FileTree for ZipTree<'_> {
    fn children(&mut self, dir: &str) -> Result<Vec<Entry>, ArtifactError> {
        Ok(self
            .folders
            .get(dir)
            .map(|entries| entries.values().cloned().collect())
            .unwrap_or_default())
    }

    fn read(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, ArtifactError> {
        let Some(file) = self.files.get(path).copied() else {
            return Err(ArtifactError::ZipEntryUnreadable {
                entry: path.to_owned(),
                reason: "no such file in the zip".to_owned(),
            });
        };
        let unreadable = |reason: String| ArtifactError::ZipEntryUnreadable {
            entry: path.to_owned(),
            reason,
        };
        let reader = self
            .archive
            .by_index(file.index)
            .map_err(|e| unreadable(e.to_string()))?;
        let cap = file.size.min(max_bytes);
        // Never trust the declared size for an allocation beyond a modest start.
        let start = usize::try_from(cap.min(1024 * 1024)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(start);
        reader
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| unreadable(e.to_string()))?;
        let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if read > file.size {
            return Err(ArtifactError::EntryLargerThanDeclared {
                entry: path.to_owned(),
                declared: file.size,
            });
        }
        if read > max_bytes {
            return Err(ArtifactError::ReadLimitExceeded {
                path: path.to_owned(),
                max: max_bytes,
            });
        }
        Ok(bytes)
    }
}

fn entry(name: &str, kind: EntryKind, size: u64) -> Entry {
    Entry {
        name: name.to_owned(),
        kind,
        size,
        lossy_name: false,
    }
}

fn last_component(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

fn too_many(location: &str, count: u64, limits: &Limits) -> ArtifactError {
    ArtifactError::TooManyEntries {
        location: location.to_owned(),
        count,
        max: limits.max_entries,
    }
}

/// An entry name made relative and `/`-separated.
#[derive(Debug, PartialEq, Eq)]
struct EntryName {
    path: String,
    is_dir: bool,
}

/// Normalise a zip entry name: `\` becomes `/`, empty and `.` components go. Names that leave the
/// artifact are refused. `None` for a name that is the root itself (`./`).
fn normalize(raw: &str) -> Result<Option<EntryName>, ArtifactError> {
    if raw.contains('\0') {
        return Err(ArtifactError::InvalidName {
            path: raw.replace('\0', "\\0"),
            reason: "it contains a NUL character".to_owned(),
        });
    }
    if raw.chars().any(char::is_control) {
        return Err(ArtifactError::InvalidName {
            path: raw.escape_debug().to_string(),
            reason: "it contains a control character (a newline, a tab …)".to_owned(),
        });
    }
    let slashed = raw.replace('\\', "/");
    if slashed.starts_with('/') || has_drive_prefix(&slashed) {
        return Err(ArtifactError::AbsolutePath {
            entry: raw.to_owned(),
        });
    }
    let mut parts = Vec::new();
    for part in slashed.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(ArtifactError::PathTraversal {
                    entry: raw.to_owned(),
                });
            }
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some(EntryName {
        path: parts.join("/"),
        is_dir: slashed.ends_with('/'),
    }))
}

/// `C:` and the like at the start of a name.
fn has_drive_prefix(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Entries that are not part of the artifact: anything under `__MACOSX` and `.DS_Store` files.
fn is_ignored(path: &str) -> bool {
    path.split('/').any(|part| part == MACOSX) || last_component(path) == DS_STORE
}

/// The entry count from the end-of-central-directory record, read before the zip crate indexes
/// every entry. `None` when the record is not found or the count needs zip64.
fn declared_entry_count(bytes: &[u8]) -> Option<u64> {
    const EOCD_LEN: usize = 22;
    const MAX_COMMENT: usize = 0xFFFF;
    let earliest = bytes.len().saturating_sub(EOCD_LEN + MAX_COMMENT);
    let last_start = bytes.len().checked_sub(EOCD_LEN)?;
    let at = (earliest..=last_start)
        .rev()
        .find(|&i| bytes.get(i..i + 4) == Some(b"PK\x05\x06"))?;
    let count = u16::from_le_bytes([*bytes.get(at + 10)?, *bytes.get(at + 11)?]);
    (count != u16::MAX).then_some(u64::from(count))
}

/// The first name that appears twice in the central directory starting at `start`, found by
/// walking the raw headers (the zip crate keeps only one entry per name).
fn first_duplicate_name(bytes: &[u8], start: u64) -> Option<String> {
    const HEADER_LEN: usize = 46;
    let u16_at = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let mut seen = HashSet::new();
    let mut at = usize::try_from(start).ok()?;
    while bytes.get(at..at + 4) == Some(b"PK\x01\x02") {
        let name_len = u16_at(at + 28)?;
        let extra_len = u16_at(at + 30)?;
        let comment_len = u16_at(at + 32)?;
        let name = bytes.get(at + HEADER_LEN..at + HEADER_LEN + name_len)?;
        if !seen.insert(name) {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
        at += HEADER_LEN + name_len + extra_len + comment_len;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(raw: &str) -> Option<String> {
        normalize(raw).unwrap().map(|n| n.path)
    }

    #[test]
    fn normalize_keeps_plain_names() {
        assert_eq!(
            normalize("prisma/migrations/").unwrap(),
            Some(EntryName {
                path: "prisma/migrations".to_owned(),
                is_dir: true
            })
        );
        assert_eq!(path_of("a/b.sql").as_deref(), Some("a/b.sql"));
    }

    #[test]
    fn normalize_turns_backslashes_into_slashes() {
        assert_eq!(path_of("a\\b\\c.sql").as_deref(), Some("a/b/c.sql"));
        assert!(normalize("a\\b\\").unwrap().unwrap().is_dir);
    }

    #[test]
    fn normalize_drops_dot_and_empty_components() {
        assert_eq!(path_of("./a//b").as_deref(), Some("a/b"));
        assert_eq!(path_of("./"), None);
    }

    #[test]
    fn normalize_refuses_parent_components() {
        for raw in ["../x", "a/../../x", "a/..", "a\\..\\x", "..\\x"] {
            assert!(
                matches!(normalize(raw), Err(ArtifactError::PathTraversal { .. })),
                "{raw}"
            );
        }
    }

    #[test]
    fn normalize_refuses_absolute_names() {
        for raw in ["/etc/x", "\\x", "C:\\x", "c:/x", "C:x", "\\\\server\\share"] {
            assert!(
                matches!(normalize(raw), Err(ArtifactError::AbsolutePath { .. })),
                "{raw}"
            );
        }
    }

    #[test]
    fn normalize_refuses_nul() {
        assert!(matches!(
            normalize("a\0b"),
            Err(ArtifactError::InvalidName { .. })
        ));
    }

    #[test]
    fn ignored_entries() {
        assert!(is_ignored("__MACOSX/prisma/._x"));
        assert!(is_ignored("prisma/.DS_Store"));
        assert!(is_ignored(".DS_Store"));
        assert!(!is_ignored("prisma/migrations/x/migration.sql"));
        assert!(!is_ignored(".DS_Store_not"));
    }

    #[test]
    fn no_entry_count_without_an_eocd() {
        assert_eq!(declared_entry_count(b""), None);
        assert_eq!(declared_entry_count(b"not a zip at all, really not"), None);
    }
}
