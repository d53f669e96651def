//! Record cases: get/put/delete, ordered prefix scans, atomic batches with
//! preconditions, concurrency, reopening, name validation.

use std::sync::Barrier;

use super::{Harness, fails, ok, open, scratch};
use crate::{Batch, Error, ErrorKind, Precondition, RecordStore, Result, Subject};

fn put(store: &impl RecordStore, bucket: &str, key: &str, value: &[u8]) {
    let mut batch = Batch::new();
    batch.put(bucket, key, value.to_vec());
    ok(store.apply(&batch), "apply put");
}

fn get(store: &impl RecordStore, bucket: &str, key: &str) -> Option<Vec<u8>> {
    ok(store.get_record(bucket, key), "get_record")
}

fn scan(store: &impl RecordStore, bucket: &str, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    ok(
        store.scan_records(bucket, prefix, &mut |k, v| {
            out.push((k.to_owned(), v.to_vec()));
            Ok(())
        }),
        "scan_records",
    );
    out
}

fn names_record(e: &Error, bucket: &str, key: &str) -> bool {
    let subject = match e {
        Error::NotFound { subject }
        | Error::AlreadyExists { subject }
        | Error::Conflict { subject, .. } => subject,
        _ => return false,
    };
    matches!(subject, Subject::Record { bucket: b, key: k } if b == bucket && k == key)
}

/// A put is read back, a delete removes, deleting an absent key is fine.
pub fn record_put_get_delete<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    assert_eq!(
        get(&store, "layers", "a"),
        None,
        "absent key in an unknown bucket"
    );
    put(&store, "layers", "a", b"1");
    assert_eq!(get(&store, "layers", "a").as_deref(), Some(&b"1"[..]));
    put(&store, "layers", "a", b"2");
    assert_eq!(get(&store, "layers", "a").as_deref(), Some(&b"2"[..]));
    let mut batch = Batch::new();
    batch.delete("layers", "a").delete("layers", "never-there");
    ok(store.apply(&batch), "apply delete");
    assert_eq!(get(&store, "layers", "a"), None);
    ok(store.apply(&Batch::new()), "an empty batch");
}

/// Empty values, keys with `/`, `..`, spaces and non-ASCII are plain data.
pub fn record_empty_value_and_odd_keys<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let keys = [
        "docker.io/library/busybox:latest",
        "../../etc/passwd",
        "/abs",
        "..",
        ".",
        "with space",
        "ключ",
        "a\nb",
    ];
    for key in keys {
        put(&store, "names", key, key.as_bytes());
    }
    put(&store, "names", "empty", b"");
    for key in keys {
        assert_eq!(
            get(&store, "names", key).as_deref(),
            Some(key.as_bytes()),
            "key {key:?}"
        );
    }
    assert_eq!(
        get(&store, "names", "empty").as_deref(),
        Some(&b""[..]),
        "empty value"
    );
    let long = "k".repeat(4096);
    put(&store, "names", &long, b"long key");
    assert_eq!(
        get(&store, "names", &long).as_deref(),
        Some(&b"long key"[..])
    );
    let big = vec![3u8; 1024 * 1024];
    put(&store, "names", "big", &big);
    assert!(get(&store, "names", "big") == Some(big), "1 MiB value");
}

/// The same key in two buckets is two records.
pub fn record_buckets_are_separate<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    put(&store, "a", "k", b"in a");
    put(&store, "b", "k", b"in b");
    assert_eq!(get(&store, "a", "k").as_deref(), Some(&b"in a"[..]));
    assert_eq!(get(&store, "b", "k").as_deref(), Some(&b"in b"[..]));
    assert_eq!(scan(&store, "a", "").len(), 1);
    let mut batch = Batch::new();
    batch.delete("a", "k");
    ok(store.apply(&batch), "delete in a");
    assert_eq!(get(&store, "b", "k").as_deref(), Some(&b"in b"[..]));
    assert!(
        scan(&store, "c", "").is_empty(),
        "an unknown bucket scans empty"
    );
}

/// Scans yield keys with the prefix in ascending byte order.
pub fn record_scan_prefix_in_order<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let keys = ["b", "a/b", "a", "ab", "a0", "é", "a/a", "A", "z", "a/"];
    let mut batch = Batch::new();
    for key in keys {
        batch.put("s", key, key.as_bytes().to_vec());
    }
    ok(store.apply(&batch), "apply");
    put(&store, "s2", "a/x", b"other bucket");
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    let all: Vec<String> = scan(&store, "s", "").into_iter().map(|(k, _)| k).collect();
    assert_eq!(all, sorted, "every key, ascending");
    let under_a: Vec<(String, Vec<u8>)> = scan(&store, "s", "a/");
    assert_eq!(
        under_a,
        vec![
            ("a/".to_owned(), b"a/".to_vec()),
            ("a/a".to_owned(), b"a/a".to_vec()),
            ("a/b".to_owned(), b"a/b".to_vec()),
        ]
    );
    let a: Vec<String> = scan(&store, "s", "a").into_iter().map(|(k, _)| k).collect();
    assert_eq!(a, ["a", "a/", "a/a", "a/b", "a0", "ab"]);
    assert!(scan(&store, "s", "q").is_empty());
    assert_eq!(scan(&store, "s", "é").len(), 1);
}

/// The first error of the scan callback stops it and is returned.
pub fn record_scan_stops_on_first_error<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let mut batch = Batch::new();
    batch
        .put("s", "1", vec![])
        .put("s", "2", vec![])
        .put("s", "3", vec![]);
    ok(store.apply(&batch), "apply");
    let mut seen = Vec::new();
    let result: Result<()> = store.scan_records("s", "", &mut |k, _| {
        seen.push(k.to_owned());
        if k == "2" {
            Err(Error::invalid_argument("stop", "the callback stops here"))
        } else {
            Ok(())
        }
    });
    let e = fails(
        result,
        ErrorKind::InvalidArgument,
        "scan with a failing callback",
    );
    assert!(e.to_string().contains("stop"));
    assert_eq!(seen, ["1", "2"]);
}

/// Writes of a batch apply in order: the last put of a key wins, and a put
/// after a delete re-creates.
pub fn record_batch_later_put_wins<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let mut batch = Batch::new();
    batch
        .put("b", "k", b"1".to_vec())
        .put("b", "k", b"2".to_vec())
        .put("b", "gone", b"x".to_vec())
        .delete("b", "gone")
        .delete("b", "back")
        .put("b", "back", b"again".to_vec());
    ok(store.apply(&batch), "apply");
    assert_eq!(get(&store, "b", "k").as_deref(), Some(&b"2"[..]));
    assert_eq!(get(&store, "b", "gone"), None);
    assert_eq!(get(&store, "b", "back").as_deref(), Some(&b"again"[..]));
}

/// Absent / Present / Equals that do not hold are `AlreadyExists` /
/// `NotFound` / `Conflict` naming the record; ones that hold let the batch through.
pub fn record_preconditions_map_to_kinds<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    put(&store, "p", "here", b"v1");
    let cases: [(&str, Precondition, Option<ErrorKind>); 8] = [
        ("here", Precondition::Absent, Some(ErrorKind::AlreadyExists)),
        ("gone", Precondition::Absent, None),
        ("gone", Precondition::Present, Some(ErrorKind::NotFound)),
        ("here", Precondition::Present, None),
        (
            "here",
            Precondition::Equals(b"v2".to_vec()),
            Some(ErrorKind::Conflict),
        ),
        (
            "here",
            Precondition::Equals(b"v".to_vec()),
            Some(ErrorKind::Conflict),
        ),
        (
            "gone",
            Precondition::Equals(b"v1".to_vec()),
            Some(ErrorKind::NotFound),
        ),
        ("here", Precondition::Equals(b"v1".to_vec()), None),
    ];
    for (key, condition, expected) in cases {
        let mut batch = Batch::new();
        batch
            .require("p", key, condition.clone())
            .put("p", "written", b"yes".to_vec());
        let what = format!("{condition:?} on {key:?}");
        match expected {
            None => {
                ok(store.apply(&batch), &what);
                assert_eq!(
                    get(&store, "p", "written").as_deref(),
                    Some(&b"yes"[..]),
                    "{what}"
                );
                let mut undo = Batch::new();
                undo.delete("p", "written");
                ok(store.apply(&undo), "undo");
            }
            Some(kind) => {
                let e = fails(store.apply(&batch), kind, &what);
                assert!(
                    names_record(&e, "p", key),
                    "{what}: the error names the record: {e:?}"
                );
                assert_eq!(get(&store, "p", "written"), None, "{what}: nothing written");
            }
        }
    }
    assert_eq!(get(&store, "p", "here").as_deref(), Some(&b"v1"[..]));
}

/// Preconditions are checked against the state before the batch, not
/// against its own earlier writes.
pub fn record_preconditions_see_state_before_batch<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let mut batch = Batch::new();
    batch
        .put("p", "k", b"new".to_vec())
        .require_absent("p", "k");
    ok(
        store.apply(&batch),
        "require Absent after a put of the same key",
    );
    assert_eq!(get(&store, "p", "k").as_deref(), Some(&b"new"[..]));
    let mut batch = Batch::new();
    batch
        .delete("p", "k")
        .require("p", "k", Precondition::Equals(b"new".to_vec()));
    ok(
        store.apply(&batch),
        "require Equals after a delete of the same key",
    );
    assert_eq!(get(&store, "p", "k"), None);
}

/// A batch whose last precondition fails leaves every earlier write undone.
pub fn record_failed_batch_changes_nothing<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    put(&store, "x", "keep", b"old");
    put(&store, "x", "taken", b"t");
    let mut batch = Batch::new();
    batch
        .put("x", "keep", b"changed".to_vec())
        .put("x", "new", b"n".to_vec())
        .delete("x", "taken")
        .put("y", "other-bucket", b"o".to_vec())
        .require_absent("x", "taken");
    fails(
        store.apply(&batch),
        ErrorKind::AlreadyExists,
        "batch with a failing precondition",
    );
    assert_eq!(get(&store, "x", "keep").as_deref(), Some(&b"old"[..]));
    assert_eq!(get(&store, "x", "new"), None);
    assert_eq!(get(&store, "x", "taken").as_deref(), Some(&b"t"[..]));
    assert_eq!(get(&store, "y", "other-bucket"), None);
    let mut bad = Batch::new();
    bad.put("x", "keep", b"changed".to_vec())
        .put("Bad Bucket", "k", vec![]);
    fails(
        store.apply(&bad),
        ErrorKind::InvalidArgument,
        "batch with an invalid bucket",
    );
    assert_eq!(get(&store, "x", "keep").as_deref(), Some(&b"old"[..]));
}

/// Eight threads racing to create the same key: exactly one wins, the
/// others get `AlreadyExists`.
pub fn record_concurrent_create_only_one_wins<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    for round in 0..5 {
        let key = format!("name-{round}");
        let barrier = Barrier::new(8);
        let results: Vec<Result<()>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8u8)
                .map(|thread| {
                    let (store, barrier, key) = (&store, &barrier, &key);
                    scope.spawn(move || {
                        let mut batch = Batch::new();
                        batch
                            .require_absent("names", key)
                            .put("names", key, vec![thread]);
                        barrier.wait();
                        store.apply(&batch)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(result) => result,
                    Err(_) => panic!("testkit: a thread panicked"),
                })
                .collect()
        });
        let winners = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(winners, 1, "exactly one create wins: {results:?}");
        for r in &results {
            if let Err(e) = r {
                assert_eq!(e.kind(), ErrorKind::AlreadyExists, "losers: {e}");
            }
        }
    }
}

/// Read-modify-write with `Equals`, retried on `Conflict`, from 4 threads
/// loses no increment.
pub fn record_concurrent_compare_and_swap_counts_exactly<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    count_from_threads(&[&store, &store, &store, &store]);
}

/// The same from 2 threads on each of 2 instances over one directory: the
/// instances order their batches between themselves too.
pub fn record_two_instances_compare_and_swap_counts_exactly<H: Harness>(harness: &H) {
    let dir = scratch();
    let a = open(harness, dir.path());
    let b = open(harness, dir.path());
    count_from_threads(&[&a, &b, &a, &b]);
}

/// One thread per entry of `stores` increments `c/n` 25 times by
/// compare-and-swap; the total must be exact.
fn count_from_threads<S: RecordStore>(stores: &[&S]) {
    const EACH: u64 = 25;
    put(stores[0], "c", "n", b"0");
    std::thread::scope(|scope| {
        for &store in stores {
            scope.spawn(move || {
                for _ in 0..EACH {
                    loop {
                        let old = get(store, "c", "n").unwrap_or_default();
                        let n: u64 = String::from_utf8_lossy(&old).parse().unwrap_or(u64::MAX);
                        let mut batch = Batch::new();
                        batch.require("c", "n", Precondition::Equals(old)).put(
                            "c",
                            "n",
                            (n + 1).to_string().into_bytes(),
                        );
                        match store.apply(&batch) {
                            Ok(()) => break,
                            Err(e) if e.kind() == ErrorKind::Conflict => continue,
                            Err(e) => panic!("testkit: compare-and-swap failed: {e}"),
                        }
                    }
                }
            });
        }
    });
    let total = (stores.len() as u64 * EACH).to_string();
    for store in stores {
        assert_eq!(get(*store, "c", "n").as_deref(), Some(total.as_bytes()));
    }
}

/// Invalid bucket names and record keys are `InvalidArgument` everywhere.
pub fn record_invalid_bucket_or_key_refused<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let long_bucket = "b".repeat(65);
    for bucket in [
        "",
        ".",
        "..",
        "a/b",
        "Upper",
        "with space",
        "a\0b",
        &long_bucket,
    ] {
        let what = format!("bucket {bucket:?}");
        fails(
            store.get_record(bucket, "k"),
            ErrorKind::InvalidArgument,
            &what,
        );
        fails(
            store.scan_records(bucket, "", &mut |_, _| Ok(())),
            ErrorKind::InvalidArgument,
            &what,
        );
        let mut batch = Batch::new();
        batch.put(bucket, "k", vec![]);
        fails(store.apply(&batch), ErrorKind::InvalidArgument, &what);
        let mut batch = Batch::new();
        batch.require_absent(bucket, "k");
        fails(store.apply(&batch), ErrorKind::InvalidArgument, &what);
    }
    let long_key = "k".repeat(4097);
    for key in ["", "a\0b", &long_key] {
        let what = format!("key {key:?}");
        fails(
            store.get_record("b", key),
            ErrorKind::InvalidArgument,
            &what,
        );
        let mut batch = Batch::new();
        batch.put("b", key, vec![]);
        fails(store.apply(&batch), ErrorKind::InvalidArgument, &what);
        let mut batch = Batch::new();
        batch.delete("b", key);
        fails(store.apply(&batch), ErrorKind::InvalidArgument, &what);
    }
    assert!(scan(&store, "b", "").is_empty());
}

/// Records are there after the store is closed and opened again.
pub fn records_survive_reopen<H: Harness>(harness: &H) {
    let dir = scratch();
    {
        let store = open(harness, dir.path());
        put(&store, "layers", "sha256:1", b"one");
        put(&store, "layers", "sha256:2", b"two");
        put(&store, "names", "busybox:latest", b"sha256:1");
        let mut batch = Batch::new();
        batch.delete("layers", "sha256:2");
        ok(store.apply(&batch), "delete");
    }
    let store = open(harness, dir.path());
    assert_eq!(
        get(&store, "layers", "sha256:1").as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(get(&store, "layers", "sha256:2"), None);
    assert_eq!(
        get(&store, "names", "busybox:latest").as_deref(),
        Some(&b"sha256:1"[..])
    );
    put(&store, "names", "after", b"reopen");
    drop(store);
    let store = open(harness, dir.path());
    assert_eq!(
        get(&store, "names", "after").as_deref(),
        Some(&b"reopen"[..])
    );
    assert_eq!(scan(&store, "layers", "").len(), 1);
}

/// Thousands of overwrites (enough to make a log-structured backend compact)
/// leave exactly the last values, before and after reopening.
pub fn records_many_batches_survive_reopen<H: Harness>(harness: &H) {
    let dir = scratch();
    let expected: Vec<(String, Vec<u8>)> = {
        let store = open(harness, dir.path());
        for round in 0..41u32 {
            let mut batch = Batch::new();
            for key in 0..50u32 {
                let value = format!("{round}:{key}:{}", "v".repeat(200));
                batch.put("many", &format!("k{key:03}"), value.into_bytes());
            }
            if round % 3 == 0 {
                batch.delete("many", &format!("k{round:03}"));
            }
            ok(store.apply(&batch), "apply");
        }
        scan(&store, "many", "")
    };
    assert_eq!(
        expected.len(),
        50,
        "every key is present after its last round"
    );
    let store = open(harness, dir.path());
    assert_eq!(
        scan(&store, "many", ""),
        expected,
        "the same after reopening"
    );
}

/// `first_records` returns at most `limit` records, in key order, only
/// those whose keys start with the prefix; `limit` 0 returns none.
pub fn record_first_records_bounded_ordered_prefixed<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    for key in ["img b", "img a", "img c", "imh", "im", "image"] {
        put(&store, "probe", key, key.as_bytes());
    }
    put(&store, "other", "img 0", b"elsewhere");
    let first = |prefix: &str, limit: usize| -> Vec<String> {
        ok(store.first_records("probe", prefix, limit), "first_records")
            .into_iter()
            .map(|(key, value)| {
                assert_eq!(value, key.as_bytes(), "the value of {key}");
                key
            })
            .collect()
    };
    assert_eq!(first("img ", 1), ["img a"]);
    assert_eq!(first("img ", 2), ["img a", "img b"]);
    assert_eq!(first("img ", 10), ["img a", "img b", "img c"]);
    assert_eq!(first("img ", 0), Vec::<String>::new());
    assert_eq!(first("", 2), ["im", "image"]);
    assert_eq!(first("", usize::MAX).len(), 6);
    assert_eq!(first("imx", 5), Vec::<String>::new());
    assert_eq!(
        ok(store.first_records("empty", "", 3), "first_records").len(),
        0,
        "an unknown bucket has no records"
    );
    fails(
        store.first_records("bad bucket", "", 1),
        ErrorKind::InvalidArgument,
        "a bad bucket name",
    );
}

/// The change counter is stable while nothing changes (reads included) and
/// differs after a batch of this instance or of another instance over the
/// same directory.
pub fn record_change_counter_sees_every_batch<H: Harness>(harness: &H) {
    let dir = scratch();
    let a = open(harness, dir.path());
    let b = open(harness, dir.path());
    let counter = |store: &H::Backend| ok(store.change_counter(), "change_counter");
    let before = counter(&a);
    assert_eq!(counter(&a), before, "stable when nothing changed");
    put(&b, "names", "x", b"1");
    let after_other = counter(&a);
    assert_ne!(after_other, before, "another instance's batch changes it");
    let _ = get(&a, "names", "x");
    let _ = scan(&a, "names", "");
    assert_eq!(counter(&a), after_other, "reads do not change it");
    put(&a, "names", "y", b"2");
    let after_own = counter(&a);
    assert_ne!(after_own, after_other, "its own batch changes it");
    assert_ne!(after_own, before);
    let mut failing = Batch::new();
    failing
        .require_absent("names", "x")
        .put("names", "z", b"3".to_vec());
    fails(
        a.apply(&failing),
        ErrorKind::AlreadyExists,
        "a failed batch",
    );
    assert_eq!(counter(&a), after_own, "a failed batch changes nothing");
}

/// Two instances over one directory see each other's batches at once, with
/// no reopening, also across the compactions many batches cause, and their
/// preconditions see each other's writes.
pub fn record_two_instances_see_each_others_batches<H: Harness>(harness: &H) {
    let dir = scratch();
    let a = open(harness, dir.path());
    let b = open(harness, dir.path());
    put(&a, "names", "from-a", b"a");
    assert_eq!(get(&b, "names", "from-a").as_deref(), Some(&b"a"[..]));
    put(&b, "names", "from-b", b"b");
    assert_eq!(
        scan(&a, "names", "from-"),
        [
            ("from-a".to_owned(), b"a".to_vec()),
            ("from-b".to_owned(), b"b".to_vec())
        ]
    );
    assert_eq!(
        ok(a.first_records("names", "from-b", 1), "first_records"),
        [("from-b".to_owned(), b"b".to_vec())]
    );
    let mut create = Batch::new();
    create
        .require_absent("names", "from-b")
        .put("names", "from-b", b"lost".to_vec());
    fails(
        a.apply(&create),
        ErrorKind::AlreadyExists,
        "a sees b's record",
    );
    // Enough overwrites to make a log-structured backend compact, each
    // instance writing in turn and reading the other's latest value.
    let value = "v".repeat(2000);
    for round in 0..300u32 {
        let (writer, reader) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let expected = format!("{round}:{value}");
        let mut batch = Batch::new();
        batch.put(
            "many",
            &format!("k{}", round % 7),
            expected.clone().into_bytes(),
        );
        ok(writer.apply(&batch), "apply");
        assert_eq!(
            get(reader, "many", &format!("k{}", round % 7)).as_deref(),
            Some(expected.as_bytes()),
            "round {round}"
        );
    }
    assert_eq!(scan(&a, "many", ""), scan(&b, "many", ""));
    assert_eq!(scan(&a, "many", "").len(), 7);
    assert_eq!(get(&b, "names", "from-a").as_deref(), Some(&b"a"[..]));
}
