//! Measures the memory an image store holds per image beyond the config bytes
//! themselves, after restoring 100k images from SQLite:
//! `cargo run --release -p imgstore-benches --example image_memory [count]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use imgstore_backend::StoreBackend;
use imgstore_benches::{bench_layer, config, open_images, sqlite};
use imgstore_image::ImageStore;

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = sqlite(dir.path());
    let layer = bench_layer();
    let mut config_bytes = 0usize;
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        let configs: Vec<Vec<u8>> = chunk.iter().map(|&n| config(n, &layer)).collect();
        config_bytes += configs.iter().map(Vec::len).sum::<usize>();
        let refs: Vec<&[u8]> = configs.iter().map(Vec::as_slice).collect();
        backend.set_many(&refs).expect("set_many");
    }
    // Configs written directly: index them once, as the migration does.
    open_images(backend.clone())
        .rebuild_index()
        .expect("rebuild the index");
    drop(backend);
    let backend = sqlite(dir.path());
    let before = LIVE.load(Ordering::Relaxed);
    let images = open_images(backend.clone());
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(images.len().expect("len"), count);
    let held = (after - before) as usize;
    println!(
        "{count} images: {held} bytes held by the stores, {config_bytes} of them config bytes; {:.0} bytes per image beyond the configs",
        (held.saturating_sub(config_bytes)) as f64 / count as f64
    );
    let _ = backend.contains(&layer);
}
