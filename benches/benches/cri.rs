//! Criterion group `cri`: the CRI cache at 10k images (issue 6's figures:
//! resolve ≤ 200 ns, get by 12-hex prefix ≤ 0.5 µs, list of 10k ≤ 2 ms,
//! rebuild of 10k ≤ 50 ms).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use imgstore_cri::{CriError, CriImage, ImageResolver, RefCache};
use imgstore_digest::Digest;
use imgstore_image::ImageId;

const IMAGES: usize = 10_000;

fn reference(n: usize) -> String {
    format!("registry.example.com/team/app-{n}:v1")
}

fn image_id(n: usize) -> ImageId {
    ImageId::from(Digest::from_bytes(format!("image {n}").as_bytes()))
}

/// Answers from a precomputed table, so the bench measures the cache alone.
struct Table;

impl ImageResolver for Table {
    fn resolve(&self, reference: &str) -> Result<Option<CriImage>, CriError> {
        let n: usize = reference
            .trim_start_matches("registry.example.com/team/app-")
            .trim_end_matches(":v1")
            .parse()
            .unwrap_or(0);
        Ok(Some(CriImage {
            chain_id: format!("sha256:{n:064x}"),
            size: 1 << 20,
            ..CriImage::new(image_id(n), reference)
        }))
    }
}

fn cri(c: &mut Criterion) {
    let references: Vec<String> = (0..IMAGES).map(reference).collect();
    let cache = RefCache::rebuild(&Table, &references).expect("rebuild");
    let prefixes: Vec<String> = (0..IMAGES)
        .map(|n| image_id(n).digest().encoded()[..12].to_owned())
        .collect();
    let mut i = 0;
    c.bench_function("cri/resolve_10k", |b| {
        b.iter(|| {
            i = (i + 1) % IMAGES;
            cache.resolve(black_box(&references[i])).expect("resolve")
        })
    });
    c.bench_function("cri/get_12hex_10k", |b| {
        b.iter(|| {
            i = (i + 1) % IMAGES;
            cache.get(black_box(&prefixes[i])).expect("get")
        })
    });
    c.bench_function("cri/list_10k", |b| b.iter(|| cache.list().len()));
    let mut group = c.benchmark_group("cri");
    group.sample_size(10);
    group.bench_function("rebuild_10k", |b| {
        b.iter(|| {
            RefCache::rebuild(&Table, &references)
                .expect("rebuild")
                .len()
        })
    });
    group.finish();
}

criterion_group!(benches, cri);
criterion_main!(benches);
