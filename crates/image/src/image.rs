//! `ImageId` and `Image`: an image config parsed, its raw bytes kept.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use imgstore_digest::{Digest, DigestError};
use imgstore_layer::ChainId;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ImageError;

/// An image ID: the sha256 digest of the exact config bytes.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ImageId(Digest);

impl ImageId {
    /// The ID of a config: sha256 of its bytes, never of a re-serialisation.
    pub fn of_config(config: &[u8]) -> ImageId {
        ImageId(Digest::from_bytes(config))
    }

    /// The ID as a digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The `sha256:…` string.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The first 12 hex characters, as `docker images` shows them.
    pub fn short(&self) -> &str {
        let hex = self.0.encoded();
        &hex[..hex.len().min(12)]
    }
}

impl From<Digest> for ImageId {
    fn from(digest: Digest) -> ImageId {
        ImageId(digest)
    }
}

impl FromStr for ImageId {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s).map(ImageId)
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageId({})", self.as_str())
    }
}

/// `rootfs` of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers` in practice.
    #[serde(rename = "type")]
    pub kind: String,
    /// Diff IDs bottom-up, as written in the config.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One `history` entry of an image config.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    /// When the step ran (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Its author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer (ENV, LABEL, ...).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// The typed fields of a config; the rest is kept in `extra`. Parsed lazily:
/// restore and create read only what they need ([`Essentials`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ConfigFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    os: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rootfs: Option<RootFs>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    history: Vec<History>,
    /// Everything else (`config`, `container_config`, `docker_version`, ...), kept.
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// What create and restore must know of a config; serde skips the rest
/// without building values for it.
#[derive(Deserialize)]
struct Essentials {
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    rootfs: Option<RootFs>,
    #[serde(default)]
    history: Vec<EmptyLayerFlag>,
    /// Any JSON value, so a config whose `created` is not a string still
    /// loads (the time then reads as absent).
    #[serde(default)]
    created: Option<Value>,
}

#[derive(Deserialize)]
struct EmptyLayerFlag {
    #[serde(default)]
    empty_layer: bool,
}

/// An image config (OCI, with Docker's extra fields kept) together with the
/// exact bytes it was parsed from, which define its [`ImageId`].
///
/// Only the ID, the bytes, the top layer's chain ID and the creation time are
/// kept decoded; the other fields are parsed from the bytes on first use and
/// cached, which keeps a store of 100k images small and its restore fast.
#[derive(Debug)]
pub struct Image {
    id: ImageId,
    raw: Arc<[u8]>,
    /// `os` is empty, absent or this host's.
    host_os: bool,
    top_chain_id: Option<ChainId>,
    /// `created`, kept decoded: listings show it for every image.
    created: Option<Box<str>>,
    /// Boxed so an image whose details were never asked for costs 8 bytes here.
    details: OnceLock<Box<Details>>,
}

#[derive(Debug, Default)]
struct Details {
    fields: ConfigFields,
    diff_ids: Vec<Digest>,
}

/// A diff ID as moby's configs write it: a digest, or (moby's own tests do
/// this) 64 bare hex characters meaning sha256.
fn parse_diff_id(s: &str) -> Result<Digest, DigestError> {
    if s.len() == 64 && !s.contains(':') {
        return Digest::parse(&format!("sha256:{s}"));
    }
    Digest::parse(s)
}

fn parse_diff_ids(rootfs: &RootFs) -> Result<Vec<Digest>, ImageError> {
    rootfs
        .diff_ids
        .iter()
        .enumerate()
        .map(|(i, d)| {
            parse_diff_id(d).map_err(|e| ImageError::InvalidConfig {
                reason: format!("rootfs.diff_ids[{i}]: {e}"),
            })
        })
        .collect()
}

impl Image {
    /// Parses a config. Like moby it refuses a config without `rootfs`
    /// ("invalid image JSON, no RootFS key") and one whose history has more
    /// non-empty entries than there are diff IDs; unlike moby it also refuses
    /// diff IDs that are not digests (bare sha256 hex is accepted).
    pub fn from_config(raw: &[u8]) -> Result<Image, ImageError> {
        let essentials: Essentials =
            serde_json::from_slice(raw).map_err(|e| ImageError::InvalidConfig {
                reason: format!("invalid image JSON: {e}"),
            })?;
        let Some(rootfs) = essentials.rootfs else {
            return Err(ImageError::InvalidConfig {
                reason: "invalid image JSON, no RootFS key".into(),
            });
        };
        let diff_ids = parse_diff_ids(&rootfs)?;
        let non_empty = essentials.history.iter().filter(|h| !h.empty_layer).count();
        if non_empty > diff_ids.len() {
            return Err(ImageError::InvalidConfig {
                reason: format!(
                    "too many non-empty layers in History section: {non_empty} entries for {} layers",
                    diff_ids.len()
                ),
            });
        }
        Ok(Image {
            id: ImageId::of_config(raw),
            raw: Arc::from(raw),
            host_os: essentials
                .os
                .as_deref()
                .is_none_or(|os| os.is_empty() || os == std::env::consts::OS),
            top_chain_id: ChainId::of(&diff_ids),
            created: match essentials.created {
                Some(Value::String(created)) => Some(created.into_boxed_str()),
                _ => None,
            },
            details: OnceLock::new(),
        })
    }

    /// The other fields, parsed on first use. A field of an unexpected type
    /// (which create and restore do not read) reads as absent.
    fn details(&self) -> &Details {
        self.details.get_or_init(|| {
            let fields: ConfigFields = serde_json::from_slice(&self.raw).unwrap_or_default();
            let diff_ids = fields
                .rootfs
                .as_ref()
                .and_then(|r| parse_diff_ids(r).ok())
                .unwrap_or_default();
            Box::new(Details { fields, diff_ids })
        })
    }

    /// The image ID (sha256 of [`raw`](Self::raw)).
    pub fn id(&self) -> &ImageId {
        &self.id
    }

    /// The exact config bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The OS; an empty or absent `os` means the host's, as in moby.
    pub fn os(&self) -> &str {
        match self.details().fields.os.as_deref() {
            Some(os) if !os.is_empty() => os,
            _ => std::env::consts::OS,
        }
    }

    /// True when the config's OS is this host's (or not given), which moby
    /// requires of every image it loads.
    pub fn runs_on_host_os(&self) -> bool {
        self.host_os
    }

    /// The architecture, if set.
    pub fn architecture(&self) -> Option<&str> {
        self.details().fields.architecture.as_deref()
    }

    /// The author, if set.
    pub fn author(&self) -> Option<&str> {
        self.details().fields.author.as_deref()
    }

    /// The comment, if set.
    pub fn comment(&self) -> Option<&str> {
        self.details().fields.comment.as_deref()
    }

    /// The creation time as written (RFC 3339), if set (a string). Decoded
    /// when the config is parsed, so listing it parses nothing more.
    pub fn created(&self) -> Option<&str> {
        self.created.as_deref()
    }

    /// The `rootfs` section.
    pub fn rootfs(&self) -> Option<&RootFs> {
        self.details().fields.rootfs.as_ref()
    }

    /// The diff IDs as digests, bottom-up.
    pub fn diff_ids(&self) -> &[Digest] {
        &self.details().diff_ids
    }

    /// The chain ID of the top layer; `None` for an image without layers.
    pub fn top_chain_id(&self) -> Option<&ChainId> {
        self.top_chain_id.as_ref()
    }

    /// The history entries.
    pub fn history(&self) -> &[History] {
        &self.details().fields.history
    }

    /// Any other top-level field by name (`config`, `container_config`, ...).
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.details().fields.extra.get(name)
    }

    /// The config re-serialised with top-level keys in sorted order (moby's
    /// `MarshalJSON`). The image ID is never computed from this.
    pub fn to_sorted_json(&self) -> Result<Vec<u8>, ImageError> {
        let value = serde_json::to_value(&self.details().fields).map_err(|e| {
            ImageError::InvalidConfig {
                reason: e.to_string(),
            }
        })?;
        serde_json::to_vec(&value).map_err(|e| ImageError::InvalidConfig {
            reason: e.to_string(),
        })
    }
}
