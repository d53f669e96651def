//! Managing names and images with Docker's semantics: `tag`, `untag`,
//! `remove` (`docker rmi`), `pin`/`unpin` (the CRI's pinned label),
//! `prune` (`docker image prune`) and `gc`.
//!
//! Names are containerd image records; which image a name means is what the
//! CRI cache resolved it to (target -> manifest -> config), and every change
//! of a name is followed by an update of the cache for that name.
//! Deleting an image releases its top layer (and so, in cascade, the layers
//! and layer blobs nothing else uses); the manifests and indexes that no
//! name reaches any more are left to [`Store::gc`].

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use imgstore_backend::Batch;
use imgstore_backend::{ErrorKind, StoreBackend};
use imgstore_cri::PINNED_LABEL;
use imgstore_digest::Digest;
use imgstore_image::{ImageId, ImageStore};
use imgstore_layer::{ChainId, LayerMetadata, LayerProblem};
use imgstore_refs::reference::{Reference, normalize};
use imgstore_refs::{Descriptor, ImageRecord};
use serde_json::Value;

use crate::namespaces::short_id;
use crate::{Error, Result, Store};

/// JSON blobs (manifests, indexes) larger than this are not parsed.
pub(crate) const MAX_JSON_BLOB: u64 = 16 << 20;
/// Nested indexes deeper than this are not followed.
pub(crate) const MAX_INDEX_DEPTH: usize = 8;
/// The holder name `gc` uses to drop unreferenced layers.
const GC_HOLDER: &str = "imgstore-gc";

/// What [`Store::untag`] removed: Docker's `Untagged: <name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untagged {
    /// The name removed, in its stored (full) form.
    pub name: String,
    /// The image it named, when it resolved to one; the image stays.
    pub image: Option<ImageId>,
}

/// What [`Store::remove`] did: Docker's `Untagged:` and `Deleted:` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// Names removed, in their stored (full) form.
    pub untagged: Vec<String>,
    /// Images deleted.
    pub deleted: Vec<ImageId>,
    /// Layer records freed by the deletions (the top layers and, in
    /// cascade, the layers below that nothing else used).
    pub released_layers: usize,
    /// The chain IDs of those layers, top first: Docker's `Deleted:` lines
    /// after the image's.
    pub deleted_layers: Vec<ChainId>,
    /// How many of `deleted_layers` each image of `deleted` freed, in the
    /// same order: Docker prints each image's layers after it.
    pub deleted_layer_counts: Vec<usize>,
    /// The bytes of those layers as Docker counts them (the regular files
    /// in each, as `history` and `df` do; the tar's size for a layer
    /// recorded without it), not the bytes of the stored tars.
    pub space_reclaimed: u64,
    /// Blobs of the deleted images that nothing uses any more and that
    /// stay until [`Store::gc`]: the manifests and indexes the removed
    /// names pointed at, and the configs kept in the content store.
    pub blobs_left_for_gc: Vec<Digest>,
}

/// How [`Store::remove_with`] removes (`docker rmi` flags).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoveOptions {
    /// `-f`: remove an image several names point at, or a pinned one.
    pub force: bool,
    /// Also delete the parents the deletion leaves dangling (no name in any
    /// namespace, no other child), as Docker does unless `--no-prune`.
    pub prune: bool,
}

impl Default for RemoveOptions {
    /// Docker's defaults: not forced, parents pruned.
    fn default() -> RemoveOptions {
        RemoveOptions {
            force: false,
            prune: true,
        }
    }
}

/// What [`Store::prune`] removed: Docker's `image prune` report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Names removed (only with `all`), in their stored (full) form.
    pub untagged: Vec<String>,
    /// Images deleted, children before their parents.
    pub deleted: Vec<ImageId>,
    /// Layer records freed in cascade.
    pub released_layers: usize,
    /// The bytes of the layers freed, as Docker counts them (see
    /// [`RemoveReport::space_reclaimed`]): `Total reclaimed space`.
    pub space_reclaimed: u64,
    /// Per image deleted, in order, what it took with it: the groups of
    /// lines Docker prints (its names, the image, its layers).
    pub images: Vec<RemoveReport>,
    /// Blobs left for [`Store::gc`] (see
    /// [`RemoveReport::blobs_left_for_gc`]).
    pub blobs_left_for_gc: Vec<Digest>,
}

/// What [`Store::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Layer records nothing referenced (leftovers of interrupted imports),
    /// counting the layers below them freed in cascade.
    pub layers_removed: usize,
    /// Content blobs nothing reachable uses, deleted.
    pub blobs_removed: usize,
    /// Bytes of the blobs deleted (those above and the blobs of the layers
    /// removed) plus those of orphan files of interrupted writes.
    pub bytes_freed: u64,
    /// Files of interrupted writes removed: the SQLite backend's (temp
    /// files, content files no row names), and on both backends temporary
    /// files of interrupted imports (`<root>/tmp/`) and the catalogs earlier
    /// versions kept.
    pub orphan_files_removed: usize,
    /// What gc left alone because the store opened with entries it skipped
    /// (an image config or layer record that did not load): such an entry
    /// may still use layers or blobs nothing else names. Empty normally.
    pub notes: Vec<String>,
}

/// The full form of a name `tag` may create: a valid reference, not a
/// digest reference.
fn tag_name(target: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidName {
        name: target.to_owned(),
        reason,
    };
    let reference = Reference::parse_normalized(target).map_err(|e| invalid(e.to_string()))?;
    if reference.digest().is_some() {
        return Err(invalid(
            "refusing to create a tag with a digest reference".to_owned(),
        ));
    }
    normalize(target).map_err(|e| invalid(e.to_string()))
}

/// moby's `isSingleReference`: the names are one tag at most, plus digest
/// references of that same repository; deleting the image by ID then needs
/// no force.
fn is_single_reference(names: &[String]) -> bool {
    if names.len() <= 1 {
        return names.len() == 1;
    }
    let mut single: Option<Reference> = None;
    let mut canonical = BTreeSet::new();
    let mut first = None;
    for name in names {
        let Ok(reference) = Reference::parse_normalized(name) else {
            return false;
        };
        if first.is_none() {
            first = Some(reference.clone());
        }
        if reference.digest().is_some() {
            canonical.insert(reference.name());
        } else if single.is_none() {
            single = Some(reference);
        } else {
            return false;
        }
    }
    let Some(single) = single.or(first) else {
        return false;
    };
    canonical.len() == 1 && canonical.contains(&single.name())
}

/// The distinct targets of name records, in order.
fn targets_of<'a>(records: impl IntoIterator<Item = &'a ImageRecord>) -> Vec<Digest> {
    let mut targets: Vec<Digest> = Vec::new();
    for record in records {
        if !targets.contains(&record.target.digest) {
            targets.push(record.target.digest.clone());
        }
    }
    targets
}

/// The value of [`PINNED_LABEL`] on a pinned name, as the CRI plugin writes it.
const PINNED_VALUE: &str = "pinned";

/// True when the name record carries the CRI's pinned label.
fn is_pinned(record: &ImageRecord) -> bool {
    record
        .labels
        .get(PINNED_LABEL)
        .is_some_and(|value| value == PINNED_VALUE)
}

impl Store {
    /// Points the name `target` at the image `source` (a name, a full image
    /// ID or a unique prefix of one), Docker's `tag`: the new name gets the
    /// descriptor (manifest or index) the source's name points at, and a
    /// name that pointed elsewhere is moved. `target` is normalised
    /// (`app` is `docker.io/library/app:latest`); an invalid name or a
    /// digest reference is refused (`InvalidArgument`). An image no name
    /// reaches has no manifest to point at: `FailedPrecondition`. Returns
    /// the image tagged, whose last tag time (`inspect`'s `LastTagTime`)
    /// is now.
    pub fn tag(&self, source: &str, target: &str) -> Result<ImageId> {
        let target = tag_name(target)?;
        let lock = self.lock_imports()?;
        let (id, descriptor) = match self.find_record(source) {
            Ok(record) => (self.resolve(&record.name)?, record.target.clone()),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                let id = self.search_visible(source)?;
                let descriptor = match self.names_of(&id)?.first() {
                    Some(name) => self.refs.get(&self.namespace, name)?.target.clone(),
                    None => self
                        .find_manifest(&id)?
                        .ok_or_else(|| Error::NoManifest { image: id.clone() })?,
                };
                (id, descriptor)
            }
            Err(e) => return Err(e),
        };
        // The name and its index entry, in one batch.
        let mut batch = Batch::new();
        let record = match self.refs.get(&self.namespace, &target) {
            Ok(existing)
                if existing.target.digest == descriptor.digest
                    && existing.target.media_type == descriptor.media_type =>
            {
                ImageRecord::clone(&existing)
            }
            Ok(existing) => {
                let mut moved = ImageRecord::clone(&existing);
                moved.target = descriptor;
                self.refs
                    .stage_update(&self.namespace, moved, &["target"], &mut batch)?
            }
            Err(e) if e.kind() == ErrorKind::NotFound => self.refs.stage_create(
                &self.namespace,
                ImageRecord::new(target.clone(), descriptor),
                &mut batch,
            )?,
            Err(e) => return Err(e.into()),
        };
        self.stage_names(&mut batch, &self.namespace, &[(&target, Some(&record))])?;
        self.refs.commit(&batch)?;
        // Docker's `LastTagTime` (moby's TagImage sets it after adding the
        // tag). Informational: the tag stands even if it cannot be written.
        let _ = self.images.set_last_updated(&id);
        lock.finish(Ok(id))
    }

    /// Records `parent` as the parent image of `child` (each a name, a full
    /// image ID or a unique prefix of one), as a local build does: `child`
    /// then counts as a child image (`remove` of the parent is refused, and
    /// an unnamed parent is an intermediate image). `NotFound` when either
    /// is not stored.
    pub fn set_parent(&self, child: &str, parent: &str) -> Result<()> {
        let lock = self.lock_imports()?;
        let child = self.resolve(child)?;
        let parent = self.resolve(parent)?;
        self.images.set_parent(&child, &parent)?;
        lock.finish(Ok(()))
    }

    /// Removes the name (as stored, or as typed: `app:v1`), Docker's
    /// `Untagged:`; the image stays, even when no name is left. `NotFound`
    /// when there is no such name.
    pub fn untag(&self, name: &str) -> Result<Untagged> {
        let lock = self.lock_imports()?;
        let record = self.find_record(name)?;
        let image = self.image_of_name(&record.name)?;
        self.delete_names(std::slice::from_ref(&record.name))?;
        lock.finish(Ok(Untagged {
            name: record.name.clone(),
            image,
        }))
    }

    /// Docker's `rmi`.
    ///
    /// By name: removes that name; then, when no other name points at the
    /// image and it has no child images, deletes the image, which releases
    /// its layers (and in cascade the layers and layer blobs nothing else
    /// uses).
    ///
    /// By full or short ID: an image with child images is refused
    /// (`Conflict`, "image has dependent child images", even with `force`,
    /// as Docker); an image several names point at is refused without
    /// `force` (`Conflict`: `conflict: unable to delete <short id> (must be
    /// forced) - image is referenced in multiple repositories`), except when
    /// they are one tag and digest names of the same repository (moby's
    /// rule). Otherwise every name of the image is removed and the image
    /// deleted.
    ///
    /// A pinned name, or an image one of whose names is pinned, is refused
    /// without `force` (`Conflict`, "image is pinned").
    ///
    /// Namespaces share images: by name, the image is deleted only when no
    /// name of any namespace reaches it any more; by ID, an image names of
    /// another namespace reach is refused, even with `force`
    /// ([`Error::InUseInOtherNamespaces`], naming them).
    ///
    /// When the image is deleted, so are its parents that are left
    /// dangling (no name in any namespace, no other child), each listed in
    /// `deleted` after it, up the chain, as `docker rmi` prunes them;
    /// [`remove_with`](Store::remove_with) can keep them (`--no-prune`).
    /// That pruning is best effort: a parent that cannot be deleted ends
    /// it, and the removal still succeeds.
    ///
    /// Manifest and index blobs no name uses any more stay until
    /// [`gc`](Store::gc). `NotFound` when nothing matches.
    pub fn remove(&self, name_or_id: &str, force: bool) -> Result<RemoveReport> {
        self.remove_with(
            name_or_id,
            &RemoveOptions {
                force,
                ..RemoveOptions::default()
            },
        )
    }

    /// [`remove`](Store::remove) with `options`: `prune: false` keeps the
    /// parents it would delete (`docker rmi --no-prune`).
    pub fn remove_with(&self, name_or_id: &str, options: &RemoveOptions) -> Result<RemoveReport> {
        let lock = self.lock_imports()?;
        let force = options.force;
        // Read before the image goes: its deletion drops the link.
        let mut parent = None;
        let result = match self.find_record(name_or_id) {
            Ok(record) => {
                if is_pinned(&record) && !force {
                    let image = self.image_of_name(&record.name)?;
                    return Err(Error::ImageConflict {
                        short_id: image
                            .as_ref()
                            .map(short_id)
                            .unwrap_or_else(|| record.name.clone()),
                        forcible: true,
                        reason: "image is pinned",
                    });
                }
                parent = self
                    .image_of_name(&record.name)?
                    .and_then(|id| self.images.get_parent(&id).ok());
                self.remove_by_name(&record)
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                let id = self.search_for_removal(name_or_id)?;
                parent = self.images.get_parent(&id).ok();
                self.remove_by_id(&id, force)
            }
            Err(e) => Err(e),
        };
        let result = result.map(|mut report| {
            if options.prune && !report.deleted.is_empty() {
                self.prune_parents(parent, &mut report);
            }
            report
        });
        lock.finish(result)
    }

    /// Deletes `parent` and its own parents, up the chain, while each is
    /// dangling: no name in any namespace, no child left (moby's
    /// `imageDeleteHelper` with `prune`, which stops quietly at a conflict).
    fn prune_parents(&self, mut parent: Option<ImageId>, report: &mut RemoveReport) {
        while let Some(id) = parent {
            let in_use = crate::name_index::is_reached(&self.content, &id)
                .and_then(|named| Ok(named || !self.images.children(&id)?.is_empty()));
            if in_use.unwrap_or(true) {
                return;
            }
            parent = self.images.get_parent(&id).ok();
            if self.delete_image_into(&id, report).is_err() {
                return;
            }
        }
    }

    fn remove_by_name(&self, record: &ImageRecord) -> Result<RemoveReport> {
        let mut report = RemoveReport::default();
        let image = self.image_of_name(&record.name)?;
        self.delete_names(std::slice::from_ref(&record.name))?;
        let untagged = [record.clone()];
        report.untagged.push(record.name.clone());
        // The image goes with its last name in any namespace. Its records
        // are read now: a failing read puts the name back.
        let stored_without_children = |id: &ImageId| -> Result<bool> {
            Ok(self.images.summary(id)?.is_some() && self.images.children(id)?.is_empty())
        };
        if let Some(id) = image
            && !crate::name_index::is_reached(&self.content, &id)
                .map_err(|e| self.restore_names(&untagged, e))?
            && stored_without_children(&id).map_err(|e| self.restore_names(&untagged, e))?
        {
            self.delete_image_into(&id, &mut report)
                .map_err(|e| self.restore_names(&untagged, e))?;
            report.blobs_left_for_gc.push(record.target.digest.clone());
        }
        Ok(report)
    }

    fn remove_by_id(&self, id: &ImageId, force: bool) -> Result<RemoveReport> {
        self.check_not_in_use_elsewhere(id)?;
        if !self.images.children(id)?.is_empty() {
            return Err(Error::ImageConflict {
                short_id: short_id(id),
                forcible: false,
                reason: "image has dependent child images",
            });
        }
        let names = self.names_of(id)?;
        if !force && self.any_pinned(&names)? {
            return Err(Error::ImageConflict {
                short_id: short_id(id),
                forcible: true,
                reason: "image is pinned",
            });
        }
        if names.len() > 1 && !force && !is_single_reference(&names) {
            return Err(Error::ImageConflict {
                short_id: short_id(id),
                forcible: true,
                reason: "image is referenced in multiple repositories",
            });
        }
        let mut report = RemoveReport::default();
        // Every name and its index entries in one batch (an image may
        // have 10k).
        let untagged = self.delete_names(&names)?;
        report.untagged = names;
        self.delete_image_into(id, &mut report)
            .map_err(|e| self.restore_names(&untagged, e))?;
        report.blobs_left_for_gc.extend(targets_of(untagged.iter()));
        Ok(report)
    }

    /// Deletes an image and adds to `report` what Docker reports of it:
    /// the image, the layers freed (top first) and their bytes as Docker
    /// counts them, read before the records go.
    fn delete_image_into(&self, id: &ImageId, report: &mut RemoveReport) -> Result<()> {
        let sizes: HashMap<ChainId, u64> = match self.images.get(id) {
            Ok(image) => self
                .chain_of(image.top_chain_id())
                .iter()
                .map(|layer| {
                    let size = layer.files_size().unwrap_or(layer.size());
                    (layer.chain_id().clone(), size)
                })
                .collect(),
            Err(_) => HashMap::new(),
        };
        let released: Vec<LayerMetadata> = self.images.delete(id)?;
        report.deleted.push(id.clone());
        // The config's copy in the content store (written by imports)
        // stays for gc, as the manifests do.
        if self.content.contains(id.digest()).unwrap_or(false) {
            report.blobs_left_for_gc.push(id.digest().clone());
        }
        report.released_layers += released.len();
        report.deleted_layer_counts.push(released.len());
        for layer in released {
            report.space_reclaimed += sizes.get(&layer.chain_id).copied().unwrap_or(layer.size);
            report.deleted_layers.push(layer.chain_id);
        }
        Ok(())
    }

    /// Puts back names a failed `remove` had deleted (best effort), so the
    /// failed call changes nothing; returns the error to report.
    fn restore_names(&self, records: &[ImageRecord], error: Error) -> Error {
        let restore = || -> Result<()> {
            let mut batch = Batch::new();
            let mut created = Vec::with_capacity(records.len());
            for record in records {
                created.push(self.refs.stage_create(
                    &self.namespace,
                    record.clone(),
                    &mut batch,
                )?);
            }
            let changes: Vec<(&str, Option<&ImageRecord>)> = created
                .iter()
                .map(|record| (record.name.as_str(), Some(record)))
                .collect();
            self.stage_names(&mut batch, &self.namespace, &changes)?;
            Ok(self.refs.commit(&batch)?)
        };
        let _ = restore();
        error
    }

    /// Deletes the names of this namespace with their index entries, in one
    /// batch; returns the records removed.
    pub(crate) fn delete_names(&self, names: &[String]) -> Result<Vec<ImageRecord>> {
        let mut batch = Batch::new();
        let removed: Vec<ImageRecord> = self
            .refs
            .stage_delete_many(&self.namespace, names, &mut batch)?
            .iter()
            .map(|record| ImageRecord::clone(record))
            .collect();
        let changes: Vec<(&str, Option<&ImageRecord>)> = removed
            .iter()
            .map(|record| (record.name.as_str(), None))
            .collect();
        self.stage_names(&mut batch, &self.namespace, &changes)?;
        self.refs.commit(&batch)?;
        Ok(removed)
    }

    /// Pins an image, the CRI's way: every name of it (or just the name
    /// given) gets the label `io.cri-containerd.pinned=pinned`. A pinned
    /// image is kept by [`prune`](Store::prune) and refused by
    /// [`remove`](Store::remove) without `force`; pinning survives restarts
    /// (it is a label of the stored name). An image no name reaches cannot
    /// be pinned (`FailedPrecondition`). Returns the names now pinned.
    pub fn pin(&self, name_or_id: &str) -> Result<Vec<String>> {
        self.set_pinned(name_or_id, true)
    }

    /// Undoes [`pin`](Store::pin) for the name given, or for every name of
    /// the image given by ID. Returns the names changed (empty when none
    /// was pinned).
    pub fn unpin(&self, name_or_id: &str) -> Result<Vec<String>> {
        self.set_pinned(name_or_id, false)
    }

    fn set_pinned(&self, name_or_id: &str, pinned: bool) -> Result<Vec<String>> {
        let lock = self.lock_imports()?;
        let names = match self.find_record(name_or_id) {
            Ok(record) => vec![record.name.clone()],
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                let id = self.search_visible(name_or_id)?;
                let names = self.names_of(&id)?;
                if names.is_empty() {
                    return Err(Error::Unnamed { image: id });
                }
                names
            }
            Err(e) => return Err(e),
        };
        // Every name and its index entry in one batch.
        let mut batch = Batch::new();
        let mut changed = Vec::new();
        let mut updated_records = Vec::new();
        for name in names {
            let record = self.refs.get(&self.namespace, &name)?;
            if is_pinned(&record) == pinned {
                continue;
            }
            let mut updated = ImageRecord::clone(&record);
            if pinned {
                updated
                    .labels
                    .insert(PINNED_LABEL.to_owned(), PINNED_VALUE.to_owned());
            } else {
                updated.labels.remove(PINNED_LABEL);
            }
            let path = format!("labels.{PINNED_LABEL}");
            updated_records.push(self.refs.stage_update(
                &self.namespace,
                updated,
                &[path.as_str()],
                &mut batch,
            )?);
            changed.push(name);
        }
        let changes: Vec<(&str, Option<&ImageRecord>)> = updated_records
            .iter()
            .map(|record| (record.name.as_str(), Some(record)))
            .collect();
        self.stage_names(&mut batch, &self.namespace, &changes)?;
        self.refs.commit(&batch)?;
        lock.finish(Ok(changed))
    }

    /// True when any of the names is pinned.
    fn any_pinned(&self, names: &[String]) -> Result<bool> {
        for name in names {
            if is_pinned(&*self.refs.get(&self.namespace, name)?) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Docker's `image prune`: deletes dangling images (no name reaches
    /// them) that have no child images; with `all`, every image without
    /// child images, names included, repeating until only images with
    /// children remain (children go first, so a whole unpinned chain goes).
    /// Pinned images, and so their parents, are kept; so are images names
    /// of another namespace reach (in use there), with their names here.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let lock = self.lock_imports()?;
        let mut report = PruneReport::default();
        loop {
            let mut progressed = false;
            let mut names_by_image = self.names_by_image()?;
            for id in self.images.heads()?.into_keys() {
                let names = names_by_image.remove(&id).unwrap_or_default();
                // In use in another namespace: neither the image nor its
                // names here go (as Docker's prune skips an image in use).
                if (!all && !names.is_empty())
                    || self.any_pinned(&names)?
                    || !self.namespaces_elsewhere(&id)?.is_empty()
                {
                    continue;
                }
                let removed = self.delete_names(&names)?;
                let mut image = RemoveReport {
                    untagged: names,
                    blobs_left_for_gc: targets_of(removed.iter()),
                    ..RemoveReport::default()
                };
                self.delete_image_into(&id, &mut image)?;
                report.untagged.extend(image.untagged.iter().cloned());
                report.deleted.extend(image.deleted.iter().cloned());
                report.released_layers += image.released_layers;
                report.space_reclaimed += image.space_reclaimed;
                report
                    .blobs_left_for_gc
                    .extend(image.blobs_left_for_gc.iter().cloned());
                report.images.push(image);
                progressed = true;
            }
            if !progressed {
                return lock.finish(Ok(report));
            }
        }
    }

    /// Removes what nothing uses: layer records without any reference (left
    /// by interrupted imports; their parents follow in cascade), then every
    /// content blob nothing reachable uses. Reachable: the target of every
    /// name of every namespace and, through indexes, their manifests, each
    /// manifest's config and layer blobs; the blob of every layer record;
    /// the config of every image; and the manifest of an image no name
    /// reaches (kept so it can be named again). Image configs in the image
    /// store's own backend are not touched. When the store opened with
    /// entries it skipped, gc is careful (see [`GcReport::notes`]): with a
    /// skipped image no layer is dropped; with a skipped layer record only
    /// JSON blobs are removed. On SQLite, also removes the
    /// files interrupted writes left (`gc_orphan_files`). Runs while no
    /// import, tag or remove does; a second run removes nothing.
    pub fn gc(&self) -> Result<GcReport> {
        let lock = self.lock_imports()?;
        let report = self.gc_locked();
        lock.finish(report)
    }

    /// [`gc`](Store::gc)'s work, for a caller that holds the change lock.
    pub(crate) fn gc_locked(&self) -> Result<GcReport> {
        let mut report = GcReport::default();

        // Layers nothing references: a persistent hold taken and dropped
        // deletes each with the cascade of a release.
        // Skipped entries deleted since (by `fsck` repair) no longer count.
        let skipped_images = self.unlisted_image_configs()?;
        // Layer records that do not read: their blobs cannot be told apart.
        let layer_problems = self
            .layers
            .check()?
            .iter()
            .filter(|p| {
                matches!(
                    p,
                    LayerProblem::UnreadableRecord { .. } | LayerProblem::ChainMismatch { .. }
                )
            })
            .count();
        if !skipped_images.is_empty() {
            report.notes.push(format!(
                "{} image(s) skipped on open: layers without references kept, as they may be theirs",
                skipped_images.len()
            ));
        }
        if layer_problems > 0 {
            report.notes.push(format!(
                "{layer_problems} layer record(s) unreadable: only JSON blobs (manifests, indexes, configs) removed"
            ));
        }
        let mut released: Vec<LayerMetadata> = Vec::new();
        // Holds of images that no longer exist (a delete whose unhold
        // failed, a create that stopped before its summary) go first.
        for chain in self.layers.map()?.keys() {
            for holder in self.layers.holders(chain)? {
                if let Some(id) = imgstore_image::image_of_layer_holder(&holder)
                    && self.images.summary(&id)?.is_none()
                {
                    released.extend(self.layers.unhold(chain, &holder)?);
                }
            }
        }
        for chain in self.layers.map()?.keys() {
            if skipped_images.is_empty() && self.layers.references(chain)? == Some(0) {
                self.layers.hold(chain, GC_HOLDER)?;
                released.extend(self.layers.unhold(chain, GC_HOLDER)?);
            }
        }
        report.layers_removed = released.len();
        let mut counted = HashSet::new();
        for blob in released.iter().filter_map(|m| m.blob.as_ref()) {
            if counted.insert(blob.digest.clone()) && !self.content.contains(&blob.digest)? {
                report.bytes_freed += blob.size;
            }
        }

        // What must stay.
        let mut keep: HashSet<Digest> = HashSet::new();
        for namespace in self.refs.namespaces()? {
            for record in self.refs.list(&namespace, &[])? {
                self.mark(&record.target.digest, 0, &mut keep)?;
            }
        }
        for layer in self.layers.map()?.values() {
            if let Some(blob) = layer.blob() {
                keep.insert(blob.digest.clone());
            }
        }
        let images: HashSet<Digest> = self
            .images
            .summaries()?
            .iter()
            .map(|(id, _)| id)
            .map(|id| id.digest().clone())
            .collect();
        keep.extend(images.iter().cloned());
        keep.extend(skipped_images.iter().map(|id| id.digest().clone()));

        // Configs in the image store no summary names: a create that
        // stopped before its summary (or a delete after it). No create runs
        // meanwhile (the change lock is held), so none is in progress.
        let image_backend = self.images.backend();
        let mut leftover_configs = Vec::new();
        image_backend.walk(&mut |digest| {
            if !images.contains(digest) {
                leftover_configs.push(digest.clone());
            }
            Ok(())
        })?;
        for digest in leftover_configs {
            let size = match image_backend.size(&digest) {
                Ok(size) => size,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            match image_backend.delete(&digest) {
                Ok(()) => {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }

        let mut candidates = Vec::new();
        self.content.walk(&mut |digest| {
            if !keep.contains(digest) {
                candidates.push(digest.clone());
            }
            Ok(())
        })?;
        for digest in candidates {
            match self.json_blob(&digest)? {
                // The manifest of a stored image no name reaches stays.
                Some(json)
                    if config_digest(&json).is_some_and(|config| images.contains(&config)) =>
                {
                    continue;
                }
                Some(_) => {}
                // Maybe the blob of a layer record that did not load.
                None if layer_problems > 0 => continue,
                None => {}
            }
            let size = match self.content.size(&digest) {
                Ok(size) => size,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            match self.content.delete(&digest) {
                Ok(()) => {
                    report.blobs_removed += 1;
                    report.bytes_freed += size;
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }

        for backend in [&self.content, self.images.backend()] {
            if let Some(sqlite) = backend.as_sqlite() {
                let orphans = sqlite.gc_orphan_files()?;
                report.orphan_files_removed += orphans.removed_files;
                report.bytes_freed += orphans.removed_bytes;
            }
            if let Some(fs) = backend.as_fs() {
                let (files, bytes) = fs.remove_leftovers()?;
                report.orphan_files_removed += files;
                report.bytes_freed += bytes;
            }
        }
        let (files, bytes) = crate::root::remove_old_catalogs(&self.root);
        report.orphan_files_removed += files;
        report.bytes_freed += bytes;
        // Temporary files of interrupted imports (`<root>/tmp/`).
        let leftovers =
            crate::tmpdir::leftover_temp_files(&self.root, true).map_err(|source| Error::Io {
                operation: "remove leftover temporary files in",
                path: self.root.join("tmp"),
                source,
            })?;
        report.orphan_files_removed += leftovers.len();
        report.bytes_freed += leftovers.iter().map(|(_, size)| size).sum::<u64>();
        Ok(report)
    }

    /// Marks a name's target and what it uses (manifests of an index, a
    /// manifest's config and layers) as reachable.
    fn mark(&self, digest: &Digest, depth: usize, keep: &mut HashSet<Digest>) -> Result<()> {
        if !keep.insert(digest.clone()) || depth > MAX_INDEX_DEPTH {
            return Ok(());
        }
        let Some(json) = self.json_blob(digest)? else {
            return Ok(());
        };
        for child in descriptor_digests(&json, "manifests") {
            self.mark(&child, depth + 1, keep)?;
        }
        keep.extend(config_digest(&json));
        keep.extend(descriptor_digests(&json, "layers"));
        Ok(())
    }

    /// A content blob as JSON; `None` when absent, too large or not JSON.
    pub(crate) fn json_blob(&self, digest: &Digest) -> Result<Option<Value>> {
        match self.content.size(digest) {
            Ok(size) if size <= MAX_JSON_BLOB => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        match self.content.get(digest) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The name record a user means: the name as stored, or as typed
    /// (normalised). The error of the lookup otherwise (`NotFound`, or
    /// `InvalidArgument` for a string that is no name).
    pub(crate) fn find_record(&self, name: &str) -> Result<Arc<ImageRecord>> {
        match self.refs.get(&self.namespace, name) {
            Ok(record) => return Ok(record),
            Err(e) if !matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                return Err(e.into());
            }
            Err(_) => {}
        }
        let normalized = normalize(name).map_err(|e| Error::InvalidName {
            name: name.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(self.refs.get(&self.namespace, &normalized)?)
    }

    /// Every name of the namespace, grouped by the image it resolves to
    /// (one scan of the name index).
    fn names_by_image(&self) -> Result<HashMap<ImageId, Vec<String>>> {
        Ok(crate::name_index::all_names(&self.content)?
            .into_iter()
            .map(|(id, names)| {
                let mut meaning: Vec<String> = names
                    .into_iter()
                    .filter(|n| n.namespace == self.namespace && n.reach.chosen)
                    .map(|n| n.name)
                    .collect();
                meaning.sort();
                (id, meaning)
            })
            .filter(|(_, names)| !names.is_empty())
            .collect())
    }

    /// The names of the namespace that resolve to the image, sorted (one
    /// prefix scan of the name index, O(k) for k names).
    fn names_of(&self, id: &ImageId) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .names_meaning(id)?
            .into_iter()
            .map(|n| n.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// A descriptor of the image's manifest, found through the names of the
    /// namespace (a name's target, or a manifest of an index it targets).
    pub(crate) fn find_manifest(&self, id: &ImageId) -> Result<Option<Descriptor>> {
        for record in self.refs.list(&self.namespace, &[])? {
            if let Some(found) = self.manifest_in(&record.target, id, 0)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    fn manifest_in(
        &self,
        desc: &Descriptor,
        id: &ImageId,
        depth: usize,
    ) -> Result<Option<Descriptor>> {
        if depth > MAX_INDEX_DEPTH {
            return Ok(None);
        }
        let Some(json) = self.json_blob(&desc.digest)? else {
            return Ok(None);
        };
        if config_digest(&json).as_ref() == Some(id.digest()) {
            return Ok(Some(desc.clone()));
        }
        let entries = json
            .get("manifests")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for entry in entries {
            let (Some(media_type), Some(digest), Some(size)) = (
                entry.get("mediaType").and_then(Value::as_str),
                entry
                    .get("digest")
                    .and_then(Value::as_str)
                    .and_then(|d| d.parse::<Digest>().ok()),
                entry.get("size").and_then(Value::as_i64),
            ) else {
                continue;
            };
            let child = Descriptor::new(media_type, digest, size);
            if let Some(found) = self.manifest_in(&child, id, depth + 1)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// The config digest of a manifest.
pub(crate) fn config_digest(json: &Value) -> Option<Digest> {
    json.get("config")?.get("digest")?.as_str()?.parse().ok()
}

/// The digests of the descriptors of an array field (`manifests`, `layers`).
pub(crate) fn descriptor_digests(json: &Value, field: &str) -> Vec<Digest> {
    json.get(field)
        .and_then(Value::as_array)
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e.get("digest")?.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn single_reference_follows_moby() {
        let digest = "sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb";
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&strings(&["docker.io/library/a:1"])));
        assert!(!is_single_reference(&strings(&[
            "docker.io/library/a:1",
            "docker.io/library/a:2"
        ])));
        assert!(is_single_reference(&[
            "docker.io/library/a:1".to_owned(),
            format!("docker.io/library/a@{digest}"),
        ]));
        assert!(!is_single_reference(&[
            "docker.io/library/a:1".to_owned(),
            format!("docker.io/library/b@{digest}"),
        ]));
    }

    #[test]
    fn tag_names_are_normalised_and_digests_refused() {
        assert_eq!(
            tag_name("app").ok().as_deref(),
            Some("docker.io/library/app:latest")
        );
        for bad in [
            "",
            "app/Upper:v1",
            "a@sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb",
            "sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb",
            "ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb",
            "a b",
        ] {
            let err = tag_name(bad).err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| e.kind() == ErrorKind::InvalidArgument),
                "{bad:?}: {err:?}"
            );
        }
    }
}
