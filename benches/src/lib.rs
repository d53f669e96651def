//! Shared fixtures for the criterion suite in `benches/`: realistic image
//! configs and stores filled with them.

pub mod import_inputs;

use std::path::Path;
use std::sync::Arc;

use imgstore_backend::{RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_image::{ImageStore, Store};
use imgstore_layer::{LayerStore, NewLayer};

/// An image store over `B` with a real layer store on the same backend.
pub type Images<B> = Store<B, LayerStore<B>>;

/// A ~1.5 KiB image config in Docker's shape, unique per `n`, on one layer.
pub fn config(n: usize, layer: &Digest) -> Vec<u8> {
    format!(
        r#"{{"architecture":"amd64","author":"bench","config":{{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","N={n}"],"Cmd":["/bin/sh","-c","echo {n}"],"Labels":{{"org.opencontainers.image.title":"bench-{n}","org.opencontainers.image.description":"a config of realistic size for benchmarks, padded with history"}},"WorkingDir":"/srv"}},"created":"2024-01-01T00:00:00Z","history":[{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) ADD file:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef in / "}},{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop)  ENV N={n}","empty_layer":true}},{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop)  CMD [\"/bin/sh\" \"-c\" \"echo {n}\"]","empty_layer":true}},{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop)  LABEL org.opencontainers.image.title=bench-{n}","empty_layer":true}},{{"created":"2024-01-01T00:00:00Z","created_by":"/bin/sh -c #(nop) WORKDIR /srv","empty_layer":true}}],"os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
    )
    .into_bytes()
}

/// The diff ID every bench image sits on.
pub fn bench_layer() -> Digest {
    Digest::from_bytes(b"bench layer")
}

/// Opens an image store over `backend`, registering the bench layer.
pub fn open_images<B: StoreBackend + RecordStore>(backend: Arc<B>) -> Images<B> {
    let layers = Arc::new(LayerStore::open(backend.clone()).expect("open layer store"));
    layers
        .register(NewLayer::new(bench_layer(), 1024), None)
        .expect("register bench layer");
    Store::open(backend, layers).expect("open image store")
}

/// Fills `dir` with `count` images through `open`, then drops the store.
pub fn fill<B: StoreBackend + RecordStore>(backend: Arc<B>, count: usize) {
    let images = open_images(backend);
    let layer = bench_layer();
    for n in 0..count {
        images
            .create(&config(n, &layer))
            .expect("create bench image");
    }
}

/// SQLite backend in `dir`.
pub fn sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).expect("open sqlite"))
}

/// Filesystem backend in `dir`.
pub fn fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).expect("open fs"))
}
