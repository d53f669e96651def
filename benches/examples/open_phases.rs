//! Times each phase of opening the facade's store (as `Store::open_with`
//! does it) and of `images`:
//! `cargo run --release -p imgstore-benches --example open_phases -- ROOT`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use imgstore::cri::{RefCache, StoreResolver};
use imgstore::image::ImageStore;
use imgstore::layer::LayerStore;
use imgstore::refs::RefStore;
use imgstore::sqlite::SqliteBackend;
use imgstore::{AnyBackend, Store};

/// CPU time of the whole process (all threads) so far.
fn cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Prints wall and CPU time since the last mark.
struct Marks(Instant, Duration, Vec<String>);

impl Marks {
    fn new() -> Marks {
        Marks(Instant::now(), cpu(), Vec::new())
    }
    fn mark(&mut self, name: &str) {
        let (wall, cpu_now) = (Instant::now(), cpu());
        self.2.push(format!(
            "{name} {:.1}/{:.1}",
            (wall - self.0).as_secs_f64() * 1e3,
            (cpu_now - self.1).as_secs_f64() * 1e3
        ));
        self.0 = wall;
        self.1 = cpu_now;
    }
}

fn main() {
    let root = std::path::PathBuf::from(std::env::args().nth(1).expect("ROOT"));
    for _ in 0..3 {
        let mut m = Marks::new();
        let t = Instant::now();
        let content = Arc::new(AnyBackend::Sqlite(
            SqliteBackend::open(root.join("content.db")).expect("content"),
        ));
        let image_backend = Arc::new(AnyBackend::Sqlite(
            SqliteBackend::open(root.join("images.db")).expect("images"),
        ));
        let t_backends = t.elapsed();
        m.mark("backends");
        let layers = Arc::new(LayerStore::open(Arc::clone(&content)).expect("layers"));
        let t_layers = t.elapsed();
        m.mark("layers");
        let images =
            imgstore::image::Store::open(image_backend, Arc::clone(&layers)).expect("images");
        let t_images = t.elapsed();
        m.mark("images");
        let refs = RefStore::open(Arc::clone(&content)).expect("refs");
        let t_refs = t.elapsed();
        m.mark("refs");
        let names: Vec<String> = refs
            .list("default", &[])
            .expect("list")
            .iter()
            .map(|r| r.name.clone())
            .collect();
        let resolver = StoreResolver {
            namespace: "default",
            refs: &refs,
            content: &*content,
            images: &images,
        };
        let refs_list: Vec<&str> = names.iter().map(String::as_str).collect();
        let resolved =
            imgstore::cri::ImageResolver::resolve_many(&resolver, &refs_list).expect("resolve");
        m.mark("resolve_many");
        drop(resolved);
        let cache = RefCache::rebuild(&resolver, &names).expect("rebuild");
        m.mark("rebuild");
        let t_cache = t.elapsed();
        let map = images.map().expect("map");
        let mut n = 0usize;
        for (id, image) in &map {
            let cri = cache.get(id.as_str()).ok();
            n += cri.map_or(0, |c| c.references.len());
            n += image.created().map_or(0, str::len);
            n += images.get_parent(id).is_ok() as usize;
        }
        let t_list = t.elapsed();
        m.mark("list");
        println!("wall/cpu ms: {}", m.2.join(", "));
        println!(
            "backends {:?} layers {:?} images {:?} ({}) refs {:?} cache {:?} list {:?} total {:?} [{n}]",
            t_backends,
            t_layers - t_backends,
            t_images - t_layers,
            images.len().expect("len"),
            t_refs - t_images,
            t_cache - t_refs,
            t_list - t_cache,
            t_list
        );
        drop(cache);
        let t2 = Instant::now();
        let store = Store::open(&root).expect("open");
        let t_open = t2.elapsed();
        let mut m = Marks::new();
        let listed = store.images().expect("list images");
        m.mark("facade images()");
        drop(store);
        m.mark("drop");
        println!("{}", m.2.join(", "));
        println!(
            "facade: open {:?} images() {:?} ({})",
            t_open,
            t2.elapsed() - t_open,
            listed.len()
        );
    }
}
