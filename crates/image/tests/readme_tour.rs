//! The README's tour, run for real (in a temp dir instead of /var/lib).

use std::sync::Arc;

use imgstore_digest::Digest;
use imgstore_image::{ImageStore, Store};
use imgstore_layer::{LayerGetReleaser, LayerStore, NewLayer};
use imgstore_sqlite::SqliteBackend;

#[test]
fn readme_tour() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let backend = Arc::new(SqliteBackend::open(dir.path().join("store.db"))?);
    let layers = Arc::new(LayerStore::open(backend.clone())?);
    let diff_id = Digest::from_bytes(b"layer tar bytes");
    let layer = layers.register(NewLayer::new(diff_id.clone(), 15), None)?;
    let images = Store::open(backend, layers.clone())?;
    let config =
        format!(r#"{{"os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#);
    let id = images.create(config.as_bytes())?;
    layers.release(layer.chain_id())?;
    assert_eq!(images.search(&id.short()[..6])?, id);
    let freed = images.delete(&id)?;
    assert_eq!(freed.len(), 1);
    Ok(())
}
