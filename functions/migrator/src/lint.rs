//! `migrator lint`: the static preflight rules over an artifact, without a database, for CI
//! before the artifact is deployed.
//!
//! Exit codes: 0 when no finding is at or above `--fail-on` (allowed findings never count),
//! 1 when one is, 2 when the artifact cannot be read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use migrator_engine::artifact::{self, Artifact, ArtifactKind, Limits};
use migrator_engine::preflight::{self, Finding, Options, Scope, Script, Severity};
use migrator_engine::sql::Flavor;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct LintArgs {
    #[command(flatten)]
    artifact: crate::cli::ArtifactArg,
    /// How to print the findings.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// The lowest severity that makes the exit code 1.
    #[arg(long, value_enum, default_value = "warning", value_name = "SEVERITY")]
    fail_on: FailOn,
    /// Report only this migration and the ones after it (the earlier ones still teach the
    /// rules the schema): the migrations a pull request adds.
    #[arg(long, value_name = "NAME")]
    from: Option<String>,
    /// The SQL dialect, when the artifact's migration_lock.toml does not say.
    #[arg(long, value_enum)]
    provider: Option<Provider>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    /// GitHub Actions workflow commands: `::error file=…,line=…::…`.
    Github,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FailOn {
    Error,
    Warning,
    Info,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Provider {
    Postgresql,
    Mysql,
    Sqlite,
}

const EXIT_FINDINGS: u8 = 1;
const EXIT_UNREADABLE: u8 = 2;

impl LintArgs {
    pub(crate) fn artifact(&self) -> &crate::cli::ArtifactArg {
        &self.artifact
    }
}

/// Lints `artifact_path` (`--artifact`, or what the project's prisma.config.ts names).
pub fn run(args: &LintArgs, artifact_path: &Path) -> ExitCode {
    let artifact = match artifact::read_path(artifact_path, &Limits::default()) {
        Ok(artifact) => artifact,
        Err(e) => {
            eprintln!("migrator lint: {e}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let flavor = match flavor(&artifact, args.provider) {
        Some(flavor) => flavor,
        None => {
            eprintln!(
                "migrator lint: the artifact names no known provider; pass --provider postgresql|mysql|sqlite"
            );
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let first = match &args.from {
        Some(name) => match artifact.set.migrations.iter().position(|m| &m.name == name) {
            Some(index) => index,
            None => {
                eprintln!("migrator lint: --from {name}: no such migration in the artifact");
                return ExitCode::from(EXIT_UNREADABLE);
            }
        },
        None => 0,
    };
    let scripts: Vec<Script<'_>> = artifact
        .set
        .migrations
        .iter()
        .enumerate()
        .filter_map(|(index, m)| {
            m.script.as_deref().map(|sql| Script {
                migration: &m.name,
                sql,
                pending: index >= first,
            })
        })
        .collect();
    let options = Options {
        scope: Scope::EachMigration,
        ..Options::new(flavor)
    };
    let findings = preflight::check_static(&scripts, &options);
    let files = FilePaths::new(&artifact, artifact_path);
    let printed = match args.format {
        Format::Text => text(&findings, &files),
        Format::Json => json(&findings, &files),
        Format::Github => github(&findings, &files),
    };
    print!("{printed}");
    let threshold = match args.fail_on {
        FailOn::Error => Some(Severity::Error),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Info => Some(Severity::Info),
        FailOn::Never => None,
    };
    let fails =
        threshold.is_some_and(|t| preflight::findings::highest(&findings).is_some_and(|h| h >= t));
    if fails {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

/// The dialect from `--provider`, else from migration_lock.toml, else from schema.prisma.
fn flavor(artifact: &Artifact, provider: Option<Provider>) -> Option<Flavor> {
    if let Some(provider) = provider {
        return Some(match provider {
            Provider::Postgresql => Flavor::Postgres,
            Provider::Mysql => Flavor::MySql,
            Provider::Sqlite => Flavor::Sqlite,
        });
    }
    let named = artifact
        .set
        .lockfile
        .as_ref()
        .map(|l| l.provider.clone())
        .or_else(|| artifact.set.schema_provider.clone())?;
    match named.trim().to_ascii_lowercase().as_str() {
        "postgresql" | "postgres" | "cockroachdb" => Some(Flavor::Postgres),
        "mysql" => Some(Flavor::MySql),
        "sqlite" => Some(Flavor::Sqlite),
        _ => None,
    }
}

/// Where each migration's file is, as CI sees it: under the directory given, or its path
/// inside the zip.
struct FilePaths {
    base: PathBuf,
}

impl FilePaths {
    fn new(artifact: &Artifact, given: &Path) -> FilePaths {
        let inner = Path::new(&artifact.set.path);
        let base = match artifact.kind {
            ArtifactKind::Directory => join_clean(given, inner),
            ArtifactKind::Zip => inner.to_path_buf(),
        };
        FilePaths { base }
    }

    fn of(&self, migration: &str) -> String {
        self.base
            .join(migration)
            .join("migration.sql")
            .to_string_lossy()
            .replace('\\', "/")
    }
}

/// `given` joined with `inner`, without `.` parts, and without repeating a suffix that
/// `given` already ends with (`--artifact prisma/migrations` finds `prisma/migrations`).
fn join_clean(given: &Path, inner: &Path) -> PathBuf {
    let inner: PathBuf = inner
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let given: PathBuf = given
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if inner.as_os_str().is_empty() || given.ends_with(&inner) {
        given
    } else {
        given.join(inner)
    }
}

fn text(findings: &[Finding], files: &FilePaths) -> String {
    let mut out = String::new();
    let mut current = None;
    for f in findings {
        if current != Some(f.migration.as_str()) {
            current = Some(f.migration.as_str());
            let _ = writeln!(out, "{}", files.of(&f.migration));
        }
        let allowed = f
            .allowed
            .as_deref()
            .map(|r| format!(" (allowed: {r})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  line {} (statement {}): {} {}{}: {}",
            f.line, f.statement, f.severity, f.rule, allowed, f.message
        );
    }
    let count = |s| {
        findings
            .iter()
            .filter(|f| f.severity == s && f.allowed.is_none())
            .count()
    };
    let _ = writeln!(
        out,
        "{} error(s), {} warning(s), {} info, {} allowed",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
        findings.iter().filter(|f| f.allowed.is_some()).count()
    );
    out
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonFinding<'f> {
    file: String,
    #[serde(flatten)]
    finding: &'f Finding,
}

fn json(findings: &[Finding], files: &FilePaths) -> String {
    let list: Vec<JsonFinding<'_>> = findings
        .iter()
        .map(|finding| JsonFinding {
            file: files.of(&finding.migration),
            finding,
        })
        .collect();
    let body = serde_json::json!({
        "findings": list,
        "highest": preflight::findings::highest(findings),
    });
    format!(
        "{}\n",
        serde_json::to_string_pretty(&body).unwrap_or_default()
    )
}

/// GitHub Actions annotations: error/warning/notice on the migration file and line.
fn github(findings: &[Finding], files: &FilePaths) -> String {
    let mut out = String::new();
    for f in findings.iter().filter(|f| f.allowed.is_none()) {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        let _ = writeln!(
            out,
            "::{level} file={},line={},title={}::{}",
            escape_property(&files.of(&f.migration)),
            f.line,
            escape_property(f.rule.id()),
            escape_data(&f.message)
        );
    }
    out
}

/// Workflow-command data: `%`, CR and LF are escaped.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command properties: also `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_are_escaped() {
        assert_eq!(escape_data("a%b\nc"), "a%25b%0Ac");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn file_paths_do_not_repeat_the_migrations_folder() {
        assert_eq!(
            join_clean(
                Path::new("prisma/migrations"),
                Path::new("prisma/migrations")
            ),
            PathBuf::from("prisma/migrations")
        );
        assert_eq!(
            join_clean(Path::new("prisma"), Path::new("migrations")),
            PathBuf::from("prisma/migrations")
        );
        assert_eq!(
            join_clean(Path::new("./m"), Path::new(".")),
            PathBuf::from("m")
        );
    }
}
