//! Two `Store`s on one SQLite root, as two processes would have: each keeps
//! its own memory, and `store.lock` makes every change start from the
//! other's latest state. (Two opens hold two open file descriptions, so
//! their `flock`s exclude each other exactly as between processes.)

use imgstore::Store;

mod common;

use common::corpus;

const BASE: &str = "registry.demo.test/demo/base:v1";

#[test]
fn gc_in_a_stale_store_keeps_what_the_other_imported() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Store::open(dir.path()).expect("open first");
    let second = Store::open(dir.path()).expect("open second");
    first
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    // The second store sees the images at once: it reads the records.
    assert_eq!(second.images().expect("list images").len(), 4);
    let gc = second.gc().expect("gc");
    assert_eq!(gc.blobs_removed, 0, "{gc:?}");
    assert_eq!(gc.layers_removed, 0);
    assert_eq!(
        second.images().expect("list images").len(),
        4,
        "gc reloaded before running"
    );
    let report = first.fsck(false).expect("fsck");
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn changes_see_names_and_layers_the_other_store_added() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Store::open(dir.path()).expect("open first");
    let second = Store::open(dir.path()).expect("open second");
    first
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    // The second store tags an image only the first one has seen.
    second
        .tag(BASE, "alias:1")
        .expect("tag from the stale store");
    // Removing base's first name from the first store must see the alias
    // the second added: the image stays.
    let report = first.remove(BASE, false).expect("remove");
    assert_eq!(report.untagged, vec![BASE.to_owned()]);
    assert!(report.deleted.is_empty(), "{report:?}");
    let names: Vec<Vec<String>> = first
        .images()
        .expect("list images")
        .into_iter()
        .map(|s| s.references)
        .collect();
    assert!(names.contains(&vec!["docker.io/library/alias:1".to_owned()]));
    // The second store removes the image by its last name: its layers'
    // counts include the first store's other images, so only base's
    // unshared layers could go, and base shares all three.
    let report = second.remove("alias:1", false).expect("remove alias");
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(
        report.released_layers, 0,
        "base's layers are used by child and withenv"
    );
    for store in [&first, &second] {
        let report = store.fsck(false).expect("fsck");
        assert!(report.is_clean(), "{:?}", report.problems);
        assert_eq!(store.images().expect("list images").len(), 3);
    }
}

/// Nothing is kept in memory that another store's change could make stale:
/// what one store commits, the other reads at once, with no refresh.
#[test]
fn a_change_by_one_store_is_seen_by_another_at_once() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let first = Store::open(dir.path()).expect("open first");
    let second = Store::open(dir.path()).expect("open second");
    assert!(second.images().expect("list images").is_empty());
    first
        .import_oci_layout(corpus.join("oci/quirk-unterminated"))
        .expect("import");
    assert_eq!(second.images().expect("list images").len(), 1);
    assert_eq!(
        second
            .resolve("registry.demo.test/demo/quirk:v1")
            .expect("resolve")
            .as_str(),
        "sha256:00d2746c8cfa8a740eb4bba4621751346827a3f314e47eff94b541d9e2fbb0e5"
    );
    second
        .tag("registry.demo.test/demo/quirk:v1", "again:v2")
        .expect("tag");
    assert_eq!(
        first.resolve("again:v2").expect("resolve").as_str(),
        "sha256:00d2746c8cfa8a740eb4bba4621751346827a3f314e47eff94b541d9e2fbb0e5"
    );
    assert!(second.fsck(false).expect("fsck").is_clean());
}
