//! fsck on real imports, on both backends: clean stores, corrupt blobs and
//! configs, leftover layers and dangling names, reported and repaired.

use std::path::{Path, PathBuf};

use imgstore::backend::StoreBackend;
use imgstore::digest::Digest;
use imgstore::layer::NewLayer;
use imgstore::refs::{Descriptor, ImageRecord};
use imgstore::{Backend, FsckProblem};

mod common;

use common::{BACKENDS, corpus, expected_image, import_corpus, open};

fn count(backend: &dyn StoreBackend) -> usize {
    let mut n = 0;
    backend
        .walk(&mut |_| {
            n += 1;
            Ok(())
        })
        .expect("walk");
    n
}

/// Every file under `dir` (recursively) named `name`.
fn files_named(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_named(&path, name, found);
        } else if entry.file_name().to_str() == Some(name) {
            found.push(path);
        }
    }
}

/// Flips the last byte of the stored content `digest` in the database or
/// directory `part` (`content` or `images`) of the store at `root`.
fn corrupt(root: &Path, backend: Backend, part: &str, digest: &Digest) {
    match backend {
        Backend::Sqlite => {
            let db = rusqlite::Connection::open(root.join(format!("{part}.db"))).expect("open db");
            let data: Option<Vec<u8>> = db
                .query_row(
                    "SELECT data FROM content WHERE digest = ?1",
                    [digest.as_str()],
                    |row| row.get(0),
                )
                .expect("row");
            if let Some(mut data) = data {
                let last = data.len() - 1;
                data[last] ^= 0xff;
                db.execute(
                    "UPDATE content SET data = ?1 WHERE digest = ?2",
                    rusqlite::params![data, digest.as_str()],
                )
                .expect("update");
                return;
            }
            let mut files = Vec::new();
            files_named(root, digest.encoded(), &mut files);
            flip_last_byte(files.first().expect("blob file"));
        }
        Backend::Fs => {
            let dir = root.join(if part == "images" { "imagedb" } else { part });
            let mut files = Vec::new();
            files_named(&dir, digest.encoded(), &mut files);
            let blob = files
                .iter()
                .find(|p| !p.components().any(|c| c.as_os_str() == "metadata"))
                .expect("blob file");
            flip_last_byte(blob);
        }
        Backend::Postgres => panic!("these tests damage local stores only"),
    }
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(path, bytes).expect("write blob");
}

#[test]
fn fresh_imports_are_clean_and_every_blob_is_checked() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_corpus(&store, &corpus);
        let report = store.fsck(false).expect("fsck");
        assert!(report.is_clean(), "{backend:?}: {:?}", report.problems);
        let blobs = count(&**store.content()) + count(&**store.image_store().backend());
        assert_eq!(report.blobs_checked, blobs);
        assert_eq!(
            report.layers_checked,
            store.layers().len().expect("layer records")
        );
        assert_eq!(report.names_checked, store.names().expect("names").len());
        assert!(report.repairs.is_empty() && report.gc.is_none());
    }
}

#[test]
fn corrupt_layer_blob_is_found_deleted_on_repair_and_restored_by_reimport() {
    let corpus = corpus();
    let quirk = expected_image(&corpus, "quirk");
    let layer: Digest = quirk["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .parse()
        .expect("digest");
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path(), backend);
            import_corpus(&store, &corpus);
        }
        corrupt(dir.path(), backend, "content", &layer);
        let store = open(dir.path(), backend);
        let report = store.fsck(false).expect("fsck");
        assert_eq!(
            report.problems.len(),
            1,
            "{backend:?}: {:?}",
            report.problems
        );
        assert!(
            matches!(&report.problems[0], FsckProblem::CorruptBlob { digest, .. } if *digest == layer),
            "{:?}",
            report.problems
        );
        // Without repair nothing changed.
        assert!(store.content().contains(&layer).expect("contains"));

        let repaired = store.fsck(true).expect("fsck --repair");
        assert_eq!(
            repaired.repairs,
            vec![format!("deleted corrupt blob {layer}")]
        );
        assert!(!store.content().contains(&layer).expect("contains"));
        // The loss stays visible: the layer's blob is gone.
        let after = store.fsck(false).expect("fsck");
        assert_eq!(after.problems.len(), 1, "{:?}", after.problems);
        assert!(
            matches!(&after.problems[0], FsckProblem::MissingLayerBlob { blob, .. } if *blob == layer)
        );
        // Importing the image again restores the blob.
        store
            .import_oci_layout(corpus.join("oci/quirk-unterminated"))
            .expect("re-import");
        let clean = store.fsck(false).expect("fsck");
        assert!(clean.is_clean(), "{backend:?}: {:?}", clean.problems);
    }
}

#[test]
fn corrupt_config_skips_the_image_and_repair_removes_it_and_its_names() {
    let corpus = corpus();
    let quirk = expected_image(&corpus, "quirk");
    let id: Digest = quirk["image_id"].as_str().expect("id").parse().expect("id");
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path(), backend);
            import_corpus(&store, &corpus);
        }
        corrupt(dir.path(), backend, "images", &id);
        let store = open(dir.path(), backend);
        assert_eq!(store.image_store().check().expect("check").len(), 1);
        let report = store.fsck(false).expect("fsck");
        let kinds: Vec<&str> = report
            .problems
            .iter()
            .map(|p| match p {
                FsckProblem::CorruptConfig { .. } => "corrupt config",
                FsckProblem::DanglingName { .. } => "dangling name",
                FsckProblem::UnreferencedLayer { .. } => "unreferenced layer",
                _ => "other",
            })
            .collect();
        // The config is corrupt (so the image cannot be read) and its name
        // leads nowhere; its layer stays held by the listed image.
        assert_eq!(
            kinds,
            vec!["corrupt config", "dangling name"],
            "{backend:?}: {:?}",
            report.problems
        );
        let layers_before = store.layers().len().expect("layer records");
        let repaired = store.fsck(true).expect("repair");
        assert_eq!(repaired.repairs.len(), 2, "{:?}", repaired.repairs);
        // Deleting the image dropped its hold: its layer went with it, so
        // the gc that follows has none left to remove.
        assert_eq!(repaired.gc.as_ref().map(|gc| gc.layers_removed), Some(0));
        assert_eq!(
            store.layers().len().expect("layer records"),
            layers_before - 1
        );
        let clean = store.fsck(false).expect("fsck");
        assert!(clean.is_clean(), "{backend:?}: {:?}", clean.problems);
        assert_eq!(store.images().expect("list images").len(), 4);
        drop(store);
        let reopened = open(dir.path(), backend);
        assert!(reopened.image_store().check().expect("check").is_empty());
        assert!(reopened.fsck(false).expect("fsck").is_clean());
    }
}

#[test]
fn leftover_layer_is_reported_and_gc_makes_the_store_clean() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path(), backend);
            // A layer registered and never used by an image: what an import
            // killed before creating its image leaves.
            store
                .layers()
                .register(NewLayer::new(Digest::from_bytes(b"leftover"), 8), None)
                .expect("register");
        }
        let store = open(dir.path(), backend);
        let report = store.fsck(false).expect("fsck");
        assert_eq!(
            report.problems,
            vec![FsckProblem::UnreferencedLayer {
                chain_id: imgstore::layer::ChainId::base(Digest::from_bytes(b"leftover")),
            }]
        );
        let gc = store.gc().expect("gc");
        assert_eq!(gc.layers_removed, 1);
        assert!(store.fsck(false).expect("fsck").is_clean());
    }
}

#[test]
fn name_without_target_is_dangling_and_repair_deletes_only_it() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_corpus(&store, &corpus);
        let missing = Digest::from_bytes(b"no such manifest");
        store
            .refs()
            .create(
                "other",
                ImageRecord::new(
                    "docker.io/library/ghost:1",
                    Descriptor::new("application/vnd.oci.image.manifest.v1+json", missing, 10),
                ),
            )
            .expect("create");
        let names_before = store.names().expect("names");
        let report = store.fsck(false).expect("fsck");
        assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
        assert_eq!(
            report.problems[0].to_string(),
            format!(
                "name other/docker.io/library/ghost:1: target {} missing",
                Digest::from_bytes(b"no such manifest")
            )
        );
        let repaired = store.fsck(true).expect("repair");
        assert_eq!(
            repaired.repairs,
            vec!["deleted dangling name other/docker.io/library/ghost:1".to_owned()]
        );
        assert!(store.refs().list("other", &[]).expect("list").is_empty());
        assert_eq!(store.names().expect("names"), names_before);
        assert!(store.fsck(false).expect("fsck").is_clean());
    }
}

#[test]
fn missing_derived_layer_records_are_reported_and_repair_rewrites_them() {
    use imgstore::backend::{Batch, RecordStore};
    use imgstore::layer::LayerProblem;
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_corpus(&store, &corpus);
        let layers = store.layers().map().expect("layer records");
        let layer = layers
            .values()
            .find(|l| l.parent().is_some() && l.blob().is_some())
            .expect("a layer with a parent and a blob");
        let (chain, parent) = (layer.chain_id(), layer.parent().expect("parent"));
        let blob = &layer.blob().expect("blob").digest;
        // What a store written before these records existed lacks.
        let mut batch = Batch::new();
        batch
            .delete("layer-holders", &format!("{parent} layer:{chain}"))
            .delete("layer-blobs", &format!("{blob} {chain}"));
        store.layers().backend().apply(&batch).expect("apply");

        let report = store.fsck(false).expect("fsck");
        assert_eq!(
            report.problems[..2],
            [
                FsckProblem::LayerRecords(LayerProblem::MissingChildLink {
                    parent: parent.clone(),
                    child: chain.clone(),
                }),
                FsckProblem::LayerRecords(LayerProblem::MissingBlobUser {
                    blob: blob.clone(),
                    chain_id: chain.clone(),
                }),
            ],
            "{backend:?}"
        );
        assert_eq!(
            report.problems.len(),
            3,
            "{backend:?}: {:?}",
            report.problems
        );
        assert!(
            matches!(&report.problems[2], FsckProblem::ReferenceCount { chain_id, recorded, recounted }
                if chain_id == parent && recorded + 1 == *recounted),
            "{:?}",
            report.problems[2]
        );
        assert_eq!(
            report.problems[0].to_string(),
            format!("layer {parent}: holder of child layer {chain} missing")
        );
        let repaired = store.fsck(true).expect("fsck --repair");
        assert_eq!(
            repaired.repairs,
            vec!["rewrote 2 derived layer record(s)".to_owned()]
        );
        let clean = store.fsck(false).expect("fsck");
        assert!(clean.is_clean(), "{backend:?}: {:?}", clean.problems);
        assert_eq!(store.layers().len().expect("layer records"), layers.len());
    }
}
