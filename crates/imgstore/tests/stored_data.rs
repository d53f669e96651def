//! Stored data that is odd or damaged never takes the store down: every
//! parser of what is on disk is total, and what cannot be read is reported
//! (issue 12, items 3, 13, 14 and 15), on both backends; and a dropped
//! SQLite store leaves nothing running that could write to its root again
//! (item 16).

use std::path::Path;

use imgstore::backend::StoreBackend;
use imgstore::digest::Digest;
use imgstore::image::{ImageId, ImageProblem, ImageStore};
use imgstore::{FsckProblem, ImageQuery, Store};
use serde_json::{Value, json};

mod common;

use common::{BACKENDS, open};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The value that used to panic the date parser: a multibyte character in
/// the offset, where a byte index fell inside it.
const BAD_TIME: &str = "2024-01-01T00:00:00+0é00";

fn write_blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = Digest::from_bytes(bytes);
    std::fs::write(layout.join("blobs/sha256").join(digest.encoded()), bytes).expect("blob");
    json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
}

/// A one-layer OCI layout named `name`, its config built from `config`
/// (rootfs added) and its layer one file of `content`; returns the config.
fn write_layout(layout: &Path, name: &str, mut config: Value, content: &[u8]) -> Vec<u8> {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, "file", content)
        .expect("tar");
    let tar = builder.into_inner().expect("tar");
    config["rootfs"] =
        json!({"type": "layers", "diff_ids": [Digest::from_bytes(&tar).to_string()]});
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let config = write_blob(layout, CONFIG, &config_bytes);
    let layer = write_blob(layout, TAR, &tar);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let mut manifest = write_blob(
        layout,
        MANIFEST,
        &serde_json::to_vec(&manifest).expect("json"),
    );
    manifest["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest]});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index.json");
    config_bytes
}

fn host_config() -> Value {
    json!({"architecture": std::env::consts::ARCH, "os": "linux"})
}

/// Every read a user makes of the store (`images`, `inspect`, `history`,
/// `layers`, `df`, `fsck`), with the bad time where the config has it.
fn read_everything(store: &Store, name: &str, id: &ImageId) {
    let listed = store.list_images(&ImageQuery::default()).expect("images");
    assert_eq!(listed.len(), 1);
    assert_eq!(&listed[0].id, id);
    assert_eq!(listed[0].created.as_deref(), Some(BAD_TIME));
    let inspect = store.inspect(name).expect("inspect");
    assert_eq!(inspect.created, BAD_TIME);
    let history = store.history(name).expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].created.as_deref(), Some("2024-01-01T00:00:00Z"));
    assert_eq!(history[1].created.as_deref(), Some(BAD_TIME));
    assert_eq!(history[1].size, 5);
    let layers = store.layer_usage().expect("layers");
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0].used_by, 1);
    let usage = store.disk_usage().expect("df");
    assert_eq!(usage.images.len(), 1);
    assert_eq!(usage.images[0].size, 5);
    let report = store.fsck(false).expect("fsck");
    assert!(report.is_clean(), "{:?}", report.problems);
    // `before`/`since` compare creation times: an unreadable one is the
    // epoch, not a crash.
    let filtered = store
        .list_images(&ImageQuery {
            all: true,
            filters: vec![format!("since={name}")],
        })
        .expect("images --filter since");
    assert!(filtered.is_empty());
}

#[test]
fn a_multibyte_character_in_created_breaks_no_reader() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = dir.path().join("layout");
        let mut config = host_config();
        config["created"] = json!(BAD_TIME);
        config["history"] = json!([
            {"created": BAD_TIME, "created_by": "ADD file /"},
            {"created": "2024-01-01T00:00:00Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
        ]);
        let _ = write_layout(&layout, "bad-time:latest", config, b"hello");
        let root = dir.path().join("store");
        let name = "bad-time:latest";
        let id = {
            let store = open(&root, backend);
            let imported = store.import_oci_layout(&layout).expect("import");
            assert_eq!(imported.len(), 1, "{backend:?}");
            let id = store.resolve(name).expect("resolve");
            read_everything(&store, name, &id);
            id
        };
        // And in the next process, as the CLI runs each command.
        let store = open(&root, backend);
        read_everything(&store, name, &id);
    }
}

#[test]
fn garbage_last_updated_is_reported_by_fsck_and_repaired() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = dir.path().join("layout");
        let _ = write_layout(&layout, "app:v1", host_config(), b"hello");
        let store = open(&dir.path().join("store"), backend);
        store.import_oci_layout(&layout).expect("import");
        let id = store.resolve("app:v1").expect("resolve");
        store
            .image_store()
            .backend()
            .set_metadata(id.digest(), "lastUpdated", b"not a time")
            .expect("write garbage");
        let err = store.image_store().get_last_updated(&id).unwrap_err();
        assert_eq!(
            err.kind(),
            imgstore::backend::ErrorKind::DataCorruption,
            "{backend:?}: {err}"
        );
        let report = store.fsck(false).expect("fsck");
        assert_eq!(
            report.problems,
            vec![FsckProblem::CorruptMetadata {
                image: id.clone(),
                key: "lastUpdated".into(),
                reason: "\"not a time\" is not an RFC 3339 time".into(),
            }],
            "{backend:?}"
        );
        assert_eq!(
            report.problems[0].to_string(),
            format!(
                "image {id}: metadata \"lastUpdated\" corrupt: \"not a time\" is not an RFC 3339 time"
            )
        );
        let repaired = store.fsck(true).expect("fsck --repair");
        assert_eq!(
            repaired.repairs,
            vec![format!("deleted metadata \"lastUpdated\" of image {id}")]
        );
        assert_eq!(
            store.image_store().get_last_updated(&id).expect("read"),
            None
        );
        assert!(store.fsck(false).expect("fsck").is_clean(), "{backend:?}");
        assert_eq!(
            store.images().expect("list images").len(),
            1,
            "the image stays"
        );
    }
}

#[test]
fn a_parent_cycle_on_disk_is_reported_and_set_parent_returns() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let mut ids = Vec::new();
        {
            let store = open(&root, backend);
            for (i, name) in ["a:1", "b:1", "c:1"].into_iter().enumerate() {
                let layout = dir.path().join(format!("layout{i}"));
                let mut config = host_config();
                config["comment"] = json!(name);
                let _ = write_layout(&layout, name, config, name.as_bytes());
                store.import_oci_layout(&layout).expect("import");
                ids.push(store.resolve(name).expect("resolve"));
            }
            ids.sort();
            // a <-> b, written as a moby imagedb can hold it.
            let images = store.image_store().backend();
            for (child, parent) in [(&ids[0], &ids[1]), (&ids[1], &ids[0])] {
                images
                    .set_metadata(child.digest(), "parent", parent.as_str().as_bytes())
                    .expect("write parent");
            }
            // The image records are derived from the metadata: index the
            // links as the migration of such a store does.
            store
                .image_store()
                .rebuild_index()
                .expect("rebuild the index");
        }
        let store = open(&root, backend);
        let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
        assert_eq!(store.images().expect("list images").len(), 3, "{backend:?}");
        assert_eq!(
            store.image_store().check().expect("check"),
            vec![ImageProblem::ParentCycle {
                id: b.clone(),
                parent: a.clone()
            }]
        );
        let report = store.fsck(false).expect("fsck");
        assert_eq!(
            report.problems,
            vec![FsckProblem::ParentCycle {
                image: b.clone(),
                parent: a.clone()
            }],
            "{backend:?}"
        );
        // Used to loop forever holding the writer lock.
        store
            .set_parent(c.as_str(), a.as_str())
            .expect("set_parent");
        let err = store.set_parent(b.as_str(), c.as_str()).unwrap_err();
        assert_eq!(
            err.kind(),
            imgstore::backend::ErrorKind::InvalidArgument,
            "{err}"
        );
        let repaired = store.fsck(true).expect("fsck --repair");
        assert_eq!(
            repaired.repairs,
            vec![format!("deleted metadata \"parent\" of image {b}")]
        );
        drop(store);
        let store = open(&root, backend);
        assert!(store.image_store().check().expect("check").is_empty());
        assert!(store.fsck(false).expect("fsck").is_clean(), "{backend:?}");
        assert_eq!(
            store.image_store().get_parent(a).expect("parent"),
            b.clone()
        );
        assert_eq!(
            store.image_store().get_parent(c).expect("parent"),
            a.clone()
        );
    }
}

/// The fs backend refuses symlinks in the store: an image whose config
/// path is a symlink (to the right bytes, outside the store) is stored for
/// real, not skipped because "present", and is there after reopen.
#[test]
fn an_image_created_over_a_symlinked_config_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    let config = write_layout(&layout, "app:v1", host_config(), b"hello");
    let id = ImageId::of_config(&config);
    let outside = dir.path().join("outside");
    std::fs::write(&outside, &config).expect("outside");
    let root = dir.path().join("store");
    drop(open(&root, imgstore::Backend::Fs));
    let link = root
        .join("imagedb/content/sha256")
        .join(id.digest().encoded());
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");
    {
        let store = open(&root, imgstore::Backend::Fs);
        store.import_oci_layout(&layout).expect("import");
        assert_eq!(store.resolve("app:v1").expect("resolve"), id);
    }
    assert!(std::fs::symlink_metadata(&link).expect("stat").is_file());
    let store = open(&root, imgstore::Backend::Fs);
    assert_eq!(store.resolve("app:v1").expect("resolve after reopen"), id);
    assert_eq!(store.images().expect("list images").len(), 1);
    assert!(store.fsck(false).expect("fsck").is_clean());
}

/// Threads of this process whose name starts with `prefix`.
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

#[test]
fn a_dropped_sqlite_store_never_recreates_its_deleted_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    let _ = write_layout(&layout, "app:v1", host_config(), b"hello");
    let root = dir.path().join("store");
    for round in 0..20 {
        {
            let store = open(&root, imgstore::Backend::Sqlite);
            store.import_oci_layout(&layout).expect("import");
            // Readers on several threads, so the pools open more connections.
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        let listed = store.list_images(&ImageQuery::default());
                        assert_eq!(listed.expect("images").len(), 1);
                        assert_eq!(store.inspect("app:v1").expect("inspect").os, "linux");
                        assert_eq!(store.disk_usage().expect("df").images.len(), 1);
                    });
                }
            });
            // The pools open their connections on one shared thread, not
            // on three r2d2 workers per database.
            assert_eq!(threads_named("r2d2-worker"), 0);
            assert_eq!(threads_named("imgstore-sqlite"), 1);
        }
        std::fs::remove_dir_all(&root).expect("remove the root");
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            !root.exists(),
            "round {round}: something recreated the root"
        );
    }
}
