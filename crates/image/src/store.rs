//! `Store`: moby's image store over a backend and a layer store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use imgstore_backend::{ErrorKind, StateLock, StoreBackend};
use imgstore_digestset::{DigestSet, LookupError};
use imgstore_layer::{LayerGetReleaser, LayerMetadata};

use crate::time::{format_rfc3339_nanos, parse_rfc3339};
use crate::{Image, ImageError, ImageId};

type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Metadata keys, exactly as moby names them.
const PARENT: &str = "parent";
const LAST_UPDATED: &str = "lastUpdated";
const BUILT_LOCALLY: &str = "builtLocally";

/// moby's image `Store` surface. Implemented by [`Store`].
pub trait ImageStore: Send + Sync {
    /// Stores a config and returns its ID (sha256 of the exact bytes). Takes
    /// the image's reference on its top layer exactly once; creating an
    /// existing image returns its ID and changes nothing. A failed create
    /// leaves no trace.
    fn create(&self, config: &[u8]) -> Result<ImageId>;
    /// The image, from memory.
    fn get(&self, id: &ImageId) -> Result<Arc<Image>>;
    /// Deletes the image: unlinks its children (they lose `parent`), leaves
    /// its parent's children, removes it from the short-ID index and the
    /// backend, and releases its layer; returns the layers that freed. Once
    /// the config is deleted the delete has happened: a release that fails
    /// then leaves the layers unreferenced, for gc, and is not reported.
    fn delete(&self, id: &ImageId) -> Result<Vec<LayerMetadata>>;
    /// Finds an image by full ID, `sha256:` + prefix, or hex prefix.
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
    /// The images whose parent is `id`, sorted.
    fn children(&self, id: &ImageId) -> Vec<ImageId>;
    /// Every image.
    fn map(&self) -> BTreeMap<ImageId, Arc<Image>>;
    /// The images without children (leaves of the parent graph).
    fn heads(&self) -> BTreeMap<ImageId, Arc<Image>>;
    /// Number of images.
    fn len(&self) -> usize;
    /// True when there are no images.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A config that [`Store::open`] did not load, and why. It stays stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedImage {
    /// The content digest walked.
    pub id: ImageId,
    /// Why it was skipped (corrupt, unparsable, foreign OS, missing layer).
    pub reason: String,
}

/// A `parent` link stored on disk that [`Store::open`] did not follow
/// because it closes a cycle (`a -> b -> a`, or `a -> a`, as a moby imagedb
/// can hold). Both images stay loaded and nothing is deleted; the child
/// reads as having no parent until [`ImageStore::set_parent`] gives it one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredParent {
    /// The image whose stored `parent` was not followed.
    pub id: ImageId,
    /// The parent it names.
    pub parent: ImageId,
}

/// Images by the raw 32 bytes of their sha256 ID: the key costs 32 bytes
/// instead of a second copy of the 88-byte `ImageId` each image already has.
#[derive(Default)]
struct ImageMap(HashMap<[u8; 32], Arc<Image>>);

/// The map key of an ID; `None` for a non-sha256 digest, which no image has.
fn key(id: &ImageId) -> Option<[u8; 32]> {
    id.digest().hash_bytes().as_ref().try_into().ok()
}

impl ImageMap {
    fn insert(&mut self, image: Arc<Image>) {
        if let Some(key) = key(image.id()) {
            self.0.insert(key, image);
        }
    }
    fn get(&self, id: &ImageId) -> Option<&Arc<Image>> {
        self.0.get(&key(id)?)
    }
    fn contains(&self, id: &ImageId) -> bool {
        self.get(id).is_some()
    }
    fn remove(&mut self, id: &ImageId) {
        if let Some(key) = key(id) {
            self.0.remove(&key);
        }
    }
    fn iter(&self) -> impl Iterator<Item = &Arc<Image>> {
        self.0.values()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

#[derive(Default)]
struct State {
    images: ImageMap,
    ids: DigestSet,
    children: HashMap<ImageId, BTreeSet<ImageId>>,
    parents: HashMap<ImageId, ImageId>,
}

impl State {
    fn insert(&mut self, image: Arc<Image>) {
        self.ids.add(image.id().digest());
        self.images.insert(image);
    }

    /// True when making `parent` the parent of `id` closes a cycle: `id` is
    /// `parent` or one of its ancestors. The walk is bounded by the number
    /// of links, so even a cycle already in memory cannot make it loop; a
    /// walk that runs out is taken as a cycle.
    fn would_close_cycle(&self, id: &ImageId, parent: &ImageId) -> bool {
        let mut current = parent;
        for _ in 0..=self.parents.len() {
            if current == id {
                return true;
            }
            match self.parents.get(current) {
                Some(next) => current = next,
                None => return false,
            }
        }
        true
    }

    fn link(&mut self, child: &ImageId, parent: &ImageId) {
        if let Some(old) = self.parents.insert(child.clone(), parent.clone())
            && let Some(siblings) = self.children.get_mut(&old)
        {
            siblings.remove(child);
        }
        self.children
            .entry(parent.clone())
            .or_default()
            .insert(child.clone());
    }
}

/// The image store (see the crate docs). `B` keeps configs and per-image
/// metadata; `L` keeps the layers the images reference.
pub struct Store<B, L> {
    backend: Arc<B>,
    layers: Arc<L>,
    state: StateLock<State>,
    /// Serialises changes so a check and the write it guards see one state;
    /// readers never take it.
    writer: Mutex<()>,
    skipped: StateLock<Vec<SkippedImage>>,
    ignored_parents: StateLock<Vec<IgnoredParent>>,
}

/// What restore found for one walked digest.
type LoadOutcome = std::result::Result<(Image, Option<ImageId>), String>;

fn os_supported(image: &Image) -> bool {
    image.runs_on_host_os()
}

impl<B: StoreBackend, L: LayerGetReleaser> Store<B, L> {
    /// Opens the store and restores it from `backend` (see the crate docs).
    /// Configs are read, verified and parsed on several threads; only a
    /// failure of the layer store other than a missing layer, or a failing
    /// walk, makes opening fail.
    pub fn open(backend: Arc<B>, layers: Arc<L>) -> Result<Store<B, L>> {
        let mut digests = Vec::new();
        backend.walk(&mut |digest| {
            digests.push(ImageId::from(digest.clone()));
            Ok(())
        })?;
        let loaded = Self::load_all(&backend, &digests)?;
        let mut state = State::default();
        let mut skipped = Vec::new();
        let mut parents = Vec::new();
        for (id, outcome) in digests.into_iter().zip(loaded) {
            let (image, parent) = match outcome {
                Ok(found) => found,
                Err(reason) => {
                    skipped.push(SkippedImage { id, reason });
                    continue;
                }
            };
            if let Some(top) = image.top_chain_id() {
                match layers.get(top) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        skipped.push(SkippedImage {
                            id,
                            reason: format!("layer {top} does not exist"),
                        });
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if let Some(parent) = parent {
                parents.push((id, parent));
            }
            state.insert(Arc::new(image));
        }
        // In ID order, so which link of a cycle is ignored does not depend
        // on the order the backend walks.
        parents.sort();
        let mut ignored_parents = Vec::new();
        for (child, parent) in parents {
            // A parent that is not loaded is ignored, as in moby.
            if !state.images.contains(&parent) {
                continue;
            }
            if state.would_close_cycle(&child, &parent) {
                ignored_parents.push(IgnoredParent { id: child, parent });
            } else {
                state.link(&child, &parent);
            }
        }
        Ok(Store {
            backend,
            layers,
            state: StateLock::new(state),
            writer: Mutex::new(()),
            skipped: StateLock::new(skipped),
            ignored_parents: StateLock::new(ignored_parents),
        })
    }

    /// Re-reads every config, picking up what other processes changed, and
    /// replaces the in-memory state; each image re-takes its layer
    /// reference, so reload the layer store first
    /// ([`LayerStore::reload`](imgstore_layer::LayerStore::reload)), as on
    /// open.
    pub fn reload(&self) -> Result<()> {
        let fresh = Self::open(Arc::clone(&self.backend), Arc::clone(&self.layers))?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        *self.state.write() = fresh.state.into_inner();
        *self.skipped.write() = fresh.skipped.into_inner();
        *self.ignored_parents.write() = fresh.ignored_parents.into_inner();
        Ok(())
    }

    /// Reads, verifies and parses every config and its `parent`, split over
    /// the available cores, each part read with one `get_many` and one
    /// `get_metadata_many`. Per image: `Ok((image, parent))` or the reason to
    /// skip it.
    fn load_all(backend: &B, ids: &[ImageId]) -> Result<Vec<LoadOutcome>> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let chunk = ids.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = ids
                .chunks(chunk)
                .map(|part| scope.spawn(move || Self::load_part(backend, part)))
                .collect();
            let mut all = Vec::with_capacity(ids.len());
            for worker in workers {
                let part = worker.join().map_err(|_| ImageError::InvalidConfig {
                    reason: "a restore thread panicked".into(),
                })?;
                all.extend(part);
            }
            Ok(all)
        })
    }

    fn load_part(backend: &B, ids: &[ImageId]) -> Vec<LoadOutcome> {
        let digests: Vec<_> = ids.iter().map(|id| id.digest().clone()).collect();
        let configs = backend.get_many(&digests);
        let parents = backend.get_metadata_many(&digests, PARENT);
        configs
            .into_iter()
            .zip(parents)
            .map(|(raw, parent)| Self::load_one(raw, parent))
            .collect()
    }

    fn load_one(
        raw: imgstore_backend::Result<Vec<u8>>,
        parent: imgstore_backend::Result<Vec<u8>>,
    ) -> LoadOutcome {
        let raw = raw.map_err(|e| format!("failed to read config: {e}"))?;
        let image = Image::from_config(&raw).map_err(|e| e.to_string())?;
        if !os_supported(&image) {
            return Err(format!("unsupported operating system {:?}", image.os()));
        }
        let parent = match parent {
            Ok(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse::<ImageId>().ok()),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(format!("failed to read parent: {e}")),
        };
        Ok((image, parent))
    }

    /// Configs that the last [`open`](Self::open) or
    /// [`reload`](Self::reload) skipped.
    pub fn skipped(&self) -> Vec<SkippedImage> {
        self.skipped.read().clone()
    }

    /// Stored `parent` links that the last [`open`](Self::open) or
    /// [`reload`](Self::reload) did not follow because they close a cycle.
    pub fn ignored_parents(&self) -> Vec<IgnoredParent> {
        self.ignored_parents.read().clone()
    }

    /// The backend holding configs and metadata.
    pub fn backend(&self) -> &Arc<B> {
        &self.backend
    }

    /// The layer store.
    pub fn layers(&self) -> &Arc<L> {
        &self.layers
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn require(&self, id: &ImageId) -> Result<()> {
        if self.state.read().images.contains(id) {
            Ok(())
        } else {
            Err(ImageError::NotFound {
                term: id.to_string(),
            })
        }
    }
}

impl<B: StoreBackend, L: LayerGetReleaser> ImageStore for Store<B, L> {
    fn create(&self, config: &[u8]) -> Result<ImageId> {
        let image = Image::from_config(config)?;
        if !os_supported(&image) {
            return Err(ImageError::UnsupportedOs {
                os: image.os().to_owned(),
            });
        }
        let id = image.id().clone();
        let _writer = self.lock_writer();
        if self.state.read().images.contains(&id) {
            return Ok(id);
        }
        // Take the layer first: if it is missing, nothing has been written.
        let top = image.top_chain_id().cloned();
        if let Some(top) = &top {
            self.layers.get(top)?;
        }
        let stored_before = matches!(self.backend.contains(id.digest()), Ok(true));
        if let Err(e) = self.backend.set(config) {
            // A backend can fail after the bytes went in (an fsync after the
            // rename): take them out again, so a failed create leaves no trace.
            if !stored_before && matches!(self.backend.contains(id.digest()), Ok(true)) {
                let _ = self.backend.delete(id.digest());
            }
            if let Some(top) = &top {
                // Undo the reference; if that fails too, restore repairs it.
                let _ = self.layers.release(top);
            }
            return Err(e.into());
        }
        self.state.write().insert(Arc::new(image));
        Ok(id)
    }

    fn get(&self, id: &ImageId) -> Result<Arc<Image>> {
        self.state
            .read()
            .images
            .get(id)
            .cloned()
            .ok_or_else(|| ImageError::NotFound {
                term: id.to_string(),
            })
    }

    fn delete(&self, id: &ImageId) -> Result<Vec<LayerMetadata>> {
        let _writer = self.lock_writer();
        let (image, children) = {
            let state = self.state.read();
            let image = state
                .images
                .get(id)
                .cloned()
                .ok_or_else(|| ImageError::NotFound {
                    term: id.to_string(),
                })?;
            (image, state.children.get(id).cloned().unwrap_or_default())
        };
        let parent = self.state.read().parents.get(id).cloned();
        // A backend can fail after the change is made (an fsync after the
        // unlink): a failed delete puts back what it removed, from memory,
        // so it changes nothing.
        let undo = |unlinked: &[ImageId]| {
            if !matches!(self.backend.contains(id.digest()), Ok(true))
                && self.backend.set(image.raw()).is_ok()
                && let Some(parent) = &parent
            {
                let _ = self
                    .backend
                    .set_metadata(id.digest(), PARENT, parent.as_str().as_bytes());
            }
            for child in unlinked {
                let _ = self
                    .backend
                    .set_metadata(child.digest(), PARENT, id.as_str().as_bytes());
            }
        };
        let children: Vec<ImageId> = children.into_iter().collect();
        for (i, child) in children.iter().enumerate() {
            if let Err(e) = self.backend.delete_metadata(child.digest(), PARENT) {
                undo(&children[..=i]);
                return Err(e.into());
            }
        }
        if let Err(e) = self.backend.delete(id.digest()) {
            undo(&children);
            return Err(e.into());
        }
        {
            let mut state = self.state.write();
            for child in &children {
                state.parents.remove(child);
            }
            state.children.remove(id);
            if let Some(parent) = state.parents.remove(id)
                && let Some(siblings) = state.children.get_mut(&parent)
            {
                siblings.remove(id);
            }
            state.ids.remove(id.digest());
            state.images.remove(id);
        }
        // The image is deleted (its config is gone from the backend): a
        // release that fails now leaves its layers unreferenced, for gc,
        // rather than reporting a delete that happened as failed.
        match image.top_chain_id() {
            Some(top) => Ok(self.layers.release(top).unwrap_or_default()),
            None => Ok(Vec::new()),
        }
    }

    fn search(&self, term: &str) -> Result<ImageId> {
        match self.state.read().ids.lookup(term) {
            Ok(digest) => Ok(ImageId::from(digest)),
            Err(LookupError::Ambiguous { .. }) => Err(ImageError::Ambiguous {
                term: term.to_owned(),
            }),
            Err(_) => Err(ImageError::NotFound {
                term: term.to_owned(),
            }),
        }
    }

    fn set_parent(&self, id: &ImageId, parent: &ImageId) -> Result<()> {
        let _writer = self.lock_writer();
        {
            let state = self.state.read();
            if !state.images.contains(id) {
                return Err(ImageError::NotFound {
                    term: id.to_string(),
                });
            }
            if !state.images.contains(parent) {
                return Err(ImageError::UnknownParent {
                    parent: parent.clone(),
                });
            }
            if state.would_close_cycle(id, parent) {
                return Err(ImageError::ParentCycle {
                    id: id.clone(),
                    parent: parent.clone(),
                });
            }
        }
        self.backend
            .set_metadata(id.digest(), PARENT, parent.as_str().as_bytes())?;
        self.state.write().link(id, parent);
        Ok(())
    }

    fn get_parent(&self, id: &ImageId) -> Result<ImageId> {
        let state = self.state.read();
        if !state.images.contains(id) {
            return Err(ImageError::NotFound {
                term: id.to_string(),
            });
        }
        state
            .parents
            .get(id)
            .cloned()
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

    fn children(&self, id: &ImageId) -> Vec<ImageId> {
        self.state
            .read()
            .children
            .get(id)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn map(&self) -> BTreeMap<ImageId, Arc<Image>> {
        self.state
            .read()
            .images
            .iter()
            .map(|image| (image.id().clone(), image.clone()))
            .collect()
    }

    fn heads(&self) -> BTreeMap<ImageId, Arc<Image>> {
        let state = self.state.read();
        state
            .images
            .iter()
            .filter(|image| {
                state
                    .children
                    .get(image.id())
                    .is_none_or(BTreeSet::is_empty)
            })
            .map(|image| (image.id().clone(), image.clone()))
            .collect()
    }

    fn len(&self) -> usize {
        self.state.read().images.len()
    }
}
