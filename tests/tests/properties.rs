//! Bounded property tests over the workspace's seeded generator (`fastrand`):
//! - the splitter: joining the statements gives the input back byte for byte, offsets are
//!   contiguous, and on scripts generated with known boundaries (strings, quoted identifiers,
//!   comments and dollar-quoted bodies holding `;`) the split points are exactly those;
//! - the zip reader on random mutations of a valid artifact (truncations, byte flips, byte
//!   insertions): `read_zip` returns Ok or Err, never panics.
//!
//! `PROPERTY_CASES` (default 2,000) cases per property; `PROPERTY_SEED` replays a run.

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use migrator_e2e::{env_number, seed};
use migrator_engine::artifact::{Limits, read_zip};
use migrator_engine::sql::{Flavor, split};

use fastrand::Rng;

/// A number in `0..n` (`0` when `n` is 0).
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.usize(..n.max(1))
}

/// One of `items` (never empty here).
fn pick<'a>(rng: &mut Rng, items: &[&'a str]) -> &'a str {
    items[below(rng, items.len())]
}

fn cases() -> u64 {
    env_number("PROPERTY_CASES", 2_000)
}

/// Text that may hold `;` but never ends a statement: strings, identifiers, comments,
/// dollar quotes, parentheses.
fn opaque(rng: &mut Rng) -> String {
    let inner = pick(
        rng,
        &[
            "", ";", "; ;", "a;b", "it''s;", "\n;\n", "é;ü", "--;", "/*;*/", "$;$",
        ],
    );
    match below(rng, 9) {
        0 => format!("'{}'", inner.replace('\'', "''")),
        1 => format!("E'\\';{}'", inner.replace('\'', "''").replace('\\', "\\\\")),
        2 => format!("\"{}\"", inner.replace('"', "\"\"")),
        3 => format!("-- {};\n", inner.replace('\n', " ")),
        4 => format!(
            "/* {} /* nested; */ ; */",
            inner.replace("/*", "/ *").replace("*/", "* /")
        ),
        5 => format!("$${}$$", inner.replace('$', "")),
        6 => format!("$fn$ BEGIN; {}; END; $fn$", inner.replace('$', "")),
        7 => format!(
            "(1; {})",
            inner.replace(['(', ')', '\'', '"', '$', '-', '/', '*'], "")
        ),
        _ => format!("U&'{}'", inner.replace('\'', "''")),
    }
}

fn plain(rng: &mut Rng) -> String {
    pick(
        rng,
        &[
            "SELECT 1",
            "CREATE TABLE t (id int)",
            "x",
            "a$$b",
            "$1",
            "1-1",
            "ALTER TABLE \"T\" ADD c text",
            "e",
            "E",
        ],
    )
    .to_string()
}

/// A script and where its statements must end (byte offsets just after each `;`).
fn script(rng: &mut Rng) -> (String, Vec<usize>) {
    let mut text = String::new();
    let mut ends = Vec::new();
    for _ in 0..below(rng, 6) {
        text.push_str(pick(
            rng,
            &["", " ", "\n", "\n\n  ", "-- lead\n", "/* lead */ "],
        ));
        for _ in 0..1 + below(rng, 4) {
            if below(rng, 2) == 0 {
                text.push_str(&plain(rng));
            } else {
                text.push_str(&opaque(rng));
            }
            text.push(' ');
        }
        text.push(';');
        ends.push(text.len());
    }
    if below(rng, 3) == 0 {
        text.push_str(" -- trailing");
    }
    (text, ends)
}

#[test]
fn the_splitter_keeps_every_byte_and_splits_only_between_statements() {
    let (cases, seed) = (cases(), seed("PROPERTY_SEED"));
    let mut rng = Rng::with_seed(seed);
    let mut executions = 0u64;
    for case in 0..cases {
        // Generated scripts with known boundaries.
        let (text, ends) = script(&mut rng);
        let statements = split(&text, Flavor::Postgres);
        let joined: String = statements.iter().map(|s| s.text).collect();
        assert_eq!(joined, text, "seed {seed} case {case}: join differs");
        let mut at = 0;
        for s in &statements {
            assert_eq!(s.offset, at, "seed {seed} case {case}: offsets");
            at += s.text.len();
        }
        let found: Vec<usize> = statements
            .iter()
            .map(|s| s.offset + s.text.len())
            .filter(|&end| text.as_bytes().get(end - 1) == Some(&b';'))
            .collect();
        assert_eq!(
            found, ends,
            "seed {seed} case {case}: boundaries in {text:?}"
        );
        executions += 1;

        // Arbitrary bytes (valid UTF-8) in every flavor: join == input, no panic.
        let len = below(&mut rng, 64);
        let alphabet = [
            "'", "\"", "`", "$", "$$", "$a$", ";", "-", "--", "/*", "*/", "\\", "E", "e", "(", ")",
            "[", "]", "#", "\n", " ", "BEGIN", "END", "CASE", "CREATE", "FUNCTION", "TRIGGER", "x",
            "é", "1",
        ];
        let noise: String = (0..len).map(|_| pick(&mut rng, &alphabet)).collect();
        for flavor in [Flavor::Postgres, Flavor::MySql, Flavor::Sqlite] {
            let statements = split(&noise, flavor);
            let joined: String = statements.iter().map(|s| s.text).collect();
            assert_eq!(
                joined, noise,
                "seed {seed} case {case}: {flavor:?} join differs"
            );
            for s in &statements {
                let _ = (s.is_blank(), s.keywords(6), s.trimmed());
            }
            executions += 1;
        }
    }
    println!("properties: splitter seed {seed}");
    println!("reliability: test=property-splitter executions={executions} failures=0");
}

fn valid_zip() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default();
    let stored = deflated.compression_method(zip::CompressionMethod::Stored);
    for (path, body, options) in [
        (
            "prisma/migrations/migration_lock.toml",
            "provider = \"postgresql\"\n",
            stored,
        ),
        (
            "prisma/migrations/20240101000000_init/migration.sql",
            "CREATE TABLE t (id int);\n",
            deflated,
        ),
        (
            "prisma/migrations/20240102000000_two/migration.sql",
            "CREATE TABLE u (id int);\nCREATE INDEX u_id ON u(id);\n",
            stored,
        ),
        (
            "prisma/schema.prisma",
            "datasource db {\n  provider = \"postgresql\"\n}\n",
            deflated,
        ),
    ] {
        zip.start_file(path, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn the_zip_reader_survives_random_mutations() {
    let (cases, seed) = (cases(), seed("PROPERTY_SEED"));
    let mut rng = Rng::with_seed(seed ^ 0x9E37_79B9_7F4A_7C15);
    let original = valid_zip();
    let limits = Limits::default();
    assert!(read_zip("valid.zip", &original, &limits).is_ok());
    let (mut ok, mut err) = (0u64, 0u64);
    for case in 0..cases {
        let mut bytes = original.clone();
        for _ in 0..1 + below(&mut rng, 4) {
            match below(&mut rng, 5) {
                0 => {
                    let keep = below(&mut rng, bytes.len() + 1);
                    bytes.truncate(keep);
                }
                1 | 2 if !bytes.is_empty() => {
                    let i = below(&mut rng, bytes.len());
                    bytes[i] ^= 1 << below(&mut rng, 8);
                }
                3 if !bytes.is_empty() => {
                    let i = below(&mut rng, bytes.len());
                    bytes[i] = [0x00, 0xFF, 0x7F, 0x80, b'/', b'.'][below(&mut rng, 6)];
                }
                _ => {
                    let i = below(&mut rng, bytes.len() + 1);
                    bytes.insert(i, rng.u8(..));
                }
            }
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            read_zip("mutated.zip", &bytes, &limits).map(|_| ())
        }));
        match result {
            Ok(Ok(())) => ok += 1,
            Ok(Err(_)) => err += 1,
            Err(_) => {
                let path = std::env::temp_dir().join(format!("zip-panic-{seed}-{case}.zip"));
                std::fs::write(&path, &bytes).unwrap();
                panic!(
                    "seed {seed} case {case}: read_zip panicked; input saved to {}",
                    path.display()
                );
            }
        }
    }
    println!("properties: zip reader seed {seed}: {ok} read, {err} refused");
    println!(
        "reliability: test=property-zip executions={} failures=0",
        ok + err
    );
}
