//! `lookup` allocates nothing but the digest it returns, and a sha256 digest
//! is stored inline, so a successful sha256 lookup allocates nothing at all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use imgstore_digest::{Algorithm, Digest};
use imgstore_digestset::DigestSet;

/// The system allocator, counting this thread's allocations.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to `System`; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn sha256_lookups_and_contains_do_not_allocate() {
    let digests: Vec<Digest> = (0..10_000u32)
        .map(|i| Algorithm::Sha256.from_bytes(&i.to_le_bytes()))
        .collect();
    let set: DigestSet = digests.iter().cloned().collect();
    let queries: Vec<String> = digests
        .iter()
        .take(500)
        .flat_map(|d| {
            [
                d.encoded()[..12].to_owned(),
                format!("sha256:{}", &d.encoded()[..13]),
                d.to_string(),
                d.encoded().to_owned(),
            ]
        })
        .collect();
    let count = allocations_during(|| {
        for (query, digest) in queries.iter().zip(digests.iter().flat_map(|d| [d; 4])) {
            assert_eq!(set.lookup(query).as_ref(), Ok(digest));
            assert!(set.contains(digest));
        }
    });
    assert_eq!(count, 0);
}

#[test]
fn the_counter_sees_allocations() {
    // The NotFound error owns a copy of the query: proof the counter counts.
    let set: DigestSet = [Algorithm::Sha256.from_bytes(b"x")].into_iter().collect();
    assert!(allocations_during(|| assert!(set.lookup("ffff").is_err())) > 0);
}
