//! A directory on disk as a [`FileTree`]. Symbolic links are reported, never followed.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::error::ArtifactError;
use super::tree::{Entry, EntryKind, FileTree};

/// Below this many files, reading ahead on threads is not worth starting them.
const PREFETCH_MIN_FILES: usize = 64;

/// File name that Finder leaves everywhere; never part of an artifact.
const DS_STORE: &str = ".DS_Store";

pub(super) struct DirTree {
    root: PathBuf,
    /// Files read ahead by `prefetch`, taken by `read`.
    ahead: HashMap<String, Result<Vec<u8>, ArtifactError>>,
}

impl DirTree {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            ahead: HashMap::new(),
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
        if let Some(result) = self.ahead.remove(path) {
            let bytes = result?;
            if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
                return Err(ArtifactError::ReadLimitExceeded {
                    path: path.to_owned(),
                    max: max_bytes,
                });
            }
            return Ok(bytes);
        }
        read_file(&self.full_path(path), path, max_bytes)
    }

    /// Many small files (a long migration history): read them on a few threads.
    fn prefetch(&mut self, paths: &[String], max_total: u64) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        if paths.len() < PREFETCH_MIN_FILES || threads < 2 {
            return;
        }
        let chunk = paths.len().div_ceil(threads);
        let this = &*self;
        let results: Vec<(String, Result<Vec<u8>, ArtifactError>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = paths
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|p| (p.clone(), read_file(&this.full_path(p), p, max_total)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .filter_map(|w| w.join().ok())
                .flatten()
                .collect()
        });
        self.ahead.extend(results);
    }
}

/// Reads at most `max_bytes` (+1 to notice more) of `full`, named `path` in errors.
fn read_file(full: &Path, path: &str, max_bytes: u64) -> Result<Vec<u8>, ArtifactError> {
    let file = File::open(full).map_err(io_error(full))?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error(full))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
        return Err(ArtifactError::ReadLimitExceeded {
            path: path.to_owned(),
            max: max_bytes,
        });
    }
    Ok(bytes)
}
