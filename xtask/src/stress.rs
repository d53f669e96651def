//! `cargo xtask stress ...`: the long reliability campaigns (docs/RELIABILITY.md).
//!
//! - `stress [kills]`: the backend crash harness (fs, sqlite), `kills` per backend;
//! - `stress crash [kills]`: the whole-system crash campaign on the facade
//!   (load/tag/rmi/pin/gc, SIGKILL, journal check), `kills` per backend;
//! - `stress concurrency [minutes]`: 8 threads x 2 processes on one root;
//! - `stress faults`: the fault campaign with every read point too.
//!
//! Release builds, output shown (each campaign prints its figures).

use crate::cargo;

/// Dispatches `stress` and its subcommands.
pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("crash") => {
            let kills = args.get(1).map(String::as_str).unwrap_or("1000");
            campaign(
                &["--test", "crash_campaign"],
                &[
                    ("IMGSTORE_CRASH_KILLS", kills),
                    ("IMGSTORE_CRASH_SECONDS", "3600"),
                ],
            )
        }
        Some("concurrency") => {
            let minutes: u64 = match args.get(1) {
                Some(m) => m
                    .parse()
                    .map_err(|_| format!("stress concurrency: {m:?} is not a number of minutes"))?,
                None => 10,
            };
            let seconds = (minutes * 60).to_string();
            campaign(
                &["--test", "concurrency_campaign"],
                &[("IMGSTORE_CONCURRENCY_SECONDS", &seconds)],
            )
        }
        Some("faults") => campaign(
            &["--features", "testkit", "--test", "fault_campaign"],
            &[("IMGSTORE_FAULT_READ_STEP", "1")],
        ),
        _ => backends(args.first().map(String::as_str).unwrap_or("1000")),
    }
}

fn campaign(selection: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    let mut args = vec!["test", "--package", "imgstore", "--release"];
    args.extend_from_slice(selection);
    args.extend_from_slice(&["--", "--nocapture"]);
    cargo(&args, env)
}

/// The backend crash harness (the crash tests of every crate).
fn backends(kills: &str) -> Result<(), String> {
    cargo(
        &[
            "test",
            "--workspace",
            "--all-features",
            "--release",
            "crash",
            "--",
            "--nocapture",
        ],
        &[
            ("IMGSTORE_CRASH_KILLS", kills),
            ("IMGSTORE_CRASH_SECONDS", "900"),
        ],
    )
}
