//! `LayerStore::check` and `repair_derived`: the derived records recomputed
//! from the layer records, and the drift reported as typed problems.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use imgstore_backend::{Batch, RecordStore, StoreBackend};
use imgstore_digest::Digest;

use crate::store::{
    CHILD_HOLDER, DecodeError, HOLDERS, LAYER_BLOBS, LAYERS, blob_user_key, child_holder,
    decode_layer, holder_key,
};
use crate::{ChainId, LayerError, LayerStore};

/// How many record changes one batch of [`LayerStore::repair_derived`]
/// commits.
const REPAIR_BATCH: usize = 1000;

/// One thing [`LayerStore::check`] found wrong in the layer records.
///
/// The layer records and named holders are primary: problems with them are
/// reported and never repaired (nothing is deleted on a guess). The `layer:`
/// holders and the `layer-blobs` entries are derived from the layer records:
/// problems with them are [repairable](LayerProblem::is_repairable), by
/// [`LayerStore::repair_derived`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerProblem {
    /// A layer record whose key is not a chain ID or whose value does not
    /// parse. Its derived records cannot be known, so none naming it is
    /// reported as dangling.
    UnreadableRecord {
        /// The record key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A layer record whose chain ID does not follow from its parent and
    /// diff ID.
    ChainMismatch {
        /// The record's chain ID (its key).
        chain_id: ChainId,
        /// The chain ID its parent and diff ID give.
        computed: ChainId,
    },
    /// A layer whose parent layer is not stored.
    MissingParent {
        /// The layer.
        chain_id: ChainId,
        /// The parent it names.
        parent: ChainId,
    },
    /// A named holder (not a child layer's) on a layer that is not stored.
    HolderOnMissingLayer {
        /// The layer it names.
        chain_id: ChainId,
        /// The holder.
        holder: String,
    },
    /// A child layer without its `layer:<child>` holder on its parent:
    /// releasing the parent's last other holder would delete it under the
    /// child. Repair writes the holder.
    MissingChildLink {
        /// The parent layer.
        parent: ChainId,
        /// The child layer.
        child: ChainId,
    },
    /// A `layer:<child>` holder whose child is not stored or has another
    /// parent: it keeps the layer alive for nothing. Repair deletes it.
    DanglingChildLink {
        /// The layer that carries the holder.
        parent: ChainId,
        /// The child it names.
        child: ChainId,
    },
    /// A layer that names a blob without its `layer-blobs` entry: releasing
    /// another user of the blob would delete it. Repair writes the entry.
    MissingBlobUser {
        /// The blob.
        blob: Digest,
        /// The layer that names it.
        chain_id: ChainId,
    },
    /// A `layer-blobs` entry whose layer is not stored or names another
    /// blob: it keeps the blob for nothing. Repair deletes it.
    DanglingBlobUser {
        /// The blob.
        blob: Digest,
        /// The layer the entry names.
        chain_id: ChainId,
    },
    /// A key of `layer-holders` or `layer-blobs` that is not of the
    /// bucket's form. Repairable (deleted) when the record is derived: any
    /// `layer-blobs` key, a `layer-holders` key whose holder is `layer:…`.
    MalformedKey {
        /// The bucket.
        bucket: &'static str,
        /// The key.
        key: String,
    },
}

impl LayerProblem {
    /// True for drift in a derived record, which
    /// [`LayerStore::repair_derived`] rewrites or deletes.
    pub fn is_repairable(&self) -> bool {
        match self {
            LayerProblem::MissingChildLink { .. }
            | LayerProblem::DanglingChildLink { .. }
            | LayerProblem::MissingBlobUser { .. }
            | LayerProblem::DanglingBlobUser { .. } => true,
            LayerProblem::MalformedKey { bucket, key } => {
                *bucket == LAYER_BLOBS
                    || key
                        .split_once(' ')
                        .is_some_and(|(_, holder)| holder.starts_with(CHILD_HOLDER))
            }
            LayerProblem::UnreadableRecord { .. }
            | LayerProblem::ChainMismatch { .. }
            | LayerProblem::MissingParent { .. }
            | LayerProblem::HolderOnMissingLayer { .. } => false,
        }
    }

    /// The record change that repairs the problem, if it is repairable.
    fn add_repair(&self, batch: &mut Batch) -> bool {
        match self {
            LayerProblem::MissingChildLink { parent, child } => {
                batch.put(
                    HOLDERS,
                    &holder_key(parent, &child_holder(child)),
                    Vec::new(),
                );
            }
            LayerProblem::DanglingChildLink { parent, child } => {
                batch.delete(HOLDERS, &holder_key(parent, &child_holder(child)));
            }
            LayerProblem::MissingBlobUser { blob, chain_id } => {
                batch.put(LAYER_BLOBS, &blob_user_key(blob, chain_id), Vec::new());
            }
            LayerProblem::DanglingBlobUser { blob, chain_id } => {
                batch.delete(LAYER_BLOBS, &blob_user_key(blob, chain_id));
            }
            LayerProblem::MalformedKey { bucket, key } if self.is_repairable() => {
                batch.delete(bucket, key);
            }
            _ => return false,
        }
        true
    }
}

impl fmt::Display for LayerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerProblem::UnreadableRecord { key, reason } => {
                write!(f, "layer record {key}: unreadable: {reason}")
            }
            LayerProblem::ChainMismatch { chain_id, computed } => write!(
                f,
                "layer {chain_id}: parent and diff ID give chain ID {computed}"
            ),
            LayerProblem::MissingParent { chain_id, parent } => {
                write!(f, "layer {chain_id}: parent layer {parent} missing")
            }
            LayerProblem::HolderOnMissingLayer { chain_id, holder } => {
                write!(f, "holder {holder:?} on missing layer {chain_id}")
            }
            LayerProblem::MissingChildLink { parent, child } => {
                write!(f, "layer {parent}: holder of child layer {child} missing")
            }
            LayerProblem::DanglingChildLink { parent, child } => write!(
                f,
                "layer {parent}: holder of child layer {child}, which is not stored on it"
            ),
            LayerProblem::MissingBlobUser { blob, chain_id } => {
                write!(f, "blob {blob}: user entry of layer {chain_id} missing")
            }
            LayerProblem::DanglingBlobUser { blob, chain_id } => write!(
                f,
                "blob {blob}: user entry of layer {chain_id}, which does not name it"
            ),
            LayerProblem::MalformedKey { bucket, key } => {
                write!(f, "record {bucket}/{key:?}: malformed key")
            }
        }
    }
}

impl<B: StoreBackend + RecordStore> LayerStore<B> {
    /// Recomputes the derived records (`layer:` holders, `layer-blobs`
    /// entries) from the layer records and reports every difference, with
    /// the problems of the primary records (see [`LayerProblem`]): a full
    /// scan of the three buckets, O(n), for fsck. Changes nothing; layers
    /// that nothing holds are not problems here (gc's decision).
    pub fn check(&self) -> Result<Vec<LayerProblem>, LayerError> {
        let mut problems = Vec::new();
        // Layer records: chain -> (parent, blob); unreadable keys apart.
        let mut layers: BTreeMap<ChainId, (Option<ChainId>, Option<Digest>)> = BTreeMap::new();
        let mut unreadable: HashSet<String> = HashSet::new();
        self.backend().scan_records(LAYERS, "", &mut |key, value| {
            match decode_layer(key, value) {
                Ok(layer) => {
                    layers.insert(
                        layer.chain_id().clone(),
                        (
                            layer.parent().cloned(),
                            layer.blob().map(|b| b.digest.clone()),
                        ),
                    );
                }
                Err(DecodeError::Unreadable(reason)) => {
                    unreadable.insert(key.to_owned());
                    problems.push(LayerProblem::UnreadableRecord {
                        key: key.to_owned(),
                        reason,
                    });
                }
                Err(DecodeError::ChainMismatch { chain_id, computed }) => {
                    unreadable.insert(key.to_owned());
                    problems.push(LayerProblem::ChainMismatch { chain_id, computed });
                }
            }
            Ok(())
        })?;
        let stored =
            |chain: &ChainId| layers.contains_key(chain) || unreadable.contains(chain.as_str());
        let unknown = |chain: &ChainId| unreadable.contains(chain.as_str());

        let mut child_links: BTreeSet<(ChainId, ChainId)> = BTreeSet::new();
        let mut blob_users: BTreeSet<(Digest, ChainId)> = BTreeSet::new();
        for (chain, (parent, blob)) in &layers {
            if let Some(parent) = parent {
                if !stored(parent) {
                    problems.push(LayerProblem::MissingParent {
                        chain_id: chain.clone(),
                        parent: parent.clone(),
                    });
                }
                child_links.insert((parent.clone(), chain.clone()));
            }
            if let Some(blob) = blob {
                blob_users.insert((blob.clone(), chain.clone()));
            }
        }

        self.backend().scan_records(HOLDERS, "", &mut |key, _| {
            let malformed = || LayerProblem::MalformedKey {
                bucket: HOLDERS,
                key: key.to_owned(),
            };
            let Some((chain, holder)) = key
                .split_once(' ')
                .and_then(|(c, h)| c.parse::<ChainId>().ok().map(|c| (c, h)))
            else {
                problems.push(malformed());
                return Ok(());
            };
            match holder.strip_prefix(CHILD_HOLDER) {
                Some(child) => {
                    let Ok(child) = child.parse::<ChainId>() else {
                        problems.push(malformed());
                        return Ok(());
                    };
                    let link = (chain, child);
                    if !child_links.remove(&link) && !unknown(&link.1) {
                        problems.push(LayerProblem::DanglingChildLink {
                            parent: link.0,
                            child: link.1,
                        });
                    }
                }
                None if !stored(&chain) => problems.push(LayerProblem::HolderOnMissingLayer {
                    chain_id: chain,
                    holder: holder.to_owned(),
                }),
                None => {}
            }
            Ok(())
        })?;
        // A child of a missing parent is MissingParent, not a missing link.
        problems.extend(
            child_links
                .into_iter()
                .filter(|(parent, _)| stored(parent))
                .map(|(parent, child)| LayerProblem::MissingChildLink { parent, child }),
        );

        self.backend()
            .scan_records(LAYER_BLOBS, "", &mut |key, _| {
                let parsed = key.split_once(' ').and_then(|(blob, chain)| {
                    Some((blob.parse::<Digest>().ok()?, chain.parse::<ChainId>().ok()?))
                });
                let Some(entry) = parsed else {
                    problems.push(LayerProblem::MalformedKey {
                        bucket: LAYER_BLOBS,
                        key: key.to_owned(),
                    });
                    return Ok(());
                };
                if !blob_users.remove(&entry) && !unknown(&entry.1) {
                    problems.push(LayerProblem::DanglingBlobUser {
                        blob: entry.0,
                        chain_id: entry.1,
                    });
                }
                Ok(())
            })?;
        problems.extend(
            blob_users
                .into_iter()
                .map(|(blob, chain_id)| LayerProblem::MissingBlobUser { blob, chain_id }),
        );
        Ok(problems)
    }

    /// Rewrites the derived records from the layer records: writes each
    /// missing `layer:` holder and `layer-blobs` entry, deletes each dangling
    /// or malformed one ([`check`](Self::check)'s repairable problems), in
    /// batches of 1000 changes. Returns how many records it changed;
    /// idempotent (a second run returns 0). What fsck's repair calls, and the
    /// one-time migration of a store written before these records existed.
    /// Layers nothing holds are left to gc. Under the writer mutex; other
    /// processes must be kept out by the caller.
    pub fn repair_derived(&self) -> Result<usize, LayerError> {
        let _writer = self.writer();
        let mut changed = 0;
        let mut batch = Batch::new();
        for problem in self.check()? {
            if problem.add_repair(&mut batch) {
                changed += 1;
            }
            if batch.len() >= REPAIR_BATCH {
                self.backend().apply(&batch)?;
                batch = Batch::new();
            }
        }
        if !batch.is_empty() {
            self.backend().apply(&batch)?;
        }
        Ok(changed)
    }
}
