//! Staging image creations into caller's batches (`stage_create`,
//! `commit`), as an import of many images does: the hold goes into the
//! layer store's batch, the summary and child link into the image store's,
//! nothing is visible before the commits, and a change by another store
//! meanwhile fails the commit with `Conflict` and nothing written. Layers
//! and images in two backends, as the facade keeps them; run against every
//! backend.

use std::path::Path;
use std::sync::Arc;

use imgstore_backend::{Batch, ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_image::{
    CHILDREN_BUCKET, IMAGES_BUCKET, ImageError, ImageId, ImageStaging, ImageStore, StagedImage,
    Store, layer_holder,
};
use imgstore_layer::{ChainId, LayerStaging, LayerStore, NewLayer};

fn open_sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).unwrap())
}

fn open_fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).unwrap())
}

imgstore_backend::backend_matrix!(
    [
        staged_images_appear_with_their_holds_at_commit,
        stored_and_repeated_images_are_staged_once_as_not_created,
        image_created_meanwhile_conflicts_and_writes_nothing,
        stored_image_deleted_meanwhile_conflicts_and_writes_nothing,
        refused_config_stages_nothing,
    ]
    sqlite => open_sqlite,
    fs => open_fs,
);

/// A layer backend and an image backend, in two directories.
struct Fixture<B: StoreBackend + RecordStore> {
    _dir: tempfile::TempDir,
    content: Arc<B>,
    layers: Arc<LayerStore<B>>,
    images: Store<B, LayerStore<B>>,
}

fn fixture<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) -> Fixture<B> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("content")).unwrap();
    std::fs::create_dir(dir.path().join("images")).unwrap();
    let content = open(&dir.path().join("content"));
    let layers = Arc::new(LayerStore::open(content.clone()).unwrap());
    let images = Store::open(open(&dir.path().join("images")), layers.clone()).unwrap();
    Fixture {
        _dir: dir,
        content,
        layers,
        images,
    }
}

fn config(i: usize, diff_ids: &[&Digest]) -> String {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"comment":"image {i}","created":"2024-01-01T00:00:00Z","os":"linux","architecture":"amd64","rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        ids.join(",")
    )
}

fn keys<B: RecordStore>(backend: &B, bucket: &str) -> Vec<String> {
    let mut keys = Vec::new();
    backend
        .scan_records(bucket, "", &mut |key, _| {
            keys.push(key.to_owned());
            Ok(())
        })
        .unwrap();
    keys
}

fn staged_images_appear_with_their_holds_at_commit<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let f = fixture(open);
    let (base, top) = (Digest::from_bytes(b"base"), Digest::from_bytes(b"top"));
    let mut layers = LayerStaging::new();
    let mut layer_batch = Batch::new();
    let mut staging = ImageStaging::new();
    let mut batch = Batch::new();
    // Two images over one base, the chain staged in the same batch.
    let base_layer = f
        .layers
        .stage_register(
            NewLayer::new(base.clone(), 5),
            None,
            &mut layers,
            &mut layer_batch,
        )
        .unwrap();
    let top_layer = f
        .layers
        .stage_register(
            NewLayer::new(top.clone(), 7),
            Some(base_layer.chain_id()),
            &mut layers,
            &mut layer_batch,
        )
        .unwrap();
    let one_config = config(1, &[&base]);
    let two_config = config(2, &[&base, &top]);
    let one = f
        .images
        .stage_create(
            one_config.as_bytes(),
            &mut layers,
            &mut layer_batch,
            &mut staging,
            &mut batch,
        )
        .unwrap();
    let two = f
        .images
        .stage_create(
            two_config.as_bytes(),
            &mut layers,
            &mut layer_batch,
            &mut staging,
            &mut batch,
        )
        .unwrap();
    assert_eq!(
        one,
        StagedImage {
            id: ImageId::of_config(one_config.as_bytes()),
            created: true,
            top: Some(base_layer.chain_id().clone()),
        }
    );
    assert_eq!(two.top.as_ref(), Some(top_layer.chain_id()));
    let mut created: Vec<&ImageId> = staging.created().collect();
    created.sort();
    let mut expected = vec![&one.id, &two.id];
    expected.sort();
    assert_eq!(created, expected);
    // The configs are stored; no record is, in either backend.
    assert!(f.images.backend().contains(one.id.digest()).unwrap());
    assert!(f.images.is_empty().unwrap());
    assert_eq!(keys(&*f.content, "layer-holders"), Vec::<String>::new());
    // One precondition and one put per summary; nothing else.
    assert_eq!(batch.len(), 4);

    f.layers.commit(&layer_batch, &layers).unwrap();
    assert!(
        f.images.is_empty().unwrap(),
        "summaries come with their own batch"
    );
    f.images.commit(&batch).unwrap();
    let mut ids = vec![one.id.as_str().to_owned(), two.id.as_str().to_owned()];
    ids.sort();
    let stored: Vec<String> = keys(&**f.images.backend(), IMAGES_BUCKET)
        .into_iter()
        .map(|hex| format!("sha256:{hex}"))
        .collect();
    assert_eq!(stored, ids);
    assert_eq!(
        keys(&**f.images.backend(), CHILDREN_BUCKET),
        Vec::<String>::new()
    );
    let summary = f.images.summary(&two.id).unwrap().unwrap();
    assert_eq!(summary.top.as_ref(), Some(top_layer.chain_id()));
    assert_eq!(summary.size, 12);
    assert_eq!(
        f.layers.holders(base_layer.chain_id()).unwrap(),
        vec![layer_holder(&one.id)]
    );
    assert_eq!(
        f.layers.holders(top_layer.chain_id()).unwrap(),
        vec![layer_holder(&two.id)]
    );
    assert_eq!(f.images.check().unwrap(), Vec::new());
    // A created image deletes as any other, freeing its layers.
    f.images.delete(&two.id).unwrap();
    assert_eq!(f.layers.layer(top_layer.chain_id()).unwrap(), None);
}

fn stored_and_repeated_images_are_staged_once_as_not_created<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let f = fixture(open);
    let base = Digest::from_bytes(b"base");
    let layer = f
        .layers
        .register(NewLayer::new(base.clone(), 5), None)
        .unwrap();
    let stored = f.images.create(config(1, &[&base]).as_bytes()).unwrap();
    let fresh = config(2, &[&base]);
    let mut layers = LayerStaging::new();
    let mut layer_batch = Batch::new();
    let mut staging = ImageStaging::new();
    let mut batch = Batch::new();
    let mut stage = |config: &str| {
        f.images
            .stage_create(
                config.as_bytes(),
                &mut layers,
                &mut layer_batch,
                &mut staging,
                &mut batch,
            )
            .unwrap()
    };
    let again = stage(&config(1, &[&base]));
    assert_eq!((&again.id, again.created), (&stored, false));
    assert!(stage(&fresh).created);
    assert!(!stage(&fresh).created, "staged once per batch");
    assert!(!stage(&config(1, &[&base])).created);
    // The stored image: a precondition only; the new one: its summary.
    assert_eq!(batch.len(), 1 + 2);
    // Its hold: the layer unchanged and the holder absent.
    assert_eq!(layer_batch.len(), 3);
    f.layers.commit(&layer_batch, &layers).unwrap();
    f.images.commit(&batch).unwrap();
    assert_eq!(f.images.len().unwrap(), 2);
    assert_eq!(f.layers.holders(layer.chain_id()).unwrap().len(), 2);
}

fn image_created_meanwhile_conflicts_and_writes_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let f = fixture(open);
    let base = Digest::from_bytes(b"base");
    f.layers
        .register(NewLayer::new(base.clone(), 5), None)
        .unwrap();
    let other = Store::open(f.images.backend().clone(), f.layers.clone()).unwrap();
    let mut layers = LayerStaging::new();
    let mut layer_batch = Batch::new();
    let mut staging = ImageStaging::new();
    let mut batch = Batch::new();
    let first = config(1, &[&base]);
    let second = config(2, &[&base]);
    for config in [&first, &second] {
        f.images
            .stage_create(
                config.as_bytes(),
                &mut layers,
                &mut layer_batch,
                &mut staging,
                &mut batch,
            )
            .unwrap();
    }
    f.layers.commit(&layer_batch, &layers).unwrap();
    // Another store creates the second image before the summaries commit.
    let theirs = other.create(second.as_bytes()).unwrap();
    let err = f.images.commit(&batch).unwrap_err();
    assert!(
        matches!(&err, ImageError::Conflict { key } if *key == theirs.digest().encoded()),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    let ids: Vec<ImageId> = f
        .images
        .summaries()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        ids,
        vec![theirs],
        "the first image's summary is not written"
    );
}

fn stored_image_deleted_meanwhile_conflicts_and_writes_nothing<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let f = fixture(open);
    let base = Digest::from_bytes(b"base");
    f.layers
        .register(NewLayer::new(base.clone(), 5), None)
        .unwrap();
    let stored = f.images.create(config(1, &[&base]).as_bytes()).unwrap();
    let mut layers = LayerStaging::new();
    let mut layer_batch = Batch::new();
    let mut staging = ImageStaging::new();
    let mut batch = Batch::new();
    for i in [1, 2] {
        f.images
            .stage_create(
                config(i, &[&base]).as_bytes(),
                &mut layers,
                &mut layer_batch,
                &mut staging,
                &mut batch,
            )
            .unwrap();
    }
    f.layers.commit(&layer_batch, &layers).unwrap();
    f.images.delete(&stored).unwrap();
    let err = f.images.commit(&batch).unwrap_err();
    assert!(
        matches!(&err, ImageError::Conflict { key } if *key == stored.digest().encoded()),
        "{err:?}"
    );
    assert!(f.images.is_empty().unwrap());
}

fn refused_config_stages_nothing<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let f = fixture(open);
    let mut layers = LayerStaging::new();
    let mut layer_batch = Batch::new();
    let mut staging = ImageStaging::new();
    let mut batch = Batch::new();
    let missing = Digest::from_bytes(b"not registered");
    let no_layer = config(1, &[&missing]);
    let err = f
        .images
        .stage_create(
            no_layer.as_bytes(),
            &mut layers,
            &mut layer_batch,
            &mut staging,
            &mut batch,
        )
        .unwrap_err();
    assert!(
        matches!(&err, ImageError::Layer(imgstore_layer::LayerError::NotFound { chain_id })
            if *chain_id == ChainId::base(missing.clone())),
        "{err:?}"
    );
    let windows = no_layer.replace("\"linux\"", "\"windows\"");
    let err = f
        .images
        .stage_create(
            windows.as_bytes(),
            &mut layers,
            &mut layer_batch,
            &mut staging,
            &mut batch,
        )
        .unwrap_err();
    assert!(matches!(err, ImageError::UnsupportedOs { .. }), "{err:?}");
    assert!(batch.is_empty() && layer_batch.is_empty() && staging.is_empty());
    assert!(
        !f.images
            .backend()
            .contains(&Digest::from_bytes(no_layer.as_bytes()))
            .unwrap(),
        "no config written"
    );
}
