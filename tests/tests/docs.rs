//! The documentation says what the code does: the book's links resolve and every chapter is in
//! its summary, the CLI reference lists exactly the options each command's `--help` lists, the
//! GitHub Actions example uses only options the CLI takes, the README stays a front door, and
//! `cargo install --locked --path functions/migrator` (the README's command) gives a `migrator`
//! whose `--help` matches the reference.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use migrator_e2e::{migrator_bin, workspace};
use yaml_rust2::{Yaml, YamlLoader};

fn book() -> PathBuf {
    workspace().join("docs/src")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.md` file under `dir`.
fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the book's folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(markdown_files(&path));
        } else if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The lines of `text` outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// `line` without its inline code spans.
fn without_code(line: &str) -> String {
    let mut out = String::new();
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code {
            out.push(c);
        }
    }
    out
}

/// The targets of the Markdown links `[text](target)` in `text`, outside code.
fn links(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    for line in prose_lines(text) {
        let line = without_code(line);
        let mut rest = line.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            targets.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    targets
}

/// mdBook's (and GitHub's) anchor of a heading: lowercase, letters, digits, `-` and `_` kept,
/// spaces to `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter(|c| *c != '`')
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose_lines(text)
        .into_iter()
        .filter_map(|l| {
            let t = l.trim_start_matches('#');
            (l.starts_with('#') && t.starts_with(' ')).then(|| slug(t.trim()))
        })
        .collect()
}

/// Every relative link of `file` names an existing file, and its `#anchor` a heading there.
fn check_links(file: &Path, broken: &mut Vec<String>) {
    let text = read(file);
    let dir = file.parent().expect("a file has a folder");
    for target in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        if !resolved.exists() {
            broken.push(format!("{}: `{target}`: no such file", file.display()));
            continue;
        }
        if let Some(anchor) = anchor
            && resolved.extension().is_some_and(|e| e == "md")
            && !anchors(&read(&resolved)).contains(anchor)
        {
            broken.push(format!(
                "{}: `{target}`: no heading with that anchor",
                file.display()
            ));
        }
    }
    for line in text.lines() {
        if let Some(start) = line.find("{{#include ") {
            let rest = &line[start + "{{#include ".len()..];
            let included = rest.split("}}").next().unwrap_or_default().trim();
            if !dir.join(included).exists() {
                broken.push(format!(
                    "{}: include `{included}` is missing",
                    file.display()
                ));
            }
        }
    }
}

#[test]
fn every_chapter_is_in_the_summary_and_every_link_resolves() {
    let summary_path = book().join("SUMMARY.md");
    let summary = read(&summary_path);
    let listed: BTreeSet<PathBuf> = links(&summary)
        .into_iter()
        .map(|l| book().join(l))
        .collect();
    let mut broken = Vec::new();
    for chapter in &listed {
        if !chapter.exists() {
            broken.push(format!(
                "SUMMARY.md lists {}, which is missing",
                chapter.display()
            ));
        }
    }
    for file in markdown_files(&book()) {
        if file != summary_path && !listed.contains(&file) {
            broken.push(format!("{} is not in SUMMARY.md", file.display()));
        }
        check_links(&file, &mut broken);
    }
    check_links(&workspace().join("README.md"), &mut broken);
    assert!(broken.is_empty(), "broken:\n{}", broken.join("\n"));
    // The checker itself finds what it must.
    let mut found = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.md"),
        "# Top\n[x](b.md) [y](a.md#nope) [z](a.md#top)\n",
    )
    .unwrap();
    check_links(&dir.path().join("a.md"), &mut found);
    assert_eq!(found.len(), 2, "{found:?}");
}

/// `migrator <args> --help`.
fn help(args: &[&str]) -> String {
    let out = Command::new(migrator_bin())
        .args(args)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("migrator runs");
    assert!(out.status.success(), "{args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The commands `migrator --help` lists (without clap's `help`).
fn commands(top: &str) -> BTreeSet<String> {
    let list = top
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .expect("a Commands: list");
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// The long options a `--help` text lists, without `--help` and `--version`.
fn options(help: &str) -> BTreeSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("--") || (l.starts_with('-') && l.get(2..4) == Some(", ")))
        .filter_map(|l| {
            let start = l.find("--")?;
            let flag: String = l[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(flag)
        })
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

/// The reference's commands (`## \`migrator X\``) and the options in their tables' first column.
fn reference() -> BTreeMap<String, BTreeSet<String>> {
    let text = read(&book().join("reference/cli.md"));
    let mut sections = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in prose_lines(&text) {
        if let Some(name) = line.strip_prefix("## `migrator ") {
            let name = name.trim_end_matches('`').to_string();
            sections.insert(name.clone(), BTreeSet::new());
            current = Some(name);
        } else if let (Some(name), Some(cell)) = (&current, line.strip_prefix("| `--")) {
            let flag: String = cell
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            sections
                .get_mut(name)
                .expect("the section exists")
                .insert(format!("--{flag}"));
        }
    }
    sections
}

#[test]
fn the_cli_reference_lists_every_option_of_every_command_and_no_other() {
    let reference = reference();
    // A command with subcommands (`fleet`) is documented as each subcommand (`fleet status`).
    let listed: BTreeSet<String> = commands(&help(&[]))
        .into_iter()
        .flat_map(|command| {
            let text = help(&[&command]);
            if text.contains("Commands:") {
                commands(&text)
                    .into_iter()
                    .map(|sub| format!("{command} {sub}"))
                    .collect::<Vec<_>>()
            } else {
                vec![command]
            }
        })
        .collect();
    let documented: BTreeSet<String> = reference.keys().cloned().collect();
    assert_eq!(listed, documented, "commands in --help vs the reference");
    let mut differences = Vec::new();
    for command in &listed {
        let words: Vec<&str> = command.split(' ').collect();
        let real = options(&help(&words));
        let written = &reference[command];
        for missing in real.difference(written) {
            differences.push(format!(
                "{command} {missing}: in --help, not in the reference"
            ));
        }
        for extra in written.difference(&real) {
            differences.push(format!(
                "{command} {extra}: in the reference, not in --help"
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // The parser sees what it must: deploy's own options.
    assert!(reference["deploy"].contains("--accept") && reference["deploy"].contains("--by"));
}

fn key<'y>(yaml: &'y Yaml, name: &str) -> &'y Yaml {
    &yaml[name]
}

/// Every `run:` script of every step of every job.
fn run_scripts(workflow: &Yaml) -> Vec<(String, String)> {
    let mut scripts = Vec::new();
    let Some(jobs) = key(workflow, "jobs").as_hash() else {
        panic!("the workflow has jobs");
    };
    for (name, job) in jobs {
        let name = name.as_str().unwrap_or_default().to_string();
        for step in key(job, "steps").as_vec().expect("a job has steps") {
            if let Some(run) = key(step, "run").as_str() {
                scripts.push((name.clone(), run.to_string()));
            }
        }
    }
    scripts
}

#[test]
fn the_github_workflow_example_uses_only_options_the_cli_takes() {
    let path = workspace().join("docs/examples/github-actions.yml");
    let docs = YamlLoader::load_from_str(&read(&path)).expect("the workflow is YAML");
    let workflow = &docs[0];
    let on = key(workflow, "on");
    assert!(
        !key(on, "pull_request").is_badvalue(),
        "runs on pull requests"
    );
    assert!(
        key(key(on, "push"), "branches")
            .as_vec()
            .is_some_and(|b| b.iter().any(|b| b.as_str() == Some("main"))),
        "runs on merge to main"
    );
    let scripts = run_scripts(workflow);
    let known = commands(&help(&[]));
    let mut seen = BTreeSet::new();
    for (job, script) in &scripts {
        for line in script.lines() {
            let words: Vec<&str> = line
                .split_whitespace()
                .map(|w| w.trim_matches('"'))
                .collect();
            // `migrator COMMAND …` (not `command -v migrator`).
            let Some(at) = words
                .windows(2)
                .position(|w| w[0] == "migrator" && known.contains(w[1]))
            else {
                continue;
            };
            let command = words[at + 1];
            let accepted = options(&help(&[command]));
            for word in words[at + 2..]
                .iter()
                .take_while(|w| !["|", ";", "&&", "||"].contains(w))
            {
                if word.starts_with("--") {
                    let flag = word.split('=').next().unwrap_or(word);
                    assert!(
                        accepted.contains(flag),
                        "job {job}: `migrator {command} {flag}` is not an option of {command}"
                    );
                }
            }
            seen.insert(format!("{job}: migrator {command}"));
            if command == "lint" && job == "lint" {
                assert!(
                    line.contains("--format github"),
                    "annotations on the pull request: {line}"
                );
            }
        }
    }
    assert!(seen.contains("lint: migrator lint"), "{seen:?}");
    assert!(seen.contains("upload: migrator lint"), "{seen:?}");
    let all = scripts
        .iter()
        .map(|(_, s)| s.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(all.contains("cargo install --locked --path .migrator/functions/migrator"));
    assert!(all.contains("aws s3 cp prisma.zip"));
    // The upload job's zip (zip -r -X prisma.zip prisma/migrations prisma/schema.prisma), made
    // from the SQLite sample with the same entries, is what migrator reads.
    let zip_line = all
        .lines()
        .find(|l| l.trim_start().starts_with("zip "))
        .expect("the workflow builds prisma.zip");
    assert!(zip_line.contains("prisma/migrations") && zip_line.contains("prisma/schema.prisma"));
    let dir = tempfile::tempdir().unwrap();
    let zip_path = dir.path().join("prisma.zip");
    write_zip_like_zip_r(
        &workspace().join("examples"),
        &["prisma/migrations", "prisma/schema.prisma"],
        &zip_path,
    );
    let out = Command::new(migrator_bin())
        .args(["lint", "--fail-on", "never", "--artifact"])
        .arg(&zip_path)
        .output()
        .expect("migrator runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("error(s)"));
    // The chapter shows this file.
    assert!(
        read(&book().join("guide/ci.md"))
            .contains("{{#include ../../examples/github-actions.yml}}")
    );
}

/// `zip -r` of `paths` (relative to `base`): a folder entry per folder, then its files.
fn write_zip_like_zip_r(base: &Path, paths: &[&str], to: &Path) {
    use std::io::Write;
    let mut writer = zip::ZipWriter::new(std::fs::File::create(to).expect("create the zip"));
    let options = zip::write::SimpleFileOptions::default();
    fn add(
        writer: &mut zip::ZipWriter<std::fs::File>,
        base: &Path,
        rel: &str,
        options: zip::write::SimpleFileOptions,
    ) {
        let path = base.join(rel);
        if path.is_dir() {
            writer
                .add_directory(format!("{rel}/"), options)
                .expect("folder entry");
            let mut names: Vec<String> = std::fs::read_dir(&path)
                .expect("read folder")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            for name in names {
                add(writer, base, &format!("{rel}/{name}"), options);
            }
        } else {
            writer.start_file(rel, options).expect("file entry");
            writer
                .write_all(&std::fs::read(&path).expect("read file"))
                .expect("write");
        }
    }
    for rel in paths {
        add(&mut writer, base, rel, options);
    }
    writer.finish().expect("finish the zip");
}

#[test]
fn the_readme_is_a_front_door() {
    let readme = read(&workspace().join("README.md"));
    assert!(
        readme.len() <= 15_360,
        "README.md is {} bytes",
        readme.len()
    );
    assert!(
        readme.starts_with("# migrator\n\n"),
        "the name, then what it is"
    );
    // Exactly the two commands, in one block.
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a first shell block");
    let commands: Vec<&str> = block
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .collect();
    assert_eq!(commands, ["make demo", "make test"], "{block}");
    for says in [
        "cargo install --locked --path functions/migrator",
        "functions/migrator/Dockerfile",
        ".env",
        "prisma.config.ts",
        "DATABASE_URL",
        "--block-on",
        "lint",
        "docs/src/reference/cli.md",
    ] {
        assert!(readme.contains(says), "the README does not mention {says}");
    }
}

#[test]
fn cargo_install_gives_a_migrator_whose_help_matches_the_reference() {
    // The README's command, into a temporary root. `--debug` and the workspace's target folder
    // reuse the build `make test` has just made (a release build is 15 minutes of a 2-core
    // machine); the manifest, the lock file, the binary target and the install are the same.
    let readme = read(&workspace().join("README.md"));
    assert!(readme.contains("cargo install --locked --path functions/migrator"));
    let root = tempfile::tempdir().unwrap();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace().join("target"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace())
        .args([
            "install",
            "--locked",
            "--path",
            "functions/migrator",
            "--debug",
            "--root",
        ])
        .arg(root.path())
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = root.path().join("bin/migrator");
    let out = Command::new(&installed)
        .arg("--help")
        .env("NO_COLOR", "1")
        .output()
        .expect("the installed migrator runs");
    assert!(out.status.success());
    let top = String::from_utf8_lossy(&out.stdout);
    // The reference documents a command with subcommands as each of them (`fleet status`).
    let documented: BTreeSet<String> = reference()
        .keys()
        .map(|k| k.split(' ').next().unwrap_or_default().to_string())
        .collect();
    assert_eq!(commands(&top), documented, "{top}");
    let version = Command::new(&installed)
        .arg("--version")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("migrator "));
}

/// `make -n TARGET`: the commands make would run.
fn make_dry(target: &str) -> String {
    let out = Command::new("make")
        .current_dir(workspace())
        .args(["-n", "--no-print-directory", target])
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "make -n {target}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn make_demo_is_never_silent_and_make_test_never_stops_early() {
    // The first `make demo` compiles for minutes: it says so, and cargo shows its progress.
    let demo = make_dry("demo");
    let run = demo
        .lines()
        .find(|l| l.contains("run -p migrator"))
        .expect("make demo runs migrator through cargo");
    assert!(
        !run.split_whitespace().any(|w| w == "-q" || w == "--quiet"),
        "{run}"
    );
    assert!(
        demo.contains("Building migrator: the first time about"),
        "{demo}"
    );
    // One failing suite does not hide the others…
    for part in ["unit", "e2e"] {
        assert!(make_dry(part).contains("--no-fail-fast"), "make {part}");
    }
    // …and one failing part does not stop the rest: every part runs, then a table.
    let test = make_dry("test");
    for part in [
        "setup",
        "lint",
        "build",
        "unit",
        "e2e",
        "infra-test",
        "docs",
    ] {
        assert!(test.contains(part), "make test does not run {part}: {test}");
    }
    assert!(test.contains("passed, $failed failed"), "{test}");
}
