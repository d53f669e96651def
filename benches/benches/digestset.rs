//! Criterion group `digestset`: the short-ID index at N = 1k, 10k, 100k and
//! 1M random sha256 digests (issue targets: at 100k, add <= 0.5 µs, lookup
//! by 12-hex prefix <= 0.3 µs, remove <= 0.5 µs; at 1M every op <= 1.5 µs).
//!
//! Each set is built once per N, outside the timed code. What is timed:
//! - `add/N`: `DigestSet::add` of a digest not in the set. Adds run in
//!   batches of at most N/10 (and at most 1000) fresh digests, each batch
//!   removed again untimed, so the set stays within 10% of N; batches rotate
//!   through 64k fresh digests so the tree paths are not all hot in cache.
//! - `remove/N`: `DigestSet::remove` of a digest in the set, batched the same
//!   way and re-added untimed.
//! - `lookup-12-hex/N`: `DigestSet::lookup` of the first 12 hex digits of a
//!   member (a bare prefix, as `docker images` IDs), cycling through up to 64k
//!   members' prefixes; includes building the returned `Digest`.
//! - `lookup-full/N`: `DigestSet::lookup` of a member's whole `sha256:…`
//!   string.
//!
//! Memory per entry: `cargo run --release -p imgstore-benches --example
//! digestset_memory`.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use imgstore_digest::{Algorithm, Digest};
use imgstore_digestset::DigestSet;

const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// How many distinct digests the timed loops rotate through.
const POOL: usize = 65_536;

/// splitmix64: fast, reproducible, well spread.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `n` random sha256 digests from `seed`.
fn random_digests(n: usize, seed: u64) -> Vec<Digest> {
    let mut rng = SplitMix(seed);
    (0..n)
        .map(|_| {
            let mut hash = [0u8; 32];
            for chunk in hash.chunks_exact_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes());
            }
            Digest::from_hash(Algorithm::Sha256, &hash).expect("32 bytes is a sha256 hash")
        })
        .collect()
}

/// Up to `k` distinct members of `digests`, in random order.
fn sample(digests: &[Digest], k: usize, seed: u64) -> Vec<Digest> {
    let mut rng = SplitMix(seed);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    while out.len() < k.min(digests.len()) {
        let d = &digests[(rng.next() % digests.len() as u64) as usize];
        if seen.insert(d.clone()) {
            out.push(d.clone());
        }
    }
    out
}

/// Times `timed` on `iters` digests of `pool` (rotating from `offset`) in
/// batches of `batch`, running `undo` on each batch untimed afterwards.
fn batched(
    set: &mut DigestSet,
    iters: u64,
    pool: &[Digest],
    batch: usize,
    offset: &mut usize,
    timed: fn(&mut DigestSet, &Digest) -> bool,
    undo: fn(&mut DigestSet, &Digest) -> bool,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = batch.min(usize::try_from(left).unwrap_or(batch));
        if *offset + n > pool.len() {
            *offset = 0;
        }
        let items = &pool[*offset..*offset + n];
        let start = Instant::now();
        for d in items {
            black_box(timed(set, black_box(d)));
        }
        total += start.elapsed();
        for d in items {
            assert!(undo(set, d), "every timed change is undone");
        }
        *offset += n;
        left -= n as u64;
    }
    total
}

fn digestset(c: &mut Criterion) {
    let mut group = c.benchmark_group("digestset");
    for n in SIZES {
        let members = random_digests(n, n as u64);
        let mut set: DigestSet = members.iter().cloned().collect();
        let fresh = random_digests(POOL, u64::MAX - n as u64);
        let sample = sample(&members, POOL, 7);
        let batch = (n / 10).clamp(1, 1000);

        let mut offset = 0;
        group.bench_function(BenchmarkId::new("add", n), |b| {
            b.iter_custom(|iters| {
                batched(
                    &mut set,
                    iters,
                    &fresh,
                    batch,
                    &mut offset,
                    DigestSet::add,
                    DigestSet::remove,
                )
            })
        });
        assert_eq!(set.len(), n);

        let mut offset = 0;
        group.bench_function(BenchmarkId::new("remove", n), |b| {
            b.iter_custom(|iters| {
                batched(
                    &mut set,
                    iters,
                    &sample,
                    batch,
                    &mut offset,
                    DigestSet::remove,
                    DigestSet::add,
                )
            })
        });
        assert_eq!(set.len(), n);

        let prefixes: Vec<String> = sample
            .iter()
            .map(|d| d.encoded()[..12].to_owned())
            .collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("lookup-12-hex", n), |b| {
            b.iter(|| {
                i = (i + 1) % prefixes.len();
                set.lookup(black_box(&prefixes[i]))
            })
        });

        let fulls: Vec<String> = sample.iter().map(Digest::to_string).collect();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("lookup-full", n), |b| {
            b.iter(|| {
                i = (i + 1) % fulls.len();
                set.lookup(black_box(&fulls[i]))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, digestset);
criterion_main!(benches);
