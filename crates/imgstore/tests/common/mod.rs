//! Helpers shared by the facade's corpus tests: where the corpus is, how to
//! read its expected values, how to open a store, and a snapshot of
//! everything an operation may change.

#![allow(dead_code)] // each test file uses its own part

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imgstore::{Backend, Options, Store};
use serde_json::Value;

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Fs];

/// The image corpus kept in the repository (`examples/images`, a copy of
/// the shared corpus); a checkout without it fails, never skips.
pub fn corpus() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/images");
    assert!(
        dir.join("expected").is_dir(),
        "the image corpus is missing at {}: it is part of the repository",
        dir.display()
    );
    dir
}

pub fn json(path: PathBuf) -> Value {
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

pub fn expected_image(corpus: &Path, name: &str) -> Value {
    json(corpus.join("expected/images").join(format!("{name}.json")))
}

pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Imports the corpus inputs the README's first command loads: `oci/main`,
/// `oci/quirk-unterminated` and `docker/docker-save-multi.docker.tar`.
pub fn import_corpus(store: &Store, corpus: &Path) {
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import oci/main");
    store
        .import_oci_layout(corpus.join("oci/quirk-unterminated"))
        .expect("import quirk");
    store
        .import_archive(corpus.join("docker/docker-save-multi.docker.tar"))
        .expect("import docker save");
}

pub fn open(root: &Path, backend: Backend) -> Store {
    Store::open_with(
        root,
        Options {
            backend: Some(backend),
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("open {backend:?}: {e}"))
}

/// Everything an import may change, for comparing before and after.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub images: Vec<(String, Vec<String>, u64)>,
    pub names: BTreeMap<String, String>,
    pub layers: BTreeMap<String, Option<usize>>,
}

pub fn snapshot(store: &Store) -> Snapshot {
    let images = store
        .images()
        .expect("list images")
        .into_iter()
        .map(|s| (s.id.to_string(), s.references, s.size))
        .collect();
    let names = store
        .refs()
        .list(store.namespace(), &[])
        .expect("list names")
        .iter()
        .map(|r| (r.name.clone(), r.target.digest.to_string()))
        .collect();
    let layers = store
        .layers()
        .map()
        .expect("layer records")
        .keys()
        .map(|chain| {
            (
                chain.to_string(),
                store.layers().references(chain).expect("layer records"),
            )
        })
        .collect();
    Snapshot {
        images,
        names,
        layers,
    }
}
