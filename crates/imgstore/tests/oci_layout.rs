//! Importing the OCI layouts of the image corpus (`examples/images`
//! relative to the workspace root), on both backends.

use std::collections::{BTreeMap, BTreeSet};

use imgstore::backend::StoreBackend;
use imgstore::image::ImageStore;
use imgstore::layer::ChainId;
use serde_json::Value;

const MAIN_IMAGES: [&str; 4] = ["base", "sibling", "child", "withenv"];

mod common;

use common::{BACKENDS, corpus, expected_image, json, open, snapshot, strings};

#[test]
fn import_of_main_gives_the_expected_images_names_and_layers() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        let imported = store
            .import_oci_layout(corpus.join("oci/main"))
            .unwrap_or_else(|e| panic!("{backend:?}: import oci/main: {e}"));
        assert_eq!(imported.len(), 4, "{backend:?}");
        assert!(imported.iter().all(|i| i.created));

        let summaries = store.images().expect("list images");
        assert_eq!(summaries.len(), 4, "{backend:?}");
        for name in MAIN_IMAGES {
            let expected = expected_image(&corpus, name);
            let id = expected["image_id"].as_str().expect("image_id");
            let ref_names = strings(&expected["ref_names"]);
            for ref_name in &ref_names {
                assert_eq!(
                    store.resolve(ref_name).expect("resolve name").to_string(),
                    id
                );
            }
            let short = expected["image_id_short"].as_str().expect("short id");
            assert_eq!(
                store.resolve(short).expect("resolve short id").to_string(),
                id
            );

            let image = store
                .image_store()
                .get(&id.parse().expect("id"))
                .expect("image stored");
            let diff_ids: Vec<String> = image.diff_ids().iter().map(|d| d.to_string()).collect();
            assert_eq!(diff_ids, strings(&expected["diff_ids"]), "{name}");
            assert_eq!(
                image.top_chain_id().map(|c| c.to_string()).as_deref(),
                expected["top_chain_id"].as_str(),
                "{name}"
            );
            for chain in strings(&expected["chain_ids"]) {
                let chain: ChainId = chain.parse().expect("chain id");
                assert!(
                    store
                        .layers()
                        .layer(&chain)
                        .expect("layer records")
                        .is_some(),
                    "{name}: layer {chain}"
                );
            }

            let summary = summaries
                .iter()
                .find(|s| s.id.to_string() == id)
                .expect("listed");
            assert_eq!(summary.references, ref_names, "{name}");
            assert_eq!(
                Some(summary.content_size),
                expected["content_size"].as_u64(),
                "{name}"
            );
            assert_eq!(summary.created.as_deref(), expected["created"].as_str());
            assert!(!summary.pinned);
        }
    }
}

#[test]
fn import_of_main_shares_layers_as_expected() {
    let corpus = corpus();
    let sharing = json(corpus.join("expected/sharing.json"));
    // Each layer is held by the images whose top it is and by each distinct
    // layer stacked on it (moby's counting), which the expected chains give.
    let mut children: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut tops: BTreeMap<String, usize> = BTreeMap::new();
    for name in MAIN_IMAGES {
        let chains = strings(&expected_image(&corpus, name)["chain_ids"]);
        for pair in chains.windows(2) {
            children
                .entry(pair[0].clone())
                .or_default()
                .insert(pair[1].clone());
        }
        *tops
            .entry(chains.last().cloned().expect("a layer"))
            .or_default() += 1;
    }
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("import");
        assert_eq!(
            Some(store.layers().len().expect("layer records") as u64),
            sharing["distinct_chain_ids"].as_u64(),
            "{backend:?}"
        );
        for entry in sharing["chain_ids"].as_array().expect("chain_ids") {
            let chain_str = entry["chain_id"].as_str().expect("chain id");
            let chain: ChainId = chain_str.parse().expect("chain id");
            let expected = tops.get(chain_str).copied().unwrap_or(0)
                + children.get(chain_str).map_or(0, BTreeSet::len);
            assert_eq!(
                store.layers().references(&chain).expect("layer records"),
                Some(expected),
                "{chain}"
            );
            assert_eq!(
                strings(&entry["top_of"]).len(),
                tops.get(chain_str).copied().unwrap_or(0)
            );
        }
        let mut blobs = BTreeSet::new();
        for layer in store.layers().map().expect("layer records").values() {
            blobs.insert(layer.blob().expect("blob recorded").digest.to_string());
        }
        let expected_blobs: BTreeSet<String> = sharing["layer_blobs"]
            .as_array()
            .expect("layer_blobs")
            .iter()
            .filter_map(|b| b["digest"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(blobs, expected_blobs, "{backend:?}");
        for blob in &expected_blobs {
            assert!(
                store
                    .content()
                    .contains(&blob.parse().expect("digest"))
                    .expect("contains")
            );
        }
    }
}

#[test]
fn unterminated_umoci_layer_imports_with_its_expected_id() {
    let corpus = corpus();
    let expected = expected_image(&corpus, "quirk");
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        let imported = store
            .import_oci_layout(corpus.join("oci/quirk-unterminated"))
            .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(imported.len(), 1);
        assert_eq!(Some(imported[0].id.as_str()), expected["image_id"].as_str());
        assert_eq!(imported[0].names, strings(&expected["ref_names"]));
        let image = store.image_store().get(&imported[0].id).expect("image");
        let diff_ids: Vec<String> = image.diff_ids().iter().map(|d| d.to_string()).collect();
        assert_eq!(diff_ids, strings(&expected["diff_ids"]));
    }
}

#[test]
fn importing_twice_changes_nothing() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("first import");
        let before = snapshot(&store);
        let again = store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("second import");
        assert_eq!(again.len(), 4);
        assert!(again.iter().all(|i| !i.created), "{backend:?}");
        assert_eq!(snapshot(&store), before, "{backend:?}");
    }
}

#[test]
fn reopening_gives_the_same_images_names_and_layers() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let before = {
            let store = open(dir.path(), backend);
            store
                .import_oci_layout(corpus.join("oci/main"))
                .expect("import");
            store
                .import_oci_layout(corpus.join("oci/quirk-unterminated"))
                .expect("import quirk");
            snapshot(&store)
        };
        let store = open(dir.path(), backend);
        assert_eq!(snapshot(&store), before, "{backend:?}");
        assert_eq!(before.images.len(), 5);
        assert!(store.image_store().check().expect("check").is_empty());
        assert!(store.layers().check().expect("layer records").is_empty());
    }
}

#[test]
fn every_bad_layout_is_refused_and_leaves_the_store_unchanged() {
    let corpus = corpus();
    let bad = json(corpus.join("expected/bad.json"));
    let cases: Vec<&Value> = bad["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["input_kind"] == "oci-layout")
        .collect();
    assert_eq!(cases.len(), 5);
    for backend in BACKENDS {
        for preload in [false, true] {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open(dir.path(), backend);
            if preload {
                store
                    .import_oci_layout(corpus.join("oci/main"))
                    .expect("import");
            }
            let before = snapshot(&store);
            for case in &cases {
                let path = case["path"].as_str().expect("path");
                let err = match store.import_oci_layout(corpus.join(path)) {
                    Ok(imported) => panic!("{backend:?}: {path} imported: {imported:?}"),
                    Err(err) => err,
                };
                let kind = case["suggested_error_kind"].as_str().expect("kind");
                assert_eq!(
                    format!("{:?}", err.kind()),
                    kind,
                    "{backend:?} {path}: {err}"
                );
                let named = case["error_should_name"].as_str().expect("name");
                assert!(
                    err.to_string().contains(named),
                    "{path}: {err} does not name {named}"
                );
                assert_eq!(
                    snapshot(&store),
                    before,
                    "{backend:?} {path} (preload {preload})"
                );
            }
        }
    }
}
