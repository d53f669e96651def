//! Records in SQLite: atomic batches with preconditions, ordered prefix scans.

mod common;

use common::{Fixture, TestResult};
use imgstore_backend::{Batch, Error, ErrorKind, Precondition, RecordStore, Subject};

fn scan(fixture: &Fixture, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    fixture
        .store
        .scan_records(bucket, prefix, &mut |key, _| {
            keys.push(key.to_owned());
            Ok(())
        })
        .expect("scan");
    keys
}

fn put_all(fixture: &Fixture, bucket: &str, keys: &[&str]) {
    let mut batch = Batch::new();
    for key in keys {
        batch.put(bucket, key, key.as_bytes().to_vec());
    }
    fixture.store.apply(&batch).expect("put keys");
}

#[test]
fn scan_visits_keys_with_the_prefix_in_byte_order() {
    let fixture = Fixture::new();
    let keys = [
        "docker.io/library/busybox:latest",
        "docker.io/library/busybox:1.36",
        "docker.io/library/busyboxy:1",
        "docker.io/library/alpine:3",
        "docker.io/library/busybox",
        "ghcr.io/x:1",
        "é",
        "éa",
        "ê",
        "e\u{10FFFF}",
        "\u{10FFFF}",
        "\u{10FFFF}\u{10FFFF}",
    ];
    put_all(&fixture, "names", &keys);
    put_all(
        &fixture,
        "other",
        &["docker.io/library/busybox:other-bucket"],
    );

    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    assert_eq!(scan(&fixture, "names", ""), sorted);

    for prefix in [
        "docker.io/library/busybox",
        "docker.io/library/busybox:",
        "é",
        "e",
        "\u{10FFFF}",
        "zzz",
    ] {
        let expected: Vec<&str> = sorted
            .iter()
            .copied()
            .filter(|k| k.starts_with(prefix))
            .collect();
        assert_eq!(
            scan(&fixture, "names", prefix),
            expected,
            "prefix {prefix:?}"
        );
    }
}

#[test]
fn scan_crosses_page_boundaries_without_repeats_or_gaps() {
    let fixture = Fixture::new();
    let keys: Vec<String> = (0..1000).map(|i| format!("layer/{i:05}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    put_all(&fixture, "layers", &refs);
    put_all(&fixture, "layers", &["layer", "layes"]);
    assert_eq!(scan(&fixture, "layers", "layer/"), keys);
}

#[test]
fn scan_callbacks_may_write_the_bucket() -> TestResult {
    let fixture = Fixture::new();
    let keys: Vec<String> = (0..600).map(|i| format!("k{i:04}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    put_all(&fixture, "b", &refs);
    let store = fixture.store.clone();
    let mut visited = 0;
    fixture.store.scan_records("b", "k", &mut |key, _| {
        visited += 1;
        let mut batch = Batch::new();
        batch.delete("b", key);
        store.apply(&batch)
    })?;
    assert_eq!(visited, 600);
    assert!(scan(&fixture, "b", "").is_empty());
    Ok(())
}

#[test]
fn a_failed_precondition_writes_nothing_and_names_the_record() -> TestResult {
    let fixture = Fixture::new();
    put_all(&fixture, "names", &["a"]);

    let mut batch = Batch::new();
    batch.put("names", "b", b"1".to_vec());
    batch.require_absent("names", "a");
    match fixture.store.apply(&batch) {
        Err(Error::AlreadyExists {
            subject: Subject::Record { bucket, key },
        }) => assert_eq!((bucket.as_str(), key.as_str()), ("names", "a")),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }

    let mut batch = Batch::new();
    batch.put("names", "b", b"1".to_vec());
    batch.require("names", "missing", Precondition::Present);
    assert_eq!(
        fixture.store.apply(&batch).map_err(|e| e.kind()),
        Err(ErrorKind::NotFound)
    );

    let mut batch = Batch::new();
    batch.delete("names", "a");
    batch.require("names", "a", Precondition::Equals(b"other".to_vec()));
    let err = fixture.store.apply(&batch).expect_err("value differs");
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.is_retryable());

    assert_eq!(scan(&fixture, "names", ""), ["a"]);
    Ok(())
}

#[test]
fn preconditions_see_the_state_before_the_batch_and_later_puts_win() -> TestResult {
    let fixture = Fixture::new();
    let mut batch = Batch::new();
    batch.put("refs", "x", b"1".to_vec());
    batch.put("refs", "x", b"2".to_vec());
    batch.require_absent("refs", "x");
    fixture.store.apply(&batch)?;
    assert_eq!(fixture.store.get_record("refs", "x")?, Some(b"2".to_vec()));

    let mut batch = Batch::new();
    batch.require("refs", "x", Precondition::Equals(b"2".to_vec()));
    batch.delete("refs", "x");
    batch.put("refs", "y", Vec::new());
    fixture.store.apply(&batch)?;
    assert_eq!(fixture.store.get_record("refs", "x")?, None);
    assert_eq!(fixture.store.get_record("refs", "y")?, Some(Vec::new()));
    fixture.store.apply(&Batch::new())?;
    Ok(())
}

#[test]
fn invalid_names_are_refused_before_anything_is_written() {
    let fixture = Fixture::new();
    let mut batch = Batch::new();
    batch.put("names", "ok", b"1".to_vec());
    batch.put("Names", "bad bucket", b"1".to_vec());
    assert_eq!(
        fixture.store.apply(&batch).map_err(|e| e.kind()),
        Err(ErrorKind::InvalidArgument)
    );
    assert!(scan(&fixture, "names", "").is_empty());
    assert_eq!(
        fixture.store.get_record("names", "").map_err(|e| e.kind()),
        Err(ErrorKind::InvalidArgument)
    );
    assert_eq!(
        fixture
            .store
            .scan_records("../x", "", &mut |_, _| Ok(()))
            .map_err(|e| e.kind()),
        Err(ErrorKind::InvalidArgument)
    );
}

#[test]
fn records_survive_reopening() -> TestResult {
    let fixture = Fixture::new();
    put_all(&fixture, "names", &["a", "b"]);
    let fixture = fixture.reopen(Default::default());
    assert_eq!(scan(&fixture, "names", ""), ["a", "b"]);
    Ok(())
}
