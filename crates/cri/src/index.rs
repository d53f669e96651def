//! `ImageIndex`: images by ID, their references and pinned references.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use imgstore_digest::BuildDigestHasher;
use imgstore_digestset::{DigestSet, LookupError};
use imgstore_image::{Image, ImageId};
use imgstore_refs::reference::{AnyReference, ReferenceRank};

use crate::CriError;

/// One image as the CRI sees it.
#[derive(Debug, Clone, Default)]
pub struct CriImage {
    /// The image ID (config digest).
    pub id: Option<ImageId>,
    /// Every reference naming it, most informative first (containerd's
    /// rank, then the normalised form), as given (not normalised), without
    /// duplicates.
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

/// Where a reference sorts among an image's references: containerd's rank
/// (most informative first), then its normalised form, then the string
/// itself. The string is kept exactly: `app:v1` and `app:V1`, or `busybox`
/// and `docker.io/library/busybox`, are two references (two names of the
/// cache), never merged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RankKey {
    rank: ReferenceRank,
    normalized: String,
    reference: String,
}

impl RankKey {
    fn of(reference: &str) -> RankKey {
        let (rank, normalized) = match AnyReference::parse(reference) {
            Ok(parsed) => (parsed.rank(), parsed.to_string()),
            Err(_) => (ReferenceRank::Unparsable, reference.to_owned()),
        };
        RankKey {
            rank,
            normalized,
            reference: reference.to_owned(),
        }
    }
}

/// Sorts references as an image lists them: most informative first
/// (containerd's rank), then by normalised form, then as given.
pub fn rank_references<T>(references: &mut [T], reference: impl Fn(&T) -> &str) {
    references.sort_by_cached_key(|r| RankKey::of(reference(r)));
}

/// One image of the index. References are kept ranked in a tree, so adding
/// or removing one costs O(log n) however many the image has; the
/// [`CriImage`] readers get is built from them on first read after a
/// change.
struct Entry {
    id: ImageId,
    chain_id: String,
    spec: Option<Arc<Image>>,
    /// Every reference, ranked, with the content size it was added with:
    /// two names may reach one config through manifests of different sizes
    /// (a `docker save` manifest with plain layers, an OCI one with gzip
    /// layers), and the image's size is its first reference's, so it does
    /// not depend on the order of updates (containerd keeps the last one
    /// added, which a restart changes).
    references: BTreeMap<RankKey, u64>,
    /// The pinned references; the image is pinned while any is.
    pinned: BTreeSet<String>,
    /// The image as readers see it, built lazily.
    view: OnceLock<Arc<CriImage>>,
}

impl Entry {
    fn view(&self) -> Arc<CriImage> {
        Arc::clone(self.view.get_or_init(|| {
            Arc::new(CriImage {
                id: Some(self.id.clone()),
                references: self
                    .references
                    .keys()
                    .map(|key| key.reference.clone())
                    .collect(),
                chain_id: self.chain_id.clone(),
                size: self.references.values().next().copied().unwrap_or(0),
                spec: self.spec.clone(),
                pinned: !self.pinned.is_empty(),
            })
        }))
    }

    /// Forgets the built view after a change.
    fn changed(&mut self) {
        self.view = OnceLock::new();
    }
}

/// Images by ID with their references; containerd's inner CRI store.
/// Not synchronised itself: [`RefCache`](crate::RefCache) wraps it.
///
/// Two deliberate differences from containerd: references are kept as
/// given (containerd re-emits them normalised, so `busybox` and
/// `docker.io/library/busybox` collapse into one and removing either drops
/// both), and [`delete`](Self::delete) compares exactly (containerd ignores
/// case, but Docker tags are case-sensitive: `app:v1` and `app:V1` are two
/// names). Otherwise a cache keyed by names would lose a name still stored.
#[derive(Default)]
pub struct ImageIndex {
    images: HashMap<ImageId, Entry, BuildDigestHasher>,
    ids: DigestSet,
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
    /// are united, deduplicated and ranked (each with the added image's
    /// size); pinned if either side is; the added image's references become
    /// pinned when it is pinned. O(log n) per reference added.
    pub fn add(&mut self, image: CriImage) -> Result<(), CriError> {
        let Some(id) = image.id.clone() else {
            return Err(not_found("image without an ID"));
        };
        let entry = match self.images.entry(id.clone()) {
            std::collections::hash_map::Entry::Occupied(occupied) => occupied.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                self.ids.add(id.digest());
                vacant.insert(Entry {
                    id,
                    chain_id: String::new(),
                    spec: None,
                    references: BTreeMap::new(),
                    pinned: BTreeSet::new(),
                    view: OnceLock::new(),
                })
            }
        };
        entry.chain_id = image.chain_id;
        if image.spec.is_some() {
            entry.spec = image.spec;
        }
        for reference in &image.references {
            entry.references.insert(RankKey::of(reference), image.size);
            if image.pinned {
                entry.pinned.insert(reference.clone());
            }
        }
        entry.changed();
        Ok(())
    }

    /// Records `size` as what `reference` of the image reaches (it may have
    /// moved to another manifest of the same config) and recomputes the
    /// image's size. Nothing happens for an image or reference not held.
    pub fn resize(&mut self, id: &ImageId, reference: &str, size: u64) {
        let Some(entry) = self.images.get_mut(id) else {
            return;
        };
        if let Some(recorded) = entry.references.get_mut(&RankKey::of(reference))
            && *recorded != size
        {
            *recorded = size;
            entry.changed();
        }
    }

    /// The image with this full ID or unique ID prefix (bare hex or
    /// `sha256:` + hex). NotFound, or Ambiguous passed through.
    pub fn get(&self, id_or_prefix: &str) -> Result<Arc<CriImage>, CriError> {
        let id = self.lookup(id_or_prefix)?;
        self.images
            .get(&id)
            .map(Entry::view)
            .ok_or_else(|| not_found(id_or_prefix))
    }

    /// The image with exactly this ID.
    pub fn get_by_id(&self, id: &ImageId) -> Option<Arc<CriImage>> {
        self.images.get(id).map(Entry::view)
    }

    /// How many references the image with exactly this ID has (0 when it is
    /// not held), without building its reference list.
    pub fn reference_count(&self, id: &ImageId) -> usize {
        self.images
            .get(id)
            .map_or(0, |entry| entry.references.len())
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
        self.images.values().map(Entry::view).collect()
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// Removes `reference` (exactly that string: see the type's docs) from
    /// the image and from its pinned references; the image goes with its
    /// last reference. O(log n).
    pub fn delete(&mut self, id_or_prefix: &str, reference: &str) -> Result<(), CriError> {
        let id = self.lookup(id_or_prefix)?;
        let Some(entry) = self.images.get_mut(&id) else {
            return Err(not_found(id_or_prefix));
        };
        entry.references.remove(&RankKey::of(reference));
        entry.pinned.remove(reference);
        if entry.references.is_empty() {
            self.images.remove(&id);
            self.ids.remove(id.digest());
        } else {
            entry.changed();
        }
        Ok(())
    }

    /// Pins `reference` of the image; the image is then pinned.
    pub fn pin(&mut self, id: &ImageId, reference: &str) -> Result<(), CriError> {
        let Some(entry) = self.images.get_mut(id) else {
            return Err(not_found(id.as_str()));
        };
        if entry.pinned.insert(reference.to_owned()) {
            entry.changed();
        }
        Ok(())
    }

    /// Unpins `reference`; the image stays pinned while another reference is.
    pub fn unpin(&mut self, id: &ImageId, reference: &str) -> Result<(), CriError> {
        let Some(entry) = self.images.get_mut(id) else {
            return Err(not_found(id.as_str()));
        };
        if entry.pinned.remove(reference) {
            entry.changed();
        }
        Ok(())
    }

    /// Whether `reference` of the image is pinned.
    pub fn is_pinned(&self, id: &ImageId, reference: &str) -> bool {
        self.images
            .get(id)
            .is_some_and(|entry| entry.pinned.contains(reference))
    }
}
