//! Metadata cases: moby's TestFSMetadataGetSet by kind, and key validation.

use imgstore_digest::Digest;

use super::{Harness, fails, ok, open, scratch, tree};
use crate::{Error, ErrorKind, StoreBackend, Subject};

/// Values are kept per digest and per key, exactly as set.
pub fn metadata_set_get_per_digest<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    let id2 = ok(store.set(b"bar"), "set bar");
    let cases: [(&Digest, &str, &[u8]); 3] = [
        (&id, "tkey", b"tval1"),
        (&id, "tkey2", b"tval2"),
        (&id2, "tkey", b"tval3"),
    ];
    for (digest, key, value) in cases {
        ok(store.set_metadata(digest, key, value), "set_metadata");
    }
    for (digest, key, value) in cases {
        assert_eq!(ok(store.get_metadata(digest, key), "get_metadata"), value);
    }
}

/// Setting a key again replaces its value (with a shorter one too).
pub fn metadata_overwrite_replaces_value<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    ok(
        store.set_metadata(&id, "parent", b"a long first value"),
        "first set",
    );
    ok(store.set_metadata(&id, "parent", b"short"), "second set");
    assert_eq!(ok(store.get_metadata(&id, "parent"), "get"), b"short");
    ok(store.set_metadata(&id, "empty", b""), "empty value");
    assert_eq!(ok(store.get_metadata(&id, "empty"), "get empty"), b"");
}

/// A key never set on existing content is `NotFound` naming the key
/// (moby: "failed to read metadata").
pub fn metadata_missing_key_is_not_found_naming_key<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    let id2 = ok(store.set(b"bar"), "set bar");
    ok(
        store.set_metadata(&id, "tkey2", b"v"),
        "set_metadata on foo",
    );
    let e = fails(
        store.get_metadata(&id2, "tkey2"),
        ErrorKind::NotFound,
        "get of a key set on other content",
    );
    match &e {
        Error::NotFound {
            subject: Subject::Metadata { digest, key },
        } => {
            assert_eq!(*digest, id2);
            assert_eq!(key, "tkey2");
        }
        other => panic!("testkit: NotFound should name the metadata key: {other:?}"),
    }
}

/// Metadata needs stored content: set and get on an absent digest are
/// `NotFound` naming the content (moby: "failed to get digest").
pub fn metadata_on_absent_content_is_not_found<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    ok(store.set(b"foo"), "set foo");
    let id3 = Digest::from_bytes(b"baz");
    let before = tree(dir.path());
    for e in [
        fails(
            store.set_metadata(&id3, "tkey", b"tval"),
            ErrorKind::NotFound,
            "set_metadata on absent content",
        ),
        fails(
            store.get_metadata(&id3, "tkey"),
            ErrorKind::NotFound,
            "get_metadata on absent content",
        ),
    ] {
        assert!(
            matches!(&e, Error::NotFound { subject: Subject::Content(d) } if *d == id3),
            "NotFound names the content: {e:?}"
        );
    }
    assert_eq!(
        tree(dir.path()),
        before,
        "nothing is created for absent content"
    );
    assert!(!ok(store.contains(&id3), "contains"));
}

/// Removing a key that is not set is not an error; removing one that is
/// makes it `NotFound`.
pub fn metadata_delete_missing_key_is_ok<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    ok(
        store.delete_metadata(&id, "never"),
        "delete of an unset key",
    );
    ok(store.set_metadata(&id, "parent", b"p"), "set_metadata");
    ok(store.set_metadata(&id, "other", b"o"), "set_metadata");
    ok(store.delete_metadata(&id, "parent"), "delete_metadata");
    fails(
        store.get_metadata(&id, "parent"),
        ErrorKind::NotFound,
        "deleted key",
    );
    assert_eq!(ok(store.get_metadata(&id, "other"), "other key"), b"o");
    assert_eq!(ok(store.get(&id), "content"), b"foo", "content stays");
}

/// Keys that could name another file are `InvalidArgument` before anything
/// is read or written, for stored and absent content alike.
pub fn metadata_bad_keys_refused_before_storage<H: Harness>(harness: &H) {
    let dir = scratch();
    let store = open(harness, dir.path());
    let id = ok(store.set(b"foo"), "set foo");
    let absent = Digest::from_bytes(b"absent");
    let before = tree(dir.path());
    let long = "k".repeat(129);
    for key in [
        "",
        ".",
        "..",
        "a/b",
        "/abs",
        "../escape",
        "a\0b",
        "a\\b",
        ".tmp-x",
        &long,
    ] {
        for digest in [&id, &absent] {
            let what = format!("metadata key {key:?}");
            fails(
                store.set_metadata(digest, key, b"v"),
                ErrorKind::InvalidArgument,
                &what,
            );
            fails(
                store.get_metadata(digest, key),
                ErrorKind::InvalidArgument,
                &what,
            );
            fails(
                store.delete_metadata(digest, key),
                ErrorKind::InvalidArgument,
                &what,
            );
        }
    }
    assert_eq!(tree(dir.path()), before, "refused keys create nothing");
    assert_eq!(ok(store.get(&id), "content"), b"foo");
}
