//! `LayerStore`: layer records and their holders over a backend; the
//! records are the index, nothing is loaded.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use imgstore_backend::{Batch, Error, ErrorKind, Precondition, RecordStore, StoreBackend, Subject};
use imgstore_digest::Digest;
use serde::{Deserialize, Serialize};

use crate::{ChainId, LayerError};

/// Bucket of layer records (primary): key = chain ID, value = JSON
/// [`StoredLayer`].
pub(crate) const LAYERS: &str = "layers";
/// Bucket of holder references: key = `"<chain id> <holder>"`, value empty.
/// Named holders are primary; `layer:<child chain>` holders are derived
/// from the child's layer record.
pub(crate) const HOLDERS: &str = "layer-holders";
/// Bucket of blob users (derived): key = `"<blob digest> <chain id>"`,
/// value empty, one per layer that names a blob.
pub(crate) const LAYER_BLOBS: &str = "layer-blobs";
/// The holder kind a child layer takes on its parent: `layer:<child chain>`.
pub(crate) const CHILD_HOLDER: &str = "layer:";
/// The holder kind an image store takes on an image's top layer:
/// `image:<64 hex>`.
pub const IMAGE_HOLDER: &str = "image:";

type Result<T, E = LayerError> = std::result::Result<T, E>;

/// Where a layer's bytes live in the content store, as its manifest described them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlobRef {
    /// Digest of the blob as stored (compressed or not).
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The media type of the descriptor that named it.
    pub media_type: String,
}

/// What a caller knows about a layer it registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLayer {
    /// sha256 of the uncompressed layer tar.
    pub diff_id: Digest,
    /// Size of the uncompressed tar in bytes.
    pub size: u64,
    /// The stored blob, if the content store keeps one.
    pub blob: Option<BlobRef>,
    /// Bytes of the regular files in the layer tar (Docker's per-layer
    /// SIZE: whiteouts, links and directories count 0), when known.
    pub files_size: Option<u64>,
}

impl NewLayer {
    /// A layer without a stored blob.
    pub fn new(diff_id: Digest, size: u64) -> NewLayer {
        NewLayer {
            diff_id,
            size,
            blob: None,
            files_size: None,
        }
    }

    /// The same layer with the blob that holds its bytes.
    pub fn with_blob(mut self, blob: BlobRef) -> NewLayer {
        self.blob = Some(blob);
        self
    }

    /// The same layer with the bytes of the regular files in its tar
    /// (see [`Layer::files_size`]).
    pub fn with_files_size(mut self, files_size: u64) -> NewLayer {
        self.files_size = Some(files_size);
        self
    }
}

/// One layer record: a diff stacked on a parent chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    chain_id: ChainId,
    diff_id: Digest,
    parent: Option<ChainId>,
    size: u64,
    blob: Option<BlobRef>,
    files_size: Option<u64>,
}

impl Layer {
    /// The chain ID: identity of this layer and all below it.
    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
    /// sha256 of the uncompressed tar.
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }
    /// The layer below, `None` for a bottom layer.
    pub fn parent(&self) -> Option<&ChainId> {
        self.parent.as_ref()
    }
    /// Uncompressed size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
    /// The stored blob, if any.
    pub fn blob(&self) -> Option<&BlobRef> {
        self.blob.as_ref()
    }
    /// Compressed (stored) size, when a blob is recorded.
    pub fn compressed_size(&self) -> Option<u64> {
        self.blob.as_ref().map(|b| b.size)
    }
    /// Bytes of the regular files in the layer tar: what Docker adds up
    /// for an image's SIZE (whiteouts, hard links, symlinks and
    /// directories count 0). `None` when unknown: a layer registered
    /// without it, or recorded before this was kept.
    pub fn files_size(&self) -> Option<u64> {
        self.files_size
    }

    fn metadata(&self) -> LayerMetadata {
        LayerMetadata {
            chain_id: self.chain_id.clone(),
            diff_id: self.diff_id.clone(),
            size: self.size,
            blob: self.blob.clone(),
        }
    }
}

/// What [`LayerGetReleaser::release`] reports for each layer it removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerMetadata {
    /// The chain ID of the removed layer.
    pub chain_id: ChainId,
    /// Its diff ID.
    pub diff_id: Digest,
    /// Its uncompressed size.
    pub size: u64,
    /// The blob it named (deleted too unless another layer uses it).
    pub blob: Option<BlobRef>,
}

/// The two operations the image store needs from a layer store: moby's
/// `LayerGetReleaser`, with moby's anonymous reference counting.
pub trait LayerGetReleaser: Send + Sync {
    /// Takes one reference on the layer. References taken here (and by
    /// [`LayerStore::register`]) are transient, as moby's are: kept in this
    /// process's memory only, gone when it exits.
    fn get(&self, chain_id: &ChainId) -> Result<Layer>;

    /// Drops one reference taken by `get` or `register`. When the layer is
    /// then held by nothing, it is deleted and its parent released in
    /// cascade; returns every layer removed, top first. With no such
    /// reference left: [`LayerError::NotHeld`]. When the records cannot be
    /// changed, the error is returned and the reference is dropped all the
    /// same (its holder let go): the layers stay, unreferenced, for gc.
    fn release(&self, chain_id: &ChainId) -> Result<Vec<LayerMetadata>>;

    /// Gives `holder` a persistent, named reference on the layer (see
    /// [`LayerStore::hold`]): what an image store keeps for each image
    /// (`image:<hex>`), so that nothing is re-taken on open.
    fn hold(&self, chain_id: &ChainId, holder: &str) -> Result<Layer>;

    /// Drops `holder`'s persistent reference, with the cascade of
    /// [`release`](Self::release) (see [`LayerStore::unhold`]).
    fn unhold(&self, chain_id: &ChainId, holder: &str) -> Result<Vec<LayerMetadata>>;

    /// The layer record, without taking a reference; `None` when absent.
    fn lookup(&self, chain_id: &ChainId) -> Result<Option<Layer>>;

    /// Stages `holder`'s persistent reference into a caller's batch (see
    /// [`LayerStore::stage_hold`]): what an image store stages for an image
    /// created in a batch.
    fn stage_hold(
        &self,
        chain_id: &ChainId,
        holder: &str,
        staging: &mut LayerStaging,
        batch: &mut Batch,
    ) -> Result<Layer>;
}

/// What a caller's batch holds from [`LayerStore::stage_register`] and
/// [`LayerStore::stage_hold`], not committed yet: later stagings into the
/// same batch see the layers staged before them (an image's chain over a
/// base another image of the batch registered), and
/// [`LayerStore::commit`] checks that their blobs are still stored.
#[derive(Debug, Default)]
pub struct LayerStaging {
    /// Layers the batch creates, or updates (a files size learnt), by chain.
    layers: HashMap<ChainId, Layer>,
    /// `(bucket, key)` of every record the batch already checks or writes:
    /// one precondition per record, however often it is relied on.
    touched: HashSet<(&'static str, String)>,
}

impl LayerStaging {
    /// Nothing staged.
    pub fn new() -> LayerStaging {
        LayerStaging::default()
    }

    /// The layer as the batch leaves it, if the batch creates or updates it.
    pub fn layer(&self, chain_id: &ChainId) -> Option<&Layer> {
        self.layers.get(chain_id)
    }

    /// True when no layer is staged.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty() && self.touched.is_empty()
    }
}

/// The persisted form of a layer; the chain ID is the record's key.
#[derive(Serialize, Deserialize)]
struct StoredLayer {
    diff_id: Digest,
    parent: Option<ChainId>,
    size: u64,
    blob: Option<BlobRef>,
    /// Absent in records written before it was kept: they load as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    files_size: Option<u64>,
}

impl StoredLayer {
    fn of(layer: &Layer) -> StoredLayer {
        StoredLayer {
            diff_id: layer.diff_id.clone(),
            parent: layer.parent.clone(),
            size: layer.size,
            blob: layer.blob.clone(),
            files_size: layer.files_size,
        }
    }

    fn encode(&self, chain_id: &ChainId) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| {
            imgstore_backend::Error::invalid_argument(chain_id.as_str(), e.to_string()).into()
        })
    }
}

/// One reference being dropped.
#[derive(Clone, Copy)]
enum Reference<'a> {
    /// A transient reference of this process (`get`/`register`).
    Transient,
    /// A named holder record.
    Held(&'a str),
}

/// Layer records and their holders over a backend (see the crate docs).
///
/// Nothing is loaded: every read goes to the records, so two stores over one
/// backend (in one process or several) see each other's changes at once.
/// The only memory is the transient references this store handed out
/// (`register`/`get`), which no other store counts.
///
/// `Send + Sync`. A writer mutex serialises this store's read-check-write
/// changes; changes by several processes (or several `LayerStore`s over one
/// backend) must be serialised by the caller (the facade's `store.lock`), as
/// "no holder left" is a probe, not a precondition a batch can check.
pub struct LayerStore<B> {
    backend: Arc<B>,
    /// The writer mutex, guarding the transient references of this store:
    /// chain -> count (absent = 0).
    transient: Mutex<HashMap<ChainId, usize>>,
}

pub(crate) fn holder_key(chain_id: &ChainId, holder: &str) -> String {
    format!("{chain_id} {holder}")
}

/// The prefix of every holder key of a layer.
pub(crate) fn holder_prefix(chain_id: &ChainId) -> String {
    format!("{chain_id} ")
}

pub(crate) fn child_holder(child: &ChainId) -> String {
    format!("{CHILD_HOLDER}{child}")
}

pub(crate) fn blob_user_key(blob: &Digest, chain_id: &ChainId) -> String {
    format!("{blob} {chain_id}")
}

fn validate_holder(holder: &str) -> Result<()> {
    let reason = if holder.is_empty() {
        "empty"
    } else if holder.len() > 1024 {
        "longer than 1024 bytes"
    } else if holder.contains('\0') {
        "contains NUL"
    } else if holder.starts_with(CHILD_HOLDER) {
        "the `layer:` kind is reserved for child layers"
    } else if let Some(hex) = holder.strip_prefix(IMAGE_HOLDER)
        && !(hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
    {
        "an `image:` holder is `image:` and 64 lowercase hex digits"
    } else {
        return Ok(());
    };
    Err(LayerError::InvalidHolder {
        holder: holder.chars().take(100).collect(),
        reason,
    })
}

impl<B: StoreBackend + RecordStore> LayerStore<B> {
    /// Opens the layer store kept in `backend`. Reads nothing: O(1) whatever
    /// the store's size. Does not fail today; the `Result` leaves room for a
    /// format header to check.
    pub fn open(backend: Arc<B>) -> Result<LayerStore<B>> {
        Ok(LayerStore {
            backend,
            transient: Mutex::new(HashMap::new()),
        })
    }

    /// The backend this store keeps its records in.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// The writer mutex; poisoning is ignored (memory changes only after a
    /// commit, and no step between can panic).
    pub(crate) fn writer(&self) -> MutexGuard<'_, HashMap<ChainId, usize>> {
        self.transient.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The layer record and its bytes; `None` when absent, `CorruptRecord`
    /// when it does not decode.
    fn read(&self, chain_id: &ChainId) -> Result<Option<(Layer, Vec<u8>)>> {
        let Some(bytes) = self.backend.get_record(LAYERS, chain_id.as_str())? else {
            return Ok(None);
        };
        match decode_layer(chain_id.as_str(), &bytes) {
            Ok(layer) => Ok(Some((layer, bytes))),
            Err(e) => Err(LayerError::CorruptRecord {
                key: chain_id.to_string(),
                reason: e.reason(),
            }),
        }
    }

    fn read_existing(&self, chain_id: &ChainId) -> Result<(Layer, Vec<u8>)> {
        self.read(chain_id)?.ok_or_else(|| LayerError::NotFound {
            chain_id: chain_id.clone(),
        })
    }

    /// Registers `layer` on top of `parent` (which must exist) and returns it
    /// with one transient reference for the caller (moby's `Register`), to be
    /// dropped with [`release`](LayerGetReleaser::release) once something else
    /// (an image) holds the layer. Registering an existing chain only adds
    /// the reference (and records the files size if the record lacked it).
    ///
    /// Reads the parent's and the chain's records; one batch writes the layer
    /// record (precondition: absent), the `layer:<chain>` holder on the
    /// parent (precondition: the parent's record present) and the
    /// `layer-blobs` entry of its blob. Durable when this returns. A blob
    /// named by `layer` must already be in the content store.
    pub fn register(&self, layer: NewLayer, parent: Option<&ChainId>) -> Result<Layer> {
        // Under the writer mutex: a release cannot delete the blob between
        // this check and the commit that records its new user.
        let mut transient = self.writer();
        if let Some(blob) = &layer.blob
            && !self.backend.contains(&blob.digest)?
        {
            return Err(Error::content_not_found(&blob.digest).into());
        }
        let chain_id = match parent {
            None => ChainId::base(layer.diff_id.clone()),
            Some(parent) => {
                if self.read(parent)?.is_none() {
                    return Err(LayerError::ParentNotFound {
                        parent: parent.clone(),
                    });
                }
                parent.child(&layer.diff_id)
            }
        };
        let registered = match self.read(&chain_id)? {
            Some((existing, bytes)) => self.register_again(existing, bytes, &layer, parent)?,
            None => {
                let record = Layer {
                    chain_id: chain_id.clone(),
                    diff_id: layer.diff_id,
                    parent: parent.cloned(),
                    size: layer.size,
                    blob: layer.blob,
                    files_size: layer.files_size,
                };
                let mut batch = Batch::new();
                if let Some(parent) = &record.parent {
                    batch.require(LAYERS, parent.as_str(), Precondition::Present);
                }
                put_new_layer(&mut batch, &record)?;
                match self.backend.apply(&batch) {
                    Ok(()) => record,
                    // Registered meanwhile by another store: take that one.
                    Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                        let (existing, bytes) = self.read_existing(&chain_id)?;
                        let offered = NewLayer {
                            diff_id: record.diff_id.clone(),
                            size: record.size,
                            blob: record.blob.clone(),
                            files_size: record.files_size,
                        };
                        self.register_again(existing, bytes, &offered, parent)?
                    }
                    // The parent's record went meanwhile (another store).
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Err(match parent {
                            Some(parent) => LayerError::ParentNotFound {
                                parent: parent.clone(),
                            },
                            None => e.into(),
                        });
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        *transient.entry(chain_id).or_default() += 1;
        Ok(registered)
    }

    /// `register` of a chain that is stored: checks it is the same layer and
    /// records a files size the record lacks.
    fn register_again(
        &self,
        existing: Layer,
        bytes: Vec<u8>,
        offered: &NewLayer,
        parent: Option<&ChainId>,
    ) -> Result<Layer> {
        if existing.diff_id != offered.diff_id || existing.parent.as_ref() != parent {
            return Err(LayerError::Mismatch {
                chain_id: existing.chain_id,
                existing: existing.diff_id.to_string(),
                offered: offered.diff_id.to_string(),
            });
        }
        if existing.files_size.is_some() || offered.files_size.is_none() {
            return Ok(existing);
        }
        // A record from before files sizes were kept learns it now.
        let mut updated = existing;
        updated.files_size = offered.files_size;
        let key = updated.chain_id.as_str().to_owned();
        let mut batch = Batch::new();
        batch
            .require(LAYERS, &key, Precondition::Equals(bytes))
            .put(
                LAYERS,
                &key,
                StoredLayer::of(&updated).encode(&updated.chain_id)?,
            );
        self.backend.apply(&batch)?;
        Ok(updated)
    }

    /// The layer as `staging` leaves it: staged by this batch, or else
    /// read from the store, in which case the batch requires the record
    /// unchanged at commit (once per record). `None` when neither has it.
    fn staged_or_read(
        &self,
        chain_id: &ChainId,
        staging: &mut LayerStaging,
        batch: &mut Batch,
    ) -> Result<Option<(Layer, Option<Vec<u8>>)>> {
        if let Some(layer) = staging.layers.get(chain_id) {
            return Ok(Some((layer.clone(), None)));
        }
        let Some((layer, bytes)) = self.read(chain_id)? else {
            return Ok(None);
        };
        if staging
            .touched
            .insert((LAYERS, chain_id.as_str().to_owned()))
        {
            batch.require(
                LAYERS,
                chain_id.as_str(),
                Precondition::Equals(bytes.clone()),
            );
        }
        Ok(Some((layer, Some(bytes))))
    }

    /// [`register`](Self::register) into a caller's batch: nothing is
    /// written until the batch commits ([`commit`](Self::commit)), and no
    /// transient reference is taken, so the caller holds the layer in the
    /// same batch (an image's hold on its top layer, [`stage_hold`](Self::stage_hold),
    /// or a child layer's `layer:` holder): a staged layer nothing holds
    /// is gc's once committed. `parent` may be a layer staged earlier in
    /// the batch.
    ///
    /// Stages, for a new chain: its record (precondition: absent), the
    /// `layer:<chain>` holder on its parent and its `layer-blobs` entry;
    /// for a stored chain: a precondition that its record is unchanged
    /// (and the record with the files size it lacked). A stored parent is
    /// required unchanged too, so a change by another store between this
    /// read and the commit fails the commit with [`LayerError::Conflict`]
    /// and writes nothing. A blob named by `layer` must already be in the
    /// content store (written deferred is enough: the backend syncs it
    /// before the batch).
    pub fn stage_register(
        &self,
        layer: NewLayer,
        parent: Option<&ChainId>,
        staging: &mut LayerStaging,
        batch: &mut Batch,
    ) -> Result<Layer> {
        if let Some(blob) = &layer.blob
            && !self.backend.contains(&blob.digest)?
        {
            return Err(Error::content_not_found(&blob.digest).into());
        }
        let chain_id = match parent {
            None => ChainId::base(layer.diff_id.clone()),
            Some(parent) => {
                if self.staged_or_read(parent, staging, batch)?.is_none() {
                    return Err(LayerError::ParentNotFound {
                        parent: parent.clone(),
                    });
                }
                parent.child(&layer.diff_id)
            }
        };
        match self.staged_or_read(&chain_id, staging, batch)? {
            Some((existing, _))
                if existing.diff_id != layer.diff_id || existing.parent.as_ref() != parent =>
            {
                Err(LayerError::Mismatch {
                    chain_id: existing.chain_id,
                    existing: existing.diff_id.to_string(),
                    offered: layer.diff_id.to_string(),
                })
            }
            Some((existing, _)) if existing.files_size.is_some() || layer.files_size.is_none() => {
                Ok(existing)
            }
            Some((mut existing, _)) => {
                // A record from before files sizes were kept learns it now
                // (its precondition is already in the batch, if stored).
                existing.files_size = layer.files_size;
                batch.put(
                    LAYERS,
                    chain_id.as_str(),
                    StoredLayer::of(&existing).encode(&chain_id)?,
                );
                staging.layers.insert(chain_id, existing.clone());
                Ok(existing)
            }
            None => {
                let record = Layer {
                    chain_id: chain_id.clone(),
                    diff_id: layer.diff_id,
                    parent: parent.cloned(),
                    size: layer.size,
                    blob: layer.blob,
                    files_size: layer.files_size,
                };
                put_new_layer(batch, &record)?;
                staging
                    .touched
                    .insert((LAYERS, chain_id.as_str().to_owned()));
                staging.layers.insert(chain_id, record.clone());
                Ok(record)
            }
        }
    }

    /// [`hold`](Self::hold) into a caller's batch: the layer may be one
    /// staged earlier in the batch. Stages the holder record (precondition:
    /// absent) when it is not stored, or a precondition that it is still
    /// there when it is, and a precondition that a stored layer's record is
    /// unchanged; idempotent within the batch. Written by
    /// [`commit`](Self::commit).
    pub fn stage_hold(
        &self,
        chain_id: &ChainId,
        holder: &str,
        staging: &mut LayerStaging,
        batch: &mut Batch,
    ) -> Result<Layer> {
        validate_holder(holder)?;
        let Some((layer, _)) = self.staged_or_read(chain_id, staging, batch)? else {
            return Err(LayerError::NotFound {
                chain_id: chain_id.clone(),
            });
        };
        let key = holder_key(chain_id, holder);
        if !staging.touched.insert((HOLDERS, key.clone())) {
            return Ok(layer);
        }
        if self.backend.get_record(HOLDERS, &key)?.is_some() {
            batch.require(HOLDERS, &key, Precondition::Present);
        } else {
            batch
                .require_absent(HOLDERS, &key)
                .put(HOLDERS, &key, Vec::new());
        }
        Ok(layer)
    }

    /// Commits a batch holding what `staging` staged (and whatever else
    /// the caller added for this backend), atomically, under the writer
    /// mutex: first checks that every blob a staged layer names is still
    /// stored (a release may have deleted it since), then applies. A
    /// precondition on a layer or holder record that no longer holds is
    /// [`LayerError::Conflict`] naming it; nothing is written when this
    /// fails.
    pub fn commit(&self, batch: &Batch, staging: &LayerStaging) -> Result<()> {
        let _writer = self.writer();
        for blob in staging.layers.values().filter_map(|l| l.blob.as_ref()) {
            if !self.backend.contains(&blob.digest)? {
                return Err(Error::content_not_found(&blob.digest).into());
            }
        }
        self.backend.apply(batch).map_err(layer_conflict)
    }

    /// Gives `holder` a persistent, named reference on the layer: a
    /// `layer-holders` record, so it survives reopening and every store over
    /// the backend sees it. Idempotent per holder. `image:<64 hex>` is the
    /// kind an image store takes on an image's top layer; `layer:` is
    /// reserved for child layers ([`LayerError::InvalidHolder`]).
    pub fn hold(&self, chain_id: &ChainId, holder: &str) -> Result<Layer> {
        validate_holder(holder)?;
        let _writer = self.writer();
        let (layer, _) = self.read_existing(chain_id)?;
        let key = holder_key(chain_id, holder);
        if self.backend.get_record(HOLDERS, &key)?.is_none() {
            let mut batch = Batch::new();
            batch
                .require(LAYERS, chain_id.as_str(), Precondition::Present)
                .put(HOLDERS, &key, Vec::new());
            self.backend.apply(&batch)?;
        }
        Ok(layer)
    }

    /// Drops `holder`'s persistent reference, with the cascade of
    /// [`release`](LayerGetReleaser::release).
    pub fn unhold(&self, chain_id: &ChainId, holder: &str) -> Result<Vec<LayerMetadata>> {
        validate_holder(holder)?;
        self.drop_reference(chain_id, Reference::Held(holder))
    }

    /// Forgets every transient reference this store handed out, without
    /// deleting anything: for a holder that is about to re-take all of its
    /// references (an image store re-reading its images, as the facade's
    /// reload does while images hold transient references). Memory only.
    pub fn forget_transient_references(&self) {
        self.writer().clear();
    }

    /// True when the layer has a holder record other than `dropped`: one
    /// bounded probe of its holder keys.
    fn held_by_other_than(&self, chain_id: &ChainId, dropped: Option<&str>) -> Result<bool> {
        let dropped = dropped.map(|holder| holder_key(chain_id, holder));
        let first = self
            .backend
            .first_records(HOLDERS, &holder_prefix(chain_id), 2)?;
        Ok(first
            .iter()
            .any(|(key, _)| Some(key.as_str()) != dropped.as_deref()))
    }

    /// Drops one reference; when the layer is then held by nothing, deletes
    /// it and walks down its parents in a loop, all record changes in one
    /// atomic batch; then deletes the blobs no remaining layer uses.
    fn drop_reference(
        &self,
        chain_id: &ChainId,
        reference: Reference<'_>,
    ) -> Result<Vec<LayerMetadata>> {
        let mut transient = self.writer();
        if let Reference::Transient = reference {
            if transient.get(chain_id).copied().unwrap_or(0) == 0 {
                return Err(match self.read(chain_id)? {
                    None => LayerError::NotFound {
                        chain_id: chain_id.clone(),
                    },
                    Some(_) => LayerError::NotHeld {
                        chain_id: chain_id.clone(),
                        holder: "(get/register)".to_owned(),
                    },
                });
            }
            // Dropped first, whatever the reads and the commit below do:
            // its holder let go (a layer left unheld is gc's).
            release_transient(&mut transient, chain_id);
        }
        let (layer, bytes) = match self.read(chain_id)? {
            Some(found) => found,
            None => {
                // Deleted by another store: nothing of ours to keep.
                transient.remove(chain_id);
                return Err(LayerError::NotFound {
                    chain_id: chain_id.clone(),
                });
            }
        };
        let mut batch = Batch::new();
        let dropped_record = match reference {
            Reference::Transient => None,
            Reference::Held(holder) => {
                let key = holder_key(chain_id, holder);
                if self.backend.get_record(HOLDERS, &key)?.is_none() {
                    return Err(LayerError::NotHeld {
                        chain_id: chain_id.clone(),
                        holder: holder.to_owned(),
                    });
                }
                batch
                    .require(HOLDERS, &key, Precondition::Present)
                    .delete(HOLDERS, &key);
                Some(holder.to_owned())
            }
        };
        // The cascade: each removed layer drops exactly one holder (its
        // `layer:` one) from the next one down.
        let mut removed: Vec<Layer> = Vec::new();
        let mut current = Some((layer, bytes));
        let mut dropped = dropped_record;
        while let Some((layer, bytes)) = current.take() {
            let id = layer.chain_id.clone();
            if transient.get(&id).copied().unwrap_or(0) > 0
                || self.held_by_other_than(&id, dropped.as_deref())?
            {
                break;
            }
            batch
                .require(LAYERS, id.as_str(), Precondition::Equals(bytes))
                .delete(LAYERS, id.as_str());
            if let Some(blob) = &layer.blob {
                batch.delete(LAYER_BLOBS, &blob_user_key(&blob.digest, &id));
            }
            if let Some(parent) = &layer.parent {
                let holder = child_holder(&id);
                batch.delete(HOLDERS, &holder_key(parent, &holder));
                // A missing or unreadable parent ends the cascade (check
                // reports it).
                current = match self.read(parent) {
                    Err(LayerError::CorruptRecord { .. }) => None,
                    other => other?,
                };
                dropped = Some(holder);
            }
            removed.push(layer);
        }
        if !batch.is_empty() {
            self.backend.apply(&batch)?;
        }
        for id in removed.iter().map(|l| &l.chain_id) {
            transient.remove(id);
        }
        // Still under the writer mutex, so no register of a new user of a
        // blob runs between the probe and the delete.
        let mut probed = Vec::new();
        for blob in removed.iter().filter_map(|l| l.blob.as_ref()) {
            if probed.contains(&blob.digest) {
                continue;
            }
            probed.push(blob.digest.clone());
            let still_used = !self
                .backend
                .first_records(LAYER_BLOBS, &format!("{} ", blob.digest), 1)?
                .is_empty();
            if !still_used {
                // NotFound means already gone; any other failure leaves an
                // orphan for gc.
                let _ = self.backend.delete(&blob.digest);
            }
        }
        Ok(removed.iter().map(Layer::metadata).collect())
    }

    /// The layer record, without taking a reference: one point read.
    /// `None` when absent; [`LayerError::CorruptRecord`] when the record
    /// does not decode or its chain ID does not follow from its parent and
    /// diff ID.
    pub fn layer(&self, chain_id: &ChainId) -> Result<Option<Layer>> {
        Ok(self.read(chain_id)?.map(|(layer, _)| layer))
    }

    /// Calls `visit` for each layer of the chain ending at `top`, top
    /// first, reading the records one by one; stops at a chain ID that is
    /// not stored. A record that does not decode is an error (after the
    /// layers above it were visited).
    pub fn walk_chain(&self, top: &ChainId, mut visit: impl FnMut(&Layer)) -> Result<()> {
        let mut current = self.layer(top)?;
        while let Some(layer) = current {
            visit(&layer);
            current = match &layer.parent {
                Some(parent) => self.layer(parent)?,
                None => None,
            };
        }
        Ok(())
    }

    /// Every layer, by chain ID: a full scan, O(n), for gc and fsck only.
    /// Records that do not decode are left out ([`check`](Self::check)
    /// reports them).
    pub fn map(&self) -> Result<BTreeMap<ChainId, Layer>> {
        let mut layers = BTreeMap::new();
        self.backend.scan_records(LAYERS, "", &mut |key, value| {
            if let Ok(layer) = decode_layer(key, value) {
                layers.insert(layer.chain_id.clone(), layer);
            }
            Ok(())
        })?;
        Ok(layers)
    }

    /// Every layer, in chain-ID order, one at a time: what a listing of
    /// sizes (`df`) reads. The record's key is taken as its chain ID,
    /// without recomputing it from the parent and diff ID (a SHA-256 per
    /// layer, most of the scan; [`check`](Self::check) verifies it). Records
    /// that do not parse are left out, as in [`map`](Self::map).
    pub fn scan(&self, visit: &mut dyn FnMut(Layer)) -> Result<()> {
        self.backend.scan_records(LAYERS, "", &mut |key, value| {
            if let Ok(layer) = read_layer(key, value) {
                visit(layer);
            }
            Ok(())
        })?;
        Ok(())
    }

    /// The reference count: this store's transient references plus every
    /// holder record (named holders and child layers); `None` if the layer
    /// is absent. A prefix scan of the layer's holders.
    pub fn references(&self, chain_id: &ChainId) -> Result<Option<usize>> {
        if self.read(chain_id)?.is_none() {
            return Ok(None);
        }
        let transient = self.writer().get(chain_id).copied().unwrap_or(0);
        let mut holders = 0;
        self.backend
            .scan_records(HOLDERS, &holder_prefix(chain_id), &mut |_, _| {
                holders += 1;
                Ok(())
            })?;
        Ok(Some(transient + holders))
    }

    /// The named holders of persistent references on the layer (what
    /// [`hold`](Self::hold) took, `image:` holders included; child layers'
    /// `layer:` holders are [`children`](Self::children)), sorted. A prefix
    /// scan.
    pub fn holders(&self, chain_id: &ChainId) -> Result<Vec<String>> {
        let mut holders = Vec::new();
        let prefix = holder_prefix(chain_id);
        self.backend.scan_records(HOLDERS, &prefix, &mut |key, _| {
            let holder = &key[prefix.len()..];
            if !holder.starts_with(CHILD_HOLDER) {
                holders.push(holder.to_owned());
            }
            Ok(())
        })?;
        Ok(holders)
    }

    /// The layers stacked directly on this one, as their `layer:` holders
    /// name them, sorted. A prefix scan.
    pub fn children(&self, chain_id: &ChainId) -> Result<Vec<ChainId>> {
        let mut children = Vec::new();
        let prefix = holder_key(chain_id, CHILD_HOLDER);
        self.backend.scan_records(HOLDERS, &prefix, &mut |key, _| {
            if let Ok(child) = key[prefix.len()..].parse() {
                children.push(child);
            }
            Ok(())
        })?;
        Ok(children)
    }

    /// Number of layer records (undecodable ones included): a full scan,
    /// O(n), for gc and fsck only.
    pub fn len(&self) -> Result<usize> {
        let mut count = 0;
        self.backend.scan_records(LAYERS, "", &mut |_, _| {
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// True when there are no layer records: one bounded probe.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.backend.first_records(LAYERS, "", 1)?.is_empty())
    }
}

fn release_transient(transient: &mut HashMap<ChainId, usize>, chain_id: &ChainId) {
    if let Some(count) = transient.get_mut(chain_id) {
        *count -= 1;
        if *count == 0 {
            transient.remove(chain_id);
        }
    }
}

impl<B: StoreBackend + RecordStore> LayerGetReleaser for LayerStore<B> {
    fn get(&self, chain_id: &ChainId) -> Result<Layer> {
        let mut transient = self.writer();
        let (layer, _) = self.read_existing(chain_id)?;
        *transient.entry(chain_id.clone()).or_default() += 1;
        Ok(layer)
    }

    fn release(&self, chain_id: &ChainId) -> Result<Vec<LayerMetadata>> {
        self.drop_reference(chain_id, Reference::Transient)
    }

    fn hold(&self, chain_id: &ChainId, holder: &str) -> Result<Layer> {
        LayerStore::hold(self, chain_id, holder)
    }

    fn unhold(&self, chain_id: &ChainId, holder: &str) -> Result<Vec<LayerMetadata>> {
        LayerStore::unhold(self, chain_id, holder)
    }

    fn lookup(&self, chain_id: &ChainId) -> Result<Option<Layer>> {
        self.layer(chain_id)
    }

    fn stage_hold(
        &self,
        chain_id: &ChainId,
        holder: &str,
        staging: &mut LayerStaging,
        batch: &mut Batch,
    ) -> Result<Layer> {
        LayerStore::stage_hold(self, chain_id, holder, staging, batch)
    }
}

/// A failed precondition on a record of the layer store, as
/// [`LayerError::Conflict`] naming it; anything else as it is.
fn layer_conflict(e: Error) -> LayerError {
    let (Error::AlreadyExists { subject }
    | Error::NotFound { subject }
    | Error::Conflict { subject, .. }) = &e
    else {
        return e.into();
    };
    match subject {
        Subject::Record { bucket, key } if bucket == LAYERS || bucket == HOLDERS => {
            LayerError::Conflict {
                bucket: bucket.clone(),
                key: key.clone(),
            }
        }
        _ => e.into(),
    }
}

/// Why a layer record does not decode.
pub(crate) enum DecodeError {
    /// The key is not a chain ID or the value does not parse.
    Unreadable(String),
    /// The record parses, but its parent and diff ID give another chain ID.
    ChainMismatch {
        /// The record's key.
        chain_id: ChainId,
        /// The chain ID its parent and diff ID give.
        computed: ChainId,
    },
}

impl DecodeError {
    pub(crate) fn reason(&self) -> String {
        match self {
            DecodeError::Unreadable(reason) => reason.clone(),
            DecodeError::ChainMismatch { computed, .. } => {
                format!("parent and diff ID give chain {computed}")
            }
        }
    }
}

/// Adds to `batch` the records of a layer not stored yet: the layer
/// itself (`Absent` before), its `layer:` holder on its parent and its
/// `layer-blobs` entry. A caller that must see the parent still stored adds
/// that precondition itself.
fn put_new_layer(batch: &mut Batch, layer: &Layer) -> Result<()> {
    let chain_id = &layer.chain_id;
    batch.require_absent(LAYERS, chain_id.as_str()).put(
        LAYERS,
        chain_id.as_str(),
        StoredLayer::of(layer).encode(chain_id)?,
    );
    if let Some(parent) = &layer.parent {
        batch.put(
            HOLDERS,
            &holder_key(parent, &child_holder(chain_id)),
            Vec::new(),
        );
    }
    if let Some(blob) = &layer.blob {
        batch.put(
            LAYER_BLOBS,
            &blob_user_key(&blob.digest, chain_id),
            Vec::new(),
        );
    }
    Ok(())
}

/// Decodes a layer record: its key must be a chain ID that follows from the
/// record's parent and diff ID.
pub(crate) fn decode_layer(key: &str, value: &[u8]) -> std::result::Result<Layer, DecodeError> {
    let layer = read_layer(key, value)?;
    let computed = match &layer.parent {
        None => ChainId::base(layer.diff_id.clone()),
        Some(parent) => parent.child(&layer.diff_id),
    };
    if computed != layer.chain_id {
        return Err(DecodeError::ChainMismatch {
            chain_id: layer.chain_id,
            computed,
        });
    }
    Ok(layer)
}

/// Parses a layer record, taking its key as the chain ID unchecked.
fn read_layer(key: &str, value: &[u8]) -> std::result::Result<Layer, DecodeError> {
    let chain_id: ChainId = key
        .parse()
        .map_err(|e| DecodeError::Unreadable(format!("key is not a chain ID: {e}")))?;
    let stored: StoredLayer = serde_json::from_slice(value)
        .map_err(|e| DecodeError::Unreadable(format!("record does not parse: {e}")))?;
    Ok(Layer {
        chain_id,
        diff_id: stored.diff_id,
        parent: stored.parent,
        size: stored.size,
        blob: stored.blob,
        files_size: stored.files_size,
    })
}
