//! The namespace rule (DESIGN.md, "Namespaces"): names live in a namespace,
//! images are shared underneath, and an image is in use while any name in
//! any namespace reaches it.
//!
//! A [`Store`] works in one namespace. The name index (`name_index.rs`)
//! says, for each image, which names of which namespaces reach it and
//! which of them mean it. From it:
//!
//! - an image is *visible* in the namespace when one of its names reaches
//!   it, or no name of any namespace does (dangling): `images`, the
//!   short-ID lookups (`inspect`, `history`, `tag`, `pin`) see
//!   only those, as `ctr -n other images ls` sees only its own;
//! - an image another namespace's names reach is never deleted from this
//!   one: `remove` by name drops the name only, `remove` by ID is refused
//!   ([`Error::InUseInOtherNamespaces`], naming them), `prune` skips it.

use imgstore_backend::ErrorKind;
use imgstore_image::{ImageError, ImageId, ImageStore};

use crate::{Error, Result, Store};

/// The 12-character short form of an image ID, as Docker prints it.
pub(crate) fn short_id(id: &ImageId) -> String {
    id.digest().encoded().chars().take(12).collect()
}

impl Store {
    /// Refuses to delete an image other namespaces' names reach.
    pub(crate) fn check_not_in_use_elsewhere(&self, id: &ImageId) -> Result<()> {
        let namespaces = self.namespaces_elsewhere(id)?;
        if namespaces.is_empty() {
            return Ok(());
        }
        Err(Error::InUseInOtherNamespaces {
            short_id: short_id(id),
            namespaces,
        })
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
            Ok(id) if self.is_visible(&id)? => Ok(id),
            Ok(_) => Err(not_found()),
            Err(e) if is_ambiguous(&e) => {
                // Rare: scan for the visible images with this prefix.
                let mut matches: Vec<ImageId> = Vec::new();
                for (id, _) in self.images.summaries()? {
                    if has_prefix(&id, term) && self.is_visible(&id)? {
                        matches.push(id);
                    }
                }
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
