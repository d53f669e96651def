//! The image store's records: one [`Summary`] per image and one children
//! link per parent/child pair, in the image backend's record store.

use std::collections::BTreeMap;

use imgstore_backend::codec::{CodecError, Decoder, Encoder};
use imgstore_digest::Algorithm;
use imgstore_layer::ChainId;

use crate::{Image, ImageError, ImageId};

/// Bucket of the summaries: key `<64 hex>` (the image ID without
/// `sha256:`), value a [`Summary`] in [`imgstore_backend::codec`]'s
/// encoding (format [`SUMMARY_FORMAT`]). An image exists iff its summary
/// does.
pub const IMAGES_BUCKET: &str = "images";

/// Bucket of the children links: key `<parent hex> <child hex>`, empty
/// value. Derived from the children's `parent` metadata.
pub const CHILDREN_BUCKET: &str = "image-children";

/// The format byte of a summary record's value: 1, the fields of
/// [`Summary`] in declaration order (`labels` as a count and key/value
/// pairs). Summaries were JSON in store format 2; the facade's upgrade
/// rewrites them.
pub const SUMMARY_FORMAT: u8 = 1;

/// What a listing (`images`, `df`, `prune`) needs of an image without
/// reading its config: the value of its `images/<hex>` record.
///
/// Derived: [`Store::check`](crate::Store::check) recomputes it from the
/// config, the `parent` metadata and the layer records, and
/// [`Store::rebuild_index`](crate::Store::rebuild_index) rewrites it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// The record value: format [`SUMMARY_FORMAT`].
    pub fn encode(&self) -> Vec<u8> {
        let mut encoder = Encoder::new(SUMMARY_FORMAT);
        encoder
            .opt_str(self.parent.as_ref().map(|id| id.digest().as_str()))
            .opt_str(self.created.as_deref())
            .opt_str(self.top.as_ref().map(ChainId::as_str))
            .u64(self.size)
            .u64(self.blobs_size)
            .u64(self.config_size)
            .str(&self.os)
            .str(&self.architecture)
            .opt_str(self.variant.as_deref())
            .u64(self.labels.len() as u64);
        for (key, value) in &self.labels {
            encoder.str(key).str(value);
        }
        encoder.finish()
    }

    /// Reads a record value; a value that is not a summary of format
    /// [`SUMMARY_FORMAT`] is `CorruptRecord` naming `key`.
    pub fn decode(key: &str, value: &[u8]) -> Result<Summary, ImageError> {
        Summary::read(value).map_err(|e| ImageError::CorruptRecord {
            bucket: IMAGES_BUCKET,
            key: key.to_owned(),
            reason: e.to_string(),
        })
    }

    fn read(value: &[u8]) -> Result<Summary, CodecError> {
        let mut decoder = Decoder::new(value, SUMMARY_FORMAT)?;
        let parent = match decoder.opt_str()? {
            Some(text) => Some(
                text.parse::<ImageId>()
                    .map_err(|e| CodecError::new(format!("parent: {e}")))?,
            ),
            None => None,
        };
        let created = decoder.opt_str()?.map(str::to_owned);
        let top = match decoder.opt_str()? {
            Some(text) => Some(
                text.parse::<ChainId>()
                    .map_err(|e| CodecError::new(format!("top: {e}")))?,
            ),
            None => None,
        };
        let size = decoder.u64()?;
        let blobs_size = decoder.u64()?;
        let config_size = decoder.u64()?;
        let os = decoder.str()?.to_owned();
        let architecture = decoder.str()?.to_owned();
        let variant = decoder.opt_str()?.map(str::to_owned);
        let count = decoder.u64()?;
        let mut labels = BTreeMap::new();
        for _ in 0..count {
            // Each pair reads at least eight bytes: a count larger than the
            // value fails on the first missing one, after bounded work.
            let key = decoder.str()?;
            labels.insert(key.to_owned(), decoder.str()?.to_owned());
        }
        decoder.finish()?;
        Ok(Summary {
            parent,
            created,
            top,
            size,
            blobs_size,
            config_size,
            os,
            architecture,
            variant,
            labels,
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
    // Built on the stack: a listing reads one key per image.
    let mut full = [0u8; 71];
    full[..7].copy_from_slice(b"sha256:");
    full[7..].copy_from_slice(key.as_bytes());
    std::str::from_utf8(&full).ok()?.parse().ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Summary {
        let hex = "ab".repeat(32);
        Summary {
            parent: Some(format!("sha256:{hex}").parse().unwrap()),
            created: Some("2024-01-02T03:04:05.123456789Z".into()),
            top: Some(format!("sha256:{}", "cd".repeat(32)).parse().unwrap()),
            size: 1 << 40,
            blobs_size: 7,
            config_size: 1234,
            os: "linux".into(),
            architecture: "arm64".into(),
            variant: Some("v8".into()),
            labels: BTreeMap::from([
                ("a".to_owned(), "1".to_owned()),
                ("ünïcode".to_owned(), String::new()),
            ]),
        }
    }

    #[test]
    fn a_summary_reads_back_whole_and_empty() {
        let empty = Summary {
            parent: None,
            created: None,
            top: None,
            size: 0,
            blobs_size: 0,
            config_size: 0,
            os: String::new(),
            architecture: String::new(),
            variant: None,
            labels: BTreeMap::new(),
        };
        for summary in [full(), empty] {
            assert_eq!(Summary::decode("k", &summary.encode()).unwrap(), summary);
        }
    }

    #[test]
    fn a_cut_value_a_bad_digest_and_the_old_json_are_corrupt_records() {
        let bytes = full().encode();
        for cut in 0..bytes.len() {
            let error = Summary::decode("k", &bytes[..cut]).unwrap_err();
            assert!(
                matches!(error, ImageError::CorruptRecord { bucket: IMAGES_BUCKET, ref key, .. } if key == "k"),
                "cut at {cut}: {error:?}"
            );
        }
        let mut bad = Summary::decode("k", &bytes).unwrap();
        bad.labels.clear();
        let mut bytes = bad.encode();
        // The parent's first hex digit, made invalid.
        let at = bytes.iter().position(|&b| b == b':').unwrap() + 1;
        bytes[at] = b'Z';
        assert!(Summary::decode("k", &bytes).is_err());
        // Store format 2 kept summaries as JSON.
        let json = br#"{"parent":null,"created":null,"top":null,"size":0}"#;
        assert!(Summary::decode("k", json).is_err());
    }
}
