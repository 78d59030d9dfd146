//! The crate's top-level modules import each other one way only: each may use the modules
//! before it in [`ORDER`], never one after it. A test reads the sources and holds that.

/// From the bottom up: plain text and SQL, the artifact, preflight's rules, the outcome
/// document (and the errors that name it), the dialects, the engine.
#[cfg(test)]
const ORDER: [&str; 13] = [
    "text",
    "sql",
    "checksum",
    "clock",
    "migration",
    "ordering",
    "lockfile",
    "artifact",
    "preflight",
    "outcome",
    "error",
    "dialect",
    "engine",
];

#[cfg(test)]
mod tests {
    use super::ORDER;
    use std::path::{Path, PathBuf};

    fn sources(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).expect("a source folder").flatten() {
                sources(&entry.path(), out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.to_path_buf());
        }
    }

    #[test]
    fn modules_import_only_the_modules_below_them() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (level, module) in ORDER.iter().enumerate() {
            let mut files = Vec::new();
            for path in [src.join(module), src.join(format!("{module}.rs"))] {
                if path.exists() {
                    sources(&path, &mut files);
                }
            }
            assert!(!files.is_empty(), "no source for module {module}");
            for file in files {
                let text = std::fs::read_to_string(&file).expect("a source file");
                for (at, _) in text.match_indices("crate::") {
                    let name: String = text[at + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if let Some(other) = ORDER.iter().position(|m| *m == name)
                        && other > level
                    {
                        wrong.push(format!("{} uses crate::{name}", file.display()));
                    }
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "imports against the order:\n{}",
            wrong.join("\n")
        );
    }

    #[test]
    fn every_top_level_module_has_its_place() {
        let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
            .expect("lib.rs");
        for line in lib.lines() {
            if let Some(name) = line
                .strip_prefix("pub mod ")
                .and_then(|r| r.strip_suffix(';'))
            {
                assert!(ORDER.contains(&name), "{name} is not in layering::ORDER");
            }
        }
    }
}
