//! Checks shared by the reliability campaigns (fault, crash, concurrency):
//! a store's invariants, recounted from scratch.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;

use imgstore::Store;
use imgstore::backend::StoreBackend;
use imgstore::image::ImageStore;

/// Everything that must hold in any store at rest, as a list of problems
/// (empty when consistent):
///
/// - each layer's reference count equals the recount from the images (one
///   per image whose top layer it is), its child layers and its holders;
/// - each image's top layer exists (no "layer does not exist");
/// - each layer's blob is in the content store;
/// - each name resolves to a stored image.
pub fn problems(store: &Store) -> Vec<String> {
    check(store, true)
}

fn check(store: &Store, disk: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let layers = store.layers().map().expect("layer records");
    let mut recount: BTreeMap<String, usize> = BTreeMap::new();
    for (id, image) in store.image_store().map().expect("map") {
        if let Some(top) = image.top_chain_id() {
            // The image's reference is its persistent `image:<hex>` hold,
            // counted with the holders below.
            let holder = format!("image:{}", id.digest().encoded());
            if !layers.contains_key(top) {
                problems.push(format!("image {id}: its top layer {top} does not exist"));
            } else if !store
                .layers()
                .holders(top)
                .expect("layer records")
                .contains(&holder)
            {
                problems.push(format!(
                    "image {id}: its top layer {top} is not held by {holder}"
                ));
            }
        }
    }
    for layer in layers.values() {
        if let Some(parent) = layer.parent() {
            *recount.entry(parent.to_string()).or_default() += 1;
        }
    }
    for (chain, layer) in &layers {
        let expected = recount.get(&chain.to_string()).copied().unwrap_or(0)
            + store.layers().holders(chain).expect("layer records").len();
        let counted = store
            .layers()
            .references(chain)
            .expect("layer records")
            .unwrap_or(0);
        if counted != expected {
            problems.push(format!(
                "layer {chain}: {counted} references, the images, children and holders make {expected}"
            ));
        }
        if let Some(blob) = layer.blob().filter(|_| disk) {
            match store.content().contains(&blob.digest) {
                Ok(true) => {}
                Ok(false) => problems.push(format!("layer {chain}: blob {} missing", blob.digest)),
                Err(e) => problems.push(format!("layer {chain}: blob {}: {e}", blob.digest)),
            }
        }
    }
    match store.names() {
        Ok(names) => {
            for name in names {
                if let Err(e) = store.resolve(&name) {
                    problems.push(format!("name {name} does not resolve: {e}"));
                }
            }
        }
        Err(e) => problems.push(format!("names: {e}")),
    }
    problems
}

/// What the campaigns compare before and after a call: every image with
/// its names, every name with its target, every layer with its reference
/// count. (Not the image sizes of `images()`: when a name moves to another
/// manifest of the same image, the CRI cache keeps the size it had, as
/// containerd's does, and a reopen may compute it from the other manifest.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub images: Vec<(String, Vec<String>)>,
    pub names: BTreeMap<String, String>,
    pub layers: BTreeMap<String, Option<usize>>,
}

pub fn state(store: &Store) -> State {
    let images = store
        .images()
        .expect("list images")
        .into_iter()
        .map(|s| (s.id.to_string(), s.references))
        .collect();
    let names = store
        .refs()
        .list(store.namespace(), &[])
        .map(|records| {
            records
                .iter()
                .map(|r| (r.name.clone(), r.target.digest.to_string()))
                .collect()
        })
        .unwrap_or_default();
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
    State {
        images,
        names,
        layers,
    }
}

/// fsck's findings, one line each (empty when clean).
pub fn fsck_problems(store: &Store) -> Vec<String> {
    match store.fsck(false) {
        Ok(report) => report
            .problems
            .iter()
            .map(|p| format!("fsck: {p}"))
            .collect(),
        Err(e) => vec![format!("fsck failed: {e}")],
    }
}

/// Copies a directory tree (a closed store) to `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        let kind = entry.file_type().expect("file type");
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// Waits (up to 5 s) until no SQLite `-wal` or `-shm` file is left under
/// `dir`: a closed SQLite store may still be checkpointed by a connection
/// the pool opened in the background, so its files are only stable to copy
/// once the last connection has gone.
pub fn wait_quiet(dir: &Path) {
    fn busy(dir: &Path) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let name = entry.file_name().to_string_lossy().into_owned();
                name.ends_with("-wal") || name.ends_with("-shm")
            })
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while busy(dir) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
