//! `RefCache`: reference -> image ID over an [`ImageIndex`].

use std::collections::HashMap;
use std::sync::Arc;

use imgstore_backend::StateLock;
use imgstore_image::ImageId;

use crate::{CriError, CriImage, ImageIndex};

/// Says what image a reference names now; the facade implements it over its
/// names (refs) and images.
pub trait ImageResolver: Send + Sync {
    /// The image `reference` names, with `references` = `[reference]` and
    /// `pinned` set when that reference is pinned; `None` when it names none.
    fn resolve(&self, reference: &str) -> Result<Option<CriImage>, CriError>;

    /// [`resolve`](Self::resolve) for many references at once, in order.
    /// Resolvers override it to read what they need in one pass (the
    /// rebuild of a cache of 10k names depends on it); the default asks
    /// `resolve` for each.
    fn resolve_many(&self, references: &[&str]) -> Result<Vec<Option<CriImage>>, CriError> {
        references.iter().map(|r| self.resolve(r)).collect()
    }
}

#[derive(Default)]
struct Inner {
    refs: HashMap<String, ImageId>,
    index: ImageIndex,
}

/// The CRI cache (see the crate docs). `Send + Sync`.
#[derive(Default)]
pub struct RefCache {
    inner: StateLock<Inner>,
}

impl RefCache {
    /// An empty cache.
    pub fn new() -> RefCache {
        RefCache::default()
    }

    /// A cache holding what `resolver` says each of `references` names,
    /// asked in one [`ImageResolver::resolve_many`].
    pub fn rebuild<S: AsRef<str>>(
        resolver: &dyn ImageResolver,
        references: impl IntoIterator<Item = S>,
    ) -> Result<RefCache, CriError> {
        let references: Vec<S> = references.into_iter().collect();
        let references: Vec<&str> = references.iter().map(AsRef::as_ref).collect();
        let images = resolver.resolve_many(&references)?;
        RefCache::from_resolved(&references, images)
    }

    /// A cache holding `images[i]` for `references[i]` (what a resolver
    /// said they name), applied in order with [`update_with`](Self::update_with).
    pub fn from_resolved(
        references: &[&str],
        images: Vec<Option<CriImage>>,
    ) -> Result<RefCache, CriError> {
        let cache = RefCache::new();
        for (reference, image) in references.iter().zip(images) {
            cache.update_with(reference, image)?;
        }
        Ok(cache)
    }

    /// Replaces everything this cache holds with what `fresh` holds (a
    /// cache [`rebuild`](Self::rebuild) made), in one step for readers.
    pub fn replace(&self, fresh: RefCache) {
        *self.inner.write() = fresh.inner.into_inner();
    }

    /// Re-resolves `reference` through `resolver` (without holding any lock)
    /// and applies the answer with [`update_with`](Self::update_with).
    pub fn update(&self, resolver: &dyn ImageResolver, reference: &str) -> Result<(), CriError> {
        let image = resolver.resolve(reference)?;
        self.update_with(reference, image)
    }

    /// [`update`](Self::update) for many references: asked of the resolver
    /// in one [`ImageResolver::resolve_many`] (an import naming one image
    /// 10k times reads its manifest in one pass), then applied in order.
    pub fn update_many(
        &self,
        resolver: &dyn ImageResolver,
        references: &[&str],
    ) -> Result<(), CriError> {
        let images = resolver.resolve_many(references)?;
        for (reference, image) in references.iter().zip(images) {
            self.update_with(reference, image)?;
        }
        Ok(())
    }

    /// containerd's `update(ref, image)`: `None` drops the reference (and the
    /// image with its last reference); the same image reconciles the pinned
    /// state and the size the reference reaches; another image moves the
    /// reference to it.
    pub fn update_with(&self, reference: &str, image: Option<CriImage>) -> Result<(), CriError> {
        let mut inner = self.inner.write();
        let old = inner.refs.get(reference).cloned();
        let Some(image) = image else {
            if let Some(old) = old {
                inner.index.delete(old.as_str(), reference)?;
                inner.refs.remove(reference);
            }
            return Ok(());
        };
        let Some(id) = image.id.clone() else {
            return Err(CriError::NotFound {
                what: format!("image ID for {reference:?}"),
            });
        };
        if let Some(old) = old {
            if old == id {
                // The name may have moved to another manifest of the same
                // config: its content size follows (containerd keeps the
                // old one until a restart).
                inner.index.resize(&id, reference, image.size);
                return match (inner.index.is_pinned(&id, reference), image.pinned) {
                    (false, true) => inner.index.pin(&id, reference),
                    (true, false) => inner.index.unpin(&id, reference),
                    _ => Ok(()),
                };
            }
            inner.index.delete(old.as_str(), reference)?;
        }
        inner.refs.insert(reference.to_owned(), id);
        inner.index.add(image)
    }

    /// The image ID a reference names: an exact string match, no normalising.
    pub fn resolve(&self, reference: &str) -> Result<ImageId, CriError> {
        self.inner
            .read()
            .refs
            .get(reference)
            .cloned()
            .ok_or_else(|| CriError::NotFound {
                what: format!("reference {reference:?}"),
            })
    }

    /// The image with this full ID or unique prefix.
    pub fn get(&self, id_or_prefix: &str) -> Result<Arc<CriImage>, CriError> {
        self.inner.read().index.get(id_or_prefix)
    }

    /// The image with exactly this ID, without a prefix search: what a
    /// caller walking every image asks.
    pub fn get_by_id(&self, id: &ImageId) -> Option<Arc<CriImage>> {
        self.inner.read().index.get_by_id(id)
    }

    /// Every reference the cache holds with the image ID it names, sorted
    /// by reference (what `fsck` compares with a fresh rebuild).
    pub fn references(&self) -> Vec<(String, ImageId)> {
        let mut all: Vec<(String, ImageId)> = self
            .inner
            .read()
            .refs
            .iter()
            .map(|(reference, id)| (reference.clone(), id.clone()))
            .collect();
        all.sort();
        all
    }

    /// How many references name the image with exactly this ID (0 when
    /// none), without building its reference list.
    pub fn reference_count(&self, id: &ImageId) -> usize {
        self.inner.read().index.reference_count(id)
    }

    /// Every image, in no particular order.
    pub fn list(&self) -> Vec<Arc<CriImage>> {
        self.inner.read().index.list()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.inner.read().index.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
