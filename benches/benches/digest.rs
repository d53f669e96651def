//! Criterion group `digest`: parsing and hashing (issue 3's figures).
//!
//! References measured on this machine: go-digest 1.0.0 `Parse` 0.66 µs,
//! `FromBytes` 16 MiB 463 MB/s; `openssl speed -evp sha256 -bytes 16384`
//! (printed by `cargo xtask bench digest`) about 1.78 GB/s.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imgstore_digest::{Algorithm, Digest};

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("digest/parse");
    let valid = "sha256:e58fcf7418d4390dec8e8fb69d88c06ec07039d651fedd3aa72af9972e7d046b";
    let cases = [
        ("valid_sha256", valid.to_owned()),
        (
            "valid_sha512",
            Algorithm::Sha512.from_bytes(b"x").to_string(),
        ),
        ("invalid_length", "sha256:abcdef0123456789".to_owned()),
        (
            "invalid_format_upper",
            valid.to_uppercase().replacen("SHA256", "sha256", 1),
        ),
        ("unsupported", "sha384.foo+bar:d3fc7881460b7e22".to_owned()),
        (
            "no_separator",
            "d41d8cd98f00b204e9800998ecf8427e".to_owned(),
        ),
    ];
    for (name, input) in &cases {
        group.bench_with_input(BenchmarkId::from_parameter(name), input, |b, input| {
            b.iter(|| Digest::parse(black_box(input)))
        });
    }
    group.finish();
}

fn from_bytes(c: &mut Criterion) {
    let mut group = c.benchmark_group("digest/from_bytes");
    for (name, size) in [
        ("1KiB", 1usize << 10),
        ("64KiB", 64 << 10),
        ("16MiB", 16 << 20),
    ] {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 1 << 20 {
            group.sample_size(20);
        }
        group.bench_with_input(BenchmarkId::from_parameter(name), &data, |b, data| {
            b.iter(|| Digest::from_bytes(black_box(data)))
        });
    }
    group.finish();
}

fn clone_and_compare(c: &mut Criterion) {
    let a = Digest::from_bytes(b"a");
    let b = Digest::from_bytes(b"b");
    c.bench_function("digest/clone_sha256", |bench| {
        bench.iter(|| black_box(&a).clone())
    });
    c.bench_function("digest/cmp_sha256", |bench| {
        bench.iter(|| black_box(&a).cmp(black_box(&b)))
    });
}

criterion_group!(benches, parse, from_bytes, clone_and_compare);
criterion_main!(benches);
