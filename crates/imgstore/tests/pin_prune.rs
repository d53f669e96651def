//! pin, unpin and prune on the corpus's `oci/main`, on both backends.

use imgstore::backend::ErrorKind;
use imgstore::cri::PINNED_LABEL;
use imgstore::image::ImageStore;
use imgstore::{Error, Store};

mod common;

use common::{BACKENDS, corpus, expected_image, open};

const BASE: &str = "registry.demo.test/demo/base:v1";
const CHILD: &str = "registry.demo.test/demo/child:v1";

fn id_of(corpus: &std::path::Path, image: &str) -> String {
    expected_image(corpus, image)["image_id"]
        .as_str()
        .expect("image_id")
        .to_owned()
}

fn pinned(store: &Store, id: &str) -> bool {
    store
        .images()
        .expect("list images")
        .into_iter()
        .find(|s| s.id.as_str() == id)
        .is_some_and(|s| s.pinned)
}

#[test]
fn pin_labels_every_name_and_survives_reopen() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = id_of(&corpus, "base");
        {
            let store = open(dir.path(), backend);
            store
                .import_oci_layout(corpus.join("oci/main"))
                .expect("import");
            store.tag(BASE, "base-alias:1").expect("tag");
            let pinned_names = store.pin(&base[7..19]).expect("pin by short id");
            assert_eq!(
                pinned_names,
                vec!["docker.io/library/base-alias:1".to_owned(), BASE.to_owned()]
            );
            assert!(pinned(&store, &base), "{backend:?}");
            let record = store.refs().get(store.namespace(), BASE).expect("record");
            assert_eq!(
                record.labels.get(PINNED_LABEL).map(String::as_str),
                Some("pinned")
            );
            // Pinning again changes nothing.
            assert!(store.pin(BASE).expect("pin again").is_empty());
        }
        let store = open(dir.path(), backend);
        assert!(pinned(&store, &base), "{backend:?}: pin lost on reopen");
        // Unpinning one name leaves the image pinned through the other.
        assert_eq!(
            store.unpin("base-alias:1").expect("unpin"),
            vec!["docker.io/library/base-alias:1".to_owned()]
        );
        assert!(pinned(&store, &base));
        assert_eq!(
            store.unpin(&base).expect("unpin all"),
            vec![BASE.to_owned()]
        );
        assert!(!pinned(&store, &base));
    }
}

#[test]
fn pinned_image_is_refused_by_remove_without_force() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("import");
        let child = id_of(&corpus, "child");
        store.pin(CHILD).expect("pin");
        for term in [CHILD, &child[7..19]] {
            let err = store.remove(term, false).expect_err("pinned image removed");
            assert_eq!(err.kind(), ErrorKind::Conflict);
            assert_eq!(
                err.to_string(),
                format!(
                    "conflict: unable to delete {} (must be forced) - image is pinned",
                    &child[7..19]
                )
            );
        }
        assert_eq!(store.images().expect("list images").len(), 4);
        let report = store.remove(CHILD, true).expect("forced remove");
        assert_eq!(report.deleted.len(), 1);
        assert_eq!(report.deleted[0].as_str(), child);
    }
}

#[test]
fn pin_of_an_unnamed_image_is_a_precondition_failure() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), BACKENDS[0]);
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    let base = id_of(&corpus, "base");
    store.untag(BASE).expect("untag");
    let err = store.pin(&base).expect_err("pinned an unnamed image");
    assert!(matches!(err, Error::Unnamed { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    let err = store.pin("nothing-here:v1").expect_err("pinned nothing");
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn prune_deletes_dangling_images_only() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("import");
        let base = id_of(&corpus, "base");
        let child = id_of(&corpus, "child");
        // Nothing dangles yet.
        let report = store.prune(false).expect("prune");
        assert!(report.deleted.is_empty(), "{report:?}");
        store.untag(BASE).expect("untag base");
        store.untag(CHILD).expect("untag child");
        store
            .pin(&child)
            .expect_err("child has no name left to pin");
        let report = store.prune(false).expect("prune");
        let mut deleted: Vec<&str> = report.deleted.iter().map(|id| id.as_str()).collect();
        deleted.sort_unstable();
        let mut want = vec![base.as_str(), child.as_str()];
        want.sort_unstable();
        assert_eq!(deleted, want, "{backend:?}");
        assert!(report.untagged.is_empty());
        assert_eq!(store.images().expect("list images").len(), 2);
        // Layers shared with the images left stay: base's layers are shared
        // with sibling and withenv (expected/sharing.json), so only the
        // layers unique to base and child go.
        assert!(report.released_layers >= 1, "{report:?}");
        let recount: usize = store
            .layers()
            .map()
            .expect("layer records")
            .keys()
            .filter(|chain| store.layers().references(chain).expect("layer records") == Some(0))
            .count();
        assert_eq!(recount, 0, "layers left without references");
    }
}

#[test]
fn prune_all_keeps_pinned_images() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("import");
        let base = id_of(&corpus, "base");
        store.pin(BASE).expect("pin");
        let report = store.prune(true).expect("prune -a");
        assert_eq!(report.deleted.len(), 3, "{report:?}");
        assert_eq!(report.untagged.len(), 3);
        let left: Vec<String> = store
            .images()
            .expect("list images")
            .into_iter()
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(left, vec![base.clone()]);
        assert_eq!(store.image_store().len().expect("len"), 1);
        // What is left is exactly base's layer chain.
        assert_eq!(store.layers().len().expect("layer records"), 3);
        let gc = store.gc().expect("gc");
        assert_eq!(gc.layers_removed, 0);
        // The pruned images' three manifests and three config blobs go;
        // their layer blobs went with their layers; base's stay.
        assert_eq!(gc.blobs_removed, 6, "{gc:?}");
    }
}
