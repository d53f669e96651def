//! Criterion group `refs`: named image records (imgstore-refs).
//!
//! containerd 1.6.20 measured here: Create ~430 µs per image, Get 7.5–8.4 µs,
//! List 4.3 ms for 1k and 44 ms for 10k records. Targets: `get` ≤ 2 µs,
//! `list()` of 10k ≤ 5 ms, `list` with a `labels.x==y` filter over 10k ≤ 5 ms,
//! `create` ≤ 150 µs on SQLite.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use imgstore_backend::RecordStore;
use imgstore_digest::Digest;
use imgstore_refs::{Descriptor, ImageRecord, RefStore};

const NS: &str = "default";

fn sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("refs.db")).expect("open sqlite"))
}

fn fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).expect("open fs"))
}

/// A record shaped like one `ctr images pull` leaves: an index target with
/// one annotation, a GC label and an `env` label (one value in ten is `prod`).
fn record(n: usize) -> ImageRecord {
    let mut target = Descriptor::new(
        "application/vnd.oci.image.index.v1+json",
        Digest::from_bytes(format!("index {n}").as_bytes()),
        1609,
    );
    target
        .annotations
        .insert("org.opencontainers.image.ref.name".into(), format!("{n}"));
    ImageRecord::new(format!("docker.io/library/bench-{n:06}:latest"), target)
        .with_label(
            "containerd.io/gc.ref.content.m.0",
            Digest::from_bytes(b"m").to_string(),
        )
        .with_label("env", if n.is_multiple_of(10) { "prod" } else { "dev" })
}

fn filled<B: RecordStore>(backend: Arc<B>, count: usize) -> RefStore<B> {
    let refs = RefStore::open(backend).expect("open refs");
    for n in 0..count {
        refs.create(NS, record(n)).expect("create");
    }
    refs
}

fn create<B: RecordStore>(c: &mut Criterion, name: &str, open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let refs = RefStore::open(open(dir.path())).expect("open refs");
    let mut n = 1_000_000;
    c.bench_function(&format!("refs/{name}/create"), |b| {
        b.iter(|| {
            n += 1;
            refs.create(NS, record(n)).expect("create")
        })
    });
    let mut n = 0;
    c.bench_function(&format!("refs/{name}/update_label"), |b| {
        b.iter(|| {
            n += 1;
            let input = record(1_000_001).with_label("touched", n.to_string());
            refs.update(NS, input, &["labels.touched"]).expect("update")
        })
    });
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let refs = filled(sqlite(dir.path()), 10_000);
    let small_dir = tempfile::tempdir().expect("tempdir");
    let small = filled(sqlite(small_dir.path()), 1_000);

    let names: Vec<String> = (0..10_000).map(|n| record(n).name).collect();
    let mut i = 0;
    c.bench_function("refs/get", |b| {
        b.iter(|| {
            i = (i + 7919) % names.len();
            refs.get(NS, black_box(&names[i])).expect("get")
        })
    });

    let mut group = c.benchmark_group("refs/list");
    group.sample_size(20);
    group.bench_function("1k", |b| {
        b.iter(|| assert_eq!(small.list(NS, &[]).expect("list").len(), 1_000))
    });
    group.bench_function("10k", |b| {
        b.iter(|| assert_eq!(refs.list(NS, &[]).expect("list").len(), 10_000))
    });
    group.bench_function("10k_labels_env==prod", |b| {
        b.iter(|| {
            let listed = refs.list(NS, &["labels.env==prod"]).expect("list");
            assert_eq!(listed.len(), 1_000)
        })
    });
    group.bench_function("10k_name_regex", |b| {
        b.iter(|| {
            let listed = refs.list(NS, &["name~=bench-00999"]).expect("list");
            assert_eq!(listed.len(), 10)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("refs/sqlite");
    group.sample_size(10);
    let backend = sqlite(dir.path());
    group.bench_function("open_10k", |b| {
        b.iter(|| {
            let reopened = RefStore::open(backend.clone()).expect("open");
            assert_eq!(reopened.len(NS).expect("len"), 10_000);
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    create(c, "sqlite", sqlite);
    create(c, "fs", fs);
    reads(c);
}

criterion_group!(refs, benches);
criterion_main!(refs);
