//! The README's facade tour, run for real against the corpus.

use std::path::PathBuf;

use imgstore::Store;

#[test]
fn readme_facade_tour() -> Result<(), Box<dyn std::error::Error>> {
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/images");
    let root = tempfile::tempdir()?;
    let store = Store::open(root.path())?; // SQLite; Options selects fs
    store.import_oci_layout(corpus.join("oci/main"))?;
    store.import_archive(corpus.join("docker/child.docker.tar"))?;
    let base = store.resolve("registry.demo.test/demo/base:v1")?;
    assert_eq!(store.resolve(&base.short()[..6])?, base);
    store.tag("registry.demo.test/demo/base:v1", "base:latest")?; // docker.io/library/base:latest
    let report = store.remove("registry.demo.test/demo/sibling:v1", false)?;
    assert_eq!(report.deleted.len(), 1);
    store.gc()?;
    assert_eq!(store.images().expect("list images").len(), 3);
    Ok(())
}
