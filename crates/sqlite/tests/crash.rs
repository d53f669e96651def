//! The kit's crash harness against SQLite: a writer child SIGKILLed at random
//! points, after each of which the store must open with every acknowledged
//! write. Two campaigns of about 100 kills, each bounded to 60 s (`cargo xtask
//! stress` runs more): default options (everything inline), and a small
//! inline limit so streamed blobs go through the blob-file path.

mod common;

use std::time::Duration;

use common::Sqlite;
use imgstore_backend::testkit::crash;

fn campaign(harness: &Sqlite, child_test: &str) {
    let config = crash::CrashConfig::from_env(100, Duration::from_secs(60));
    let report = crash::run(harness, &|| crash::self_test_command(child_test), &config);
    eprintln!("{report}");
    assert!(report.kills > 0, "no kill ran: {report}");
}

/// Re-invoked by the harness as the writer child; returns at once otherwise.
#[test]
fn crash_writer_child_inline() {
    crash::child_main(&Sqlite::DEFAULT);
}

/// Re-invoked by the harness as the writer child; returns at once otherwise.
#[test]
fn crash_writer_child_files() {
    crash::child_main(&Sqlite::MIXED);
}

#[test]
fn crash_kills_lose_no_acknowledged_write_inline() {
    campaign(&Sqlite::DEFAULT, "crash_writer_child_inline");
}

#[test]
fn crash_kills_lose_no_acknowledged_write_with_blob_files() {
    campaign(&Sqlite::MIXED, "crash_writer_child_files");
}
