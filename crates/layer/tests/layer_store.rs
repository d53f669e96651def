//! Layer store behaviour, run against every backend.

use std::path::Path;
use std::sync::Arc;

use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_layer::{BlobRef, ChainId, Layer, LayerError, LayerGetReleaser, LayerStore, NewLayer};

fn open_sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).unwrap())
}

fn open_fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).unwrap())
}

imgstore_backend::backend_matrix!(
    [
        bottom_layer_chain_id_is_its_diff_id,
        register_with_missing_parent_fails_and_writes_nothing,
        register_again_adds_a_reference,
        hold_is_idempotent_per_holder,
        release_of_last_reference_cascades_top_first,
        release_without_a_reference_is_an_error_not_a_panic,
        shared_base_survives_release_of_one_chain,
        persistent_references_survive_reopen,
        transient_references_do_not_survive_reopen,
        thousand_layer_chain_releases_without_recursion,
        blob_is_deleted_with_its_last_layer_only,
        concurrent_register_of_one_chain_gives_one_layer,
        files_size_is_kept_and_old_records_load_without_it,
        walk_chain_visits_top_first_and_stops_at_the_bottom,
    ]
    sqlite => open_sqlite,
    fs => open_fs,
);

fn diff(n: u32) -> Digest {
    Digest::from_bytes(format!("layer-{n}").as_bytes())
}

fn bottom_layer_chain_id_is_its_diff_id<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let layer = layers.register(NewLayer::new(diff(0), 10), None).unwrap();
    assert_eq!(layer.chain_id().digest(), &diff(0));
    let child = layers
        .register(NewLayer::new(diff(1), 20), Some(layer.chain_id()))
        .unwrap();
    assert_eq!(child.chain_id(), &ChainId::of(&[diff(0), diff(1)]).unwrap());
    assert_eq!(child.parent(), Some(layer.chain_id()));
    assert_eq!(
        layers.references(layer.chain_id()).unwrap(),
        Some(2),
        "register's reference + child"
    );
}

fn register_with_missing_parent_fails_and_writes_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let ghost = ChainId::base(diff(99));
    let err = layers
        .register(NewLayer::new(diff(1), 1), Some(&ghost))
        .unwrap_err();
    assert!(
        matches!(&err, LayerError::ParentNotFound { parent } if *parent == ghost),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(layers.is_empty().unwrap());
    drop(layers);
    assert!(
        LayerStore::open(open(dir.path()))
            .unwrap()
            .is_empty()
            .unwrap()
    );
}

fn register_again_adds_a_reference<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let a = layers.register(NewLayer::new(diff(0), 10), None).unwrap();
    let again = layers.register(NewLayer::new(diff(0), 10), None).unwrap();
    assert_eq!(a, again);
    assert_eq!(layers.len().unwrap(), 1);
    assert_eq!(layers.references(a.chain_id()).unwrap(), Some(2));
    layers.get(a.chain_id()).unwrap();
    assert_eq!(layers.references(a.chain_id()).unwrap(), Some(3));
    let err = layers
        .register(NewLayer::new(diff(0), 11), Some(a.chain_id()))
        .map(|_| ());
    assert!(
        err.is_ok(),
        "a different chain (on a parent) is a new layer"
    );
}

fn hold_is_idempotent_per_holder<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let a = layers.register(NewLayer::new(diff(0), 10), None).unwrap();
    layers.hold(a.chain_id(), "pin/a").unwrap();
    layers.hold(a.chain_id(), "pin/a").unwrap();
    layers.hold(a.chain_id(), "pin/b").unwrap();
    assert_eq!(layers.references(a.chain_id()).unwrap(), Some(3));
    assert_eq!(layers.holders(a.chain_id()).unwrap(), ["pin/a", "pin/b"]);
    assert!(matches!(
        layers.hold(a.chain_id(), ""),
        Err(LayerError::InvalidHolder { .. })
    ));
    assert!(matches!(
        layers.unhold(a.chain_id(), "pin/c"),
        Err(LayerError::NotHeld { .. })
    ));
}

/// Layers of sizes 1, 2 and 3, each on the one before.
fn chain_of_three<B: StoreBackend + RecordStore>(layers: &LayerStore<B>) -> [Layer; 3] {
    let l0 = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
    let l1 = layers
        .register(NewLayer::new(diff(1), 2), Some(l0.chain_id()))
        .unwrap();
    let l2 = layers
        .register(NewLayer::new(diff(2), 3), Some(l1.chain_id()))
        .unwrap();
    [l0, l1, l2]
}

fn release_of_last_reference_cascades_top_first<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let [l0, l1, l2] = chain_of_three(&layers);
    layers.get(l2.chain_id()).unwrap(); // the image's reference
    // The import lets go of everything; only the image's reference remains.
    for layer in [&l0, &l1, &l2] {
        assert!(layers.release(layer.chain_id()).unwrap().is_empty());
    }
    assert_eq!(layers.len().unwrap(), 3);
    assert_eq!(layers.references(l0.chain_id()).unwrap(), Some(1));
    let removed = layers.release(l2.chain_id()).unwrap();
    let removed: Vec<_> = removed
        .iter()
        .map(|m| (m.chain_id.clone(), m.diff_id.clone(), m.size))
        .collect();
    assert_eq!(
        removed,
        [
            (l2.chain_id().clone(), diff(2), 3),
            (l1.chain_id().clone(), diff(1), 2),
            (l0.chain_id().clone(), diff(0), 1)
        ]
    );
    assert!(layers.is_empty().unwrap());
    drop(layers);
    assert!(
        LayerStore::open(open(dir.path()))
            .unwrap()
            .is_empty()
            .unwrap(),
        "the cascade is persisted"
    );
}

fn release_without_a_reference_is_an_error_not_a_panic<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let base = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
    let top = layers
        .register(NewLayer::new(diff(1), 1), Some(base.chain_id()))
        .unwrap();
    layers.release(base.chain_id()).unwrap();
    // base is alive (its child holds it) but nobody holds a reference to drop.
    let err = layers.release(base.chain_id()).unwrap_err();
    assert!(matches!(err, LayerError::NotHeld { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(
        layers.len().unwrap(),
        2,
        "the refused release changed nothing"
    );
    let err = layers.release(&ChainId::base(diff(5))).unwrap_err();
    assert!(matches!(err, LayerError::NotFound { .. }), "{err}");
    assert_eq!(layers.release(top.chain_id()).unwrap().len(), 2);
    assert!(matches!(
        layers.release(top.chain_id()),
        Err(LayerError::NotFound { .. })
    ));
}

fn shared_base_survives_release_of_one_chain<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let base = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
    let left = layers
        .register(NewLayer::new(diff(1), 1), Some(base.chain_id()))
        .unwrap();
    let right = layers
        .register(NewLayer::new(diff(2), 1), Some(base.chain_id()))
        .unwrap();
    layers.release(base.chain_id()).unwrap();
    assert_eq!(layers.references(base.chain_id()).unwrap(), Some(2));
    assert_eq!(layers.release(left.chain_id()).unwrap().len(), 1);
    assert_eq!(layers.references(base.chain_id()).unwrap(), Some(1));
    assert_eq!(layers.release(right.chain_id()).unwrap().len(), 2);
}

fn persistent_references_survive_reopen<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let (l0, l1) = {
        let layers = LayerStore::open(open(dir.path())).unwrap();
        let l0 = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
        let l1 = layers
            .register(NewLayer::new(diff(1), 1), Some(l0.chain_id()))
            .unwrap();
        layers.hold(l1.chain_id(), "a").unwrap();
        layers.hold(l1.chain_id(), "b").unwrap();
        (l0, l1)
    };
    let layers = LayerStore::open(open(dir.path())).unwrap();
    assert!(layers.check().unwrap().is_empty());
    // Held references survive (the child's `layer:` holder too); register's
    // transient ones do not.
    assert_eq!(layers.references(l0.chain_id()).unwrap(), Some(1));
    assert_eq!(
        layers.children(l0.chain_id()).unwrap(),
        [l1.chain_id().clone()]
    );
    assert_eq!(layers.references(l1.chain_id()).unwrap(), Some(2));
    assert_eq!(layers.holders(l1.chain_id()).unwrap(), ["a", "b"]);
    assert_eq!(layers.layer(l1.chain_id()).unwrap().as_ref(), Some(&l1));
    assert!(layers.unhold(l1.chain_id(), "b").unwrap().is_empty());
    assert_eq!(layers.unhold(l1.chain_id(), "a").unwrap().len(), 2);
    drop(layers);
    assert!(
        LayerStore::open(open(dir.path()))
            .unwrap()
            .is_empty()
            .unwrap(),
        "released references stay released"
    );
}

fn transient_references_do_not_survive_reopen<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let chain = {
        let layers = LayerStore::open(open(dir.path())).unwrap();
        let l0 = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
        layers.get(l0.chain_id()).unwrap();
        l0.chain_id().clone()
    };
    let layers = LayerStore::open(open(dir.path())).unwrap();
    assert_eq!(
        layers.references(&chain).unwrap(),
        Some(0),
        "the record stays for its holders to re-take (or gc)"
    );
    layers.get(&chain).unwrap();
    assert_eq!(layers.release(&chain).unwrap().len(), 1);
}

fn thousand_layer_chain_releases_without_recursion<B: StoreBackend + RecordStore + 'static>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let mut parent: Option<ChainId> = None;
    for n in 0..1000 {
        let layer = layers
            .register(NewLayer::new(diff(n), 1), parent.as_ref())
            .unwrap();
        if let Some(p) = &parent {
            layers.release(p).unwrap();
        }
        parent = Some(layer.chain_id().clone());
    }
    let top = parent.unwrap();
    // A small stack makes unbounded recursion fail loudly.
    let removed = std::thread::Builder::new()
        .stack_size(64 * 1024)
        .spawn(move || {
            layers
                .release(&top)
                .map(|r| (r.len(), layers.len().unwrap()))
        })
        .unwrap()
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(removed, (1000, 0));
}

fn blob_is_deleted_with_its_last_layer_only<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let blob_digest = backend.set(b"compressed layer bytes").unwrap();
    let blob = BlobRef {
        digest: blob_digest.clone(),
        size: 22,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    let base = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
    // The same diff (and blob) as a bottom layer and on top of `base`: two chains, one blob.
    let alone = layers
        .register(NewLayer::new(diff(1), 1).with_blob(blob.clone()), None)
        .unwrap();
    let stacked = layers
        .register(
            NewLayer::new(diff(1), 1).with_blob(blob),
            Some(base.chain_id()),
        )
        .unwrap();
    layers.release(alone.chain_id()).unwrap();
    assert!(
        backend.contains(&blob_digest).unwrap(),
        "still used by the stacked layer"
    );
    layers.release(base.chain_id()).unwrap();
    assert_eq!(layers.release(stacked.chain_id()).unwrap().len(), 2);
    assert!(!backend.contains(&blob_digest).unwrap());
    let missing = BlobRef {
        digest: Digest::from_bytes(b"never stored"),
        size: 1,
        media_type: "x".into(),
    };
    let err = layers
        .register(NewLayer::new(diff(7), 1).with_blob(missing), None)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn concurrent_register_of_one_chain_gives_one_layer<B: StoreBackend + RecordStore + 'static>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let layers = Arc::new(LayerStore::open(open(dir.path())).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let layers = layers.clone();
            std::thread::spawn(move || layers.register(NewLayer::new(diff(0), 1), None))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    assert_eq!(layers.len().unwrap(), 1);
    assert_eq!(layers.references(&ChainId::base(diff(0))).unwrap(), Some(8));
}

fn files_size_is_kept_and_old_records_load_without_it<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    // A record as written before files sizes were kept: no `files_size` key.
    let old = ChainId::base(diff(7));
    let mut batch = Batch::new();
    batch.put(
        "layers",
        old.as_str(),
        format!(
            r#"{{"diff_id":"{}","parent":null,"size":3,"blob":null}}"#,
            diff(7)
        )
        .into_bytes(),
    );
    backend.apply(&batch).unwrap();
    {
        let layers = LayerStore::open(backend.clone()).unwrap();
        assert_eq!(layers.layer(&old).unwrap().unwrap().files_size(), None);
        let new = layers
            .register(
                NewLayer::new(diff(8), 2048).with_files_size(1234),
                Some(&old),
            )
            .unwrap();
        assert_eq!(new.files_size(), Some(1234));
        assert_eq!(NewLayer::new(diff(9), 1).files_size, None);
        // Registering the old chain again with a files size records it.
        let again = layers
            .register(NewLayer::new(diff(7), 3).with_files_size(0), None)
            .unwrap();
        assert_eq!(again.files_size(), Some(0));
    }
    let layers = LayerStore::open(backend).unwrap();
    assert!(layers.check().unwrap().is_empty());
    assert_eq!(layers.layer(&old).unwrap().unwrap().files_size(), Some(0));
    assert_eq!(
        layers
            .layer(&old.child(&diff(8)))
            .unwrap()
            .unwrap()
            .files_size(),
        Some(1234)
    );
}

fn walk_chain_visits_top_first_and_stops_at_the_bottom<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let [l0, l1, l2] = chain_of_three(&layers);
    let mut seen = Vec::new();
    layers
        .walk_chain(l2.chain_id(), |layer| {
            seen.push((layer.chain_id().clone(), layer.size()))
        })
        .unwrap();
    assert_eq!(
        seen,
        vec![
            (l2.chain_id().clone(), 3),
            (l1.chain_id().clone(), 2),
            (l0.chain_id().clone(), 1)
        ]
    );
    let ghost = ChainId::of(&[diff(9)]).unwrap();
    let mut visited = 0;
    layers.walk_chain(&ghost, |_| visited += 1).unwrap();
    assert_eq!(visited, 0);
}
