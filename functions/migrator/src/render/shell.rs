//! Every command we print is quoted here, for a POSIX shell (sh, bash, zsh): pasting it runs
//! exactly one program with exactly the arguments shown, whatever a key or a name holds.

/// `arg` as one shell word: as it is when it holds only characters no shell treats
/// specially, else in single quotes (inside which nothing is special), each `'` written
/// as `'\''`.
pub fn quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// `words`, each quoted, joined by spaces.
pub fn command<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Test support: runs `printed` with `sh -c` where `migrator` is a stub that records its
/// arguments, and returns them (or panics with what the shell said).
#[cfg(test)]
pub fn run_printed(printed: &str) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stub = dir.path().join("migrator");
    let argv = dir.path().join("argv");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\0' \"$a\"; done > '{}'\n",
            argv.display()
        ),
    )
    .expect("the stub");
    std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("a working directory");
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(printed)
        .current_dir(&work)
        .env("PATH", path)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{printed}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Vec<_> = std::fs::read_dir(&work)
        .expect("the working directory")
        .collect();
    assert!(created.is_empty(), "{printed} created {created:?}");
    let bytes = std::fs::read(&argv).expect("the stub ran");
    let mut args: Vec<String> = bytes
        .split(|b| *b == 0)
        .map(|a| String::from_utf8(a.to_vec()).expect("UTF-8"))
        .collect();
    // Each argument ends with a NUL: the last piece is empty.
    args.pop();
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain_and_anything_else_is_single_quoted() {
        assert_eq!(
            quote("s3://b/deploy/CODE/app/prisma.zip"),
            "s3://b/deploy/CODE/app/prisma.zip"
        );
        assert_eq!(quote(""), "''");
        assert_eq!(quote("my app+v2"), "'my app+v2'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote("~root"), "'~root'");
    }

    #[test]
    fn a_printed_command_runs_exactly_those_arguments() {
        let hostile = [
            "s3://b/deploy/CODE/$(touch${IFS}PWNED)/prisma.zip",
            "s3://b/deploy/CODE/my app+v2/prisma.zip",
            "`touch PWNED`",
            "it's; touch PWNED",
            "a\nb",
            "\\'\"$HOME*?[x]!#&|<>",
            "",
            "-",
            "é ☃",
        ];
        let mut words = vec!["migrator", "invoke"];
        words.extend(hostile);
        let printed = command(words.iter().copied());
        assert_eq!(run_printed(&printed), words[1..]);
    }
}
