//! `ImageIndex`: images by ID, their references and pinned references.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use imgstore_digest::BuildDigestHasher;
use imgstore_digestset::{DigestSet, LookupError};
use imgstore_image::{Image, ImageId};

use crate::CriError;

/// One image as the CRI sees it.
#[derive(Debug, Clone, Default)]
pub struct CriImage {
    /// The image ID (config digest).
    pub id: Option<ImageId>,
    /// Every reference naming it, most informative first (see
    /// `imgstore_refs::reference::sort_references`), without duplicates.
    pub references: Vec<String>,
    /// Chain ID of the top layer (containerd keeps it as a string).
    pub chain_id: String,
    /// Size of the image's content in bytes.
    pub size: u64,
    /// The image config, when known.
    pub spec: Option<Arc<Image>>,
    /// True while any of its references is pinned.
    pub pinned: bool,
}

impl CriImage {
    /// An unpinned image named by one reference.
    pub fn new(id: ImageId, reference: &str) -> CriImage {
        CriImage {
            id: Some(id),
            references: vec![reference.to_owned()],
            ..CriImage::default()
        }
    }
}

/// Images by ID with their references; containerd's inner CRI store.
/// Not synchronised itself: [`RefCache`](crate::RefCache) wraps it.
#[derive(Default)]
pub struct ImageIndex {
    images: HashMap<ImageId, Arc<CriImage>, BuildDigestHasher>,
    ids: DigestSet,
    pinned: HashMap<ImageId, BTreeSet<String>>,
    /// The content size each reference of an image was added with: two
    /// names may reach one config through different manifests (a
    /// `docker save` manifest with plain layers, an OCI one with gzip
    /// layers), and the image's size is the one of its first reference, so
    /// it does not depend on the order of updates (containerd keeps the
    /// last one added, which a restart changes).
    sizes: HashMap<ImageId, HashMap<String, u64>>,
}

fn not_found(what: &str) -> CriError {
    CriError::NotFound {
        what: what.to_owned(),
    }
}

impl ImageIndex {
    /// An empty index.
    pub fn new() -> ImageIndex {
        ImageIndex::default()
    }

    /// Adds an image, or merges it into the one with the same ID: references
    /// are united, deduplicated and ranked; pinned if either side is; the
    /// added image's references become pinned when it is pinned.
    pub fn add(&mut self, image: CriImage) -> Result<(), CriError> {
        let Some(id) = image.id.clone() else {
            return Err(not_found("image without an ID"));
        };
        if image.pinned {
            self.pinned
                .entry(id.clone())
                .or_default()
                .extend(image.references.iter().cloned());
        }
        let sizes = self.sizes.entry(id.clone()).or_default();
        for reference in &image.references {
            sizes.insert(reference.clone(), image.size);
        }
        let mut merged = match self.images.get(&id) {
            None => {
                self.ids.add(id.digest());
                CriImage {
                    references: imgstore_refs::reference::sort_references(dedup(
                        image.references.iter(),
                    )),
                    ..image
                }
            }
            Some(old) => CriImage {
                references: imgstore_refs::reference::sort_references(dedup(
                    old.references.iter().chain(&image.references),
                )),
                pinned: old.pinned || image.pinned,
                spec: image.spec.or_else(|| old.spec.clone()),
                ..image
            },
        };
        merged.size = self.size_of(&id, &merged.references, merged.size);
        self.images.insert(id, Arc::new(merged));
        Ok(())
    }

    /// Records `size` as what `reference` of the image reaches (it may have
    /// moved to another manifest of the same config) and recomputes the
    /// image's size. Nothing happens for an image or reference not held.
    pub fn resize(&mut self, id: &ImageId, reference: &str, size: u64) {
        let Some(image) = self.images.get(id) else {
            return;
        };
        if !image.references.iter().any(|r| r == reference) {
            return;
        }
        self.sizes
            .entry(id.clone())
            .or_default()
            .insert(reference.to_owned(), size);
        let size = self.size_of(id, &image.references, image.size);
        if size != image.size {
            let updated = CriImage {
                size,
                ..(**image).clone()
            };
            self.images.insert(id.clone(), Arc::new(updated));
        }
    }

    /// The size recorded for the first of `references` that has one;
    /// `fallback` when none has.
    fn size_of(&self, id: &ImageId, references: &[String], fallback: u64) -> u64 {
        let Some(sizes) = self.sizes.get(id) else {
            return fallback;
        };
        references
            .iter()
            .find_map(|reference| sizes.get(reference).copied())
            .unwrap_or(fallback)
    }

    /// The image with this full ID or unique ID prefix (bare hex or
    /// `sha256:` + hex). NotFound, or Ambiguous passed through.
    pub fn get(&self, id_or_prefix: &str) -> Result<Arc<CriImage>, CriError> {
        let id = self.lookup(id_or_prefix)?;
        self.images
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id_or_prefix))
    }

    /// The image with exactly this ID.
    pub fn get_by_id(&self, id: &ImageId) -> Option<Arc<CriImage>> {
        self.images.get(id).cloned()
    }

    fn lookup(&self, id_or_prefix: &str) -> Result<ImageId, CriError> {
        match self.ids.lookup(id_or_prefix) {
            Ok(digest) => Ok(ImageId::from(digest)),
            Err(LookupError::Ambiguous { .. }) => Err(CriError::Ambiguous {
                prefix: id_or_prefix.to_owned(),
            }),
            Err(_) => Err(not_found(id_or_prefix)),
        }
    }

    /// Every image, in no particular order.
    pub fn list(&self) -> Vec<Arc<CriImage>> {
        self.images.values().cloned().collect()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Removes `reference` (compared without regard to case, or in its
    /// normalised form) from the image
    /// and from its pinned references; the image goes with its last reference.
    pub fn delete(&mut self, id_or_prefix: &str, reference: &str) -> Result<(), CriError> {
        let id = self.lookup(id_or_prefix)?;
        let Some(image) = self.images.get(&id) else {
            return Err(not_found(id_or_prefix));
        };
        let normalized = normalized(reference);
        let names = |stored: &String| {
            stored.eq_ignore_ascii_case(reference) || normalized.as_ref() == Some(stored)
        };
        let references: Vec<String> = image
            .references
            .iter()
            .filter(|r| !names(r))
            .cloned()
            .collect();
        if let Some(pinned) = self.pinned.get_mut(&id) {
            pinned.retain(|r| !names(r));
        }
        if let Some(sizes) = self.sizes.get_mut(&id) {
            sizes.retain(|r, _| !names(r));
        }
        if references.is_empty() {
            self.images.remove(&id);
            self.pinned.remove(&id);
            self.sizes.remove(&id);
            self.ids.remove(id.digest());
            return Ok(());
        }
        let pinned = self.pinned.get(&id).is_some_and(|p| !p.is_empty());
        let size = self.size_of(&id, &references, image.size);
        let updated = CriImage {
            references,
            pinned,
            size,
            ..(**image).clone()
        };
        self.images.insert(id, Arc::new(updated));
        Ok(())
    }

    /// Pins `reference` of the image; the image is then pinned.
    pub fn pin(&mut self, id: &ImageId, reference: &str) -> Result<(), CriError> {
        let Some(image) = self.images.get(id) else {
            return Err(not_found(id.as_str()));
        };
        self.pinned
            .entry(id.clone())
            .or_default()
            .insert(reference.to_owned());
        if !image.pinned {
            let updated = CriImage {
                pinned: true,
                ..(**image).clone()
            };
            self.images.insert(id.clone(), Arc::new(updated));
        }
        Ok(())
    }

    /// Unpins `reference`; the image stays pinned while another reference is.
    pub fn unpin(&mut self, id: &ImageId, reference: &str) -> Result<(), CriError> {
        let Some(image) = self.images.get(id) else {
            return Err(not_found(id.as_str()));
        };
        let still = match self.pinned.get_mut(id) {
            Some(pinned) => {
                pinned.remove(reference);
                !pinned.is_empty()
            }
            None => false,
        };
        if image.pinned != still {
            let updated = CriImage {
                pinned: still,
                ..(**image).clone()
            };
            self.images.insert(id.clone(), Arc::new(updated));
        }
        Ok(())
    }

    /// Whether `reference` of the image is pinned.
    pub fn is_pinned(&self, id: &ImageId, reference: &str) -> bool {
        self.pinned.get(id).is_some_and(|p| p.contains(reference))
    }
}

/// The form `sort_references` stores a reference in (`busybox` ->
/// `docker.io/library/busybox`), so a reference given short still matches.
fn normalized(reference: &str) -> Option<String> {
    imgstore_refs::reference::AnyReference::parse(reference)
        .ok()
        .map(|r| r.to_string())
}

/// Unique strings, first occurrence kept.
fn dedup<'a>(references: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut seen = BTreeSet::new();
    references.filter(|r| seen.insert(r.as_str())).collect()
}
