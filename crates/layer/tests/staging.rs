//! Staging layer records into a caller's batch (`stage_register`,
//! `stage_hold`, `commit`): the exact records a commit writes, nothing
//! before it, and a change by another store between the reads and the
//! commit failing it with `Conflict` and nothing written. Run against
//! every backend.

use std::path::Path;
use std::sync::Arc;

use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_layer::{
    BlobRef, ChainId, LayerError, LayerGetReleaser, LayerStaging, LayerStore, NewLayer,
};

fn open_sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).unwrap())
}

fn open_fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).unwrap())
}

imgstore_backend::backend_matrix!(
    [
        staged_chain_writes_exactly_its_records_at_commit,
        staging_twice_in_one_batch_stages_once,
        stored_parent_deleted_meanwhile_conflicts_and_writes_nothing,
        chain_registered_meanwhile_conflicts_and_writes_nothing,
        held_layer_unheld_meanwhile_conflicts_and_writes_nothing,
        commit_refuses_a_layer_whose_blob_went_and_writes_nothing,
        stage_hold_of_a_missing_layer_is_not_found_and_stages_nothing,
    ]
    sqlite => open_sqlite,
    fs => open_fs,
);

fn diff(n: u32) -> Digest {
    Digest::from_bytes(format!("layer-{n}").as_bytes())
}

const IMAGE: &str = "image:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/// Every key of the three layer buckets, bucket-prefixed, sorted.
fn all_keys<B: RecordStore>(backend: &B) -> Vec<String> {
    let mut keys = Vec::new();
    for bucket in ["layers", "layer-holders", "layer-blobs"] {
        backend
            .scan_records(bucket, "", &mut |key, _| {
                keys.push(format!("{bucket}/{key}"));
                Ok(())
            })
            .unwrap();
    }
    keys.sort();
    keys
}

fn blob_of<B: StoreBackend>(backend: &B, bytes: &[u8]) -> BlobRef {
    BlobRef {
        digest: backend.set_deferred(bytes).unwrap(),
        size: bytes.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
    }
}

fn staged_chain_writes_exactly_its_records_at_commit<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let blob = blob_of(&*backend, b"base blob");
    let mut staging = LayerStaging::new();
    let mut batch = Batch::new();
    let base = layers
        .stage_register(
            NewLayer::new(diff(0), 10)
                .with_blob(blob.clone())
                .with_files_size(4),
            None,
            &mut staging,
            &mut batch,
        )
        .unwrap();
    let top = layers
        .stage_register(
            NewLayer::new(diff(1), 20),
            Some(base.chain_id()),
            &mut staging,
            &mut batch,
        )
        .unwrap();
    layers
        .stage_hold(top.chain_id(), IMAGE, &mut staging, &mut batch)
        .unwrap();
    assert_eq!(staging.layer(top.chain_id()), Some(&top));
    assert_eq!(
        all_keys(&*backend),
        Vec::<String>::new(),
        "nothing before commit"
    );
    assert!(layers.layer(base.chain_id()).unwrap().is_none());

    layers.commit(&batch, &staging).unwrap();
    let (b, t) = (base.chain_id(), top.chain_id());
    let mut expected = vec![
        format!("layers/{b}"),
        format!("layers/{t}"),
        format!("layer-holders/{b} layer:{t}"),
        format!("layer-holders/{t} {IMAGE}"),
        format!("layer-blobs/{} {b}", blob.digest),
    ];
    expected.sort();
    assert_eq!(all_keys(&*backend), expected);
    let stored = layers.layer(b).unwrap().unwrap();
    assert_eq!(stored, base);
    assert_eq!(stored.files_size(), Some(4));
    assert_eq!(stored.blob(), Some(&blob));
    assert_eq!(layers.layer(t).unwrap().unwrap().parent(), Some(b));
    assert_eq!(layers.references(t).unwrap(), Some(1), "the hold only");
    assert_eq!(layers.references(b).unwrap(), Some(1), "its child");
    assert_eq!(layers.check().unwrap(), Vec::new());
    // Dropping the hold frees the whole staged chain, as after `register`.
    assert_eq!(layers.unhold(t, IMAGE).unwrap().len(), 2);
    assert_eq!(all_keys(&*backend), Vec::<String>::new());
}

fn staging_twice_in_one_batch_stages_once<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let stored = layers.register(NewLayer::new(diff(9), 1), None).unwrap();
    let mut staging = LayerStaging::new();
    let mut batch = Batch::new();
    // A stored layer relied on twice: one precondition.
    for _ in 0..2 {
        layers
            .stage_register(NewLayer::new(diff(9), 1), None, &mut staging, &mut batch)
            .unwrap();
    }
    assert_eq!(batch.len(), 1);
    // A new one twice: one record (its precondition and put), one hold.
    for _ in 0..2 {
        let layer = layers
            .stage_register(NewLayer::new(diff(0), 1), None, &mut staging, &mut batch)
            .unwrap();
        layers
            .stage_hold(layer.chain_id(), "pin", &mut staging, &mut batch)
            .unwrap();
    }
    assert_eq!(batch.len(), 1 + 2 + 2);
    layers.commit(&batch, &staging).unwrap();
    let base = ChainId::base(diff(0));
    assert_eq!(layers.holders(&base).unwrap(), vec!["pin".to_owned()]);
    assert_eq!(layers.layer(stored.chain_id()).unwrap(), Some(stored));
}

fn stored_parent_deleted_meanwhile_conflicts_and_writes_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let other = LayerStore::open(backend.clone()).unwrap();
    let parent = other.register(NewLayer::new(diff(0), 1), None).unwrap();
    other.hold(parent.chain_id(), "pin").unwrap();
    other.release(parent.chain_id()).unwrap();
    let mut staging = LayerStaging::new();
    let mut batch = Batch::new();
    let child = layers
        .stage_register(
            NewLayer::new(diff(1), 1),
            Some(parent.chain_id()),
            &mut staging,
            &mut batch,
        )
        .unwrap();
    layers
        .stage_hold(child.chain_id(), IMAGE, &mut staging, &mut batch)
        .unwrap();
    // Another store frees the parent between the reads and the commit.
    assert_eq!(other.unhold(parent.chain_id(), "pin").unwrap().len(), 1);
    let err = layers.commit(&batch, &staging).unwrap_err();
    assert!(
        matches!(&err, LayerError::Conflict { bucket, key }
            if bucket == "layers" && key == parent.chain_id().as_str()),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(all_keys(&*backend), Vec::<String>::new(), "nothing written");
}

fn chain_registered_meanwhile_conflicts_and_writes_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let other = LayerStore::open(backend.clone()).unwrap();
    let mut staging = LayerStaging::new();
    let mut batch = Batch::new();
    let staged = layers
        .stage_register(NewLayer::new(diff(0), 1), None, &mut staging, &mut batch)
        .unwrap();
    layers
        .stage_hold(staged.chain_id(), IMAGE, &mut staging, &mut batch)
        .unwrap();
    let theirs = other.register(NewLayer::new(diff(0), 1), None).unwrap();
    other.hold(theirs.chain_id(), "theirs").unwrap();
    let err = layers.commit(&batch, &staging).unwrap_err();
    assert!(
        matches!(&err, LayerError::Conflict { bucket, key }
            if bucket == "layers" && key == staged.chain_id().as_str()),
        "{err:?}"
    );
    assert_eq!(
        all_keys(&*backend),
        vec![
            format!("layer-holders/{} theirs", theirs.chain_id()),
            format!("layers/{}", theirs.chain_id()),
        ],
        "only the other store's records"
    );
}

fn held_layer_unheld_meanwhile_conflicts_and_writes_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let other = LayerStore::open(backend.clone()).unwrap();
    let layer = other.register(NewLayer::new(diff(0), 1), None).unwrap();
    other.hold(layer.chain_id(), "a").unwrap();
    other.hold(layer.chain_id(), "b").unwrap();
    other.release(layer.chain_id()).unwrap();
    let mut staging = LayerStaging::new();
    let mut batch = Batch::new();
    // "a" is stored: the batch only requires it to stay; "c" is new.
    layers
        .stage_hold(layer.chain_id(), "a", &mut staging, &mut batch)
        .unwrap();
    layers
        .stage_hold(layer.chain_id(), "c", &mut staging, &mut batch)
        .unwrap();
    other.unhold(layer.chain_id(), "a").unwrap();
    let err = layers.commit(&batch, &staging).unwrap_err();
    let a = format!("{} a", layer.chain_id());
    assert!(
        matches!(&err, LayerError::Conflict { bucket, key } if bucket == "layer-holders" && *key == a),
        "{err:?}"
    );
    assert_eq!(
        layers.holders(layer.chain_id()).unwrap(),
        vec!["b".to_owned()]
    );
}

fn commit_refuses_a_layer_whose_blob_went_and_writes_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let blob = blob_of(&*backend, b"a blob");
    let mut staging = LayerStaging::new();
    let mut batch = Batch::new();
    let staged = layers
        .stage_register(
            NewLayer::new(diff(0), 1).with_blob(blob.clone()),
            None,
            &mut staging,
            &mut batch,
        )
        .unwrap();
    layers
        .stage_hold(staged.chain_id(), IMAGE, &mut staging, &mut batch)
        .unwrap();
    backend.delete(&blob.digest).unwrap();
    let err = layers.commit(&batch, &staging).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    assert!(err.to_string().contains(blob.digest.as_str()), "{err}");
    assert_eq!(all_keys(&*backend), Vec::<String>::new());
    // And a blob that is not stored at all is refused while staging.
    let missing = BlobRef {
        digest: Digest::from_bytes(b"never stored"),
        ..blob
    };
    let err = layers
        .stage_register(
            NewLayer::new(diff(1), 1).with_blob(missing),
            None,
            &mut LayerStaging::new(),
            &mut Batch::new(),
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

fn stage_hold_of_a_missing_layer_is_not_found_and_stages_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let mut staging = LayerStaging::new();
    let mut batch = Batch::new();
    let missing = ChainId::base(diff(5));
    let err = layers
        .stage_hold(&missing, IMAGE, &mut staging, &mut batch)
        .unwrap_err();
    assert!(matches!(&err, LayerError::NotFound { chain_id } if *chain_id == missing));
    let err = layers
        .stage_register(
            NewLayer::new(diff(1), 1),
            Some(&missing),
            &mut staging,
            &mut batch,
        )
        .unwrap_err();
    assert!(matches!(&err, LayerError::ParentNotFound { parent } if *parent == missing));
    assert!(batch.is_empty() && staging.is_empty());
}
