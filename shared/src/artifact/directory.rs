//! A directory on disk as a [`FileTree`]. Symbolic links are reported, never followed.

use super::error::ArtifactError;
use super::tree::{Entry, EntryKind, FileTree};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

/// File name that Finder leaves everywhere; never part of an artifact.
const DS_STORE: &str = ".DS_Store";

pub(super) struct DirTree {
    root: PathBuf,
}

impl DirTree {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    fn full_path(&self, relative: &str) -> PathBuf {
        relative
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(self.root.clone(), |path, part| path.join(part))
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FileTree for DirTree {
    fn children(&mut self, dir: &str) -> Result<Vec<Entry>, ArtifactError> {
        let path = self.full_path(dir);
        let mut entries = Vec::new();
        for item in fs::read_dir(&path).map_err(io_error(&path))? {
            let item = item.map_err(io_error(&path))?;
            let file_type = item.file_type().map_err(io_error(&item.path()))?;
            let (name, lossy_name) = match item.file_name().into_string() {
                Ok(name) => (name, false),
                Err(raw) => (raw.to_string_lossy().into_owned(), true),
            };
            if name == DS_STORE {
                continue;
            }
            let kind = if file_type.is_symlink() {
                EntryKind::Symlink
            } else if file_type.is_dir() {
                EntryKind::Dir
            } else if file_type.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            // No stat per file: `read` enforces the size limits on what it reads.
            entries.push(Entry {
                name,
                kind,
                size: 0,
                lossy_name,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    }

    fn read(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, ArtifactError> {
        let full = self.full_path(path);
        let file = File::open(&full).map_err(io_error(&full))?;
        let mut bytes = Vec::new();
        file.take(max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_error(&full))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
            return Err(ArtifactError::ReadLimitExceeded {
                path: path.to_owned(),
                max: max_bytes,
            });
        }
        Ok(bytes)
    }
}
