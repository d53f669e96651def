//! Crash safety of `FsBackend`: a writer process is killed with SIGKILL over
//! and over (`imgstore_backend::testkit::crash`); after each kill the store
//! must open, hold every acknowledged write and show no partial content.
//!
//! CI runs 100 kills within 60 s; `cargo xtask stress` sets
//! `IMGSTORE_CRASH_KILLS` / `IMGSTORE_CRASH_SECONDS` for longer campaigns,
//! and `IMGSTORE_CRASH_SEED` replays one.

mod common;

use std::time::Duration;

use imgstore_backend::testkit::crash;

/// The writer child: re-invoked by the campaign below; does nothing in a
/// normal test run.
#[test]
fn crash_writer_child() {
    crash::child_main(&common::Fs);
}

#[test]
fn crash_kills_lose_no_acknowledged_write() {
    let config = crash::CrashConfig::from_env(100, Duration::from_secs(60));
    let report = crash::run(
        &common::Fs,
        &|| crash::self_test_command("crash_writer_child"),
        &config,
    );
    eprintln!("{report}");
    assert!(
        report.kills >= config.kills.min(20),
        "too few kills in the time budget: {report}"
    );
    assert!(
        report.acknowledged > 0,
        "the writers acknowledged nothing: {report}"
    );
}
