//! Times the per-name work of one image with many names (issue 12, item
//! 10): an OCI layout whose `index.json` names the corpus's `base` image
//! N times (default 10 000), imported into a fresh store, then one `tag`,
//! `inspect`, `history`, `rmi` of a name and a reopen.
//! `cargo run --release -p imgstore --example many_names -- [N] [sqlite|fs]`.

use std::path::Path;
use std::time::Instant;

use imgstore::{Backend, Options, Store};

/// The corpus's `base` manifest in `oci/main`.
const BASE_MANIFEST: &str =
    "sha256:011c9b513b96e67a3130e45e98d811d566e80c861da1a0b7af64a65b3f4bcdf4";

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(Ok(10_000), |n| n.parse())?;
    let backend = match args.next().as_deref() {
        Some("fs") => Backend::Fs,
        _ => Backend::Sqlite,
    };
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/images/oci/main");
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    copy_dir(&corpus, &layout)?;
    let manifests: Vec<serde_json::Value> = (0..count)
        .map(|i| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": BASE_MANIFEST,
                "size": 654,
                "annotations": {"org.opencontainers.image.ref.name": format!("registry.demo.test/demo/base:t{i}")},
            })
        })
        .collect();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;

    let root = dir.path().join("store");
    // `.into()`: main's `Options::backend` is an `Option<Backend>`.
    #[allow(clippy::useless_conversion)]
    let options = Options {
        backend: backend.into(),
        ..Options::default()
    };
    let time = |what: &str, started: Instant| {
        println!("{what:>10}: {:.3} s", started.elapsed().as_secs_f64());
    };
    let store = Store::open_with(&root, options.clone())?;
    let started = Instant::now();
    store.import_oci_layout(&layout)?;
    time("import", started);
    let started = Instant::now();
    store.tag("registry.demo.test/demo/base:t0", "extra:v1")?;
    time("tag", started);
    let started = Instant::now();
    let view = store.inspect("extra:v1")?;
    time("inspect", started);
    let started = Instant::now();
    store.history("extra:v1")?;
    time("history", started);
    let started = Instant::now();
    store.remove("extra:v1", false)?;
    time("rmi", started);
    let started = Instant::now();
    let listed = store.list_images(&imgstore::ImageQuery::default())?;
    time("images", started);
    let started = Instant::now();
    drop(store);
    time("close", started);
    let started = Instant::now();
    let store = Store::open_with(&root, options)?;
    time("reopen", started);
    let names = store.names()?.len();
    let started = Instant::now();
    let removed = store.remove(&view.id, true)?;
    time("rmi -f ID", started);
    println!(
        "{} tags in inspect, {} images listed, {names} names stored, {} untagged by rmi -f",
        view.repo_tags.len(),
        listed.len(),
        removed.untagged.len()
    );
    Ok(())
}
