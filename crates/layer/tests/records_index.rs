//! The layer store over its records alone (issue 13): nothing loaded on
//! open, several stores over one backend, the derived records checked and
//! repaired. Run against every backend.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use imgstore_backend::{
    Batch, BlobInfo, BlobReader, ErrorKind, RecordStore, Result as BackendResult, StoreBackend,
};
use imgstore_digest::Digest;
use imgstore_layer::{
    BlobRef, ChainId, LayerError, LayerGetReleaser, LayerProblem, LayerStore, NewLayer,
};

fn open_sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).unwrap())
}

fn open_fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).unwrap())
}

imgstore_backend::backend_matrix!(
    [
        open_over_many_layers_reads_no_record,
        two_stores_over_one_backend_see_each_other,
        shared_blob_survives_removal_of_one_chain,
        reserved_holder_kinds_are_checked,
        corrupt_record_is_an_error_on_read_and_left_out_of_map,
        every_problem_is_detected_and_derived_ones_repaired,
        store_without_derived_records_works_after_repair,
    ]
    sqlite => open_sqlite,
    fs => open_fs,
);

fn diff(n: u32) -> Digest {
    Digest::from_bytes(format!("layer-{n}").as_bytes())
}

/// A backend that counts record reads (point reads, scans and probes).
struct Counting<B> {
    inner: Arc<B>,
    reads: AtomicUsize,
}

impl<B> Counting<B> {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
    fn reset(&self) {
        self.reads.store(0, Ordering::SeqCst);
    }
    fn count(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

impl<B: StoreBackend> StoreBackend for Counting<B> {
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> BackendResult<()>) -> BackendResult<()> {
        self.inner.walk(visit)
    }
    fn get(&self, digest: &Digest) -> BackendResult<Vec<u8>> {
        self.inner.get(digest)
    }
    fn set(&self, data: &[u8]) -> BackendResult<Digest> {
        self.inner.set(data)
    }
    fn delete(&self, digest: &Digest) -> BackendResult<()> {
        self.inner.delete(digest)
    }
    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> BackendResult<()> {
        self.inner.set_metadata(digest, key, value)
    }
    fn get_metadata(&self, digest: &Digest, key: &str) -> BackendResult<Vec<u8>> {
        self.inner.get_metadata(digest, key)
    }
    fn delete_metadata(&self, digest: &Digest, key: &str) -> BackendResult<()> {
        self.inner.delete_metadata(digest, key)
    }
    fn contains(&self, digest: &Digest) -> BackendResult<bool> {
        self.inner.contains(digest)
    }
    fn size(&self, digest: &Digest) -> BackendResult<u64> {
        self.inner.size(digest)
    }
    fn open_blob(&self, digest: &Digest) -> BackendResult<BlobReader> {
        self.inner.open_blob(digest)
    }
    fn write_blob(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
    ) -> BackendResult<BlobInfo> {
        self.inner.write_blob(expected, reader)
    }
}

impl<B: RecordStore> RecordStore for Counting<B> {
    fn get_record(&self, bucket: &str, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.count();
        self.inner.get_record(bucket, key)
    }
    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> BackendResult<()>,
    ) -> BackendResult<()> {
        self.count();
        self.inner.scan_records(bucket, prefix, visit)
    }
    fn apply(&self, batch: &Batch) -> BackendResult<()> {
        self.inner.apply(batch)
    }
    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> BackendResult<Vec<(String, Vec<u8>)>> {
        self.count();
        self.inner.first_records(bucket, prefix, limit)
    }
}

/// Keys of `bucket` starting with `prefix`.
fn keys<B: RecordStore>(backend: &B, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = Vec::new();
    backend
        .scan_records(bucket, prefix, &mut |key, _| {
            keys.push(key.to_owned());
            Ok(())
        })
        .unwrap();
    keys
}

fn blob_of<B: StoreBackend>(backend: &B, bytes: &[u8]) -> BlobRef {
    BlobRef {
        digest: backend.set(bytes).unwrap(),
        size: bytes.len() as u64,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    }
}

fn open_over_many_layers_reads_no_record<B: StoreBackend + RecordStore + 'static>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(Counting {
        inner: open(dir.path()),
        reads: AtomicUsize::new(0),
    });
    let (top, sibling) = {
        let layers = LayerStore::open(backend.clone()).unwrap();
        let mut parent: Option<ChainId> = None;
        for n in 0..500 {
            let layer = layers
                .register(NewLayer::new(diff(n), 1), parent.as_ref())
                .unwrap();
            parent = Some(layer.chain_id().clone());
        }
        let below = parent.unwrap();
        let top = layers
            .register(NewLayer::new(diff(1000), 1), Some(&below))
            .unwrap();
        let sibling = layers
            .register(NewLayer::new(diff(1001), 1), Some(&below))
            .unwrap();
        layers.hold(top.chain_id(), "pin").unwrap();
        (top.chain_id().clone(), sibling.chain_id().clone())
    };
    backend.reset();
    let layers = LayerStore::open(backend.clone()).unwrap();
    assert_eq!(backend.reads(), 0, "open reads no record");
    assert_eq!(layers.layer(&top).unwrap().unwrap().size(), 1);
    assert_eq!(backend.reads(), 1, "a layer is one point read");
    backend.reset();
    // The top layer goes; its parent stays for the sibling: the layer and
    // holder reads, the top's probe, the parent's read and probe.
    let removed = layers.unhold(&top, "pin").unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(backend.reads(), 5, "a release costs its own layers only");
    assert!(layers.layer(&sibling).unwrap().is_some());
    assert_eq!(layers.len().unwrap(), 501);
}

fn two_stores_over_one_backend_see_each_other<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let first = LayerStore::open(backend.clone()).unwrap();
    let second = LayerStore::open(backend.clone()).unwrap();
    let base = first.register(NewLayer::new(diff(0), 1), None).unwrap();
    let top = first
        .register(NewLayer::new(diff(1), 2), Some(base.chain_id()))
        .unwrap();
    // Registered in one, seen by the other at once.
    assert_eq!(second.layer(top.chain_id()).unwrap().as_ref(), Some(&top));
    assert_eq!(
        second.children(base.chain_id()).unwrap(),
        [top.chain_id().clone()]
    );
    let image = format!("image:{}", "ab".repeat(32));
    second.hold(top.chain_id(), &image).unwrap();
    assert_eq!(first.holders(top.chain_id()).unwrap(), vec![image.clone()]);
    // Transient references are each store's own.
    assert_eq!(first.references(top.chain_id()).unwrap(), Some(2));
    assert_eq!(second.references(top.chain_id()).unwrap(), Some(1));
    assert!(matches!(
        second.release(top.chain_id()),
        Err(LayerError::NotHeld { .. })
    ));
    assert!(first.release(base.chain_id()).unwrap().is_empty());
    assert!(
        first.release(top.chain_id()).unwrap().is_empty(),
        "held by the other store's holder"
    );
    // The other store's holder, dropped through this one: the cascade.
    let removed = first.unhold(top.chain_id(), &image).unwrap();
    let removed: Vec<ChainId> = removed.into_iter().map(|m| m.chain_id).collect();
    assert_eq!(removed, [top.chain_id().clone(), base.chain_id().clone()]);
    assert!(second.is_empty().unwrap());
    assert!(matches!(
        second.unhold(top.chain_id(), &image),
        Err(LayerError::NotFound { .. })
    ));
    for bucket in ["layers", "layer-holders", "layer-blobs"] {
        assert!(keys(&*backend, bucket, "").is_empty(), "{bucket}");
    }
}

fn shared_blob_survives_removal_of_one_chain<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let shared = blob_of(&*backend, b"shared layer bytes");
    let own = blob_of(&*backend, b"base layer bytes");
    let base = layers
        .register(NewLayer::new(diff(0), 1).with_blob(own.clone()), None)
        .unwrap();
    // One diff (and blob) on two chains: alone, and on `base`.
    let alone = layers
        .register(NewLayer::new(diff(1), 1).with_blob(shared.clone()), None)
        .unwrap();
    let stacked = layers
        .register(
            NewLayer::new(diff(1), 1).with_blob(shared.clone()),
            Some(base.chain_id()),
        )
        .unwrap();
    let users = |blob: &BlobRef| keys(&*backend, "layer-blobs", &format!("{} ", blob.digest));
    let mut want = vec![
        format!("{} {}", shared.digest, alone.chain_id()),
        format!("{} {}", shared.digest, stacked.chain_id()),
    ];
    want.sort();
    assert_eq!(users(&shared), want);
    layers.release(base.chain_id()).unwrap();
    let removed = layers.release(stacked.chain_id()).unwrap();
    assert_eq!(removed.len(), 2, "stacked, then base");
    assert!(
        backend.contains(&shared.digest).unwrap(),
        "still used by the other chain"
    );
    assert!(
        !backend.contains(&own.digest).unwrap(),
        "base's own blob goes"
    );
    assert_eq!(
        users(&shared),
        [format!("{} {}", shared.digest, alone.chain_id())]
    );
    assert_eq!(layers.release(alone.chain_id()).unwrap().len(), 1);
    assert!(!backend.contains(&shared.digest).unwrap());
    assert!(users(&shared).is_empty());
}

fn reserved_holder_kinds_are_checked<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let layers = LayerStore::open(open(dir.path())).unwrap();
    let a = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
    let child = format!("layer:{}", ChainId::base(diff(5)));
    for refused in [
        child.as_str(),
        "image:abc",
        &format!("image:{}", "AB".repeat(32)),
    ] {
        let err = layers.hold(a.chain_id(), refused).unwrap_err();
        assert!(
            matches!(err, LayerError::InvalidHolder { .. }),
            "{refused}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(matches!(
            layers.unhold(a.chain_id(), refused),
            Err(LayerError::InvalidHolder { .. })
        ));
    }
    let image = format!("image:{}", "0f".repeat(32));
    layers.hold(a.chain_id(), &image).unwrap();
    assert_eq!(layers.holders(a.chain_id()).unwrap(), [image]);
}

fn corrupt_record_is_an_error_on_read_and_left_out_of_map<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let good = layers.register(NewLayer::new(diff(0), 1), None).unwrap();
    let broken = ChainId::base(diff(1));
    let mut batch = Batch::new();
    batch.put("layers", broken.as_str(), b"not json".to_vec());
    backend.apply(&batch).unwrap();
    let err = layers.layer(&broken).unwrap_err();
    assert!(
        matches!(&err, LayerError::CorruptRecord { key, .. } if *key == broken.to_string()),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::DataCorruption);
    assert!(matches!(
        layers.get(&broken),
        Err(LayerError::CorruptRecord { .. })
    ));
    assert_eq!(
        layers.map().unwrap().keys().collect::<Vec<_>>(),
        [good.chain_id()]
    );
    assert_eq!(layers.len().unwrap(), 2, "every record counts");
    // A child registered on it cannot be: its parent does not read.
    assert!(matches!(
        layers.register(NewLayer::new(diff(2), 1), Some(&broken)),
        Err(LayerError::CorruptRecord { .. })
    ));
}

/// Writes a layer record by hand, as main's code did (no derived records).
fn put_layer(
    batch: &mut Batch,
    diff_id: &Digest,
    parent: Option<&ChainId>,
    blob: Option<&BlobRef>,
) -> ChainId {
    let chain = match parent {
        None => ChainId::base(diff_id.clone()),
        Some(parent) => parent.child(diff_id),
    };
    let value = serde_json::json!({
        "diff_id": diff_id,
        "parent": parent,
        "size": 1,
        "blob": blob.map(|b| serde_json::json!({
            "digest": b.digest, "size": b.size, "media_type": b.media_type,
        })),
    });
    batch.put("layers", chain.as_str(), value.to_string().into_bytes());
    chain
}

fn sorted(mut problems: Vec<LayerProblem>) -> Vec<LayerProblem> {
    problems.sort_by_key(|p| format!("{p:?}"));
    problems
}

fn every_problem_is_detected_and_derived_ones_repaired<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = LayerStore::open(backend.clone()).unwrap();
    let b1 = blob_of(&*backend, b"blob one");
    let b2 = blob_of(&*backend, b"blob two");
    let l0 = layers
        .register(NewLayer::new(diff(0), 1).with_blob(b1.clone()), None)
        .unwrap();
    let l1 = layers
        .register(
            NewLayer::new(diff(1), 1).with_blob(b2.clone()),
            Some(l0.chain_id()),
        )
        .unwrap();
    assert_eq!(layers.check().unwrap(), []);
    let (l0, l1) = (l0.chain_id().clone(), l1.chain_id().clone());

    let unreadable = ChainId::base(diff(60));
    let mismatched = ChainId::base(diff(61));
    let missing_parent = ChainId::base(diff(50));
    let ghost = ChainId::base(diff(70));
    let gone_child = ChainId::base(diff(71));
    let gone_user = ChainId::base(diff(72));
    let mut batch = Batch::new();
    batch.put("layers", unreadable.as_str(), b"not json".to_vec());
    // Parses, but diff(62) as a bottom layer is another chain.
    put_layer(&mut batch, &diff(62), None, None);
    let record = batch.ops().last().cloned();
    let Some(imgstore_backend::Op::Put { value, .. }) = record else {
        panic!("a put")
    };
    batch.put("layers", mismatched.as_str(), value);
    batch.delete("layers", ChainId::base(diff(62)).as_str());
    let orphan = put_layer(&mut batch, &diff(51), Some(&missing_parent), None);
    batch
        .put("layer-holders", &format!("{ghost} pin"), Vec::new())
        .delete("layer-holders", &format!("{l0} layer:{l1}"))
        .put(
            "layer-holders",
            &format!("{l0} layer:{gone_child}"),
            Vec::new(),
        )
        .delete("layer-blobs", &format!("{} {l1}", b2.digest))
        .put(
            "layer-blobs",
            &format!("{} {gone_user}", b1.digest),
            Vec::new(),
        )
        .put("layer-holders", "garbage", Vec::new())
        .put("layer-holders", &format!("{l0} layer:nonsense"), Vec::new())
        .put("layer-blobs", "garbage", Vec::new());
    backend.apply(&batch).unwrap();

    // `scan` takes record keys unchecked: the mismatched record is in it
    // and not in `map`; the unreadable one is in neither. Both in key order.
    let mut scanned = Vec::new();
    layers
        .scan(&mut |layer| scanned.push(layer.chain_id().clone()))
        .unwrap();
    let mapped: Vec<ChainId> = layers.map().unwrap().into_keys().collect();
    assert!(scanned.contains(&mismatched) && !mapped.contains(&mismatched));
    assert!(!scanned.contains(&unreadable) && !mapped.contains(&unreadable));
    let mut without_mismatched = scanned.clone();
    without_mismatched.retain(|c| *c != mismatched);
    assert_eq!(without_mismatched, mapped);

    let problems = layers.check().unwrap();
    let reason = problems
        .iter()
        .find_map(|p| match p {
            LayerProblem::UnreadableRecord { key, reason } if *key == unreadable.to_string() => {
                Some(reason.clone())
            }
            _ => None,
        })
        .expect("the unreadable record is reported");
    assert!(reason.starts_with("record does not parse: "), "{reason}");
    let primary = vec![
        LayerProblem::UnreadableRecord {
            key: unreadable.to_string(),
            reason,
        },
        LayerProblem::ChainMismatch {
            chain_id: mismatched.clone(),
            computed: ChainId::base(diff(62)),
        },
        LayerProblem::MissingParent {
            chain_id: orphan.clone(),
            parent: missing_parent.clone(),
        },
        LayerProblem::HolderOnMissingLayer {
            chain_id: ghost.clone(),
            holder: "pin".into(),
        },
        LayerProblem::MalformedKey {
            bucket: "layer-holders",
            key: "garbage".into(),
        },
    ];
    let derived = vec![
        LayerProblem::MissingChildLink {
            parent: l0.clone(),
            child: l1.clone(),
        },
        LayerProblem::DanglingChildLink {
            parent: l0.clone(),
            child: gone_child.clone(),
        },
        LayerProblem::MissingBlobUser {
            blob: b2.digest.clone(),
            chain_id: l1.clone(),
        },
        LayerProblem::DanglingBlobUser {
            blob: b1.digest.clone(),
            chain_id: gone_user.clone(),
        },
        LayerProblem::MalformedKey {
            bucket: "layer-holders",
            key: format!("{l0} layer:nonsense"),
        },
        LayerProblem::MalformedKey {
            bucket: "layer-blobs",
            key: "garbage".into(),
        },
    ];
    assert!(primary.iter().all(|p| !p.is_repairable()));
    assert!(derived.iter().all(LayerProblem::is_repairable));
    let all: Vec<LayerProblem> = primary.iter().chain(&derived).cloned().collect();
    assert_eq!(sorted(problems), sorted(all));
    assert_eq!(
        LayerProblem::MissingChildLink {
            parent: l0.clone(),
            child: l1.clone()
        }
        .to_string(),
        format!("layer {l0}: holder of child layer {l1} missing")
    );
    assert_eq!(
        LayerProblem::MissingParent {
            chain_id: orphan.clone(),
            parent: missing_parent.clone()
        }
        .to_string(),
        format!("layer {orphan}: parent layer {missing_parent} missing")
    );

    assert_eq!(layers.repair_derived().unwrap(), derived.len());
    assert_eq!(sorted(layers.check().unwrap()), sorted(primary));
    assert_eq!(layers.repair_derived().unwrap(), 0, "idempotent");
    // Primary records are reported, never deleted.
    assert!(
        backend
            .get_record("layers", unreadable.as_str())
            .unwrap()
            .is_some()
    );
    assert_eq!(
        keys(&*backend, "layer-holders", &format!("{ghost} ")).len(),
        1
    );
    // The repaired link keeps l0 while l1 lives.
    assert!(layers.release(&l0).unwrap().is_empty());
    assert_eq!(layers.release(&l1).unwrap().len(), 2);
    assert!(!backend.contains(&b2.digest).unwrap());
    assert!(!backend.contains(&b1.digest).unwrap());
}

fn store_without_derived_records_works_after_repair<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let shared = blob_of(&*backend, b"shared by base and one child");
    // As main's code wrote them: layer records and named holders only.
    let mut batch = Batch::new();
    let base = put_layer(&mut batch, &diff(0), None, Some(&shared));
    let left = put_layer(&mut batch, &diff(1), Some(&base), Some(&shared));
    let right = put_layer(&mut batch, &diff(2), Some(&base), None);
    let image = format!("image:{}", "12".repeat(32));
    batch
        .put("layer-holders", &format!("{left} {image}"), Vec::new())
        .put("layer-holders", &format!("{right} pin"), Vec::new());
    backend.apply(&batch).unwrap();

    let layers = LayerStore::open(backend.clone()).unwrap();
    assert_eq!(
        sorted(layers.check().unwrap()),
        sorted(vec![
            LayerProblem::MissingChildLink {
                parent: base.clone(),
                child: left.clone()
            },
            LayerProblem::MissingChildLink {
                parent: base.clone(),
                child: right.clone()
            },
            LayerProblem::MissingBlobUser {
                blob: shared.digest.clone(),
                chain_id: base.clone()
            },
            LayerProblem::MissingBlobUser {
                blob: shared.digest.clone(),
                chain_id: left.clone()
            },
        ])
    );
    assert_eq!(layers.repair_derived().unwrap(), 4);
    assert_eq!(layers.check().unwrap(), []);
    assert_eq!(layers.references(&base).unwrap(), Some(2));

    let removed = layers.unhold(&right, "pin").unwrap();
    assert_eq!(removed.len(), 1, "base stays for left");
    assert!(layers.layer(&base).unwrap().is_some());
    let removed: Vec<ChainId> = layers
        .unhold(&left, &image)
        .unwrap()
        .into_iter()
        .map(|m| m.chain_id)
        .collect();
    assert_eq!(removed, [left.clone(), base.clone()]);
    assert!(!backend.contains(&shared.digest).unwrap());
    assert!(layers.is_empty().unwrap());
    assert_eq!(layers.check().unwrap(), []);
}
