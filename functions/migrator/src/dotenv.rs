//! `.env` in the working directory, read before the command line is parsed, as Prisma's CLI
//! reads it: each `NAME=value` is set only when the real environment does not already have
//! NAME (the real environment wins). Quotes, `export`, comments and `${VAR}` are understood
//! (dotenvy, dotenv's syntax). The Lambda function and `handle-event` never read it: they
//! are configured by their environment alone.

use std::path::{Path, PathBuf};

/// A `.env` that could not be read (its syntax), with the file named.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {reason} (a line is NAME=value; fix it, or remove the file)")]
pub struct DotenvError {
    path: String,
    reason: String,
}

/// A `.env` file and the values of it that the environment does not already set.
pub type Dotenv = (PathBuf, Vec<(String, String)>);

/// The values of `dir/.env` that the environment does not already set, in file order;
/// `None` when there is no `.env`.
pub fn read(dir: &Path) -> Result<Option<Dotenv>, DotenvError> {
    let path = dir.join(".env");
    if !path.is_file() {
        return Ok(None);
    }
    let error = |reason: String| DotenvError {
        path: path.display().to_string(),
        reason,
    };
    let items = dotenvy::from_path_iter(&path).map_err(|e| error(e.to_string()))?;
    let mut values = Vec::new();
    for item in items {
        let (name, value) = item.map_err(|e| error(e.to_string()))?;
        if std::env::var_os(&name).is_none() {
            values.push((name, value));
        }
    }
    Ok(Some((path, values)))
}

/// Sets what [`read`] found.
///
/// # Safety
/// No other thread may be running: call it at the very start of `main`, before the runtime.
pub unsafe fn apply(values: &[(String, String)]) {
    for (name, value) in values {
        // SAFETY: the caller guarantees a single-threaded process.
        unsafe { std::env::set_var(name, value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins_and_syntax_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // PATH is always set: the file's value must not replace it.
        std::fs::write(
            dir.path().join(".env"),
            "# comment\nexport MIGRATOR_DOTENV_TEST_A=\"file:./a.db\"\nPATH=/nowhere\n",
        )
        .unwrap();
        let (path, values) = read(dir.path()).unwrap().unwrap();
        assert_eq!(path, dir.path().join(".env"));
        assert_eq!(
            values,
            [(
                "MIGRATOR_DOTENV_TEST_A".to_string(),
                "file:./a.db".to_string()
            )]
        );
        std::fs::write(dir.path().join(".env"), "NOT A LINE\n").unwrap();
        let error = read(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(".env") && error.contains("NAME=value"),
            "{error}"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(read(empty.path()).unwrap().is_none());
    }
}
