//! The namespace rule (DESIGN.md, "Namespaces"): names live in a namespace,
//! images are shared underneath, and an image is in use while any name in
//! any namespace reaches it.
//!
//! A [`Store`] works in one namespace; its CRI cache holds that namespace's
//! names. What the names of the other namespaces reach is kept beside it
//! ([`Elsewhere`]), computed when the store loads (and reloads, so another
//! process's changes arrive with the generation, as everything else), since
//! a store changes only its own namespace's names. From the two:
//!
//! - an image is *visible* in the namespace when one of its names reaches
//!   it, or no name of any namespace does (dangling): `images`, the
//!   catalog, short-ID lookups (`inspect`, `history`, `tag`, `pin`) see
//!   only those, as `ctr -n other images ls` sees only its own;
//! - an image another namespace's names reach is never deleted from this
//!   one: `remove` by name drops the name only, `remove` by ID is refused
//!   ([`Error::InUseInOtherNamespaces`], naming them), `prune` skips it.

use std::collections::{BTreeSet, HashMap};

use imgstore_backend::{ErrorKind, StoreBackend};
use imgstore_digest::Digest;
use imgstore_image::{ImageError, ImageId, ImageStore};
use imgstore_refs::RefStore;
use serde_json::Value;

use crate::manage::{MAX_INDEX_DEPTH, MAX_JSON_BLOB, config_digest, descriptor_digests};
use crate::{AnyBackend, Error, Result, Store};

/// For each image the names of other namespaces reach, those namespaces
/// (sorted). A name reaches every image of every manifest its target leads
/// to, through indexes whatever the platform, as `gc` marks them.
pub(crate) type Elsewhere = HashMap<ImageId, BTreeSet<String>>;

/// What the names of every namespace but `namespace` reach. Each target is
/// followed once however many names share it. A target that is missing or
/// corrupt reaches nothing (`fsck` reports such names).
pub(crate) fn reached_elsewhere(
    refs: &RefStore<AnyBackend>,
    content: &AnyBackend,
    namespace: &str,
) -> Result<Elsewhere> {
    let mut elsewhere = Elsewhere::new();
    let mut memo: HashMap<Digest, Vec<ImageId>> = HashMap::new();
    for other in refs.namespaces() {
        if other == namespace {
            continue;
        }
        for record in refs.list(&other, &[])? {
            let digest = &record.target.digest;
            if !memo.contains_key(digest) {
                let mut reached = Vec::new();
                reach(content, digest, 0, &mut reached)?;
                memo.insert(digest.clone(), reached);
            }
            for id in memo.get(digest).into_iter().flatten() {
                elsewhere
                    .entry(id.clone())
                    .or_default()
                    .insert(other.clone());
            }
        }
    }
    Ok(elsewhere)
}

/// The images (config digests) a manifest or index leads to.
fn reach(
    content: &AnyBackend,
    digest: &Digest,
    depth: usize,
    out: &mut Vec<ImageId>,
) -> Result<()> {
    if depth > MAX_INDEX_DEPTH {
        return Ok(());
    }
    let bytes = match content.size(digest) {
        Ok(size) if size <= MAX_JSON_BLOB => content.get(digest),
        Ok(_) => return Ok(()),
        Err(e) => Err(e),
    };
    let json: Value = match bytes {
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(json) => json,
            Err(_) => return Ok(()),
        },
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DataCorruption) => {
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(config) = config_digest(&json) {
        out.push(ImageId::from(config));
    }
    for child in descriptor_digests(&json, "manifests") {
        reach(content, &child, depth + 1, out)?;
    }
    Ok(())
}

/// The 12-character short form of an image ID, as Docker prints it.
pub(crate) fn short_id(id: &ImageId) -> String {
    id.digest().encoded().chars().take(12).collect()
}

impl Store {
    /// The other namespaces whose names reach the image, sorted; empty when
    /// none does.
    pub(crate) fn namespaces_elsewhere(&self, id: &ImageId) -> Vec<String> {
        self.elsewhere
            .read()
            .get(id)
            .map(|namespaces| namespaces.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether the namespace sees the image: one of its names reaches it,
    /// or no name of any namespace does.
    pub(crate) fn is_visible(&self, id: &ImageId) -> bool {
        self.cache.reference_count(id) > 0 || !self.elsewhere.read().contains_key(id)
    }

    /// Refuses to delete an image other namespaces' names reach.
    pub(crate) fn check_not_in_use_elsewhere(&self, id: &ImageId) -> Result<()> {
        let namespaces = self.namespaces_elsewhere(id);
        if namespaces.is_empty() {
            return Ok(());
        }
        Err(Error::InUseInOtherNamespaces {
            short_id: short_id(id),
            namespaces,
        })
    }

    /// Recomputes what the other namespaces' names reach.
    pub(crate) fn reload_elsewhere(&self) -> Result<()> {
        let elsewhere = reached_elsewhere(&self.refs, &self.content, &self.namespace)?;
        *self.elsewhere.write() = elsewhere;
        Ok(())
    }

    /// The image a full ID or unique ID prefix means among the images
    /// visible in the namespace (see [`is_visible`](Self::is_visible)): an
    /// image only other namespaces name is `NotFound` here, and a prefix
    /// ambiguous only because of such images is not ambiguous.
    pub(crate) fn search_visible(&self, term: &str) -> Result<ImageId> {
        let not_found = || -> Error {
            ImageError::NotFound {
                term: term.to_owned(),
            }
            .into()
        };
        match self.images.search(term) {
            Ok(id) if self.is_visible(&id) => Ok(id),
            Ok(_) => Err(not_found()),
            Err(e) if is_ambiguous(&e) => {
                // Rare: scan for the visible images with this prefix.
                let matches: Vec<ImageId> = self
                    .images
                    .summaries()?
                    .into_iter()
                    .map(|(id, _)| id)
                    .filter(|id| has_prefix(id, term) && self.is_visible(id))
                    .collect();
                match <[ImageId; 1]>::try_from(matches) {
                    Ok([id]) => Ok(id),
                    Err(matches) if matches.is_empty() => Err(not_found()),
                    Err(_) => Err(e.into()),
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                Err(not_found())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The image `term` (a full ID or unique prefix) means for `remove`:
    /// a visible image, or one only other namespaces name, which is
    /// refused naming them rather than reported missing (it exists, and is
    /// in use there).
    pub(crate) fn search_for_removal(&self, term: &str) -> Result<ImageId> {
        if let Ok(id) = self.images.search(term) {
            self.check_not_in_use_elsewhere(&id)?;
        }
        self.search_visible(term)
    }
}

fn is_ambiguous(e: &ImageError) -> bool {
    matches!(e, ImageError::Ambiguous { .. })
}

/// Whether `term` is a prefix of the ID, bare hex or `algorithm:` + hex.
fn has_prefix(id: &ImageId, term: &str) -> bool {
    if term.contains(':') {
        id.as_str().starts_with(term)
    } else {
        id.digest().encoded().starts_with(term)
    }
}
