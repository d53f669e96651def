//! Times each phase of opening a store of 10k images, to see where restore
//! spends its time: `cargo run --release -p imgstore-benches --example restore_profile`.

use std::sync::Arc;
use std::time::Instant;

use imgstore_backend::StoreBackend;
use imgstore_benches::{fill, fs, sqlite};
use imgstore_image::{ImageStore, Store};
use imgstore_layer::LayerStore;

fn profile<B: StoreBackend + imgstore_backend::RecordStore>(
    name: &str,
    open: fn(&std::path::Path) -> Arc<B>,
) {
    // IMGSTORE_PROFILE_DIR keeps a filled store between runs (to profile opening alone).
    let temp = tempfile::tempdir().expect("tempdir");
    let dir_path = match std::env::var_os("IMGSTORE_PROFILE_DIR") {
        Some(dir) => std::path::PathBuf::from(dir).join(name),
        None => temp.path().to_path_buf(),
    };
    if !dir_path.exists() || std::env::var_os("IMGSTORE_PROFILE_DIR").is_none() {
        std::fs::create_dir_all(&dir_path).expect("mkdir");
        fill(open(&dir_path), 10_000);
    }
    let dir = &dir_path;
    for _ in 0..3 {
        let t = Instant::now();
        let backend = open(dir);
        let t_backend = t.elapsed();
        let mut n = 0;
        backend
            .walk(&mut |_| {
                n += 1;
                Ok(())
            })
            .expect("walk");
        let t_walk = t.elapsed();
        let layers = Arc::new(LayerStore::open(backend.clone()).expect("layers"));
        let t_layers = t.elapsed();
        let images = Store::open(backend, layers).expect("images");
        let t_images = t.elapsed();
        println!(
            "{name}: backend {:?}, walk {:?} ({n}), layers {:?}, images {:?} ({}), total {:?}",
            t_backend,
            t_walk - t_backend,
            t_layers - t_walk,
            t_images - t_layers,
            images.len().expect("len"),
            t_images
        );
    }
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    if which != "fs" {
        profile("sqlite", sqlite);
    }
    if which != "sqlite" {
        profile("fs", fs);
    }
}
