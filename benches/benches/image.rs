//! Criterion group `image`: the image store over both backends (issue 5).
//!
//! References measured here for moby 20.10.24 (fs backend, fake layer
//! store): Create 553–883 µs, restore 99 ms for 1k images and 0.81 s for 10k.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use imgstore_backend::{RecordStore, StoreBackend};
use imgstore_benches::{bench_layer, config, fill, fs, open_images, sqlite};
use imgstore_image::ImageStore;

const RESTORE_IMAGES: usize = 10_000;

fn create<B: StoreBackend + RecordStore>(
    c: &mut Criterion,
    name: &str,
    open: fn(&std::path::Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = open_images(open(dir.path()));
    let layer = bench_layer();
    let mut n = 1_000_000;
    c.bench_function(&format!("image/{name}/create"), |b| {
        b.iter(|| {
            n += 1;
            images.create(&config(n, &layer)).expect("create")
        })
    });
}

fn restore<B: StoreBackend + RecordStore>(
    c: &mut Criterion,
    name: &str,
    open: fn(&std::path::Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    fill(open(dir.path()), RESTORE_IMAGES);
    let mut group = c.benchmark_group(format!("image/{name}"));
    group.sample_size(10);
    // Opens backend + layer store + image store: what a process pays at start.
    group.bench_function(format!("restore_{RESTORE_IMAGES}"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let images = open_images(open(dir.path()));
                total += start.elapsed();
                assert_eq!(images.len().expect("len"), RESTORE_IMAGES);
                drop(images);
            }
            total
        })
    });
    group.finish();
    let images = open_images(open(dir.path()));
    let ids: Vec<_> = images.map().expect("map").into_keys().collect();
    let mut i = 0;
    c.bench_function(&format!("image/{name}/get_10k"), |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            images.get(black_box(&ids[i])).expect("get")
        })
    });
    let prefixes: Vec<String> = ids.iter().map(|id| id.short().to_owned()).collect();
    c.bench_function(&format!("image/{name}/search_12hex_10k"), |b| {
        b.iter(|| {
            i = (i + 1) % ids.len();
            images.search(black_box(&prefixes[i])).expect("search")
        })
    });
}

fn benches(c: &mut Criterion) {
    create(c, "sqlite", sqlite);
    create(c, "fs", fs);
    restore(c, "sqlite", sqlite);
    restore(c, "fs", fs);
}

criterion_group!(image, benches);
criterion_main!(image);
