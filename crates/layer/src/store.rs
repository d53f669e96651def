//! `LayerStore`: layer records and reference counts over a backend.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use imgstore_backend::{Batch, RecordStore, StateLock, StoreBackend};
use imgstore_digest::Digest;
use serde::{Deserialize, Serialize};

use crate::{ChainId, LayerError};

/// Bucket of layer records: key = chain ID, value = JSON [`StoredLayer`].
const LAYERS: &str = "layers";
/// Bucket of holder references: key = `"<chain id> <holder>"`, value empty.
const HOLDERS: &str = "layer-holders";

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

/// An entry that [`LayerStore::open`] skipped, and why. Nothing is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreProblem {
    /// The record key involved (a chain ID, or a holder key).
    pub key: String,
    /// What was wrong.
    pub reason: String,
}

/// The two operations the image store needs from a layer store: moby's
/// `LayerGetReleaser`, with moby's anonymous reference counting.
pub trait LayerGetReleaser: Send + Sync {
    /// Takes one reference on the layer. References taken here (and by
    /// [`LayerStore::register`]) are transient, as moby's are: kept in
    /// memory, re-taken by their holders (the image store) on restore.
    fn get(&self, chain_id: &ChainId) -> Result<Layer>;

    /// Drops one reference taken by `get` or `register`. At zero references
    /// the layer is deleted and its parent released in cascade; returns every
    /// layer removed, top first. With no such reference left:
    /// [`LayerError::NotHeld`]. When the records cannot be changed, the
    /// error is returned and the reference is dropped all the same (its
    /// holder let go): the layers stay, unreferenced, for gc.
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

struct Entry {
    layer: Layer,
    /// Anonymous references from `get`/`register`: memory only.
    transient: usize,
    /// Named references from `hold`: persisted in the `layer-holders` bucket.
    holders: BTreeSet<String>,
    children: usize,
}

impl Entry {
    fn references(&self) -> usize {
        self.transient + self.holders.len() + self.children
    }
}

/// One reference being dropped.
enum Reference<'a> {
    Transient,
    Held(&'a str),
}

#[derive(Default)]
struct State {
    layers: HashMap<ChainId, Entry>,
    /// How many layers name each blob, so a shared blob outlives one of them.
    blob_users: HashMap<Digest, usize>,
}

/// Layer records and reference counts over a backend (see the crate docs).
///
/// `Send + Sync`: readers share a read lock; a change holds the write lock
/// while its batch commits, so memory and records never disagree.
pub struct LayerStore<B> {
    backend: Arc<B>,
    state: StateLock<State>,
    problems: StateLock<Vec<RestoreProblem>>,
}

fn holder_key(chain_id: &ChainId, holder: &str) -> String {
    format!("{chain_id} {holder}")
}

fn validate_holder(holder: &str) -> Result<()> {
    let reason = if holder.is_empty() {
        "empty"
    } else if holder.len() > 1024 {
        "longer than 1024 bytes"
    } else if holder.contains('\0') {
        "contains NUL"
    } else {
        return Ok(());
    };
    Err(LayerError::InvalidHolder {
        holder: holder.chars().take(100).collect(),
        reason,
    })
}

impl<B: StoreBackend + RecordStore> LayerStore<B> {
    /// Opens the layer store kept in `backend`: loads every layer record,
    /// rebuilds child references from parent links and holder references from
    /// their records. A record that does not parse, whose chain ID does not
    /// follow from its parent and diff ID, or whose parent is missing is
    /// skipped and reported by [`restore_problems`](Self::restore_problems).
    pub fn open(backend: Arc<B>) -> Result<LayerStore<B>> {
        let (state, problems) = Self::load(&backend)?;
        Ok(LayerStore {
            backend,
            state: StateLock::new(state),
            problems: StateLock::new(problems),
        })
    }

    /// Re-reads every layer and holder record, picking up what other
    /// processes changed, and replaces the in-memory state. Transient
    /// references are memory only, so they start again from zero: their
    /// holders (the image store) must re-take them, as after
    /// [`open`](Self::open).
    pub fn reload(&self) -> Result<()> {
        let (state, problems) = Self::load(&self.backend)?;
        *self.state.write() = state;
        *self.problems.write() = problems;
        Ok(())
    }

    fn load(backend: &Arc<B>) -> Result<(State, Vec<RestoreProblem>)> {
        let mut problems = Vec::new();
        let mut loaded: HashMap<ChainId, Layer> = HashMap::new();
        backend.scan_records(LAYERS, "", &mut |key, value| {
            match decode_layer(key, value) {
                Ok(layer) => {
                    loaded.insert(layer.chain_id.clone(), layer);
                }
                Err(reason) => problems.push(RestoreProblem {
                    key: key.to_owned(),
                    reason,
                }),
            }
            Ok(())
        })?;
        // Keep only layers whose whole parent chain loaded; walk up without recursion.
        let mut state = State::default();
        let mut usable: HashMap<ChainId, bool> = HashMap::new();
        for chain_id in loaded.keys() {
            let mut path = Vec::new();
            let mut current = Some(chain_id.clone());
            let verdict = loop {
                let Some(id) = current else { break true };
                if let Some(&known) = usable.get(&id) {
                    break known;
                }
                match loaded.get(&id) {
                    None => break false,
                    Some(layer) => {
                        path.push(id.clone());
                        current = layer.parent.clone();
                        if path.len() > loaded.len() {
                            break false; // a cycle; impossible with hashes, refused all the same
                        }
                    }
                }
            };
            for id in path {
                usable.insert(id, verdict);
            }
        }
        for (chain_id, layer) in loaded {
            if usable.get(&chain_id) == Some(&true) {
                if let Some(blob) = &layer.blob {
                    *state.blob_users.entry(blob.digest.clone()).or_default() += 1;
                }
                state.layers.insert(
                    chain_id,
                    Entry {
                        layer,
                        transient: 0,
                        holders: BTreeSet::new(),
                        children: 0,
                    },
                );
            } else {
                problems.push(RestoreProblem {
                    key: chain_id.to_string(),
                    reason: "a layer below it is missing or unreadable".into(),
                });
            }
        }
        let parents: Vec<ChainId> = state
            .layers
            .values()
            .filter_map(|e| e.layer.parent.clone())
            .collect();
        for parent in parents {
            if let Some(entry) = state.layers.get_mut(&parent) {
                entry.children += 1;
            }
        }
        backend.scan_records(HOLDERS, "", &mut |key, _| {
            let parsed = key
                .split_once(' ')
                .and_then(|(chain, holder)| chain.parse::<ChainId>().ok().map(|c| (c, holder)));
            match parsed {
                Some((chain_id, holder)) => match state.layers.get_mut(&chain_id) {
                    Some(entry) => {
                        entry.holders.insert(holder.to_owned());
                    }
                    None => problems.push(RestoreProblem {
                        key: key.to_owned(),
                        reason: "reference on a layer that is not loaded".into(),
                    }),
                },
                None => problems.push(RestoreProblem {
                    key: key.to_owned(),
                    reason: "not a `<chain id> <holder>` key".into(),
                }),
            }
            Ok(())
        })?;
        Ok((state, problems))
    }

    /// Entries skipped by the last [`open`](Self::open) or
    /// [`reload`](Self::reload).
    pub fn restore_problems(&self) -> Vec<RestoreProblem> {
        self.problems.read().clone()
    }

    /// The backend this store keeps its records in.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// Registers `layer` on top of `parent` (which must exist) and returns it
    /// with one transient reference for the caller (moby's `Register`), to be
    /// dropped with [`release`](LayerGetReleaser::release) once something else
    /// (an image) holds the layer. Registering an existing chain only adds
    /// the reference. The record is durable when this returns. A blob named by
    /// `layer` must already be in the content store.
    pub fn register(&self, layer: NewLayer, parent: Option<&ChainId>) -> Result<Layer> {
        if let Some(blob) = &layer.blob
            && !self.backend.contains(&blob.digest)?
        {
            return Err(imgstore_backend::Error::content_not_found(&blob.digest).into());
        }
        let mut state = self.state.write();
        let chain_id = match parent {
            None => ChainId::base(layer.diff_id.clone()),
            Some(parent) if state.layers.contains_key(parent) => parent.child(&layer.diff_id),
            Some(parent) => {
                return Err(LayerError::ParentNotFound {
                    parent: parent.clone(),
                });
            }
        };
        if let Some(entry) = state.layers.get_mut(&chain_id) {
            if entry.layer.diff_id != layer.diff_id || entry.layer.parent.as_ref() != parent {
                return Err(LayerError::Mismatch {
                    chain_id,
                    existing: entry.layer.diff_id.to_string(),
                    offered: layer.diff_id.to_string(),
                });
            }
            if entry.layer.files_size.is_none() && layer.files_size.is_some() {
                // A record from before files sizes were kept learns it now.
                let mut updated = entry.layer.clone();
                updated.files_size = layer.files_size;
                let mut batch = Batch::new();
                batch.put(
                    LAYERS,
                    chain_id.as_str(),
                    StoredLayer::of(&updated).encode(&chain_id)?,
                );
                self.backend.apply(&batch)?;
                entry.layer = updated;
            }
            entry.transient += 1;
            return Ok(entry.layer.clone());
        }
        let record = Layer {
            chain_id: chain_id.clone(),
            diff_id: layer.diff_id,
            parent: parent.cloned(),
            size: layer.size,
            blob: layer.blob,
            files_size: layer.files_size,
        };
        let value = StoredLayer::of(&record).encode(&chain_id)?;
        let mut batch = Batch::new();
        batch
            .require_absent(LAYERS, chain_id.as_str())
            .put(LAYERS, chain_id.as_str(), value);
        self.backend.apply(&batch)?;
        if let Some(parent) = &record.parent
            && let Some(entry) = state.layers.get_mut(parent)
        {
            entry.children += 1;
        }
        if let Some(blob) = &record.blob {
            *state.blob_users.entry(blob.digest.clone()).or_default() += 1;
        }
        state.layers.insert(
            chain_id,
            Entry {
                layer: record.clone(),
                transient: 1,
                holders: BTreeSet::new(),
                children: 0,
            },
        );
        Ok(record)
    }

    /// Gives `holder` a persistent, named reference on the layer: recorded in
    /// the record store, so it survives reopening. Idempotent per holder.
    pub fn hold(&self, chain_id: &ChainId, holder: &str) -> Result<Layer> {
        validate_holder(holder)?;
        let mut state = self.state.write();
        let Some(entry) = state.layers.get_mut(chain_id) else {
            return Err(LayerError::NotFound {
                chain_id: chain_id.clone(),
            });
        };
        if !entry.holders.contains(holder) {
            let mut batch = Batch::new();
            batch.put(HOLDERS, &holder_key(chain_id, holder), Vec::new());
            self.backend.apply(&batch)?;
            entry.holders.insert(holder.to_owned());
        }
        Ok(entry.layer.clone())
    }

    /// Drops `holder`'s persistent reference, with the cascade of
    /// [`release`](LayerGetReleaser::release).
    pub fn unhold(&self, chain_id: &ChainId, holder: &str) -> Result<Vec<LayerMetadata>> {
        validate_holder(holder)?;
        self.drop_reference(chain_id, Reference::Held(holder))
    }

    /// Drops one reference; at zero, deletes the layer and walks down its
    /// parents in a loop, all record changes in one atomic batch.
    fn drop_reference(
        &self,
        chain_id: &ChainId,
        reference: Reference<'_>,
    ) -> Result<Vec<LayerMetadata>> {
        let mut state = self.state.write();
        let Some(entry) = state.layers.get(chain_id) else {
            return Err(LayerError::NotFound {
                chain_id: chain_id.clone(),
            });
        };
        let held = match reference {
            Reference::Transient => entry.transient > 0,
            Reference::Held(holder) => entry.holders.contains(holder),
        };
        if !held {
            return Err(LayerError::NotHeld {
                chain_id: chain_id.clone(),
                holder: match reference {
                    Reference::Transient => "(get/register)".to_owned(),
                    Reference::Held(holder) => holder.to_owned(),
                },
            });
        }
        // Plan the cascade on the unchanged state: each removed layer drops
        // exactly one reference (a child's) from the next one down.
        let mut batch = Batch::new();
        if let Reference::Held(holder) = reference {
            batch.delete(HOLDERS, &holder_key(chain_id, holder));
        }
        let mut removed: Vec<ChainId> = Vec::new();
        let mut current = chain_id.clone();
        let mut remaining = entry.references() - 1;
        while remaining == 0 {
            batch.delete(LAYERS, current.as_str());
            removed.push(current.clone());
            let parent = state
                .layers
                .get(&current)
                .and_then(|e| e.layer.parent.clone());
            let Some(parent) = parent else { break };
            remaining = state
                .layers
                .get(&parent)
                .map_or(1, |e| e.references().saturating_sub(1));
            current = parent;
        }
        if !batch.is_empty()
            && let Err(e) = self.backend.apply(&batch)
        {
            // Nothing changed on disk. A transient reference lives in
            // memory only and its holder has let go: drop it all the same,
            // so the layer is left unreferenced (for gc), not held forever.
            if let Reference::Transient = reference
                && let Some(entry) = state.layers.get_mut(chain_id)
            {
                entry.transient -= 1;
            }
            return Err(e.into());
        }
        if let Some(entry) = state.layers.get_mut(chain_id) {
            match reference {
                Reference::Transient => entry.transient -= 1,
                Reference::Held(holder) => {
                    entry.holders.remove(holder);
                }
            }
        }
        let mut released = Vec::with_capacity(removed.len());
        let mut orphan_blobs = Vec::new();
        for id in &removed {
            let Some(entry) = state.layers.remove(id) else {
                continue;
            };
            if let Some(parent) = &entry.layer.parent
                && let Some(parent_entry) = state.layers.get_mut(parent)
            {
                parent_entry.children = parent_entry.children.saturating_sub(1);
            }
            if let Some(blob) = &entry.layer.blob {
                let users = state.blob_users.entry(blob.digest.clone()).or_default();
                *users = users.saturating_sub(1);
                if *users == 0 {
                    state.blob_users.remove(&blob.digest);
                    orphan_blobs.push(blob.digest.clone());
                }
            }
            released.push(entry.layer.metadata());
        }
        for digest in orphan_blobs {
            // NotFound means already gone; any other failure leaves an orphan for gc.
            let _ = self.backend.delete(&digest);
        }
        Ok(released)
    }

    /// The layer record, without taking a reference.
    pub fn layer(&self, chain_id: &ChainId) -> Option<Layer> {
        self.state
            .read()
            .layers
            .get(chain_id)
            .map(|e| e.layer.clone())
    }

    /// Calls `visit` for each layer of the chain ending at `top`, top
    /// first, under one read lock and without copying the records; stops at
    /// a chain ID that is not stored.
    pub fn walk_chain(&self, top: &ChainId, mut visit: impl FnMut(&Layer)) {
        let state = self.state.read();
        let mut current = state.layers.get(top);
        while let Some(entry) = current {
            visit(&entry.layer);
            current = entry
                .layer
                .parent
                .as_ref()
                .and_then(|p| state.layers.get(p));
        }
    }

    /// Every layer, by chain ID.
    pub fn map(&self) -> BTreeMap<ChainId, Layer> {
        self.state
            .read()
            .layers
            .iter()
            .map(|(id, e)| (id.clone(), e.layer.clone()))
            .collect()
    }

    /// The reference count: transient references, persistent holders and
    /// child layers; `None` if absent.
    pub fn references(&self, chain_id: &ChainId) -> Option<usize> {
        self.state
            .read()
            .layers
            .get(chain_id)
            .map(Entry::references)
    }

    /// The holders of persistent references on the layer, sorted.
    pub fn holders(&self, chain_id: &ChainId) -> Vec<String> {
        self.state
            .read()
            .layers
            .get(chain_id)
            .map(|e| e.holders.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Number of layers.
    pub fn len(&self) -> usize {
        self.state.read().layers.len()
    }

    /// True when there are no layers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<B: StoreBackend + RecordStore> LayerGetReleaser for LayerStore<B> {
    fn get(&self, chain_id: &ChainId) -> Result<Layer> {
        let mut state = self.state.write();
        let Some(entry) = state.layers.get_mut(chain_id) else {
            return Err(LayerError::NotFound {
                chain_id: chain_id.clone(),
            });
        };
        entry.transient += 1;
        Ok(entry.layer.clone())
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
        Ok(self.layer(chain_id))
    }
}

fn decode_layer(key: &str, value: &[u8]) -> std::result::Result<Layer, String> {
    let chain_id: ChainId = key
        .parse()
        .map_err(|e| format!("key is not a chain ID: {e}"))?;
    let stored: StoredLayer =
        serde_json::from_slice(value).map_err(|e| format!("record does not parse: {e}"))?;
    let expected = match &stored.parent {
        None => ChainId::base(stored.diff_id.clone()),
        Some(parent) => parent.child(&stored.diff_id),
    };
    if expected != chain_id {
        return Err(format!("parent and diff ID give chain {expected}"));
    }
    Ok(Layer {
        chain_id,
        diff_id: stored.diff_id,
        parent: stored.parent,
        size: stored.size,
        blob: stored.blob,
        files_size: stored.files_size,
    })
}
