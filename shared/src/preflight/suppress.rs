//! Inline suppression, reviewed in the pull request with the migration:
//! `-- migrator:allow <rule> <reason>` in the comments right before a statement allows that
//! rule for that statement. The reason is required; an allow without one allows nothing.

use super::findings::Rule;

const MARKER: &str = "migrator:allow";

/// The rules allowed by the comments `leading` (a statement's leading trivia), with reasons.
pub fn allowed(leading: &str) -> Vec<(Rule, String)> {
    let mut out = Vec::new();
    for line in leading.lines() {
        let Some(at) = line.find(MARKER) else {
            continue;
        };
        let before = line[..at].trim();
        // Only in a comment: `-- migrator:allow …`, `# migrator:allow …` (MySQL) or `/* … */`.
        if !(before.ends_with("--") || before.ends_with('#') || before.ends_with("/*")) {
            continue;
        }
        let rest = line[at + MARKER.len()..]
            .trim()
            .trim_end_matches("*/")
            .trim();
        let mut parts = rest.splitn(2, char::is_whitespace);
        let (Some(id), Some(reason)) = (parts.next(), parts.next()) else {
            continue;
        };
        let reason = reason.trim();
        if let Some(rule) = Rule::from_id(id)
            && !reason.is_empty()
        {
            out.push((rule, reason.to_owned()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_allow_comments_with_reasons_only() {
        let leading = "\n-- AlterTable\n-- migrator:allow drop-column the app stopped reading it in v42\n--migrator:allow truncate\n/* migrator:allow rename-table staged rename */\n";
        assert_eq!(
            allowed(leading),
            vec![
                (
                    Rule::DropColumn,
                    "the app stopped reading it in v42".to_owned()
                ),
                (Rule::RenameTable, "staged rename".to_owned()),
            ]
        );
        assert!(allowed("-- migrator:allow no-such-rule because").is_empty());
        assert!(allowed("SELECT 'migrator:allow drop-table x'").is_empty());
    }
}
