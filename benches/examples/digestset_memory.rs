//! Heap bytes per entry of a `DigestSet` of random sha256 digests (issue
//! target: <= 100 bytes per entry at 1M), counted by a global allocator that
//! tracks live bytes.
//!
//! `cargo run --release -p imgstore-benches --example digestset_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use imgstore_digest::{Algorithm, Digest};
use imgstore_digestset::DigestSet;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() {
    for n in [1_000usize, 10_000, 100_000, 1_000_000] {
        let mut state = n as u64;
        let before = LIVE.load(Ordering::Relaxed);
        let mut set = DigestSet::new();
        for _ in 0..n {
            let mut hash = [0u8; 32];
            for chunk in hash.chunks_exact_mut(8) {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
            }
            let digest: Digest = Digest::from_hash(Algorithm::Sha256, &hash).expect("32 bytes");
            set.add(&digest);
        }
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "digestset memory: {n:>9} random sha256 digests: {bytes:>11} heap bytes, {:.1} bytes/entry",
            bytes as f64 / n as f64
        );
        assert_eq!(set.len(), n);
    }
}
