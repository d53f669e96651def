//! `Store`: moby's image store over a backend's configs and records and a
//! layer store. It keeps no state in memory: every call reads the records
//! it concerns.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use imgstore_backend::{Batch, ErrorKind, Precondition, RecordStore, StoreBackend};
use imgstore_digest::Algorithm;
use imgstore_layer::{ChainId, LayerError, LayerGetReleaser, LayerMetadata, LayerStaging};

use crate::summary::{
    CHILDREN_BUCKET, ChainSizes, IMAGES_BUCKET, Summary, child_key, holder, id_of_key, image_key,
    parse_child_key,
};
use crate::time::{format_rfc3339_nanos, parse_rfc3339};
use crate::{Image, ImageError, ImageId};

type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Metadata keys, exactly as moby names them.
pub(crate) const PARENT: &str = "parent";
const LAST_UPDATED: &str = "lastUpdated";
const BUILT_LOCALLY: &str = "builtLocally";

/// How many parent links a walk follows before it takes the chain for a
/// cycle: far deeper than any real image chain (moby builds stop at 125
/// layers), and a bound on the point reads a walk can cost.
pub(crate) const MAX_PARENT_DEPTH: usize = 4096;

/// moby's image `Store` surface. Implemented by [`Store`]. Every read goes
/// to the records, so every read can fail.
pub trait ImageStore: Send + Sync {
    /// Stores a config and returns its ID (sha256 of the exact bytes). Takes
    /// the image's persistent hold (`image:<hex>`) on its top layer; creating
    /// an existing image returns its ID and changes nothing. The image
    /// appears when its summary is written, last: a failed create shows no
    /// image.
    fn create(&self, config: &[u8]) -> Result<ImageId>;
    /// The image: its config, read from the backend (which verifies the
    /// digest) and parsed.
    fn get(&self, id: &ImageId) -> Result<Arc<Image>>;
    /// Deletes the image: its summary and its children links in one batch
    /// (its children lose `parent`), then its hold on the top layer (the
    /// layers that freed are returned), then its config and metadata. Once
    /// the batch committed the delete has happened: a later step that fails
    /// leaves a layer or a config for gc, and is not reported.
    fn delete(&self, id: &ImageId) -> Result<Vec<LayerMetadata>>;
    /// Finds an image by full ID, `sha256:` + prefix, or hex prefix: one
    /// bounded scan of at most two summaries.
    fn search(&self, term: &str) -> Result<ImageId>;
    /// Makes `parent` the parent of `id`, detaching it from any old parent.
    fn set_parent(&self, id: &ImageId, parent: &ImageId) -> Result<()>;
    /// The parent; [`ImageError::NoParent`] when none is set.
    fn get_parent(&self, id: &ImageId) -> Result<ImageId>;
    /// Records "now" as the image's last update.
    fn set_last_updated(&self, id: &ImageId) -> Result<()>;
    /// The last update, `None` when never set (moby returns the zero time).
    fn get_last_updated(&self, id: &ImageId) -> Result<Option<SystemTime>>;
    /// Marks the image as built on this host.
    fn set_built_locally(&self, id: &ImageId) -> Result<()>;
    /// Whether it was built here; false when never set.
    fn is_built_locally(&self, id: &ImageId) -> Result<bool>;
    /// The images whose parent is `id`, sorted: one prefix scan.
    fn children(&self, id: &ImageId) -> Result<Vec<ImageId>>;
    /// The image's summary, `None` when there is no such image: one read.
    fn summary(&self, id: &ImageId) -> Result<Option<Summary>>;
    /// Every image's summary, in ID order: one ordered scan, no config read.
    fn summaries(&self) -> Result<Vec<(ImageId, Summary)>>;
    /// [`summaries`](Self::summaries) one at a time, in ID order, without
    /// collecting them: what a listing builds its rows from. A record that
    /// does not decode is skipped and reported as the error once the scan
    /// is over.
    fn scan_summaries(&self, visit: &mut dyn FnMut(ImageId, Summary)) -> Result<()>;
    /// Every image with its config: reads and parses every config, O(n).
    /// For gc and fsck; a listing uses [`summaries`](Self::summaries). An
    /// image whose config cannot be read or parsed is left out
    /// ([`Store::check`] reports it as [`ImageProblem::BrokenConfig`](crate::ImageProblem::BrokenConfig)).
    fn map(&self) -> Result<BTreeMap<ImageId, Arc<Image>>>;
    /// The images without children (leaves of the parent graph), from the
    /// summaries and the children links: two scans, no config read.
    fn heads(&self) -> Result<BTreeMap<ImageId, Summary>>;
    /// Number of images: a scan of the summary keys.
    fn len(&self) -> Result<usize>;
    /// True when there are no images: one probe.
    fn is_empty(&self) -> Result<bool>;
}

/// The image store (see the crate docs). `B` keeps configs, per-image
/// metadata and the image records; `L` keeps the layers the images hold.
pub struct Store<B, L> {
    pub(crate) backend: Arc<B>,
    pub(crate) layers: Arc<L>,
    /// Serialises this process's changes so a check and the write it guards
    /// see one state (other processes are kept out by the caller's lock, and
    /// the batches' preconditions catch what slips through); readers never
    /// take it.
    writer: Mutex<()>,
}

fn os_supported(image: &Image) -> bool {
    image.runs_on_host_os()
}

fn not_found(id: &ImageId) -> ImageError {
    ImageError::NotFound {
        term: id.to_string(),
    }
}

impl<B: StoreBackend + RecordStore, L: LayerGetReleaser> Store<B, L> {
    /// Opens the store over `backend` and `layers`. Reads nothing: the
    /// records are the index. A backend written before the records existed
    /// (configs and metadata only) needs one
    /// [`rebuild_index`](Self::rebuild_index) first.
    pub fn open(backend: Arc<B>, layers: Arc<L>) -> Result<Store<B, L>> {
        Ok(Store {
            backend,
            layers,
            writer: Mutex::new(()),
        })
    }

    /// The backend holding configs, metadata and the image records.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// The layer store.
    pub fn layers(&self) -> &Arc<L> {
        &self.layers
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stored summary record (raw bytes and decoded), `None` when absent.
    fn summary_record(&self, id: &ImageId) -> Result<Option<(Vec<u8>, Summary)>> {
        let Some(key) = image_key(id) else {
            return Ok(None);
        };
        match self.backend.get_record(IMAGES_BUCKET, key)? {
            Some(bytes) => {
                let summary = Summary::decode(key, &bytes)?;
                Ok(Some((bytes, summary)))
            }
            None => Ok(None),
        }
    }

    fn require(&self, id: &ImageId) -> Result<(Vec<u8>, Summary)> {
        self.summary_record(id)?.ok_or_else(|| not_found(id))
    }

    /// The sizes of the chain under `top`, walking parents through
    /// [`LayerGetReleaser::lookup`]; a missing layer (or a chain deeper than
    /// [`MAX_PARENT_DEPTH`]) is [`LayerError::NotFound`] naming it.
    pub(crate) fn chain_sizes(&self, top: Option<&ChainId>) -> Result<ChainSizes> {
        self.chain_sizes_in(top, &LayerStaging::new())
    }

    /// [`chain_sizes`](Self::chain_sizes) of a chain whose upper layers may
    /// be staged in `staged`, not committed yet.
    fn chain_sizes_in(&self, top: Option<&ChainId>, staged: &LayerStaging) -> Result<ChainSizes> {
        let mut sizes = ChainSizes::default();
        let mut current = top.cloned();
        let mut depth = 0;
        while let Some(chain_id) = current {
            depth += 1;
            let found = match staged.layer(&chain_id) {
                Some(layer) => Some(layer.clone()),
                None => self.layers.lookup(&chain_id)?,
            };
            let layer = match found {
                Some(layer) if depth <= MAX_PARENT_DEPTH => layer,
                _ => return Err(LayerError::NotFound { chain_id }.into()),
            };
            sizes.size += layer.files_size().unwrap_or(layer.size());
            sizes.blobs_size += layer.blob().map_or(0, |blob| blob.size);
            current = layer.parent().cloned();
        }
        Ok(sizes)
    }

    /// [`create`](ImageStore::create) into caller's batches, as an import of
    /// many images does, so that they commit together: stores the config
    /// (deferred: durable before the image backend's next batch), stages
    /// the image's hold on its top layer into `layer_batch` (the content
    /// backend's, with `layers`; the chain may be staged there too) and
    /// its summary and child link into `batch` (this backend's). Nothing
    /// is visible until `batch` commits ([`commit`](Self::commit)), which
    /// must come after `layer_batch`'s: the image exists iff its summary
    /// does, and a summary never names a top layer nothing holds. A crash
    /// between the two commits leaves holds (and configs) no summary
    /// names, which gc collects; never a half image.
    ///
    /// Preconditions: the summary absent (a stored image stages only a
    /// check that it is still there, and reports `created: false`), a
    /// stored parent present; an image staged twice in one `staging` is
    /// staged once. A refused config (`InvalidConfig`, `UnsupportedOs`)
    /// or a missing layer fails before anything is written.
    pub fn stage_create(
        &self,
        config: &[u8],
        layers: &mut LayerStaging,
        layer_batch: &mut Batch,
        staging: &mut ImageStaging,
        batch: &mut Batch,
    ) -> Result<StagedImage> {
        let (image, id, key) = accepted(config)?;
        let top = image.top_chain_id().cloned();
        let staged = |created| StagedImage {
            id: id.clone(),
            created,
            top: top.clone(),
        };
        if staging.summaries.contains_key(&id) {
            return Ok(staged(false));
        }
        if self.summary_record(&id)?.is_some() {
            batch.require(IMAGES_BUCKET, &key, Precondition::Present);
            staging.summaries.insert(id.clone(), None);
            return Ok(staged(false));
        }
        // Read the layers before writing: a missing layer leaves no trace.
        let sizes = self.chain_sizes_in(top.as_ref(), layers)?;
        let parent = match read_parent(&*self.backend, &id)? {
            Some(parent)
                if (staging.summaries.get(&parent).is_some_and(Option::is_some)
                    || self.summary_record(&parent)?.is_some())
                    && !self.is_ancestor_or_self(&id, &parent)? =>
            {
                Some(parent)
            }
            _ => None,
        };
        let summary = Summary::of(&image, parent.clone(), sizes);
        self.backend.set_deferred(config)?;
        if let Some(top) = &top {
            self.layers
                .stage_hold(top, &holder(&id), layers, layer_batch)?;
        }
        batch.require_absent(IMAGES_BUCKET, &key);
        batch.put(IMAGES_BUCKET, &key, summary.encode());
        if let Some(parent) = &parent
            && let Some(parent_key) = image_key(parent)
        {
            if !staging.summaries.contains_key(parent) {
                batch.require(IMAGES_BUCKET, parent_key, Precondition::Present);
            }
            batch.put(CHILDREN_BUCKET, &child_key(parent, &id), Vec::new());
        }
        staging.summaries.insert(id.clone(), Some(summary));
        Ok(staged(true))
    }

    /// Commits a batch of [`stage_create`](Self::stage_create)s (after the
    /// layer batch holding their holds), atomically: the configs written
    /// deferred are made durable first (by the backend). A precondition on
    /// a summary that no longer holds (an image created or deleted by
    /// another store meanwhile) is [`ImageError::Conflict`] naming it;
    /// nothing is written when this fails.
    pub fn commit(&self, batch: &Batch) -> Result<()> {
        let _writer = self.lock_writer();
        self.backend.apply(batch).map_err(|e| {
            let (imgstore_backend::Error::AlreadyExists { subject }
            | imgstore_backend::Error::NotFound { subject }
            | imgstore_backend::Error::Conflict { subject, .. }) = &e
            else {
                return e.into();
            };
            match subject {
                imgstore_backend::Subject::Record { bucket, key } if bucket == IMAGES_BUCKET => {
                    ImageError::Conflict { key: key.clone() }
                }
                _ => e.into(),
            }
        })
    }

    /// True when `ancestor` is `start` or one of its ancestors, walking the
    /// summaries' parents; a walk longer than [`MAX_PARENT_DEPTH`] counts as
    /// a yes (a cycle already on disk cannot make it loop).
    fn is_ancestor_or_self(&self, ancestor: &ImageId, start: &ImageId) -> Result<bool> {
        let mut current = start.clone();
        for _ in 0..MAX_PARENT_DEPTH {
            if &current == ancestor {
                return Ok(true);
            }
            match self.summary_record(&current)?.and_then(|(_, s)| s.parent) {
                Some(next) => current = next,
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The parent the `parent` metadata of `id` gives, when it names an
    /// image that exists and the link closes no cycle: what create indexes
    /// for a config that already had metadata (a crashed create or delete).
    fn stored_parent(&self, id: &ImageId) -> Result<Option<ImageId>> {
        let Some(parent) = read_parent(&*self.backend, id)? else {
            return Ok(None);
        };
        if self.summary_record(&parent)?.is_none() || self.is_ancestor_or_self(id, &parent)? {
            return Ok(None);
        }
        Ok(Some(parent))
    }
}

/// Images staged into a caller's batch by [`Store::stage_create`], not
/// committed yet: what later stagings into the same batch see (an image
/// given twice, a parent staged before its child).
#[derive(Debug, Default)]
pub struct ImageStaging {
    /// Each image staged: its new summary, or `None` when it was stored
    /// already (only checked).
    summaries: HashMap<ImageId, Option<Summary>>,
}

impl ImageStaging {
    /// Nothing staged.
    pub fn new() -> ImageStaging {
        ImageStaging::default()
    }

    /// The images the batch creates, in no particular order.
    pub fn created(&self) -> impl Iterator<Item = &ImageId> {
        self.summaries
            .iter()
            .filter(|(_, summary)| summary.is_some())
            .map(|(id, _)| id)
    }

    /// True when nothing is staged.
    pub fn is_empty(&self) -> bool {
        self.summaries.is_empty()
    }
}

/// What [`Store::stage_create`] staged for one config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedImage {
    /// The image ID (the config's digest).
    pub id: ImageId,
    /// True when the batch creates the image; false when it was stored
    /// already (or staged earlier in the same batch).
    pub created: bool,
    /// The top layer the image holds (`image:<hex>`), `None` for an image
    /// without layers.
    pub top: Option<ChainId>,
}

/// The `parent` metadata of `id`: `None` when unset or not an image ID.
pub(crate) fn read_parent<B: StoreBackend + ?Sized>(
    backend: &B,
    id: &ImageId,
) -> Result<Option<ImageId>> {
    match backend.get_metadata(id.digest(), PARENT) {
        Ok(bytes) => Ok(parse_parent(&bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

pub(crate) fn parse_parent(bytes: &[u8]) -> Option<ImageId> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.trim().parse::<ImageId>().ok())
}

/// Whether a config can be an image here: the reason when not.
/// A config `create` and `stage_create` accept: parsed, for a supported
/// OS, with its ID and record key.
fn accepted(config: &[u8]) -> Result<(Image, ImageId, String)> {
    let image = Image::from_config(config)?;
    if let Some(refused) = refuse_os(&image) {
        return Err(refused);
    }
    let id = image.id().clone();
    let Some(key) = image_key(&id).map(str::to_owned) else {
        return Err(not_found(&id));
    };
    Ok((image, id, key))
}

pub(crate) fn refuse_os(image: &Image) -> Option<ImageError> {
    (!os_supported(image)).then(|| ImageError::UnsupportedOs {
        os: image.os().to_owned(),
    })
}

impl<B: StoreBackend + RecordStore, L: LayerGetReleaser> ImageStore for Store<B, L> {
    fn create(&self, config: &[u8]) -> Result<ImageId> {
        let (image, id, key) = accepted(config)?;
        let _writer = self.lock_writer();
        if self.summary_record(&id)?.is_some() {
            return Ok(id);
        }
        let top = image.top_chain_id().cloned();
        // Read the layers before writing: a missing layer leaves no trace.
        let sizes = self.chain_sizes(top.as_ref())?;
        let parent = self.stored_parent(&id)?;
        let summary = Summary::of(&image, parent.clone(), sizes);
        let stored_before = matches!(self.backend.contains(id.digest()), Ok(true));
        // Undo what this create wrote, best effort: what is left (a crash)
        // is a config or a hold without a summary, for check and gc.
        let undo = |held: bool| {
            if held && let Some(top) = &top {
                let _ = self.layers.unhold(top, &holder(&id));
            }
            if !stored_before && matches!(self.backend.contains(id.digest()), Ok(true)) {
                let _ = self.backend.delete(id.digest());
            }
        };
        if let Err(e) = self.backend.set(config) {
            undo(false);
            return Err(e.into());
        }
        if let Some(top) = &top
            && let Err(e) = self.layers.hold(top, &holder(&id))
        {
            undo(false);
            return Err(e.into());
        }
        let mut batch = Batch::new();
        batch.require_absent(IMAGES_BUCKET, &key);
        batch.put(IMAGES_BUCKET, &key, summary.encode());
        if let Some(parent) = &parent
            && let Some(parent_key) = image_key(parent)
        {
            batch.require(IMAGES_BUCKET, parent_key, Precondition::Present);
            batch.put(CHILDREN_BUCKET, &child_key(parent, &id), Vec::new());
        }
        match self.backend.apply(&batch) {
            Ok(()) => Ok(id),
            // Another process created it meanwhile: it exists, with its hold.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(id),
            Err(e) => {
                undo(true);
                Err(e.into())
            }
        }
    }

    fn get(&self, id: &ImageId) -> Result<Arc<Image>> {
        self.require(id)?;
        let raw = self.backend.get(id.digest())?;
        Ok(Arc::new(Image::from_config(&raw)?))
    }

    fn delete(&self, id: &ImageId) -> Result<Vec<LayerMetadata>> {
        let _writer = self.lock_writer();
        let (bytes, summary) = self.require(id)?;
        let Some(key) = image_key(id) else {
            return Err(not_found(id));
        };
        let children = self.children(id)?;
        let mut batch = Batch::new();
        batch.require(IMAGES_BUCKET, key, Precondition::Equals(bytes));
        batch.delete(IMAGES_BUCKET, key);
        if let Some(parent) = &summary.parent {
            batch.delete(CHILDREN_BUCKET, &child_key(parent, id));
        }
        for child in &children {
            batch.delete(CHILDREN_BUCKET, &child_key(id, child));
            if let (Some(child_key), Some((child_bytes, mut child_summary))) =
                (image_key(child), self.summary_record(child)?)
            {
                child_summary.parent = None;
                batch.require(IMAGES_BUCKET, child_key, Precondition::Equals(child_bytes));
                batch.put(IMAGES_BUCKET, child_key, child_summary.encode());
            }
        }
        self.backend.apply(&batch)?;
        // The image is deleted. What follows is best effort: a failure
        // leaves a `parent` link to a missing image (which reads as none), a
        // hold, or a config no summary names, for check and gc.
        for child in &children {
            let _ = self.backend.delete_metadata(child.digest(), PARENT);
        }
        let released = match &summary.top {
            Some(top) => self.layers.unhold(top, &holder(id)).unwrap_or_default(),
            None => Vec::new(),
        };
        let _ = self.backend.delete(id.digest());
        Ok(released)
    }

    fn search(&self, term: &str) -> Result<ImageId> {
        let not_found = || ImageError::NotFound {
            term: term.to_owned(),
        };
        // The query rules of the digest set (go-digest's `Lookup`): a bare
        // hex prefix, or `sha256:` and a hex prefix; only sha256 IDs exist.
        let prefix = match term.split_once(':') {
            None => term,
            Some((name, encoded))
                if !encoded.is_empty() && Algorithm::from_name(name).is_some() =>
            {
                if Algorithm::from_name(name) != Some(Algorithm::Sha256) {
                    return Err(not_found());
                }
                encoded
            }
            Some(_) => return Err(not_found()),
        };
        if prefix.len() > 64
            || !prefix
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(not_found());
        }
        let hits = self.backend.first_records(IMAGES_BUCKET, prefix, 2)?;
        match hits.as_slice() {
            [] => Err(not_found()),
            [(key, _)] => id_of_key(key).ok_or_else(not_found),
            _ => Err(ImageError::Ambiguous {
                term: term.to_owned(),
            }),
        }
    }

    fn set_parent(&self, id: &ImageId, parent: &ImageId) -> Result<()> {
        let _writer = self.lock_writer();
        let (bytes, summary) = self.require(id)?;
        if self.summary_record(parent)?.is_none() {
            return Err(ImageError::UnknownParent {
                parent: parent.clone(),
            });
        }
        if self.is_ancestor_or_self(id, parent)? {
            return Err(ImageError::ParentCycle {
                id: id.clone(),
                parent: parent.clone(),
            });
        }
        let (Some(key), Some(parent_key)) = (image_key(id), image_key(parent)) else {
            return Err(not_found(id));
        };
        let old_metadata = self.backend.get_metadata(id.digest(), PARENT).ok();
        self.backend
            .set_metadata(id.digest(), PARENT, parent.as_str().as_bytes())?;
        let mut batch = Batch::new();
        batch.require(IMAGES_BUCKET, key, Precondition::Equals(bytes));
        batch.require(IMAGES_BUCKET, parent_key, Precondition::Present);
        if let Some(old) = &summary.parent {
            batch.delete(CHILDREN_BUCKET, &child_key(old, id));
        }
        batch.put(CHILDREN_BUCKET, &child_key(parent, id), Vec::new());
        let linked = Summary {
            parent: Some(parent.clone()),
            ..summary
        };
        batch.put(IMAGES_BUCKET, key, linked.encode());
        if let Err(e) = self.backend.apply(&batch) {
            // Put the metadata back so it agrees with the records again.
            let _ = match old_metadata {
                Some(old) => self.backend.set_metadata(id.digest(), PARENT, &old),
                None => self.backend.delete_metadata(id.digest(), PARENT),
            };
            return Err(e.into());
        }
        Ok(())
    }

    fn get_parent(&self, id: &ImageId) -> Result<ImageId> {
        self.require(id)?
            .1
            .parent
            .ok_or_else(|| ImageError::NoParent { id: id.clone() })
    }

    fn set_last_updated(&self, id: &ImageId) -> Result<()> {
        self.require(id)?;
        let now = format_rfc3339_nanos(SystemTime::now());
        Ok(self
            .backend
            .set_metadata(id.digest(), LAST_UPDATED, now.as_bytes())?)
    }

    fn get_last_updated(&self, id: &ImageId) -> Result<Option<SystemTime>> {
        self.require(id)?;
        let bytes = match self.backend.get_metadata(id.digest(), LAST_UPDATED) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        // moby reads an empty value as "never set" too.
        if bytes.is_empty() {
            return Ok(None);
        }
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(parse_rfc3339)
            .map(Some)
            .ok_or_else(|| ImageError::CorruptMetadata {
                id: id.clone(),
                key: LAST_UPDATED,
                reason: format!(
                    "{:?} is not an RFC 3339 time",
                    imgstore_digest::shorten(&String::from_utf8_lossy(&bytes))
                ),
            })
    }

    fn set_built_locally(&self, id: &ImageId) -> Result<()> {
        self.require(id)?;
        Ok(self
            .backend
            .set_metadata(id.digest(), BUILT_LOCALLY, &[1])?)
    }

    fn is_built_locally(&self, id: &ImageId) -> Result<bool> {
        self.require(id)?;
        match self.backend.get_metadata(id.digest(), BUILT_LOCALLY) {
            Ok(bytes) => Ok(bytes == [1]),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn children(&self, id: &ImageId) -> Result<Vec<ImageId>> {
        let Some(key) = image_key(id) else {
            return Ok(Vec::new());
        };
        let mut children = Vec::new();
        self.backend
            .scan_records(CHILDREN_BUCKET, &format!("{key} "), &mut |key, _| {
                if let Some((_, child)) = parse_child_key(key) {
                    children.push(child);
                }
                Ok(())
            })?;
        Ok(children)
    }

    fn summary(&self, id: &ImageId) -> Result<Option<Summary>> {
        Ok(self.summary_record(id)?.map(|(_, summary)| summary))
    }

    fn summaries(&self) -> Result<Vec<(ImageId, Summary)>> {
        let mut found = Vec::new();
        self.scan_summaries(&mut |id, summary| found.push((id, summary)))?;
        Ok(found)
    }

    fn scan_summaries(&self, visit: &mut dyn FnMut(ImageId, Summary)) -> Result<()> {
        let mut corrupt = None;
        self.backend
            .scan_records(IMAGES_BUCKET, "", &mut |key, value| {
                match (id_of_key(key), Summary::decode(key, value)) {
                    (Some(id), Ok(summary)) => visit(id, summary),
                    (None, _) => {
                        corrupt.get_or_insert(ImageError::CorruptRecord {
                            bucket: IMAGES_BUCKET,
                            key: key.to_owned(),
                            reason: "the key is not 64 hex digits".into(),
                        });
                    }
                    (_, Err(e)) => {
                        corrupt.get_or_insert(e);
                    }
                }
                Ok(())
            })?;
        match corrupt {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn map(&self) -> Result<BTreeMap<ImageId, Arc<Image>>> {
        let ids: Vec<ImageId> = self.summaries()?.into_iter().map(|(id, _)| id).collect();
        let digests: Vec<_> = ids.iter().map(|id| id.digest().clone()).collect();
        let configs = self.backend.get_many(&digests);
        Ok(ids
            .into_iter()
            .zip(configs)
            .filter_map(|(id, raw)| {
                let image = Image::from_config(&raw.ok()?).ok()?;
                Some((id, Arc::new(image)))
            })
            .collect())
    }

    fn heads(&self) -> Result<BTreeMap<ImageId, Summary>> {
        let mut parents = BTreeSet::new();
        self.backend
            .scan_records(CHILDREN_BUCKET, "", &mut |key, _| {
                if let Some((parent, _)) = parse_child_key(key) {
                    parents.insert(parent);
                }
                Ok(())
            })?;
        Ok(self
            .summaries()?
            .into_iter()
            .filter(|(id, _)| !parents.contains(id))
            .collect())
    }

    fn len(&self) -> Result<usize> {
        let mut count = 0;
        self.backend.scan_records(IMAGES_BUCKET, "", &mut |_, _| {
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    fn is_empty(&self) -> Result<bool> {
        Ok(self.backend.first_records(IMAGES_BUCKET, "", 1)?.is_empty())
    }
}
