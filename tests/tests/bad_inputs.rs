//! The bad-input corpus (`tests/corpus/bad/*.case`): hostile and broken artifacts, events and
//! manual payloads. Each case names the status the outcome must have and a fragment of its
//! error message; every case must also exit non-zero (unless it says otherwise), never
//! panic, and leave its database byte for byte as it was (schema dump and
//! `_prisma_migrations` compared before and after).
//!
//! # Case files
//!
//! ```text
//! # a comment
//! kind: artifact | event
//! status: rejected                 the outcome's `status`; `none`: no outcome (the fragment is
//!                                  in stderr); `batch-failure`: an SQS answer listing failures
//!                                  (the fragment is in the log)
//! fragment: is rejected: its path   a piece of `error.message` (or of stderr when there is no outcome)
//! args: --max-entries 50           (optional) more CLI arguments
//! mode: zip | dir                  (optional, artifacts) build a zip (default) or a folder
//! exit: 1                          (optional) the exit code, default 1
//! ---
//! body
//! ```
//!
//! An artifact body is a list of directives, one a line (CONTENT takes `\n`, `\t`, `\\`, `\xHH`):
//! `lock PROVIDER`, `sql NAME CONTENT` (prisma/migrations/NAME/migration.sql), `file PATH CONTENT`,
//! `stored PATH CONTENT` (no compression), `dir PATH`, `symlink PATH TARGET`,
//! `zeros PATH BYTES` (deflated zeros), `many N` (N tiny entries), `raw CONTENT` (the whole file,
//! not a zip), and edits of the finished zip: `truncate N` (keep N bytes; negative: drop -N),
//! `flip OFFSET` (negative: from the end), `patch FROM TO` (same-length byte replacement),
//! `patch1 FROM TO` (the first occurrence only: in a local header, not the central directory).
//! An event body is the event's JSON text; `{{HUGE}}` becomes 100,000 `a`s.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use migrator_e2e::{PgDb, migrator_bin, workspace};
use serde_json::Value;

struct Case {
    file: String,
    kind: String,
    status: String,
    fragment: String,
    args: Vec<String>,
    mode: String,
    exit: i32,
    body: String,
}

fn load_cases() -> Vec<Case> {
    let dir = workspace().join("tests/corpus/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/corpus/bad")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "case"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("case file");
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            let (head, body) = text
                .split_once("\n---\n")
                .unwrap_or_else(|| panic!("{file}: no `---` line"));
            let mut case = Case {
                file: file.clone(),
                kind: String::new(),
                status: String::new(),
                fragment: String::new(),
                args: Vec::new(),
                mode: "zip".into(),
                exit: 1,
                body: body.to_string(),
            };
            for line in head.lines() {
                if line.starts_with('#') || line.trim().is_empty() {
                    continue;
                }
                let (key, value) = line
                    .split_once(": ")
                    .unwrap_or_else(|| panic!("{file}: bad header line `{line}`"));
                match key {
                    "kind" => case.kind = value.into(),
                    "status" => case.status = value.into(),
                    "fragment" => case.fragment = value.into(),
                    "args" => case.args = value.split_whitespace().map(String::from).collect(),
                    "mode" => case.mode = value.into(),
                    "exit" => case.exit = value.parse().expect("exit code"),
                    other => panic!("{file}: unknown header `{other}`"),
                }
            }
            assert!(
                ["artifact", "event"].contains(&case.kind.as_str()),
                "{file}: kind"
            );
            assert!(!case.fragment.is_empty(), "{file}: a fragment is required");
            assert!(!case.status.is_empty(), "{file}: a status is required");
            case
        })
        .collect()
}

/// A folder name with the escapes of [`unescape`] (`\n` is a newline in the name).
fn name(text: &str) -> String {
    String::from_utf8_lossy(&unescape(text)).into_owned()
}

/// `\n`, `\t`, `\\`, `\xHH` in directive content.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'\\' => out.push(b'\\'),
                b'x' => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).expect("\\xHH"));
                    i += 2;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

const LOCK_TEXT: &str = "# Please do not edit this file manually\n# It should be added in your version-control system (e.g., Git)\nprovider = \"PROVIDER\"\n";

fn words(line: &str, n: usize) -> Vec<&str> {
    line.splitn(n, ' ').collect()
}

/// Builds the case's artifact under `dir`; returns its path.
fn build_artifact(case: &Case, dir: &Path) -> PathBuf {
    if case.mode == "dir" {
        let root = dir.join("artifact");
        std::fs::create_dir_all(&root).unwrap();
        for line in case.body.lines().filter(|l| !l.trim().is_empty()) {
            let w = words(line, 3);
            let write = |rel: &str, bytes: &[u8]| {
                let path = root.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            };
            match w[0] {
                "lock" => write(
                    "prisma/migrations/migration_lock.toml",
                    LOCK_TEXT.replace("PROVIDER", w[1]).as_bytes(),
                ),
                "sql" => write(
                    &format!("prisma/migrations/{}/migration.sql", name(w[1])),
                    &unescape(w.get(2).copied().unwrap_or("")),
                ),
                "file" => write(w[1], &unescape(w.get(2).copied().unwrap_or(""))),
                "dir" => std::fs::create_dir_all(root.join(w[1])).unwrap(),
                "symlink" => {
                    let path = root.join(w[1]);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::os::unix::fs::symlink(w[2], path).unwrap();
                }
                "fifo" => {
                    let path = root.join(w[1]);
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    let ok = Command::new("mkfifo").arg(&path).status().unwrap();
                    assert!(ok.success());
                }
                other => panic!("{}: `{other}` is not a folder directive", case.file),
            }
        }
        return root.join("prisma");
    }

    let mut edits = Vec::new();
    let mut raw = None;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for line in case.body.lines().filter(|l| !l.trim().is_empty()) {
        let w = words(line, 3);
        let mut add = |path: &str, bytes: &[u8], options| {
            zip.start_file(path, options)
                .unwrap_or_else(|e| panic!("{}: {path}: {e}", case.file));
            zip.write_all(bytes).unwrap();
        };
        match w[0] {
            "lock" => add(
                "prisma/migrations/migration_lock.toml",
                LOCK_TEXT.replace("PROVIDER", w[1]).as_bytes(),
                deflated,
            ),
            "sql" => add(
                &format!("prisma/migrations/{}/migration.sql", name(w[1])),
                &unescape(w.get(2).copied().unwrap_or("")),
                deflated,
            ),
            "file" => add(w[1], &unescape(w.get(2).copied().unwrap_or("")), deflated),
            "stored" => add(w[1], &unescape(w.get(2).copied().unwrap_or("")), stored),
            "zeros" => {
                let size: usize = w[2].parse().unwrap();
                add(w[1], &vec![0u8; size], deflated)
            }
            "many" => {
                let n: usize = w[1].parse().unwrap();
                for i in 0..n {
                    add(&format!("prisma/junk/f{i}"), b"", stored);
                }
            }
            "dir" => zip.add_directory(w[1], deflated).unwrap(),
            "symlink" => zip.add_symlink(w[1], w[2], deflated).unwrap(),
            "raw" => raw = Some(unescape(w.get(1).copied().unwrap_or(""))),
            "truncate" | "flip" | "patch" | "patch1" => edits.push(w),
            other => panic!("{}: unknown directive `{other}`", case.file),
        }
    }
    let mut bytes = raw.unwrap_or_else(|| zip.finish().unwrap().into_inner());
    for edit in edits {
        let at = |n: &str| -> usize {
            let n: i64 = n.parse().unwrap();
            if n < 0 {
                (bytes.len() as i64 + n) as usize
            } else {
                n as usize
            }
        };
        match edit[0] {
            "truncate" => {
                let keep = at(edit[1]);
                bytes.truncate(keep);
            }
            "flip" => {
                let i = at(edit[1]);
                bytes[i] ^= 0xFF;
            }
            "patch" | "patch1" => {
                let first_only = edit[0] == "patch1";
                let (from, to) = (unescape(edit[1]), unescape(edit[2]));
                assert_eq!(from.len(), to.len(), "{}: patch lengths", case.file);
                let mut hits = 0;
                let mut i = 0;
                while i + from.len() <= bytes.len() {
                    if bytes[i..i + from.len()] == from[..] {
                        bytes[i..i + from.len()].copy_from_slice(&to);
                        hits += 1;
                        i += from.len();
                        if first_only {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                assert!(hits > 0, "{}: patch found nothing", case.file);
            }
            _ => unreachable!(),
        }
    }
    let path = dir.join("prisma.zip");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Schema dump plus `_prisma_migrations` rows (when the table exists).
fn snapshot(db: &PgDb) -> String {
    let rows = if db.sql("SELECT to_regclass('public._prisma_migrations') IS NOT NULL") == "t" {
        serde_json::to_string(&db.rows()).unwrap()
    } else {
        "no _prisma_migrations".into()
    };
    format!("{}\n-- rows --\n{rows}", db.schema_dump())
}

/// Runs one case; returns a description of what went wrong, if anything.
fn run_case(case: &Case) -> Result<(), String> {
    let db = PgDb::fresh("bad_input");
    // Some history, so that "unchanged" means something.
    db.sql("CREATE TABLE _prisma_migrations (id VARCHAR(36) PRIMARY KEY NOT NULL, checksum VARCHAR(64) NOT NULL, finished_at TIMESTAMPTZ, migration_name VARCHAR(255) NOT NULL, logs TEXT, rolled_back_at TIMESTAMPTZ, started_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_steps_count INTEGER NOT NULL DEFAULT 0); INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name, applied_steps_count) VALUES ('00000000-0000-4000-8000-000000000000', 'x', now(), '20200101000000_existing', 1); CREATE TABLE existing (id int);");
    let before = snapshot(&db);
    let tmp = tempfile::tempdir().unwrap();
    let output = if case.kind == "artifact" {
        let artifact = build_artifact(case, tmp.path());
        Command::new(migrator_bin())
            .arg("deploy")
            .args(&case.args)
            .arg("--artifact")
            .arg(&artifact)
            .args(["--database-url", &db.url, "--json"])
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    } else {
        let event = case
            .body
            .trim_end_matches('\n')
            .replace("{{HUGE}}", &"a".repeat(100_000));
        Command::new(migrator_bin())
            .args(["handle-event", "--event-json", &event])
            .args(&case.args)
            .envs([
                ("STAGE", "CODE"),
                ("DB_AUTH", "url"),
                ("DATABASE_URL", db.url.as_str()),
                ("ARTIFACT_BUCKET", "artifacts"),
                ("ARTIFACT_KEY", "deploy/CODE/*/prisma.zip"),
                ("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:t"),
                ("AWS_REGION", "eu-west-1"),
                ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
                ("AWS_ACCESS_KEY_ID", "x"),
                ("AWS_SECRET_ACCESS_KEY", "y"),
                ("AWS_MAX_ATTEMPTS", "1"),
            ])
            .env_remove("AWS_PROFILE")
            .output()
            .unwrap()
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json: Value = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    let status = json["status"].as_str().unwrap_or("(no outcome)");
    let message = json["error"]["message"].as_str().unwrap_or("");
    let after = snapshot(&db);
    if std::env::var_os("CORPUS_PRINT").is_some() {
        eprintln!(
            "{}: exit {:?} status {status} message {message:?} stderr {:?}",
            case.file,
            output.status.code(),
            stderr.chars().take(300).collect::<String>()
        );
    }
    let mut problems = Vec::new();
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        problems.push(format!("panicked: {stderr}"));
    }
    if output.status.code() != Some(case.exit) {
        problems.push(format!(
            "exit code {:?}, expected {}",
            output.status.code(),
            case.exit
        ));
    }
    if case.status == "batch-failure" {
        // An SQS batch: the answer lists the failed message ids; the reason is in the log.
        let failed = &json["batchItemFailures"];
        if failed.as_array().is_none_or(|a| a.is_empty()) {
            problems.push(format!("expected batchItemFailures, got {stdout}"));
        }
        if !stderr.contains(&case.fragment) {
            problems.push(format!("the log lacks `{}`: {stderr}", case.fragment));
        }
    } else if case.status == "none" {
        // No outcome at all (the CLI refused the arguments): the fragment is in stderr.
        if !json.is_null() {
            problems.push(format!("expected no outcome, got {stdout}"));
        }
        if !stderr.contains(&case.fragment) {
            problems.push(format!("stderr lacks `{}`: {stderr}", case.fragment));
        }
    } else {
        if status != case.status {
            problems.push(format!("status `{status}`, expected `{}`", case.status));
        }
        if !message.contains(&case.fragment) {
            problems.push(format!("message lacks `{}`: {message:?}", case.fragment));
        }
    }
    if before != after {
        problems.push(format!("the database changed:\n{before}\n---\n{after}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}:\n  {}", case.file, problems.join("\n  ")))
    }
}

#[test]
fn every_bad_input_is_refused_clearly_without_touching_the_database() {
    let cases = load_cases();
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let only = std::env::var("CORPUS_ONLY").ok();
    let cases: Vec<&Case> = cases
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.file.contains(o)))
        .collect();
    // Event cases wait for the (unreachable) SNS publish: run cases side by side.
    let failures: Vec<String> = std::thread::scope(|scope| {
        let chunks: Vec<Vec<&Case>> = (0..12)
            .map(|i| cases.iter().skip(i).step_by(12).copied().collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                scope.spawn(move || {
                    chunk
                        .into_iter()
                        .filter_map(|c| run_case(c).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("case thread"))
            .collect()
    });
    let artifacts = cases.iter().filter(|c| c.kind == "artifact").count();
    println!(
        "reliability: test=bad-inputs cases={} artifact_cases={artifacts} event_cases={} failures={}",
        cases.len(),
        cases.len() - artifacts,
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
