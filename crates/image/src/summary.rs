//! The image store's records: one [`Summary`] per image and one children
//! link per parent/child pair, in the image backend's record store.

use std::collections::BTreeMap;

use imgstore_digest::Algorithm;
use imgstore_layer::ChainId;
use serde::{Deserialize, Serialize};

use crate::{Image, ImageError, ImageId};

/// Bucket of the summaries: key `<64 hex>` (the image ID without
/// `sha256:`), value a [`Summary`] as JSON. An image exists iff its summary
/// does.
pub const IMAGES_BUCKET: &str = "images";

/// Bucket of the children links: key `<parent hex> <child hex>`, empty
/// value. Derived from the children's `parent` metadata.
pub const CHILDREN_BUCKET: &str = "image-children";

/// What a listing (`images`, `df`, `prune`) needs of an image without
/// reading its config: the value of its `images/<hex>` record, as JSON.
///
/// Derived: [`Store::check`](crate::Store::check) recomputes it from the
/// config, the `parent` metadata and the layer records, and
/// [`Store::rebuild_index`](crate::Store::rebuild_index) rewrites it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The parent (moby's `parent` metadata), when it names a stored image.
    pub parent: Option<ImageId>,
    /// The config's `created`, exactly as written; `None` when absent or not
    /// a string.
    pub created: Option<String>,
    /// The chain ID of the top layer; `None` for an image without layers.
    pub top: Option<ChainId>,
    /// Docker's SIZE: over the chain's layers, the sum of each layer's
    /// `files_size` or, when that is unknown, its `size`.
    pub size: u64,
    /// The sum of the layers' stored blob sizes (0 for a layer without a
    /// blob).
    pub blobs_size: u64,
    /// The config's length in bytes.
    pub config_size: u64,
    /// The OS (an empty or absent `os` reads as the host's, as in moby).
    pub os: String,
    /// The architecture; empty when the config has none.
    pub architecture: String,
    /// The architecture variant (`v8`), when the config has one.
    pub variant: Option<String>,
    /// `config.Labels`, empty when none.
    pub labels: BTreeMap<String, String>,
}

/// Sizes summed over a chain of layers, as [`Summary`] keeps them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChainSizes {
    pub(crate) size: u64,
    pub(crate) blobs_size: u64,
}

impl Summary {
    /// The summary of `image` with `parent` and the sizes of its chain.
    pub(crate) fn of(image: &Image, parent: Option<ImageId>, sizes: ChainSizes) -> Summary {
        let labels = image
            .field("config")
            .and_then(|config| config.get("Labels"))
            .and_then(|labels| labels.as_object())
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Summary {
            parent,
            created: image.created().map(str::to_owned),
            top: image.top_chain_id().cloned(),
            size: sizes.size,
            blobs_size: sizes.blobs_size,
            config_size: image.raw().len() as u64,
            os: image.os().to_owned(),
            architecture: image.architecture().unwrap_or_default().to_owned(),
            variant: image
                .field("variant")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            labels,
        }
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>, ImageError> {
        serde_json::to_vec(self).map_err(|e| ImageError::InvalidConfig {
            reason: format!("cannot encode the image summary: {e}"),
        })
    }

    pub(crate) fn decode(key: &str, value: &[u8]) -> Result<Summary, ImageError> {
        serde_json::from_slice(value).map_err(|e| ImageError::CorruptRecord {
            bucket: IMAGES_BUCKET,
            key: key.to_owned(),
            reason: e.to_string(),
        })
    }
}

/// The record key of an image: its 64 hex digits; `None` for an ID that is
/// not sha256 (no image has one).
pub(crate) fn image_key(id: &ImageId) -> Option<&str> {
    (id.digest().algorithm() == Algorithm::Sha256).then(|| id.digest().encoded())
}

/// The image a summary key names; `None` when the key is not 64 hex.
pub(crate) fn id_of_key(key: &str) -> Option<ImageId> {
    if key.len() != 64 {
        return None;
    }
    format!("sha256:{key}").parse().ok()
}

/// The children-link key of `parent` -> `child`.
pub(crate) fn child_key(parent: &ImageId, child: &ImageId) -> String {
    format!("{} {}", parent.digest().encoded(), child.digest().encoded())
}

/// The `(parent, child)` a children-link key names; `None` when malformed.
pub(crate) fn parse_child_key(key: &str) -> Option<(ImageId, ImageId)> {
    let (parent, child) = key.split_once(' ')?;
    Some((id_of_key(parent)?, id_of_key(child)?))
}

/// The name under which an image holds its top layer in the layer store:
/// `image:<hex>`.
pub fn layer_holder(id: &ImageId) -> String {
    format!("image:{}", id.digest().encoded())
}

/// The image a layer holder name stands for (the inverse of
/// [`layer_holder`]); `None` for any other holder. What gc uses to drop the
/// hold of an image that no longer exists (no summary).
pub fn image_of_layer_holder(holder: &str) -> Option<ImageId> {
    id_of_key(holder.strip_prefix("image:")?)
}

pub(crate) use layer_holder as holder;
