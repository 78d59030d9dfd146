//! Every command we print is quoted here, for a POSIX shell (sh, bash, zsh): pasting it runs
//! exactly one program with exactly the arguments shown, whatever a key or a name holds.

/// `arg` as one shell word (the rule lives in the engine, whose CLI hints print commands too).
pub use migrator_engine::text::shell_word as quote;

/// `words`, each quoted, joined by spaces.
pub fn command<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    words.into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Test support: the end-to-end suite's runner of printed commands (one definition).
#[cfg(test)]
pub use migrator_e2e::stage::run_printed;

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
