//! What the project in the working directory says, for the commands that take `--artifact`
//! and `--database-url`: `prisma.config.ts` (Prisma 7's configuration) names the migrations
//! folder and the environment variable holding the database URL.
//!
//! Precedence, highest first:
//! - the artifact: `--artifact`, `MIGRATOR_ARTIFACT`, `prisma.config.ts`'s `migrations.path`
//!   (else `migrations/` beside its `schema`), `prisma/migrations`;
//! - the URL: `--database-url`, the variable `prisma.config.ts`'s `datasource.url` names
//!   (`env("NAME")`) or the string it holds, `DATABASE_URL`.
//!
//! A setting that is code rather than a literal is never guessed: when it would decide, the
//! command stops and says so.

use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use migrator_engine::artifact::prisma_config::{PrismaConfig, Setting, UrlSource};

pub const CONFIG_FILE: &str = "prisma.config.ts";

/// The project's `prisma.config.ts`, when the working directory has one.
#[derive(Debug, Default)]
pub struct Project {
    config: Option<PrismaConfig>,
    /// The folder relative paths of the file are resolved against.
    dir: PathBuf,
}

/// Why the command cannot start: printed as a usage error (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error(
        "no database URL: set DATABASE_URL (in the environment or in .env) or pass --database-url"
    )]
    NoUrl,
    #[error(
        "no database URL: {CONFIG_FILE} takes it from {name} (`env(\"{name}\")`), which is not set; set {name} (in the environment or in .env) or pass --database-url"
    )]
    NamedVariableUnset { name: String },
    #[error(
        "no database URL: {CONFIG_FILE} sets datasource.url to `{expression}`, code that migrator does not run; set DATABASE_URL or pass --database-url"
    )]
    UrlExpression { expression: String },
    #[error(
        "{CONFIG_FILE} sets the migrations folder to `{expression}`, code that migrator does not run; pass --artifact PATH (or set MIGRATOR_ARTIFACT)"
    )]
    PathExpression { expression: String },
    #[error("could not read {path}: {reason}")]
    Unreadable { path: String, reason: String },
}

impl Project {
    /// Reads `dir/prisma.config.ts` when there is one.
    pub fn load(dir: &Path) -> Result<Project, ProjectError> {
        let path = dir.join(CONFIG_FILE);
        let config = match std::fs::read_to_string(&path) {
            Ok(text) => Some(PrismaConfig::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(ProjectError::Unreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        Ok(Project {
            config,
            dir: dir.to_path_buf(),
        })
    }

    /// The artifact to read: `given` unless it is clap's default and the config names one.
    pub fn artifact(
        &self,
        given: &Path,
        source: Option<ValueSource>,
    ) -> Result<PathBuf, ProjectError> {
        if source != Some(ValueSource::DefaultValue) {
            return Ok(given.to_path_buf());
        }
        match self.config.as_ref().map(PrismaConfig::migrations_folder) {
            Some(Setting::Value(path)) => Ok(self.dir.join(path)),
            Some(Setting::Expression(expression)) => {
                Err(ProjectError::PathExpression { expression })
            }
            Some(Setting::Absent) | None => Ok(given.to_path_buf()),
        }
    }

    /// The database URL: `given` when it came from the command line; else what the config
    /// names; else `given` (from `DATABASE_URL`); else an error that says what to set.
    /// `note` receives a line to print when the config was set aside.
    pub fn database_url(
        &self,
        given: Option<&str>,
        source: Option<ValueSource>,
        note: &mut dyn FnMut(String),
    ) -> Result<String, ProjectError> {
        let given = given.filter(|u| !u.trim().is_empty());
        if source == Some(ValueSource::CommandLine)
            && let Some(url) = given
        {
            return Ok(url.to_string());
        }
        match self.config.as_ref().map(|c| &c.url) {
            Some(Setting::Value(UrlSource::Env(name))) => match std::env::var(name) {
                Ok(url) if !url.trim().is_empty() => Ok(url),
                _ => Err(ProjectError::NamedVariableUnset { name: name.clone() }),
            },
            Some(Setting::Value(UrlSource::Literal(url))) => Ok(url.clone()),
            Some(Setting::Expression(expression)) => match given {
                Some(url) => {
                    note(format!(
                        "{CONFIG_FILE} sets datasource.url to `{expression}`, code that migrator does not run: using DATABASE_URL"
                    ));
                    Ok(url.to_string())
                }
                None => Err(ProjectError::UrlExpression {
                    expression: expression.clone(),
                }),
            },
            Some(Setting::Absent) | None => given.map(str::to_string).ok_or(ProjectError::NoUrl),
        }
    }
}
