//! The record format version and the one-time upgrade of a store written
//! by an earlier version.
//!
//! `meta/schema` (in the content backend's records) holds the format
//! version:
//!
//! - none: written before the records became the index (issue 13): its
//!   layer records, configs and names are all there, but none of the
//!   derived records (`layer:` holders, layer blobs, image summaries and
//!   children, the name index);
//! - 2: every derived record, with image summaries and `image-names` values
//!   in JSON;
//! - 3 (this code): those two in the binary encoding of
//!   `imgstore_backend::codec`, which a listing decodes ten times faster.
//!
//! The first open that finds an older format upgrades it under the change
//! lock: each sub-store re-derives its records from the primary ones and
//! rewrites every one that differs (idempotent, in bounded batches), then
//! `meta/schema` is written last. A crash in the middle leaves the old
//! version in `meta/schema`, and the next open upgrades again from the
//! start. A store of a newer format is refused rather than misread.

use imgstore_backend::{Batch, RecordStore};

use crate::{Error, Result, Store};

/// The bucket of store-wide records.
const META: &str = "meta";
/// The key of the format version in [`META`].
const SCHEMA: &str = "schema";
/// The format this code writes: 3, the records are the index, listings'
/// records binary.
pub(crate) const SCHEMA_VERSION: u32 = 3;

/// What `meta/schema` says about a store.
enum Format {
    /// Written by this version.
    Current,
    /// An earlier format, or no `meta/schema` (new, or written before
    /// version 2).
    Older,
}

impl Store {
    fn format(&self) -> Result<Format> {
        let Some(bytes) = self.content.get_record(META, SCHEMA)? else {
            return Ok(Format::Older);
        };
        let version = std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.trim().parse::<u32>().ok());
        match version {
            Some(SCHEMA_VERSION) => Ok(Format::Current),
            Some(2) => Ok(Format::Older),
            Some(newer) if newer > SCHEMA_VERSION => Err(Error::InvalidRoot {
                root: self.root.clone(),
                reason: format!(
                    "its records are of format {newer}, newer than this imgstore reads ({SCHEMA_VERSION})"
                ),
            }),
            _ => Err(Error::InvalidRoot {
                root: self.root.clone(),
                reason: format!(
                    "meta/schema holds {:?}, not a format version",
                    String::from_utf8_lossy(&bytes)
                ),
            }),
        }
    }

    /// Brings a store of an earlier format up to [`SCHEMA_VERSION`] (see
    /// the module docs); nothing to do for a current one. Called by open.
    pub(crate) fn upgrade_if_needed(&self) -> Result<()> {
        if let Format::Current = self.format()? {
            return Ok(());
        }
        let lock = self.lock_imports()?;
        // Another process may have upgraded it while this one waited.
        if let Format::Current = self.format()? {
            return lock.finish(Ok(()));
        }
        let upgraded = self.derive_every_record().and_then(|()| {
            crate::root::remove_old_catalogs(&self.root);
            let mut batch = Batch::new();
            batch.put(META, SCHEMA, SCHEMA_VERSION.to_string().into_bytes());
            self.content.apply(&batch)?;
            // The rewrite's log is folded now, not left for every later
            // reader to search (best effort, as after an import).
            let _ = self.content.make_durable();
            let _ = self.images.backend().make_durable();
            Ok(())
        });
        lock.finish(upgraded)
    }

    /// Derives every derived record from the primary ones: what the
    /// upgrade does, and what `fsck --repair` relies on.
    fn derive_every_record(&self) -> Result<()> {
        self.layers.repair_derived()?;
        // Summaries, children links and each image's hold on its top layer;
        // the name index is derived from which images are stored.
        self.images.rebuild_index()?;
        self.check_name_index(true)?;
        Ok(())
    }
}
