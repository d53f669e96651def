//! The image store over its records (issue 13): open reads nothing, two
//! stores over one backend agree at once, short IDs are bounded probes,
//! summaries are what the configs and layers give, and `check` /
//! `rebuild_index` find and repair every drift.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use imgstore_backend::{
    Batch, BlobInfo, BlobReader, RecordStore, Result as BackendResult, StoreBackend,
};
use imgstore_digest::Digest;
use imgstore_image::{
    CHILDREN_BUCKET, IMAGES_BUCKET, ImageError, ImageId, ImageProblem, ImageStore, SUMMARY_FORMAT,
    Store, Summary,
};
use imgstore_layer::{ChainId, LayerGetReleaser, LayerStore, NewLayer};
use imgstore_sqlite::SqliteBackend;

/// A backend that counts every call, by method name.
struct Counting {
    inner: SqliteBackend,
    calls: std::sync::Mutex<BTreeMap<&'static str, usize>>,
    total: AtomicUsize,
}

impl Counting {
    fn open(dir: &Path) -> Arc<Counting> {
        Arc::new(Counting {
            inner: SqliteBackend::open(dir.join("store.db")).unwrap(),
            calls: Default::default(),
            total: AtomicUsize::new(0),
        })
    }
    fn count(&self, what: &'static str) {
        self.total.fetch_add(1, Ordering::SeqCst);
        *self.calls.lock().unwrap().entry(what).or_default() += 1;
    }
    /// The calls since the last `take`, by name.
    fn take(&self) -> BTreeMap<&'static str, usize> {
        self.total.store(0, Ordering::SeqCst);
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl StoreBackend for Counting {
    fn walk(&self, visit: &mut dyn FnMut(&Digest) -> BackendResult<()>) -> BackendResult<()> {
        self.count("walk");
        self.inner.walk(visit)
    }
    fn get(&self, digest: &Digest) -> BackendResult<Vec<u8>> {
        self.count("get");
        self.inner.get(digest)
    }
    fn set(&self, data: &[u8]) -> BackendResult<Digest> {
        self.count("set");
        self.inner.set(data)
    }
    fn delete(&self, digest: &Digest) -> BackendResult<()> {
        self.count("delete");
        self.inner.delete(digest)
    }
    fn set_metadata(&self, digest: &Digest, key: &str, value: &[u8]) -> BackendResult<()> {
        self.count("set_metadata");
        self.inner.set_metadata(digest, key, value)
    }
    fn get_metadata(&self, digest: &Digest, key: &str) -> BackendResult<Vec<u8>> {
        self.count("get_metadata");
        self.inner.get_metadata(digest, key)
    }
    fn delete_metadata(&self, digest: &Digest, key: &str) -> BackendResult<()> {
        self.count("delete_metadata");
        self.inner.delete_metadata(digest, key)
    }
    fn contains(&self, digest: &Digest) -> BackendResult<bool> {
        self.count("contains");
        self.inner.contains(digest)
    }
    fn size(&self, digest: &Digest) -> BackendResult<u64> {
        self.count("size");
        self.inner.size(digest)
    }
    fn open_blob(&self, digest: &Digest) -> BackendResult<BlobReader> {
        self.count("open_blob");
        self.inner.open_blob(digest)
    }
    fn get_many(&self, digests: &[Digest]) -> Vec<BackendResult<Vec<u8>>> {
        self.count("get_many");
        self.inner.get_many(digests)
    }
    fn get_metadata_many(&self, digests: &[Digest], key: &str) -> Vec<BackendResult<Vec<u8>>> {
        self.count("get_metadata_many");
        self.inner.get_metadata_many(digests, key)
    }
    fn write_blob(
        &self,
        expected: Option<&Digest>,
        reader: &mut dyn Read,
    ) -> BackendResult<BlobInfo> {
        self.count("write_blob");
        self.inner.write_blob(expected, reader)
    }
}

impl RecordStore for Counting {
    fn get_record(&self, bucket: &str, key: &str) -> BackendResult<Option<Vec<u8>>> {
        self.count("get_record");
        self.inner.get_record(bucket, key)
    }
    fn scan_records(
        &self,
        bucket: &str,
        prefix: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> BackendResult<()>,
    ) -> BackendResult<()> {
        self.count("scan_records");
        self.inner.scan_records(bucket, prefix, visit)
    }
    fn apply(&self, batch: &Batch) -> BackendResult<()> {
        self.count("apply");
        self.inner.apply(batch)
    }
    fn first_records(
        &self,
        bucket: &str,
        prefix: &str,
        limit: usize,
    ) -> BackendResult<Vec<(String, Vec<u8>)>> {
        self.count("first_records");
        self.inner.first_records(bucket, prefix, limit)
    }
}

fn layer_store<B: StoreBackend + RecordStore>(backend: &Arc<B>) -> Arc<LayerStore<B>> {
    Arc::new(LayerStore::open(backend.clone()).unwrap())
}

fn config(i: usize, diff_ids: &[&Digest]) -> String {
    let ids: Vec<String> = diff_ids.iter().map(|d| format!("\"{d}\"")).collect();
    format!(
        r#"{{"comment":"image {i}","created":"2024-01-0{}T00:00:00Z","os":"linux","architecture":"arm64","variant":"v8","config":{{"Labels":{{"n":"{i}"}}}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#,
        i % 9 + 1,
        ids.join(",")
    )
}

#[test]
fn open_over_many_images_reads_nothing_and_a_get_reads_two_records() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Counting::open(dir.path());
    let layers = layer_store(&backend);
    let diff = Digest::from_bytes(b"base");
    layers
        .register(NewLayer::new(diff.clone(), 7), None)
        .unwrap();
    let ids: Vec<ImageId> = {
        let store = Store::open(backend.clone(), layers.clone()).unwrap();
        (0..300)
            .map(|i| store.create(config(i, &[&diff]).as_bytes()).unwrap())
            .collect()
    };
    backend.take();
    let store = Store::open(backend.clone(), layers.clone()).unwrap();
    assert_eq!(backend.take(), BTreeMap::new(), "open reads nothing");
    let image = store.get(&ids[123]).unwrap();
    assert_eq!(image.comment(), Some("image 123"));
    assert_eq!(
        backend.take(),
        BTreeMap::from([("get", 1), ("get_record", 1)]),
        "the summary, then the config"
    );
    assert_eq!(
        store.get_parent(&ids[5]).unwrap_err().to_string(),
        format!("image {} has no parent (failed to read metadata)", ids[5])
    );
    assert_eq!(backend.take(), BTreeMap::from([("get_record", 1)]));
    assert_eq!(store.summaries().unwrap().len(), 300);
    assert_eq!(
        backend.take(),
        BTreeMap::from([("scan_records", 1)]),
        "a listing is one scan, no config read"
    );
}

#[test]
fn two_stores_over_one_backend_see_each_others_changes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("store.db")).unwrap());
    let layers = layer_store(&backend);
    let diff = Digest::from_bytes(b"shared");
    let layer = layers
        .register(NewLayer::new(diff.clone(), 3), None)
        .unwrap();
    let one = Store::open(backend.clone(), layers.clone()).unwrap();
    let two = Store::open(backend.clone(), layers.clone()).unwrap();
    let id = one.create(config(1, &[&diff]).as_bytes()).unwrap();
    assert_eq!(two.get(&id).unwrap().id(), &id);
    assert_eq!(two.search(&id.short()[..12]).unwrap(), id);
    let child = two.create(config(2, &[]).as_bytes()).unwrap();
    two.set_parent(&child, &id).unwrap();
    assert_eq!(one.children(&id).unwrap(), std::slice::from_ref(&child));
    assert_eq!(
        one.heads().unwrap().into_keys().collect::<Vec<_>>(),
        std::slice::from_ref(&child)
    );
    layers.release(layer.chain_id()).unwrap();
    let freed = two.delete(&id).unwrap();
    assert_eq!(freed.len(), 1, "the image's hold was the last reference");
    assert!(one.get(&id).unwrap_err().is_not_found());
    assert!(matches!(
        one.get_parent(&child),
        Err(ImageError::NoParent { .. })
    ));
    assert_eq!(one.len().unwrap(), 1);
    assert!(one.check().unwrap().is_empty());
}

#[test]
fn search_by_prefix_is_one_bounded_probe() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Counting::open(dir.path());
    let store = Store::open(backend.clone(), layer_store(&backend)).unwrap();
    let ids: Vec<ImageId> = (0..64)
        .map(|i| store.create(config(i, &[]).as_bytes()).unwrap())
        .collect();
    let shared = ids
        .iter()
        .find_map(|a| {
            ids.iter()
                .any(|b| b != a && b.short()[..1] == a.short()[..1])
                .then(|| a.short()[..1].to_owned())
        })
        .unwrap();
    let unique = &ids[0];
    let prefix = (1..=64)
        .map(|n| &unique.short()[..n])
        .find(|p| ids.iter().filter(|id| id.short().starts_with(p)).count() == 1)
        .unwrap();
    let absent = (0..16)
        .map(|n| format!("{n:x}"))
        .flat_map(|a| (0..16).map(move |b| format!("{a}{b:x}")))
        .find(|p| !ids.iter().any(|id| id.short().starts_with(p.as_str())))
        .unwrap();
    backend.take();
    for (term, expected) in [
        (prefix.to_owned(), Ok(unique.clone())),
        (format!("sha256:{prefix}"), Ok(unique.clone())),
        (unique.to_string(), Ok(unique.clone())),
        (
            shared.clone(),
            Err(format!(
                "ambiguous image ID {shared:?}: it matches more than one image"
            )),
        ),
        (absent.clone(), Err(format!("No such image: {absent}"))),
    ] {
        let found = store.search(&term).map_err(|e| e.to_string());
        assert_eq!(found, expected, "{term}");
        assert_eq!(
            backend.take(),
            BTreeMap::from([("first_records", 1)]),
            "{term}: one probe of at most two records"
        );
    }
    // Not hex, another algorithm, an empty part: not found without a read.
    for term in ["XYZ", "sha512:abc", "sha256:", ":abc", "nope:abc"] {
        let err = store.search(term).unwrap_err();
        assert!(err.is_not_found(), "{term}: {err}");
        assert_eq!(err.to_string(), format!("No such image: {term}"));
    }
    assert_eq!(backend.take(), BTreeMap::new());
}

/// The corpus's docker save, imported by hand: each layer registered with
/// its regular-file bytes (Docker's size), each config created.
fn load_docker_save(
    store: &Store<SqliteBackend, LayerStore<SqliteBackend>>,
    layers: &LayerStore<SqliteBackend>,
) -> Vec<(ImageId, Vec<u8>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/images/docker/docker-save-multi.docker.tar");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut links: HashMap<String, String> = HashMap::new();
    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if entry.header().entry_type().is_symlink() {
            let target = entry
                .link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let dir = Path::new(&name).parent().unwrap();
            let resolved = dir.join(target);
            // `../<id>/layer.tar` from `<id2>/layer.tar`.
            let normal: Vec<_> = resolved.components().fold(Vec::new(), |mut parts, c| {
                match c {
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    std::path::Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
                    _ => {}
                }
                parts
            });
            links.insert(name, normal.join("/"));
        } else {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.insert(name, data);
        }
    }
    let file = |name: &str| -> &Vec<u8> {
        let name = links.get(name).map_or(name, String::as_str);
        files
            .get(name)
            .unwrap_or_else(|| panic!("{name} in the archive"))
    };
    let manifest: serde_json::Value = serde_json::from_slice(file("manifest.json")).unwrap();
    let mut created = Vec::new();
    for image in manifest.as_array().unwrap() {
        let mut parent: Option<ChainId> = None;
        for layer in image["Layers"].as_array().unwrap() {
            let tar_bytes = file(layer.as_str().unwrap());
            let mut files_size = 0;
            for entry in tar::Archive::new(tar_bytes.as_slice()).entries().unwrap() {
                let entry = entry.unwrap();
                if entry.header().entry_type().is_file() {
                    files_size += entry.header().size().unwrap();
                }
            }
            let new = NewLayer::new(Digest::from_bytes(tar_bytes), tar_bytes.len() as u64)
                .with_files_size(files_size);
            let registered = layers.register(new, parent.as_ref()).unwrap();
            parent = Some(registered.chain_id().clone());
        }
        let config = file(image["Config"].as_str().unwrap()).clone();
        created.push((store.create(&config).unwrap(), config));
        if let Some(top) = &parent {
            layers.release(top).unwrap();
        }
    }
    created
}

#[test]
fn summaries_of_the_corpus_images_are_what_docker_reports() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("store.db")).unwrap());
    let layers = layer_store(&backend);
    let store = Store::open(backend.clone(), layers.clone()).unwrap();
    let created = load_docker_save(&store, &layers);
    let expected_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/images/expected/docker-view.json");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(expected_path).unwrap()).unwrap();
    let sizes: HashMap<String, u64> = expected["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(created.len(), 3);
    for (id, raw) in &created {
        let summary = store.summary(id).unwrap().unwrap();
        let config: serde_json::Value = serde_json::from_slice(raw).unwrap();
        let image = store.get(id).unwrap();
        let labels: BTreeMap<String, String> = config["config"]["Labels"]
            .as_object()
            .map(|l| {
                l.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(
            summary,
            Summary {
                parent: None,
                created: config["created"].as_str().map(str::to_owned),
                top: image.top_chain_id().cloned(),
                size: sizes[id.as_str()],
                blobs_size: 0,
                config_size: raw.len() as u64,
                os: config["os"].as_str().unwrap().to_owned(),
                architecture: config["architecture"].as_str().unwrap().to_owned(),
                variant: config["variant"].as_str().map(str::to_owned),
                labels,
            },
            "{id}"
        );
    }
    // Exact figures, from expected/docker-view.json.
    let by_size: Vec<u64> = created
        .iter()
        .map(|(id, _)| store.summary(id).unwrap().unwrap().size)
        .collect();
    assert_eq!(by_size, [82, 90, 111]);
    assert!(store.check().unwrap().is_empty());
}

#[test]
fn summary_sizes_fall_back_to_the_layer_size_and_sum_the_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("store.db")).unwrap());
    let layers = layer_store(&backend);
    let (a, b) = (Digest::from_bytes(b"a"), Digest::from_bytes(b"b"));
    let blob = imgstore_layer::BlobRef {
        digest: backend.set(&[7u8; 40]).unwrap(),
        size: 40,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    let base = layers
        .register(
            NewLayer::new(a.clone(), 100)
                .with_files_size(30)
                .with_blob(blob),
            None,
        )
        .unwrap();
    layers
        .register(NewLayer::new(b.clone(), 200), Some(base.chain_id()))
        .unwrap();
    let store = Store::open(backend, layers).unwrap();
    let id = store.create(config(1, &[&a, &b]).as_bytes()).unwrap();
    let summary = store.summary(&id).unwrap().unwrap();
    assert_eq!((summary.size, summary.blobs_size), (230, 40));
    assert_eq!(summary.created.as_deref(), Some("2024-01-02T00:00:00Z"));
    assert_eq!(summary.architecture, "arm64");
    assert_eq!(summary.variant.as_deref(), Some("v8"));
    assert_eq!(
        summary.labels,
        BTreeMap::from([("n".to_owned(), "1".to_owned())])
    );
    // The record is the documented binary value.
    let stored = store
        .backend()
        .get_record(IMAGES_BUCKET, id.digest().encoded())
        .unwrap()
        .unwrap();
    assert_eq!(stored[0], SUMMARY_FORMAT);
    assert_eq!(Summary::decode("k", &stored).unwrap(), summary);
    assert_eq!(stored, summary.encode());
}

#[test]
fn every_problem_is_detected_and_the_repairable_ones_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("store.db")).unwrap());
    let layers = layer_store(&backend);
    let diff = Digest::from_bytes(b"kept");
    let kept = layers
        .register(NewLayer::new(diff.clone(), 5), None)
        .unwrap();
    let store = Store::open(backend.clone(), layers.clone()).unwrap();
    let put = |bucket: &str, key: &str, value: Vec<u8>| {
        let mut batch = Batch::new();
        batch.put(bucket, key, value);
        backend.apply(&batch).unwrap();
    };
    let del = |bucket: &str, key: &str| {
        let mut batch = Batch::new();
        batch.delete(bucket, key);
        backend.apply(&batch).unwrap();
    };
    let hex = |id: &ImageId| id.digest().encoded().to_owned();
    let ids: Vec<ImageId> = (0..6)
        .map(|i| store.create(config(i, &[&diff]).as_bytes()).unwrap())
        .collect();
    store.set_parent(&ids[1], &ids[0]).unwrap();
    assert!(store.check().unwrap().is_empty());

    // Unindexed: a config stored by a create that stopped.
    let unindexed = ImageId::from(backend.set(config(10, &[]).as_bytes()).unwrap());
    // Unusable: a config that is no image.
    let unusable = ImageId::from(backend.set(b"not json").unwrap());
    // Missing config under a summary.
    let summary_2 = store.summary(&ids[2]).unwrap().unwrap();
    backend.delete(ids[2].digest()).unwrap();
    // Broken config under a summary: a foreign OS, listed by hand.
    let windows = ImageId::from(
        backend
            .set(br#"{"os":"windows","rootfs":{"type":"layers"}}"#)
            .unwrap(),
    );
    put(IMAGES_BUCKET, &hex(&windows), summary_2.encode());
    // A layer missing under a listed image.
    let gone = Digest::from_bytes(b"gone");
    let lost = ImageId::from(backend.set(config(11, &[&gone]).as_bytes()).unwrap());
    put(IMAGES_BUCKET, &hex(&lost), summary_2.encode());
    // A stale summary.
    let mut stale = store.summary(&ids[3]).unwrap().unwrap();
    let expected_3 = stale.clone();
    stale.size = 999;
    put(IMAGES_BUCKET, &hex(&ids[3]), stale.encode());
    // A hold dropped (the fixture's reference keeps the layer).
    layers
        .unhold(kept.chain_id(), &format!("image:{}", hex(&ids[4])))
        .unwrap();
    // A children link lost, and one that nothing gives.
    del(
        CHILDREN_BUCKET,
        &format!("{} {}", hex(&ids[0]), hex(&ids[1])),
    );
    put(
        CHILDREN_BUCKET,
        &format!("{} {}", hex(&ids[5]), hex(&ids[4])),
        Vec::new(),
    );
    // An unreadable record.
    put(IMAGES_BUCKET, "zzz", b"{}".to_vec());
    // A cycle in the metadata: 5 -> 5.
    backend
        .set_metadata(ids[5].digest(), "parent", ids[5].as_str().as_bytes())
        .unwrap();

    let problems = store.check().unwrap();
    let top = kept.chain_id().clone();
    let expected = vec![ImageProblem::BadRecord {
        bucket: IMAGES_BUCKET,
        key: "zzz".into(),
        reason: "the key is not 64 hex digits".into(),
    }];
    let mut rest: Vec<ImageProblem> = vec![
        ImageProblem::MissingConfig { id: ids[2].clone() },
        ImageProblem::StaleSummary {
            id: ids[3].clone(),
            stored: Box::new(stale),
            expected: Box::new(expected_3),
        },
        ImageProblem::TopLayerNotHeld {
            id: ids[4].clone(),
            chain_id: top.clone(),
        },
        ImageProblem::BrokenConfig {
            id: windows.clone(),
            reason: "image operating system \"windows\" cannot be used on this platform".into(),
        },
        ImageProblem::LayerMissing {
            id: lost.clone(),
            chain_id: ChainId::base(gone.clone()),
        },
        ImageProblem::UnindexedConfig {
            id: unindexed.clone(),
        },
        ImageProblem::UnusableConfig {
            id: unusable.clone(),
            reason: "invalid image JSON: expected ident at line 1 column 2".into(),
        },
        ImageProblem::ParentCycle {
            id: ids[5].clone(),
            parent: ids[5].clone(),
        },
        ImageProblem::MissingChildLink {
            parent: ids[0].clone(),
            child: ids[1].clone(),
        },
        ImageProblem::DanglingChildLink {
            parent: ids[5].clone(),
            child: ids[4].clone(),
        },
    ];
    let mut found = problems.clone();
    found.sort_by_key(|p| format!("{p:?}"));
    rest.extend(expected);
    rest.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(found, rest);
    for problem in &problems {
        let repairable = !matches!(
            problem,
            ImageProblem::UnusableConfig { .. }
                | ImageProblem::BrokenConfig { .. }
                | ImageProblem::LayerMissing { .. }
                | ImageProblem::ParentCycle { .. }
        );
        assert_eq!(problem.is_repairable(), repairable, "{problem}");
    }

    assert!(store.rebuild_index().unwrap() > 0);
    let mut after = store.check().unwrap();
    after.sort_by_key(|p| format!("{p:?}"));
    let mut left = vec![
        ImageProblem::UnusableConfig {
            id: windows.clone(),
            reason: "image operating system \"windows\" cannot be used on this platform".into(),
        },
        ImageProblem::UnusableConfig {
            id: lost.clone(),
            reason: format!("layer {} does not exist", ChainId::base(gone)),
        },
        ImageProblem::UnusableConfig {
            id: unusable,
            reason: "invalid image JSON: expected ident at line 1 column 2".into(),
        },
        ImageProblem::ParentCycle {
            id: ids[5].clone(),
            parent: ids[5].clone(),
        },
    ];
    left.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(after, left, "only what data loss or gc must settle is left");
    assert!(after.iter().all(|p| !p.is_repairable()));
    assert_eq!(store.rebuild_index().unwrap(), 0, "idempotent");
    // What the repair restored reads back.
    assert_eq!(store.get(&unindexed).unwrap().comment(), Some("image 10"));
    assert_eq!(store.children(&ids[0]).unwrap(), [ids[1].clone()]);
    assert!(store.children(&ids[5]).unwrap().is_empty());
    assert_eq!(store.summary(&ids[3]).unwrap().unwrap().size, 5);
    assert!(
        layers
            .holders(&top)
            .unwrap()
            .contains(&format!("image:{}", hex(&ids[4])))
    );
    assert!(store.summary(&ids[2]).unwrap().is_none());
    assert!(store.get(&windows).unwrap_err().is_not_found());
}

#[test]
fn a_backend_written_the_old_way_works_after_rebuild_index() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path().join("store.db")).unwrap());
    let layers = layer_store(&backend);
    let (a, b) = (Digest::from_bytes(b"a"), Digest::from_bytes(b"b"));
    let base = layers.register(NewLayer::new(a.clone(), 10), None).unwrap();
    let top = layers
        .register(NewLayer::new(b.clone(), 20), Some(base.chain_id()))
        .unwrap();
    // What main's code wrote: configs and `parent` metadata, nothing else.
    let parent = ImageId::from(backend.set(config(1, &[&a]).as_bytes()).unwrap());
    let child = ImageId::from(backend.set(config(2, &[&a, &b]).as_bytes()).unwrap());
    backend
        .set_metadata(child.digest(), "parent", parent.as_str().as_bytes())
        .unwrap();
    let store = Store::open(backend.clone(), layers.clone()).unwrap();
    assert!(
        store.get(&child).unwrap_err().is_not_found(),
        "nothing indexed yet"
    );
    assert_eq!(
        store.check().unwrap().len(),
        3,
        "two unindexed configs, one missing link"
    );
    // Two summaries, one link, two holds.
    assert_eq!(store.rebuild_index().unwrap(), 5);
    assert_eq!(store.rebuild_index().unwrap(), 0);
    assert!(store.check().unwrap().is_empty());
    assert_eq!(store.get_parent(&child).unwrap(), parent);
    assert_eq!(
        store.children(&parent).unwrap(),
        std::slice::from_ref(&child)
    );
    assert_eq!(store.search(&child.short()[..12]).unwrap(), child);
    assert_eq!(store.summary(&child).unwrap().unwrap().size, 30);
    assert_eq!(
        store.heads().unwrap().into_keys().collect::<Vec<_>>(),
        std::slice::from_ref(&child)
    );
    // The holds keep the layers once the registrations let go.
    layers.release(top.chain_id()).unwrap();
    layers.release(base.chain_id()).unwrap();
    assert_eq!(layers.len().unwrap(), 2);
    assert!(
        store.delete(&child).unwrap().len() == 1,
        "b freed, a still held"
    );
    assert_eq!(store.delete(&parent).unwrap().len(), 1);
    assert!(layers.is_empty().unwrap());
    assert!(store.is_empty().unwrap());
    assert!(!backend.contains(child.digest()).unwrap());
}

#[test]
fn create_is_idempotent_and_completes_a_create_that_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Counting::open(dir.path());
    let layers = layer_store(&backend);
    let diff = Digest::from_bytes(b"top");
    let layer = layers
        .register(NewLayer::new(diff.clone(), 9), None)
        .unwrap();
    let store = Store::open(backend.clone(), layers.clone()).unwrap();
    let parent = store.create(config(1, &[]).as_bytes()).unwrap();
    let child_config = config(2, &[&diff]);
    // A create that stopped after the config and its `parent` metadata
    // (what a moby imagedb or a crash leaves): no summary, so no image.
    let child = ImageId::from(backend.set(child_config.as_bytes()).unwrap());
    backend
        .set_metadata(child.digest(), "parent", parent.as_str().as_bytes())
        .unwrap();
    assert!(store.get(&child).unwrap_err().is_not_found());
    assert!(store.children(&parent).unwrap().is_empty());
    // Creating it again completes it, with the link its metadata names.
    assert_eq!(store.create(child_config.as_bytes()).unwrap(), child);
    assert_eq!(store.get_parent(&child).unwrap(), parent);
    assert_eq!(
        store.children(&parent).unwrap(),
        std::slice::from_ref(&child)
    );
    assert_eq!(
        layers.holders(layer.chain_id()).unwrap(),
        [format!("image:{}", child.digest().encoded())]
    );
    assert!(store.check().unwrap().is_empty());
    // Creating an existing image reads its summary and writes nothing.
    backend.take();
    assert_eq!(store.create(child_config.as_bytes()).unwrap(), child);
    assert_eq!(backend.take(), BTreeMap::from([("get_record", 1)]));
}

#[test]
fn layer_holder_names_map_to_images_and_back() {
    let id = ImageId::of_config(b"{}");
    let holder = imgstore_image::layer_holder(&id);
    assert_eq!(holder, format!("image:{}", id.digest().encoded()));
    assert_eq!(imgstore_image::image_of_layer_holder(&holder), Some(id));
    for other in [
        "imgstore-gc",
        "image:",
        "image:abc",
        "layer:x",
        "image:sha256:0",
    ] {
        assert_eq!(
            imgstore_image::image_of_layer_holder(other),
            None,
            "{other}"
        );
    }
}
