//! Content cases: moby's `fs_test.go` by error kind, plus concurrency,
//! deletion and reopening.

use std::sync::Barrier;

use imgstore_digest::{Algorithm, Digest};

use super::{Harness, Rng, digest, fails, ok, open, scratch, tree, walked};
use crate::{Error, ErrorKind, StoreBackend, Subject};

/// sha256 of `foobar`, from moby's TestFSGetSet.
pub const FOOBAR: &str = "sha256:c3ab8ff13720e8ad9047dd39466b3c8974e592c2fa383d4a3960714caef0c4f2";

/// `set("foobar")` returns moby's digest and `get` returns the bytes.
pub fn set_returns_sha256_digest<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foobar"), "set foobar");
    assert_eq!(id, digest(FOOBAR), "set returns the sha256 digest");
    assert_eq!(ok(store.get(&id), "get foobar"), b"foobar");
}

/// 8 KiB of random bytes come back exactly, under their sha256.
pub fn set_get_random_8k_round_trip<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let data = Rng::from_entropy().bytes(8 * 1024);
    let id = ok(store.set(&data), "set 8 KiB");
    assert_eq!(id, Digest::from_bytes(&data));
    assert!(
        ok(store.get(&id), "get 8 KiB") == data,
        "get returns the bytes set"
    );
}

/// Empty data is refused with `InvalidArgument` and nothing is stored.
pub fn set_empty_is_invalid_argument<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    fails(
        store.set(b""),
        ErrorKind::InvalidArgument,
        "set of empty data",
    );
    assert!(walked(&store).is_empty(), "a refused set stores nothing");
}

/// Setting the same bytes twice succeeds and keeps one entry.
pub fn set_twice_keeps_one_copy<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let first = ok(store.set(b"foo"), "first set");
    let second = ok(store.set(b"foo"), "second set");
    assert_eq!(first, second);
    assert_eq!(walked(&store), vec![first.clone()]);
    assert_eq!(ok(store.get(&first), "get"), b"foo");
}

/// Eight threads setting the same bytes at once all succeed; one blob results.
pub fn set_same_content_from_8_threads<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let data = Rng::from_entropy().bytes(64 * 1024);
    let expected = Digest::from_bytes(&data);
    for _round in 0..5 {
        let barrier = Barrier::new(8);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        store.set(&data)
                    })
                })
                .collect();
            for handle in handles {
                match handle.join() {
                    Ok(result) => assert_eq!(ok(result, "concurrent set"), expected),
                    Err(_) => panic!("testkit: a concurrent set panicked"),
                }
            }
        });
    }
    assert_eq!(walked(&store), vec![expected.clone()], "one blob");
    assert!(ok(store.get(&expected), "get") == data);
}

/// `get` of a digest never stored is `NotFound` naming it, for every algorithm.
pub fn get_absent_is_not_found<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    ok(store.set(b"foo"), "set foo");
    for absent in [
        digest(FOOBAR),
        Algorithm::Sha384.from_bytes(b"foo"),
        Algorithm::Sha512.from_bytes(b"foo"),
    ] {
        let e = fails(
            store.get(&absent),
            ErrorKind::NotFound,
            "get of absent content",
        );
        assert!(
            matches!(&e, Error::NotFound { subject: Subject::Content(d) } if *d == absent),
            "NotFound names the digest: {e:?}"
        );
        assert!(!ok(store.contains(&absent), "contains"));
        fails(
            store.size(&absent),
            ErrorKind::NotFound,
            "size of absent content",
        );
    }
}

/// Bytes changed on disk after `set` make `get` fail with `DataCorruption`
/// naming the digest and what the bytes hash to now (moby: "failed to verify").
pub fn get_corrupted_is_data_corruption<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foobar"), "set foobar");
    harness.corrupt(dir.path(), &store, &id, b"foobar2");
    let e = fails(
        store.get(&id),
        ErrorKind::DataCorruption,
        "get of corrupted content",
    );
    match &e {
        Error::DataCorruption { digest, actual } => {
            assert_eq!(*digest, id, "names the digest asked for");
            assert_eq!(
                *actual,
                Digest::from_bytes(b"foobar2"),
                "names what the bytes hash to"
            );
        }
        other => panic!("testkit: expected DataCorruption, got {other:?}"),
    }
    assert!(
        e.to_string().contains("failed to verify"),
        "moby's wording: {e}"
    );
}

/// `contains` and `size` answer without reading.
pub fn contains_and_size<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foobar"), "set");
    assert!(ok(store.contains(&id), "contains"));
    assert_eq!(ok(store.size(&id), "size"), 6);
    assert!(!ok(
        store.contains(&Digest::from_bytes(b"other")),
        "contains other"
    ));
}

/// moby's TestFSDelete: deleting one digest leaves the others.
pub fn delete_removes_only_that_content<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    let id2 = ok(store.set(b"bar"), "set bar");
    ok(store.delete(&id), "delete foo");
    fails(store.get(&id), ErrorKind::NotFound, "get after delete");
    assert_eq!(ok(store.get(&id2), "get bar"), b"bar");
    ok(store.delete(&id2), "delete bar");
    fails(
        store.get(&id2),
        ErrorKind::NotFound,
        "get after second delete",
    );
    assert!(walked(&store).is_empty());
}

/// Deleting a digest that is not stored is `NotFound` and leaves no trace.
pub fn delete_missing_is_not_found_and_creates_nothing<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    ok(store.set(b"foo"), "set foo");
    let before = tree(dir.path());
    let absent = Digest::from_bytes(b"never stored");
    let e = fails(
        store.delete(&absent),
        ErrorKind::NotFound,
        "delete of absent content",
    );
    assert!(
        matches!(&e, Error::NotFound { subject: Subject::Content(d) } if *d == absent),
        "NotFound names the digest: {e:?}"
    );
    fails(
        store.delete(&Algorithm::Sha512.from_bytes(b"foo")),
        ErrorKind::NotFound,
        "delete of a sha512 digest",
    );
    assert_eq!(tree(dir.path()), before, "a failed delete creates nothing");
    assert!(!ok(store.contains(&absent), "contains"));
}

/// Deleting content deletes its metadata: storing it again starts bare.
pub fn delete_removes_metadata<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    ok(
        store.set_metadata(&id, "parent", b"sha256:x"),
        "set_metadata",
    );
    ok(store.delete(&id), "delete");
    fails(
        store.get_metadata(&id, "parent"),
        ErrorKind::NotFound,
        "metadata of deleted content",
    );
    ok(store.set(b"foo"), "set foo again");
    let e = fails(
        store.get_metadata(&id, "parent"),
        ErrorKind::NotFound,
        "metadata after deleting and storing again",
    );
    assert!(
        matches!(
            &e,
            Error::NotFound {
                subject: Subject::Metadata { .. }
            }
        ),
        "the key is gone, the content is back: {e:?}"
    );
}

/// moby's TestFSWalker: each stored digest is visited exactly once.
pub fn walk_visits_each_digest_once<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    let id2 = ok(store.set(b"bar"), "set bar");
    let mut expected = vec![id, id2];
    expected.sort();
    assert_eq!(walked(&store), expected);
}

/// An empty store walks nothing.
pub fn walk_empty_store_visits_nothing<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    assert!(walked(&store).is_empty());
}

/// moby's TestFSInvalidWalker: entries that are not digests are skipped quietly.
pub fn walk_skips_invalid_entries<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    harness.plant_invalid_entry(dir.path(), &store);
    assert_eq!(walked(&store), vec![id]);
}

/// moby's TestFSWalkerStopOnError: the first error of the callback stops
/// the walk and comes back unchanged.
pub fn walk_stops_on_first_error<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    ok(store.set(b"foo"), "set foo");
    ok(store.set(b"bar"), "set bar");
    let mut calls = 0;
    let result = store.walk(&mut |_| {
        calls += 1;
        Err(Error::invalid_argument("what", "the callback stops here"))
    });
    let e = fails(
        result,
        ErrorKind::InvalidArgument,
        "walk with a failing callback",
    );
    assert!(e.to_string().contains("what"), "the callback's error: {e}");
    assert_eq!(calls, 1, "the walk stops at the first error");
}

/// Content and its metadata are there after the store is closed and opened.
pub fn content_and_metadata_survive_reopen<H: Harness>(harness: &H) {
    let dir = scratch();
    let (id, big) = {
        let store = open(harness, dir.path());
        let id = ok(store.set(b"foo"), "set foo");
        let big = ok(store.set(&vec![7u8; 300 * 1024]), "set 300 KiB");
        ok(store.set_metadata(&id, "parent", b"p"), "set_metadata");
        ok(
            store.set_metadata(&id, "lastUpdated", b"now"),
            "set_metadata",
        );
        (id, big)
    };
    let store = open(harness, dir.path());
    assert_eq!(ok(store.get(&id), "get after reopen"), b"foo");
    assert_eq!(ok(store.size(&big), "size after reopen"), 300 * 1024);
    assert_eq!(ok(store.get_metadata(&id, "parent"), "metadata"), b"p");
    assert_eq!(
        ok(store.get_metadata(&id, "lastUpdated"), "metadata"),
        b"now"
    );
    let mut expected = vec![id, big];
    expected.sort();
    assert_eq!(walked(&store), expected);
}
