//! Criterion group `import`: importing a `docker save` tar of uncompressed
//! layers, an OCI layout of gzip layers, and an archive of many small
//! images, each into a fresh store. Inputs are generated into a temporary
//! directory at start (never committed). Sizes by environment, small by
//! default so a quick run is possible:
//! `IMGSTORE_BENCH_IMPORT_MIB` (layer data, default 64; the figure
//! is for 1024) and `IMGSTORE_BENCH_IMPORT_IMAGES` (default 200; 1000).

use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use imgstore::Store;
use imgstore_benches::import_inputs;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn import(c: &mut Criterion) {
    let mib = env("IMGSTORE_BENCH_IMPORT_MIB", 64);
    let images = env("IMGSTORE_BENCH_IMPORT_IMAGES", 200);
    let inputs = tempfile::tempdir().expect("tempdir");
    let docker = import_inputs::docker_save_archive(inputs.path(), mib, 4);
    let (gzip, _) = import_inputs::gzip_layout(inputs.path(), mib, 4);
    let many = import_inputs::many_images_archive(inputs.path(), "many.tar", images, 0);
    let layer_bytes = (mib as u64) << 20;

    let mut group = c.benchmark_group("import");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let fresh = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path().join("store")).expect("open");
        (dir, store)
    };
    group.throughput(Throughput::Bytes(layer_bytes));
    group.bench_function(format!("docker_save_plain_{mib}MiB"), |b| {
        b.iter_batched(
            fresh,
            |(dir, store)| {
                assert_eq!(store.import(&docker).expect("import").len(), 1);
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function(format!("oci_gzip_{mib}MiB"), |b| {
        b.iter_batched(
            fresh,
            |(dir, store)| {
                assert_eq!(store.import(&gzip).expect("import").len(), 1);
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.throughput(Throughput::Elements(images as u64));
    group.bench_function(format!("load_{images}_small_images"), |b| {
        b.iter_batched(
            fresh,
            |(dir, store)| {
                assert_eq!(store.import(&many).expect("import").len(), images);
                (dir, store)
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, import);
criterion_main!(benches);
