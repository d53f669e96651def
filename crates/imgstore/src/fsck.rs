//! `fsck`: re-verifies everything the store holds and reports (and, asked
//! to, repairs) what is wrong.
//!
//! Checks, in order: every content blob is re-read and re-hashed (streamed);
//! every image config in the image store's backend likewise; every layer
//! record's chain ID follows from its parent and diff ID, its parent exists
//! and its blob is present with the recorded size; every image's top layer
//! exists; every layer's reference count equals the recount from images,
//! child layers and holders; every name's target blob is present and leads
//! (directly, or through an index, whatever the platform) to a stored image;
//! entries skipped on open are listed; every image's `lastUpdated` reads
//! as a time, and `parent` links restore ignored (cycles) are listed;
//! the name index equals a fresh derivation from the records; temporary
//! files of interrupted imports are listed. Leftovers `gc` removes
//! (layers without references) are reported as such.

use std::collections::HashMap;
use std::fmt;
use std::io;

use imgstore_backend::{ErrorKind, StoreBackend, Subject};
use imgstore_digest::Digest;
use imgstore_image::{ImageId, ImageProblem, ImageStore};
use imgstore_layer::ChainId;

use crate::{GcReport, Result, Store};

/// One thing [`Store::fsck`] found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsckProblem {
    /// A content blob does not hash to its digest (or cannot be read).
    /// Repair deletes it; re-importing the images that use it restores it.
    CorruptBlob {
        /// The blob.
        digest: Digest,
        /// What reading it said.
        reason: String,
    },
    /// An image config in the image store does not hash to its ID.
    /// Repair deletes the image (its layers are released).
    CorruptConfig {
        /// The image.
        image: ImageId,
        /// What reading it said.
        reason: String,
    },
    /// An image config the store skipped when it opened. Repair deletes
    /// the entry, unless it is whole now (it verifies, parses and its
    /// layers exist: a read failed on open, or the image is for another
    /// OS), which repair never deletes.
    SkippedImage {
        /// The image.
        image: ImageId,
        /// Why it was skipped.
        reason: String,
    },
    /// A per-image metadata value that cannot be read (a `lastUpdated`
    /// that is not a time). Repair deletes the value (the image then
    /// reads as never tagged, as moby reads an absent one).
    CorruptMetadata {
        /// The image.
        image: ImageId,
        /// The metadata key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A stored `parent` link that closes a cycle, not followed when the
    /// store opened. Repair deletes the link (the image keeps no parent).
    ParentCycle {
        /// The image whose link was not followed.
        image: ImageId,
        /// The parent it names.
        parent: ImageId,
    },
    /// What the layer store's check of its records found (see
    /// [`LayerProblem`](imgstore_layer::LayerProblem)): repair rewrites the
    /// derived records (`layer:` holders, `layer-blobs`); a primary record is
    /// kept, not repaired (it is not content and cannot be re-derived).
    LayerRecords(imgstore_layer::LayerProblem),
    /// What the image store's check of its records found that the problems
    /// above do not already say (see [`ImageProblem`]): a stale summary, a
    /// missing children link or hold, a config no summary names (left by a
    /// create that stopped: gc deletes it). Repair runs gc, then rebuilds
    /// the image index from the configs (`rebuild_index`).
    ImageRecords(ImageProblem),
    /// A name record that does not decode or whose key is not a name of a
    /// namespace (see [`RefProblem`](imgstore_refs::RefProblem)): primary
    /// data, reported, never deleted by repair.
    NameRecords(imgstore_refs::RefProblem),
    /// A layer record whose chain ID does not follow from its parent and
    /// diff ID.
    ChainMismatch {
        /// The recorded chain ID.
        chain_id: ChainId,
        /// The chain ID its parent and diff ID give.
        computed: ChainId,
    },
    /// A layer record's blob is absent or of another size. Re-importing an
    /// image that uses the layer restores it.
    MissingLayerBlob {
        /// The layer.
        chain_id: ChainId,
        /// The blob it names.
        blob: Digest,
    },
    /// An image's top layer is not in the layer store.
    MissingLayer {
        /// The image.
        image: ImageId,
        /// Its top layer.
        chain_id: ChainId,
    },
    /// A layer's reference count differs from the recount (images whose top
    /// layer it is, layers stacked on it, named holders).
    ReferenceCount {
        /// The layer.
        chain_id: ChainId,
        /// The count the layer store keeps.
        recorded: usize,
        /// The recount.
        recounted: usize,
    },
    /// A layer nothing references: a leftover of an interrupted import,
    /// removed by `gc` (and by repair).
    UnreferencedLayer {
        /// The layer.
        chain_id: ChainId,
    },
    /// A temporary file an interrupted import left in `<root>/tmp/` (no
    /// live process holds it). `gc` (and repair) removes it.
    LeftoverTempFile {
        /// The file.
        path: std::path::PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// A name carrying a digest (`repo@sha256:…`) that is not the digest of
    /// its target. Repair deletes the name.
    NameDigestMismatch {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// The digest of its target.
        target: Digest,
    },
    /// A derived structure (the name index) differs from what the records
    /// give when derived afresh. Repair rewrites it.
    Drift {
        /// The namespace whose structure drifted.
        namespace: String,
        /// Which structure: `name index`.
        structure: &'static str,
        /// The first differences found.
        detail: String,
    },
    /// A name whose target blob is absent, or which resolves to no stored
    /// image. Repair deletes the name.
    DanglingName {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for FsckProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsckProblem::CorruptBlob { digest, reason } => {
                write!(f, "blob {digest}: corrupt: {reason}")
            }
            FsckProblem::CorruptConfig { image, reason } => {
                write!(f, "image {image}: config corrupt: {reason}")
            }
            FsckProblem::SkippedImage { image, reason } => {
                write!(f, "image {image}: skipped on open: {reason}")
            }
            FsckProblem::CorruptMetadata { image, key, reason } => {
                write!(f, "image {image}: metadata {key:?} corrupt: {reason}")
            }
            FsckProblem::ParentCycle { image, parent } => write!(
                f,
                "image {image}: parent {parent} closes a cycle (link ignored)"
            ),
            FsckProblem::LayerRecords(problem) => problem.fmt(f),
            FsckProblem::ImageRecords(problem) => problem.fmt(f),
            FsckProblem::NameRecords(problem) => problem.fmt(f),
            FsckProblem::ChainMismatch { chain_id, computed } => write!(
                f,
                "layer {chain_id}: parent and diff ID give chain ID {computed}"
            ),
            FsckProblem::MissingLayerBlob { chain_id, blob } => {
                write!(f, "layer {chain_id}: blob {blob} missing or truncated")
            }
            FsckProblem::MissingLayer { image, chain_id } => {
                write!(f, "image {image}: top layer {chain_id} missing")
            }
            FsckProblem::ReferenceCount {
                chain_id,
                recorded,
                recounted,
            } => write!(
                f,
                "layer {chain_id}: {recorded} references recorded, {recounted} counted"
            ),
            FsckProblem::UnreferencedLayer { chain_id } => {
                write!(f, "layer {chain_id}: unreferenced (gc removes it)")
            }
            FsckProblem::DanglingName {
                namespace,
                name,
                reason,
            } => write!(f, "name {namespace}/{name}: {reason}"),
            FsckProblem::LeftoverTempFile { path, size } => write!(
                f,
                "temporary file {} ({size} bytes): left by an interrupted import (gc removes it)",
                path.display()
            ),
            FsckProblem::NameDigestMismatch {
                namespace,
                name,
                target,
            } => write!(
                f,
                "name {namespace}/{name}: its digest is not that of its target {target}"
            ),
            FsckProblem::Drift {
                namespace,
                structure,
                detail,
            } => write!(
                f,
                "{structure} of namespace {namespace} differs from the records: {detail}"
            ),
        }
    }
}

/// What [`Store::fsck`] checked, found and (with repair) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FsckReport {
    /// Content blobs and image configs re-verified.
    pub blobs_checked: usize,
    /// Their bytes.
    pub bytes_checked: u64,
    /// Layer records checked.
    pub layers_checked: usize,
    /// Names checked (every namespace).
    pub names_checked: usize,
    /// What was wrong, in the order found.
    pub problems: Vec<FsckProblem>,
    /// With repair: what was done, one line each.
    pub repairs: Vec<String>,
    /// With repair: the `gc` run at the end.
    pub gc: Option<GcReport>,
}

impl FsckReport {
    /// True when nothing was wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads a whole blob through the verifying reader: `Ok(Ok(length))`,
/// `Ok(Err(why))` when it is damaged (its bytes no longer hash to its
/// digest, or they are gone), `Err` when it cannot be read at all (an I/O
/// error, permission denied): fsck then stops rather than call healthy
/// data corrupt, which repair would delete.
fn verify_stream(
    backend: &dyn StoreBackend,
    digest: &Digest,
) -> Result<std::result::Result<u64, String>> {
    let mut reader = match backend.open_blob(digest) {
        Ok(reader) => reader,
        Err(e) if matches!(e.kind(), ErrorKind::DataCorruption | ErrorKind::NotFound) => {
            return Ok(Err(e.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    match io::copy(&mut reader, &mut io::sink()) {
        Ok(size) => Ok(Ok(size)),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidData | io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
            ) =>
        {
            Ok(Err(e.to_string()))
        }
        Err(e) => {
            Err(imgstore_backend::Error::io("read", Subject::Content(digest.clone()), e).into())
        }
    }
}

/// Re-hashes every blob of `backend`, counting them in `report`; returns
/// each blob that failed and is still there (one deleted since the walk is
/// no problem), with why.
fn verify_all(
    backend: &dyn StoreBackend,
    report: &mut FsckReport,
) -> Result<Vec<(Digest, String)>> {
    let mut digests = Vec::new();
    backend.walk(&mut |digest| {
        digests.push(digest.clone());
        Ok(())
    })?;
    let mut failed = Vec::new();
    for digest in digests {
        match verify_stream(backend, &digest)? {
            Ok(size) => {
                report.blobs_checked += 1;
                report.bytes_checked += size;
            }
            Err(reason) => {
                if backend.contains(&digest)? {
                    report.blobs_checked += 1;
                    failed.push((digest, reason));
                }
            }
        }
    }
    Ok(failed)
}

impl Store {
    /// Re-verifies the whole store (see the module docs for what is
    /// checked). Without `repair` nothing changes. With `repair`: corrupt
    /// blobs are deleted, images with a corrupt config and entries skipped
    /// on open are deleted, dangling names are deleted, then [`gc`](Store::gc)
    /// runs, all under one hold of the change lock. Damage repair cannot undo
    /// (a layer blob lost) stays reported; re-importing the image restores
    /// it. No other change runs meanwhile, in this process or another.
    pub fn fsck(&self, repair: bool) -> Result<FsckReport> {
        let mut report = FsckReport::default();
        // Held through the repairs and their gc, so no other change (here or
        // in another process) runs between what was checked and what is
        // deleted.
        let lock = self.lock_imports()?;
        let corrupt_blobs = self.check_content(&mut report)?;
        let corrupt_images = self.check_configs(&mut report)?;
        let bad_metadata = self.check_image_metadata(&mut report)?;
        self.check_layers(&mut report)?;
        let image_index_drifted = self.check_image_records(&mut report)?;
        for problem in self.refs.check()? {
            report.problems.push(FsckProblem::NameRecords(problem));
        }
        let dangling = self.check_names(&mut report)?;
        let leftovers =
            crate::tmpdir::leftover_temp_files(&self.root, false).map_err(|source| {
                crate::Error::Io {
                    operation: "list temporary files in",
                    path: self.root.join("tmp"),
                    source,
                }
            })?;
        for (path, size) in leftovers {
            report
                .problems
                .push(FsckProblem::LeftoverTempFile { path, size });
        }
        self.check_derived(&mut report, &dangling)?;
        if !repair {
            return lock.finish(Ok(report));
        }
        let repaired = self
            .repair(
                &mut report,
                corrupt_blobs,
                corrupt_images,
                bad_metadata,
                dangling,
            )
            .and_then(|()| self.repair_image_index(&mut report, image_index_drifted))
            .and_then(|()| self.repair_derived(&mut report));
        lock.finish(repaired.map(|()| report))
    }

    /// Deletes what fsck found broken, then runs gc (the change lock held).
    fn repair(
        &self,
        report: &mut FsckReport,
        corrupt_blobs: Vec<Digest>,
        corrupt_images: Vec<ImageId>,
        bad_metadata: Vec<(ImageId, &'static str)>,
        dangling: Vec<(String, String)>,
    ) -> Result<()> {
        for digest in corrupt_blobs {
            match self.content.delete(&digest) {
                Ok(()) => report
                    .repairs
                    .push(format!("deleted corrupt blob {digest}")),
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        for image in corrupt_images {
            if self.images.summary(&image)?.is_some() {
                self.images.delete(&image)?;
            } else {
                match self.images.backend().delete(image.digest()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            report.repairs.push(format!("deleted image {image}"));
        }
        for (image, key) in bad_metadata {
            match self.images.backend().delete_metadata(image.digest(), key) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            report
                .repairs
                .push(format!("deleted metadata {key:?} of image {image}"));
        }
        for (namespace, name) in dangling {
            // The name and its index entry, in one batch.
            let mut batch = imgstore_backend::Batch::new();
            match self.refs.stage_delete(&namespace, &name, None, &mut batch) {
                Ok(_) => {
                    self.stage_names(&mut batch, &namespace, &[(name.as_str(), None)])?;
                    self.refs.commit(&batch)?;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            report
                .repairs
                .push(format!("deleted dangling name {namespace}/{name}"));
        }
        // Derived layer records first: gc's cascades rely on them.
        let rewritten = self.layers.repair_derived()?;
        if rewritten > 0 {
            report
                .repairs
                .push(format!("rewrote {rewritten} derived layer record(s)"));
        }
        report.gc = Some(self.gc_locked()?);
        Ok(())
    }

    /// Re-hashes every content blob; returns the corrupt ones.
    fn check_content(&self, report: &mut FsckReport) -> Result<Vec<Digest>> {
        let mut corrupt = Vec::new();
        for (digest, reason) in verify_all(&*self.content, report)? {
            report.problems.push(FsckProblem::CorruptBlob {
                digest: digest.clone(),
                reason,
            });
            corrupt.push(digest);
        }
        Ok(corrupt)
    }

    /// True when the config verifies and parses and its layers exist.
    fn whole_now(&self, backend: &dyn StoreBackend, digest: &Digest) -> bool {
        let Ok(bytes) = backend.get(digest) else {
            return false;
        };
        match imgstore_image::Image::from_config(&bytes) {
            Ok(image) => image
                .top_chain_id()
                .is_none_or(|top| self.layers.layer(top).is_ok_and(|l| l.is_some())),
            Err(_) => false,
        }
    }

    /// Re-hashes every image config and lists the images skipped on open;
    /// returns the images to delete on repair.
    fn check_configs(&self, report: &mut FsckReport) -> Result<Vec<ImageId>> {
        let backend = self.images.backend();
        let mut to_delete = Vec::new();
        for (digest, reason) in verify_all(&**backend, report)? {
            let image = ImageId::from(digest);
            report.problems.push(FsckProblem::CorruptConfig {
                image: image.clone(),
                reason,
            });
            to_delete.push(image);
        }
        for (id, reason) in self.unlisted_images()? {
            if to_delete.contains(&id) || !backend.contains(id.digest())? {
                continue;
            }
            // A healthy config unlisted for a read that failed (EIO,
            // EACCES) must not be deleted by repair.
            if !self.whole_now(&**backend, id.digest()) {
                to_delete.push(id.clone());
            }
            report
                .problems
                .push(FsckProblem::SkippedImage { image: id, reason });
        }
        Ok(to_delete)
    }

    /// The images the image store lists but cannot read (a corrupt or
    /// unparsable config, a missing layer), with why: what open skipped
    /// before the image records existed. A config no summary names is a
    /// leftover of a create or delete that stopped (gc's), not one of
    /// these. O(n): the image store's [`check`](imgstore_image::Store::check).
    pub(crate) fn unlisted_images(&self) -> Result<Vec<(ImageId, String)>> {
        let mut unlisted = Vec::new();
        for problem in self.images.check()? {
            match problem {
                ImageProblem::BrokenConfig { id, reason } => unlisted.push((id, reason)),
                ImageProblem::LayerMissing { id, chain_id } => {
                    unlisted.push((id, format!("layer {chain_id} does not exist")))
                }
                _ => {}
            }
        }
        Ok(unlisted)
    }

    /// [`unlisted_images`](Self::unlisted_images), IDs only.
    pub(crate) fn unlisted_image_configs(&self) -> Result<Vec<ImageId>> {
        Ok(self
            .unlisted_images()?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Reads every image's `lastUpdated` and lists the `parent` links
    /// restore ignored (cycles); returns the metadata keys to delete on
    /// repair.
    fn check_image_metadata(
        &self,
        report: &mut FsckReport,
    ) -> Result<Vec<(ImageId, &'static str)>> {
        let mut bad = Vec::new();
        for (id, _) in self.images.summaries()? {
            match self.images.get_last_updated(&id) {
                Ok(_) => {}
                Err(imgstore_image::ImageError::CorruptMetadata { key, reason, .. }) => {
                    report.problems.push(FsckProblem::CorruptMetadata {
                        image: id.clone(),
                        key: key.to_owned(),
                        reason,
                    });
                    bad.push((id, key));
                }
                // Deleted since the listing: nothing to check.
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
        for problem in self.images.check()? {
            if let ImageProblem::ParentCycle { id, parent } = problem {
                report.problems.push(FsckProblem::ParentCycle {
                    image: id.clone(),
                    parent,
                });
                bad.push((id, "parent"));
            }
        }
        Ok(bad)
    }

    /// Checks every layer record against its parent, its blob and the
    /// recount of its references, with the layer store's own check of its
    /// records (see `LayerStore::check`).
    fn check_layers(&self, report: &mut FsckReport) -> Result<()> {
        for problem in self.layers.check()? {
            report.problems.push(FsckProblem::LayerRecords(problem));
        }
        let layers = self.layers.map()?;
        let mut recount: HashMap<&ChainId, usize> = HashMap::new();
        for layer in layers.values() {
            if let Some(parent) = layer.parent() {
                *recount.entry(parent).or_default() += 1;
            }
        }
        let images = self.images.map()?;
        for (id, image) in &images {
            // The image's reference is its `image:<hex>` hold, counted
            // with the holders below.
            if let Some(top) = image.top_chain_id()
                && !layers.contains_key(top)
            {
                report.problems.push(FsckProblem::MissingLayer {
                    image: id.clone(),
                    chain_id: top.clone(),
                });
            }
        }
        for (chain_id, layer) in &layers {
            report.layers_checked += 1;
            let computed = match layer.parent() {
                Some(parent) => parent.child(layer.diff_id()),
                None => ChainId::base(layer.diff_id().clone()),
            };
            if &computed != chain_id {
                report.problems.push(FsckProblem::ChainMismatch {
                    chain_id: chain_id.clone(),
                    computed,
                });
            }
            if let Some(blob) = layer.blob() {
                let present = self
                    .content
                    .size(&blob.digest)
                    .is_ok_and(|size| size == blob.size);
                if !present {
                    report.problems.push(FsckProblem::MissingLayerBlob {
                        chain_id: chain_id.clone(),
                        blob: blob.digest.clone(),
                    });
                }
            }
            let recorded = self.layers.references(chain_id)?.unwrap_or(0);
            let recounted =
                recount.get(chain_id).copied().unwrap_or(0) + self.layers.holders(chain_id)?.len();
            if recounted == 0 && recorded == 0 {
                report.problems.push(FsckProblem::UnreferencedLayer {
                    chain_id: chain_id.clone(),
                });
            } else if recorded != recounted {
                report.problems.push(FsckProblem::ReferenceCount {
                    chain_id: chain_id.clone(),
                    recorded,
                    recounted,
                });
            }
        }
        Ok(())
    }

    /// True when the image is stored: in the image store, or skipped on
    /// open but whole now (such an image stays, see check_configs, so its
    /// names are not dangling).
    fn image_is_stored(&self, id: &ImageId) -> bool {
        self.images.get(id).is_ok()
            || (self.images.backend().contains(id.digest()).unwrap_or(false)
                && self.whole_now(&**self.images.backend(), id.digest()))
    }

    /// Compares every entry of the name index with a fresh derivation from
    /// the names, manifests and images: each name that drifted is a
    /// [`FsckProblem::Drift`] of the `name index`.
    /// A name already reported dangling (its repair deletes it, and its
    /// entry with it) is not reported again.
    fn check_derived(&self, report: &mut FsckReport, dangling: &[(String, String)]) -> Result<()> {
        for drift in self.check_name_index(false)? {
            if dangling
                .iter()
                .any(|(namespace, name)| *namespace == drift.namespace && *name == drift.name)
            {
                continue;
            }
            report.problems.push(FsckProblem::Drift {
                namespace: drift.namespace,
                structure: "name index",
                detail: format!("{}: {}", drift.name, drift.detail),
            });
        }
        Ok(())
    }

    /// Reports what the image store's check finds beyond what
    /// `check_configs` and `check_image_metadata` report; returns whether
    /// the image index has anything `rebuild_index` repairs.
    fn check_image_records(&self, report: &mut FsckReport) -> Result<bool> {
        let mut repairable = false;
        for problem in self.images.check()? {
            match problem {
                // Reported as SkippedImage and ParentCycle.
                ImageProblem::BrokenConfig { .. }
                | ImageProblem::LayerMissing { .. }
                | ImageProblem::ParentCycle { .. } => {}
                problem => {
                    repairable |= problem.is_repairable();
                    report.problems.push(FsckProblem::ImageRecords(problem));
                }
            }
        }
        Ok(repairable)
    }

    /// Rebuilds the image index (summaries, children links, holds) from the
    /// configs when its check found drift; gc ran before, so configs no
    /// summary named (leftovers of stopped creates) are gone, not indexed.
    fn repair_image_index(&self, report: &mut FsckReport, drifted: bool) -> Result<()> {
        if drifted {
            let changed = self.images.rebuild_index()?;
            report.repairs.push(format!(
                "rebuilt the image index from the configs ({changed} record(s) changed)"
            ));
        }
        Ok(())
    }

    /// Rewrites every entry of the name index that differs from what the
    /// records give, after the repairs before it deleted names or images.
    fn repair_derived(&self, report: &mut FsckReport) -> Result<()> {
        for drift in self.check_name_index(true)? {
            report.repairs.push(format!(
                "re-derived the name index entry of {}/{}",
                drift.namespace, drift.name
            ));
        }
        Ok(())
    }

    /// Checks every name of every namespace; returns the dangling ones: a
    /// name leads to a stored image when what it may mean (its manifest, or
    /// the stored manifests of its index, as [`imgstore_cri::read_names`]
    /// resolves every name) names one.
    fn check_names(&self, report: &mut FsckReport) -> Result<Vec<(String, String)>> {
        let mut dangling = Vec::new();
        for namespace in self.refs.namespaces()? {
            let records = self.refs.list(&namespace, &[])?;
            let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
            let targets = imgstore_cri::read_names(&namespace, &self.refs, &*self.content, &names)?;
            for (record, target) in records.iter().zip(targets) {
                report.names_checked += 1;
                // A digest name must name its target (an older import
                // stored such names unchecked).
                if let Err(crate::Error::NameDigestMismatch { .. }) =
                    crate::oci::check_name_digest(&record.name, &record.target.digest)
                {
                    report.problems.push(FsckProblem::NameDigestMismatch {
                        namespace: namespace.clone(),
                        name: record.name.clone(),
                        target: record.target.digest.clone(),
                    });
                    dangling.push((namespace.clone(), record.name.clone()));
                    continue;
                }
                let stored = target.is_some_and(|target| {
                    target
                        .candidates
                        .iter()
                        .any(|candidate| self.image_is_stored(&candidate.id))
                });
                let reason = if stored {
                    None
                } else if !self.content.contains(&record.target.digest)? {
                    Some(format!("target {} missing", record.target.digest))
                } else {
                    Some(format!(
                        "target {} leads to no stored image",
                        record.target.digest
                    ))
                };
                if let Some(reason) = reason {
                    report.problems.push(FsckProblem::DanglingName {
                        namespace: namespace.clone(),
                        name: record.name.clone(),
                        reason,
                    });
                    dangling.push((namespace.clone(), record.name.clone()));
                }
            }
        }
        Ok(dangling)
    }
}
