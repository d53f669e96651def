//! In-process figures of issue 13 on an existing store (one of
//! `cargo xtask bench cli`'s, e.g. `target/bench-cli/store-sqlite-100000`):
//! `Store::open`, resolving a name and a short ID, `inspect`, a tag and its
//! removal, and the CRI cache's `resolve` once built (with the change
//! check each call makes). Medians of many runs, on a copy-free path: the
//! tag and its removal leave the store as it was.
//!
//! `cargo run --release -p imgstore-benches --example store_ops -- ROOT NAME`

use std::time::{Duration, Instant};

use imgstore::{Options, Store};

/// The median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            f();
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let (Some(root), Some(name)) = (args.next(), args.next()) else {
        return Err("usage: store_ops ROOT NAME".to_owned());
    };
    let options = || Options {
        create: false,
        ..Options::default()
    };
    let e = |e: imgstore::Error| e.to_string();
    let open = median(200, || {
        let store = Store::open_with(&root, options()).expect("open");
        // As the command does: the process ends without freeing piece by piece.
        std::mem::forget(store);
    });
    let store = Store::open_with(&root, options()).map_err(e)?;
    let id = store.resolve(&name).map_err(e)?;
    let short = id.digest().encoded()[..12].to_owned();
    let resolve_name = median(2000, || {
        store.resolve(&name).expect("resolve");
    });
    let resolve_id = median(2000, || {
        store.resolve(&short).expect("resolve short ID");
    });
    let inspect = median(500, || {
        store.inspect(&name).expect("inspect");
    });
    let tag_untag = median(200, || {
        store.tag(&name, "bench.test/store-ops:tmp").expect("tag");
        store
            .remove("bench.test/store-ops:tmp", false)
            .expect("remove the tag");
    });
    // The cache knows names as stored (`docker.io/library/...`).
    let stored = imgstore::refs::reference::normalize(&name).map_err(|e| e.to_string())?;
    let built = Instant::now();
    let cache = store.cache().map_err(e)?;
    let build = built.elapsed();
    let cached = median(20_000, || {
        let cache = store.cache().expect("cache");
        cache.resolve(&stored).expect("cached resolve");
    });
    let without_check = median(20_000, || {
        cache.resolve(&stored).expect("cached resolve");
    });
    println!("store {root}, name {name} ({short})");
    println!("Store::open                      {open:>10.1?}");
    println!("resolve(name)                    {resolve_name:>10.1?}");
    println!("resolve(short ID)                {resolve_id:>10.1?}");
    println!("inspect                          {inspect:>10.1?}");
    println!("tag + remove of that tag         {tag_untag:>10.1?}");
    println!("CRI cache: first build           {build:>10.1?}");
    println!("CRI cache: cache()?.resolve      {cached:>10.1?}");
    println!("CRI cache: resolve without check {without_check:>10.1?}");
    Ok(())
}
