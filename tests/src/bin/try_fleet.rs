//! `make try-fleet`: a fleet of 20 databases on this machine, as a person would try it. The
//! construct's synthesized state machine runs under aws-local-stepfunctions
//! (infra/scripts/run-fleet.ts), each child the real `migrator handle-event`, the halt flag
//! and the targets object in moto. Prints the rollup of a clean rollout, of one halted by a
//! poisoned target 7, and of the re-run once target 7 is resolved. The databases are dropped
//! at the end. Exit 0 when each rollout ended as it should.

use std::process::ExitCode;

use migrator_e2e::fleet::{Fleet, MIGRATIONS};
use serde_json::Value;

fn show(title: &str, run: &Value) {
    println!(
        "== {title}: execution {}",
        run["execution"].as_str().unwrap_or_default()
    );
    let rollup = &run["rollup"];
    println!("{}", rollup["headline"].as_str().unwrap_or_default());
    println!(
        "{}",
        serde_json::to_string_pretty(rollup).unwrap_or_default()
    );
}

fn main() -> ExitCode {
    let mut ok = true;
    let clean = Fleet::new("try_fleet_clean", 20, 2, 4);
    let run = clean.rollout(&clean.upload_event());
    show("20 databases, canary 2, waves 4 at a time", &run);
    ok &= run["rollup"]["status"] == "applied";
    drop(clean);

    let fleet = Fleet::new("try_fleet_halt", 20, 2, 1);
    fleet.baseline();
    fleet.dbs[6].sql("CREATE TABLE orders (id integer PRIMARY KEY);");
    let event = fleet.upload_event();
    let run = fleet.rollout(&event);
    show(
        "target 7 poisoned (a table named like the one its migration creates)",
        &run,
    );
    ok &= run["rollup"]["status"] == "halted";
    fleet.dbs[6].sql("DROP TABLE orders;");
    let dir = tempfile::tempdir().expect("temp dir");
    let zip = dir.path().join("prisma.zip");
    fleet.artifact_zip(&zip);
    let resolved = migrator_e2e::migrator(
        &["resolve", "--rolled-back", MIGRATIONS[1].0],
        &zip,
        &fleet.dbs[6].url,
    );
    println!(
        "== target 7 resolved: migrator resolve --rolled-back {} (exit {})",
        MIGRATIONS[1].0,
        resolved.code()
    );
    let run = fleet.rollout(&event);
    show("the same upload again", &run);
    ok &= run["rollup"]["status"] == "applied";
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
