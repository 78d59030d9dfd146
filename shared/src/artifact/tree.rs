//! The one view of an artifact that discovery and building work on.
//!
//! Paths are relative to the artifact root, `/`-separated, without leading or trailing `/`; the
//! root itself is the empty string.

use super::error::ArtifactError;

/// What a folder entry is. Sources never follow symbolic links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A socket, FIFO or device (directory sources only).
    Other,
}

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// The entry's name (the last path component).
    pub name: String,
    pub kind: EntryKind,
    /// Size in bytes as declared by a zip (0 for folders, and for directory sources, whose
    /// reads enforce the limits instead).
    pub size: u64,
    /// The real name is not valid UTF-8; `name` is a lossy rendering of it.
    pub lossy_name: bool,
}

impl Entry {
    /// A folder that can be walked into: a real folder with a faithful name.
    pub fn is_walkable_dir(&self) -> bool {
        self.kind == EntryKind::Dir && !self.lossy_name
    }
}

/// A read-only tree of files: a directory on disk or a zip in memory.
pub(super) trait FileTree {
    /// The entries of folder `dir`, sorted by name. `.DS_Store` files and everything under
    /// `__MACOSX` are left out by zip sources; `.DS_Store` by directory sources.
    fn children(&mut self, dir: &str) -> Result<Vec<Entry>, ArtifactError>;

    /// The bytes of file `path`. Fails with [`ArtifactError::ReadLimitExceeded`] when the file
    /// holds more than `max_bytes`; never reads more than `max_bytes + 1` bytes.
    fn read(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, ArtifactError>;

    /// A hint that `paths` will be read next (in that order), at most `max_total` bytes in
    /// all: a source may read them ahead, in parallel. `read` still decides and checks.
    fn prefetch(&mut self, _paths: &[String], _max_total: u64) {}
}

/// `dir/name`, or `name` when `dir` is the root.
pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// The folder holding `path` (the root for a top-level path).
pub(super) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// `path` as shown to people: `.` for the root.
pub(super) fn display(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_and_parent() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a/b", "c"), "a/b/c");
        assert_eq!(parent("a/b/c"), "a/b");
        assert_eq!(parent("a"), "");
        assert_eq!(display(""), ".");
        assert_eq!(display("prisma"), "prisma");
    }
}
