//! Docker's per-layer size (the regular files' bytes of each layer tar),
//! computed while importing, against what real Docker reported for the
//! corpus (`expected/docker-view.json`): every input format, both backends.

use std::collections::BTreeMap;
use std::path::Path;

use imgstore::Store;
use imgstore::image::ImageStore;

mod common;

use common::{BACKENDS, corpus, json, open};

/// Every good input of the corpus, and how to import it.
const INPUTS: [(&str, bool); 7] = [
    ("oci/main", false),
    ("oci/quirk-unterminated", false),
    ("oci-archive/sibling.oci.tar", true),
    ("docker/base.docker.tar", true),
    ("docker/child.docker.tar", true),
    ("docker/docker-save-multi.docker.tar", true),
    ("oci/main", false), // again: nothing changes
];

/// Docker's SIZE per image ID, from docker-view.json.
fn docker_sizes(corpus: &Path) -> BTreeMap<String, u64> {
    let view = json(corpus.join("expected/docker-view.json"));
    view["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|i| {
            (
                i["id"].as_str().expect("id").to_owned(),
                i["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

/// The sum of the files sizes of the image's layers (all must be known).
fn image_files_size(store: &Store, id: &str) -> u64 {
    let image = store
        .image_store()
        .get(&id.parse().expect("id"))
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    let mut total = 0;
    let mut chain = image.top_chain_id().cloned();
    while let Some(chain_id) = chain {
        let layer = store
            .layers()
            .layer(&chain_id)
            .expect("layer records")
            .expect("layer stored");
        total += layer
            .files_size()
            .unwrap_or_else(|| panic!("{id}: layer {chain_id} has no files size"));
        chain = layer.parent().cloned();
    }
    total
}

#[test]
fn every_input_gives_dockers_image_sizes() {
    let corpus = corpus();
    let sizes = docker_sizes(&corpus);
    assert_eq!(sizes.len(), 5);
    for backend in BACKENDS {
        // Each input alone into an empty store.
        for (input, is_archive) in INPUTS {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = open(dir.path(), backend);
            let path = corpus.join(input);
            let imported = if is_archive {
                store.import_archive(&path)
            } else {
                store.import_oci_layout(&path)
            }
            .unwrap_or_else(|e| panic!("{backend:?}: {input}: {e}"));
            assert!(!imported.is_empty(), "{input}");
            for image in imported {
                let id = image.id.to_string();
                let want = sizes
                    .get(&id)
                    .unwrap_or_else(|| panic!("{id} not in docker-view"));
                assert_eq!(
                    image_files_size(&store, &id),
                    *want,
                    "{backend:?}: {input}: {id}"
                );
            }
        }
        // All inputs into one store: the five images, each with Docker's size.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        for (input, is_archive) in INPUTS {
            let path = corpus.join(input);
            if is_archive {
                store.import_archive(&path).expect("import");
            } else {
                store.import_oci_layout(&path).expect("import");
            }
        }
        let got: BTreeMap<String, u64> = store
            .images()
            .expect("list images")
            .into_iter()
            .map(|s| {
                let id = s.id.to_string();
                let size = image_files_size(&store, &id);
                (id, size)
            })
            .collect();
        assert_eq!(got, sizes, "{backend:?}");
        // Kept across reopening.
        drop(store);
        let store = open(dir.path(), backend);
        for (id, want) in &sizes {
            assert_eq!(image_files_size(&store, id), *want, "{backend:?}: reopened");
        }
    }
}
