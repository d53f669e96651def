//! Issue 12, item 10: one image with 10k names. Per-name work is O(log n)
//! (the CRI cache keeps an image's references in a ranked tree, an import
//! writes its names in one batch and resolves them in one pass), so this
//! runs in moments; before, the load took 31-80 s and every later command
//! as long again. No wall-clock assertion: the counts and answers must be
//! right (`examples/many_names.rs` measures the time).

use std::path::Path;

use imgstore::ImageQuery;
use serde_json::{Value, json};

mod common;

use common::{BACKENDS, corpus, expected_image, open};

const NAMES: usize = 10_000;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// `oci/main`'s blobs with an `index.json` naming `base` `NAMES` times.
fn many_names_layout(dir: &Path, base: &Value) -> Vec<String> {
    copy_dir(&corpus().join("oci/main"), dir);
    let names: Vec<String> = (0..NAMES)
        .map(|i| format!("registry.demo.test/demo/base:t{i:05}"))
        .collect();
    let manifests: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({
                "mediaType": base["manifest_media_type"],
                "digest": base["manifest_digest"],
                "size": base["manifest_size"],
                "annotations": {"org.opencontainers.image.ref.name": name},
            })
        })
        .collect();
    let index = json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("write index.json");
    names
}

#[test]
fn one_image_with_ten_thousand_names() {
    let base = expected_image(&corpus(), "base");
    let base_id = base["image_id"].as_str().expect("id").to_owned();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = dir.path().join("layout");
        let names = many_names_layout(&layout, &base);
        let root = dir.path().join("store");
        {
            let store = open(&root, backend);
            let imported = store.import_oci_layout(&layout).expect("import");
            // One image (however many entries the report lists for it).
            let ids: std::collections::BTreeSet<String> =
                imported.iter().map(|i| i.id.to_string()).collect();
            assert_eq!(
                ids.into_iter().collect::<Vec<_>>(),
                std::slice::from_ref(&base_id)
            );
            assert_eq!(store.names().expect("names").len(), NAMES);
        }
        // A fresh process's view: rebuilt from the records.
        let store = open(&root, backend);
        let images = store.images().expect("list images");
        assert_eq!(images.len(), 1, "{backend:?}");
        let mut references = images[0].references.clone();
        references.sort();
        assert_eq!(references, names, "{backend:?}");
        assert_eq!(
            store.cache().expect("cache").reference_count(&images[0].id),
            NAMES
        );

        store.tag(&names[0], "extra:v1").expect("tag");
        let view = store.inspect("extra:v1").expect("inspect");
        assert_eq!(view.id, base_id);
        assert_eq!(view.repo_tags.len(), NAMES + 1);
        assert_eq!(view.repo_tags[0], "extra:v1");
        assert!(
            !store
                .history(&names[NAMES - 1])
                .expect("history")
                .is_empty()
        );

        let report = store.remove(&names[1], false).expect("rmi a name");
        assert_eq!(report.untagged, std::slice::from_ref(&names[1]));
        assert_eq!(report.deleted, []);
        let report = store.untag("extra:v1").expect("untag");
        assert_eq!(report.image.map(|id| id.to_string()), Some(base_id.clone()));
        let listed = store.list_images(&ImageQuery::default()).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].references.len(), NAMES - 1, "{backend:?}");
        assert!(!listed[0].references.contains(&names[1]));
        let fsck = store.fsck(false).expect("fsck");
        assert!(fsck.is_clean(), "{backend:?}: {:?}", fsck.problems);
        assert_eq!(fsck.names_checked, NAMES - 1);

        // `rmi -f` by ID: every name in one batch, then the image.
        let report = store.remove(&base_id, true).expect("rmi -f");
        assert_eq!(report.untagged.len(), NAMES - 1, "{backend:?}");
        assert_eq!(report.deleted.len(), 1);
        assert_eq!(store.images().expect("list images"), []);
        assert_eq!(store.names().expect("names"), Vec::<String>::new());
        drop(store);
        assert_eq!(open(&root, backend).images().expect("list images"), []);
    }
}
