//! tag, untag, remove and gc on the corpus's `oci/main`, on both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use imgstore::backend::{ErrorKind, StoreBackend};
use imgstore::digest::Digest;
use imgstore::image::{ImageId, ImageStore};
use imgstore::layer::NewLayer;
use imgstore::{Backend, Store};
use serde_json::Value;

mod common;

use common::{BACKENDS, corpus, open};
const MAIN_IMAGES: [&str; 4] = ["base", "sibling", "child", "withenv"];

/// What the corpus says of one image of `oci/main`.
struct Expected {
    id: ImageId,
    short: String,
    name: String,
    manifest: Digest,
    layers: Vec<Digest>,
}

fn expected(corpus: &Path, image: &str) -> Expected {
    let path = corpus.join("expected/images").join(format!("{image}.json"));
    let bytes = std::fs::read(&path).expect("read expected");
    let v: Value = serde_json::from_slice(&bytes).expect("parse expected");
    let s = |key: &str| v[key].as_str().expect(key).to_owned();
    Expected {
        id: s("image_id").parse().expect("image id"),
        short: s("image_id_short"),
        name: v["ref_names"][0].as_str().expect("ref name").to_owned(),
        manifest: s("manifest_digest").parse().expect("manifest digest"),
        layers: v["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .map(|l| {
                l["digest"]
                    .as_str()
                    .expect("digest")
                    .parse()
                    .expect("digest")
            })
            .collect(),
    }
}

fn import_main(store: &Store, corpus: &Path) {
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import oci/main");
}

fn blobs(store: &Store) -> BTreeSet<Digest> {
    let mut all = BTreeSet::new();
    store
        .content()
        .walk(&mut |d| {
            all.insert(d.clone());
            Ok(())
        })
        .expect("walk");
    all
}

/// Everything remove and gc may change.
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    images: Vec<(String, Vec<String>, u64)>,
    names: BTreeMap<String, String>,
    layers: BTreeMap<String, Option<usize>>,
    blobs: BTreeSet<Digest>,
}

fn snapshot(store: &Store) -> Snapshot {
    Snapshot {
        images: store
            .images()
            .expect("list images")
            .into_iter()
            .map(|s| (s.id.to_string(), s.references, s.size))
            .collect(),
        names: store
            .refs()
            .list(store.namespace(), &[])
            .expect("names")
            .iter()
            .map(|r| (r.name.clone(), r.target.digest.to_string()))
            .collect(),
        layers: store
            .layers()
            .map()
            .expect("layer records")
            .keys()
            .map(|c| {
                (
                    c.to_string(),
                    store.layers().references(c).expect("layer records"),
                )
            })
            .collect(),
        blobs: blobs(store),
    }
}

/// Every remaining image's config, manifest (when named) and layer blobs
/// read back, verified.
fn assert_images_readable(store: &Store, corpus: &Path) {
    for name in MAIN_IMAGES {
        let e = expected(corpus, name);
        if store.image_store().get(&e.id).is_err() {
            continue;
        }
        store.content().get(e.id.digest()).expect("config readable");
        if store.resolve(&e.name).is_ok() {
            store.content().get(&e.manifest).expect("manifest readable");
        }
        for layer in &e.layers {
            store.content().get(layer).expect("layer readable");
        }
    }
}

#[test]
fn remove_by_name_keeps_shared_layers_and_survives_reopen() {
    let corpus = corpus();
    let sibling = expected(&corpus, "sibling");
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_main(&store, &corpus);
        assert_eq!(store.layers().len().expect("layer records"), 6);

        let report = store.remove(&sibling.name, false).expect("remove sibling");
        assert_eq!(
            report.untagged,
            std::slice::from_ref(&sibling.name),
            "{backend:?}"
        );
        assert_eq!(
            report.deleted,
            std::slice::from_ref(&sibling.id),
            "{backend:?}"
        );
        // Only sibling's own top layer goes; the two below are shared.
        assert_eq!(report.released_layers, 1, "{backend:?}");
        assert_eq!(
            store.layers().len().expect("layer records"),
            5,
            "{backend:?}"
        );
        assert!(store.image_store().get(&sibling.id).is_err());
        assert!(store.resolve(&sibling.name).is_err());
        assert_eq!(store.images().expect("list images").len(), 3);
        // Its own layer blob went with its layer; the shared ones stay.
        let content = blobs(&store);
        assert!(!content.contains(&sibling.layers[2]), "{backend:?}");
        assert!(content.contains(&sibling.layers[0]));
        assert!(content.contains(&sibling.layers[1]));
        assert_images_readable(&store, &corpus);

        let before = snapshot(&store);
        drop(store);
        let store = open(dir.path(), backend);
        assert_eq!(snapshot(&store), before, "{backend:?}: reopen");

        // Unknown names and IDs: NotFound.
        let err = store.remove(&sibling.name, false).expect_err("gone");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = store.remove("ffffffffffff", true).expect_err("no such id");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
}

#[test]
fn removing_every_image_frees_layers_in_cascade_and_gc_empties_the_store() {
    let corpus = corpus();
    let [base, sibling, child, withenv] = MAIN_IMAGES.map(|n| expected(&corpus, n));
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_main(&store, &corpus);

        let r = store.remove(&child.name, false).expect("remove child");
        assert_eq!((r.deleted.len(), r.released_layers), (1, 1), "{backend:?}");
        assert_eq!(store.layers().len().expect("layer records"), 5);
        // base's top layer is still under withenv's: nothing below is freed.
        let r = store.remove(&base.name, false).expect("remove base");
        assert_eq!((r.deleted, r.released_layers), (vec![base.id.clone()], 0));
        assert_eq!(store.layers().len().expect("layer records"), 5);
        // withenv frees its own layer and base's top, now unused.
        let r = store.remove(&withenv.name, false).expect("remove withenv");
        assert_eq!(r.released_layers, 2, "{backend:?}");
        assert_eq!(store.layers().len().expect("layer records"), 3);
        // sibling by short ID frees the rest in cascade.
        let r = store.remove(&sibling.short, false).expect("remove sibling");
        assert_eq!(r.untagged, std::slice::from_ref(&sibling.name));
        assert_eq!(
            (r.deleted, r.released_layers),
            (vec![sibling.id.clone()], 3)
        );
        assert!(store.layers().is_empty().expect("layer records"));
        assert!(store.images().expect("list images").is_empty());
        assert!(store.names().expect("names").is_empty());
        assert!(store.cache().expect("cache").is_empty());

        // Manifests and configs are left to gc.
        let left = blobs(&store);
        assert_eq!(left.len(), 8, "{backend:?}: {left:?}");
        let gc = store.gc().expect("gc");
        assert_eq!(gc.blobs_removed, 8, "{backend:?}");
        assert_eq!(gc.layers_removed, 0);
        assert!(gc.bytes_freed > 0);
        assert!(blobs(&store).is_empty(), "{backend:?}");

        drop(store);
        let store = open(dir.path(), backend);
        assert!(
            store.images().expect("list images").is_empty()
                && store.layers().is_empty().expect("layer records")
        );
        // And everything comes back.
        import_main(&store, &corpus);
        assert_eq!(store.images().expect("list images").len(), 4);
        assert_images_readable(&store, &corpus);
    }
}

#[test]
fn remove_by_short_id_with_two_names_needs_force() {
    let corpus = corpus();
    let base = expected(&corpus, "base");
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_main(&store, &corpus);
        store.tag(&base.name, "other.test/copy:v2").expect("tag");
        let before = snapshot(&store);

        let err = store.remove(&base.short, false).expect_err("conflict");
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert_eq!(
            err.to_string(),
            format!(
                "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                base.short
            )
        );
        assert_eq!(
            snapshot(&store),
            before,
            "{backend:?}: refused changes nothing"
        );

        let r = store.remove(&base.short, true).expect("forced");
        assert_eq!(
            r.untagged,
            ["other.test/copy:v2".to_owned(), base.name.clone()],
            "{backend:?}"
        );
        assert_eq!(r.deleted, std::slice::from_ref(&base.id));
        // Its top layer is still under child's and withenv's.
        assert_eq!(r.released_layers, 0);
        assert_eq!(store.layers().len().expect("layer records"), 6);
        assert!(store.resolve("other.test/copy:v2").is_err());
        assert_eq!(store.images().expect("list images").len(), 3);
        assert_images_readable(&store, &corpus);

        let before = snapshot(&store);
        drop(store);
        assert_eq!(snapshot(&open(dir.path(), backend)), before, "{backend:?}");
    }
}

#[test]
fn an_image_with_children_cannot_be_removed_by_id_even_forced() {
    let corpus = corpus();
    let [base, child] = ["base", "child"].map(|n| expected(&corpus, n));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), Backend::Sqlite);
    import_main(&store, &corpus);
    store
        .set_parent(child.id.as_str(), base.id.as_str())
        .expect("set parent");
    for force in [false, true] {
        let err = store.remove(&base.short, force).expect_err("children");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert_eq!(
            err.to_string(),
            format!(
                "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                base.short
            )
        );
    }
    // By name, the name goes and the image stays, being a parent.
    let r = store.remove(&base.name, false).expect("untag base");
    assert_eq!(r.untagged, std::slice::from_ref(&base.name));
    assert!(r.deleted.is_empty());
    assert!(store.image_store().get(&base.id).is_ok());
}

#[test]
fn tag_and_untag_round_trip() {
    let corpus = corpus();
    let [base, sibling] = ["base", "sibling"].map(|n| expected(&corpus, n));
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_main(&store, &corpus);
        let before = snapshot(&store);

        assert_eq!(store.tag(&base.name, "app").expect("tag"), base.id);
        assert_eq!(store.resolve("app").expect("resolve"), base.id);
        let record = store
            .refs()
            .get(store.namespace(), "docker.io/library/app:latest")
            .expect("record");
        assert_eq!(record.target.digest, base.manifest);
        let summary = store
            .images()
            .expect("list images")
            .into_iter()
            .find(|s| s.id == base.id)
            .expect("listed");
        assert_eq!(summary.references.len(), 2, "{:?}", summary.references);

        // By short ID, and moving a name to another image.
        assert_eq!(store.tag(&sibling.short, "app").expect("move"), sibling.id);
        assert_eq!(store.resolve("app").expect("resolve"), sibling.id);
        assert_eq!(
            store.tag(&base.id.to_string(), "app:2").expect("by id"),
            base.id
        );

        let untagged = store.untag("app").expect("untag");
        assert_eq!(untagged.name, "docker.io/library/app:latest");
        assert_eq!(untagged.image, Some(sibling.id.clone()));
        store.untag("docker.io/library/app:2").expect("untag full");
        assert!(store.resolve("app").is_err());
        assert_eq!(snapshot(&store), before, "{backend:?}: round trip");
        let err = store.untag("app").expect_err("gone");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

        // Invalid targets are refused, naming them.
        for bad in [
            "Upper/Case",
            "app@sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb",
            "",
            "a b",
        ] {
            let err = store.tag(&base.name, bad).expect_err(bad);
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}: {err}");
        }
        let err = store.tag("nothing:here", "app").expect_err("no source");
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(snapshot(&store), before);

        // An image without a name stays (untag) but has no manifest to tag.
        let untagged = store.untag(&base.name).expect("untag base");
        assert_eq!(untagged.image, Some(base.id.clone()));
        assert!(store.image_store().get(&base.id).is_ok());
        let err = store.tag(&base.short, "again").expect_err("no manifest");
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
        assert!(err.to_string().contains("no manifest"), "{err}");
    }
}

#[test]
fn gc_after_a_failed_import_removes_its_leftovers_and_nothing_else() {
    let corpus = corpus();
    for backend in BACKENDS {
        // Alone: everything the failed import left goes.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        let err = store
            .import_oci_layout(corpus.join("bad/layer-digest-mismatch"))
            .expect_err("corrupt layer");
        assert_eq!(err.kind(), ErrorKind::DataCorruption);
        let left = blobs(&store);
        assert!(
            !left.is_empty(),
            "{backend:?}: the failed import left no blob"
        );
        let gc = store.gc().expect("gc");
        assert_eq!(gc.blobs_removed, left.len(), "{backend:?}");
        assert!(gc.bytes_freed > 0);
        assert!(blobs(&store).is_empty());
        let again = store.gc().expect("second gc");
        assert_eq!((again.blobs_removed, again.layers_removed), (0, 0));

        // Beside oci/main: gc removes nothing an image needs.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_main(&store, &corpus);
        let before = snapshot(&store);
        let gc = store.gc().expect("gc of a clean store");
        assert_eq!((gc.blobs_removed, gc.layers_removed), (0, 0), "{backend:?}");
        assert_eq!(snapshot(&store), before);
        store
            .import_oci_layout(corpus.join("bad/layer-digest-mismatch"))
            .expect_err("corrupt layer");
        store.gc().expect("gc");
        assert_eq!(snapshot(&store), before, "{backend:?}");
        assert_eq!(
            store.gc().expect("second gc"),
            imgstore::GcReport::default()
        );
        assert_images_readable(&store, &corpus);
        let again = store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("reimport");
        assert!(again.iter().all(|i| !i.created));
        assert_eq!(snapshot(&store), before, "{backend:?}: reimport is a no-op");
    }
}

#[test]
fn gc_removes_unreferenced_layers_and_keeps_unnamed_images() {
    let corpus = corpus();
    let base = expected(&corpus, "base");
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path(), backend);
            import_main(&store, &corpus);
            // A layer registered by an import that never finished: its
            // transient reference dies with the process.
            let diff: Digest =
                "sha256:1111111111111111111111111111111111111111111111111111111111111111"
                    .parse()
                    .expect("digest");
            store
                .layers()
                .register(NewLayer::new(diff, 1), None)
                .expect("register");
            store.untag(&base.name).expect("untag base");
        }
        let store = open(dir.path(), backend);
        assert_eq!(store.layers().len().expect("layer records"), 7);
        let before = blobs(&store);
        let gc = store.gc().expect("gc");
        assert_eq!(gc.layers_removed, 1, "{backend:?}");
        assert_eq!(gc.blobs_removed, 0, "{backend:?}");
        assert_eq!(store.layers().len().expect("layer records"), 6);
        // base has no name, but its manifest and config stay with it.
        assert_eq!(blobs(&store), before);
        assert_eq!(store.images().expect("list images").len(), 4);
        assert_eq!(store.gc().expect("again"), imgstore::GcReport::default());

        // An image without names goes by ID without force; gc then takes
        // its manifest and config.
        let r = store.remove(&base.short, false).expect("remove unnamed");
        assert!(r.untagged.is_empty());
        assert_eq!((r.deleted.len(), r.released_layers), (1, 0), "{backend:?}");
        let gc = store.gc().expect("gc");
        assert_eq!((gc.layers_removed, gc.blobs_removed), (0, 2), "{backend:?}");
        assert!(!store.content().contains(&base.manifest).expect("contains"));
        assert!(
            !store
                .content()
                .contains(base.id.digest())
                .expect("contains")
        );
        assert_eq!(store.images().expect("list images").len(), 3);
        assert_images_readable(&store, &corpus);
    }
}

#[test]
fn gc_keeps_what_an_image_skipped_on_open_may_use() {
    let corpus = corpus();
    let sibling = expected(&corpus, "sibling");
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path(), Backend::Fs);
        import_main(&store, &corpus);
    }
    // sibling's config in the image store's backend no longer hashes right.
    let config = dir
        .path()
        .join("imagedb/content/sha256")
        .join(sibling.id.digest().encoded());
    assert!(config.is_file(), "{}", config.display());
    std::fs::write(&config, b"{}").expect("corrupt config");
    let store = open(dir.path(), Backend::Fs);
    assert_eq!(store.image_store().check().expect("check").len(), 1);
    // Its summary stands: it is listed, and reading its config fails.
    assert_eq!(store.images().expect("list images").len(), 4);
    let err = store
        .inspect(&sibling.id.to_string())
        .expect_err("a corrupt config");
    assert_eq!(
        err.kind(),
        imgstore::backend::ErrorKind::DataCorruption,
        "{err}"
    );
    let before = snapshot(&store);
    let gc = store.gc().expect("gc");
    assert_eq!((gc.layers_removed, gc.blobs_removed), (0, 0), "{gc:?}");
    assert_eq!(gc.notes.len(), 1, "{gc:?}");
    assert_eq!(snapshot(&store), before);
    assert!(
        store
            .content()
            .contains(&sibling.layers[2])
            .expect("contains")
    );
}

#[test]
fn a_long_lived_cache_sees_every_change_another_store_of_the_root_makes() {
    use std::os::unix::fs::FileExt;
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let reader = open(dir.path(), backend);
        let writer = open(dir.path(), backend);
        let imported = writer
            .import_archive(corpus.join("docker/docker-save-multi.docker.tar"))
            .expect("import");
        let id = imported[0].id.clone();
        let name = imported[0].names[0].clone();
        assert_eq!(
            reader.cache().expect("cache").resolve(&name).ok(),
            Some(id.clone())
        );
        // Nothing changed: the same cache, vouched for by the change count.
        assert_eq!(reader.cache().expect("cache").len(), imported.len());

        writer.tag(&name, "fixture.test/new:v1").expect("tag");
        let new = "docker.io/fixture.test/new:v1";
        let resolved = reader
            .cache()
            .expect("cache")
            .resolve("fixture.test/new:v1");
        assert_eq!(resolved.ok(), Some(id.clone()), "{backend:?}");
        writer.untag("fixture.test/new:v1").expect("untag");
        assert!(
            reader.cache().expect("cache").resolve(new).is_err(),
            "{backend:?}"
        );

        // A change killed midway left the count odd; a write that bypasses
        // `Store` (straight to the name index's record) is still seen: the
        // backends are asked while the count is odd.
        let count = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join("store.changes"))
            .expect("open the count");
        count.write_all_at(&7u64.to_le_bytes(), 0).expect("write");
        let mut batch = imgstore::backend::Batch::new();
        batch.delete("name-images", &format!("default/{name}"));
        imgstore::backend::RecordStore::apply(&**writer.content(), &batch).expect("delete");
        assert!(
            reader.cache().expect("cache").resolve(&name).is_err(),
            "{backend:?}"
        );
    }
}
