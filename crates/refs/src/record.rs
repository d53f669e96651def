//! The record: a name pointing at a target descriptor, with labels and times.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use imgstore_digest::Digest;
use serde::{Deserialize, Serialize};

use crate::filters::Adaptor;
use crate::{RefsError, validate_label};

/// What a name points at: an OCI descriptor of the fields containerd stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Descriptor {
    /// Media type of the target (a manifest or an index); must not be empty.
    pub media_type: String,
    /// Digest of the target.
    pub digest: Digest,
    /// Size of the target in bytes; must be greater than zero.
    pub size: i64,
    /// Descriptor annotations; entries with empty values are not stored.
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    /// A descriptor without annotations.
    pub fn new(media_type: impl Into<String>, digest: Digest, size: i64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::new(),
        }
    }
}

/// A named image record, containerd's `images.Image`.
///
/// Timestamps keep nanoseconds through storage. `create` sets both to the
/// current time and `update` keeps `created_at` and moves `updated_at`
/// strictly forward; whatever a caller puts in them is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The name, e.g. `docker.io/library/busybox:latest`; unique in a namespace.
    pub name: String,
    /// Labels; entries with empty values are not stored.
    pub labels: BTreeMap<String, String>,
    /// The manifest or index the name points at.
    pub target: Descriptor,
    /// When the record was created.
    pub created_at: SystemTime,
    /// When it was last changed (equal to `created_at` until the first update).
    pub updated_at: SystemTime,
}

impl ImageRecord {
    /// A record without labels, timestamps at the epoch (set by `create`).
    pub fn new(name: impl Into<String>, target: Descriptor) -> ImageRecord {
        ImageRecord {
            name: name.into(),
            labels: BTreeMap::new(),
            target,
            created_at: SystemTime::UNIX_EPOCH,
            updated_at: SystemTime::UNIX_EPOCH,
        }
    }

    /// The same record with one more label.
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> ImageRecord {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// containerd's `validateImage`: a name, labels within the size limit, a
    /// target with a media type and a size above zero (the digest is valid by
    /// type).
    pub fn validate(&self) -> Result<(), RefsError> {
        let invalid = |reason: &str| RefsError::InvalidRecord {
            name: self.name.chars().take(150).collect(),
            reason: reason.to_owned(),
        };
        if self.name.is_empty() {
            return Err(invalid("image name must not be empty"));
        }
        if self.name.contains('\0') {
            return Err(invalid("image name must not contain NUL"));
        }
        for (key, value) in &self.labels {
            validate_label(key, value)?;
        }
        if self.target.size <= 0 {
            return Err(invalid("Target.Size must be greater than zero"));
        }
        if self.target.media_type.is_empty() {
            return Err(invalid("Target.MediaType must be set"));
        }
        Ok(())
    }

    /// Drops labels and annotations with empty values, as containerd does
    /// when it writes a record.
    pub(crate) fn drop_empty_values(&mut self) {
        self.labels.retain(|_, v| !v.is_empty());
        self.target.annotations.retain(|_, v| !v.is_empty());
    }

    /// containerd's update merge: `stored` changed by `input` along `fieldpaths`
    /// (all of `input`, keeping the name, when there are none).
    pub(crate) fn merged(
        stored: &ImageRecord,
        input: &ImageRecord,
        fieldpaths: &[&str],
    ) -> Result<ImageRecord, RefsError> {
        if fieldpaths.is_empty() {
            return Ok(input.clone());
        }
        let mut updated = stored.clone();
        for path in fieldpaths {
            if let Some(key) = path.strip_prefix("labels.") {
                // A key the input lacks copies an empty value: the label goes.
                let value = input.labels.get(key).cloned().unwrap_or_default();
                updated.labels.insert(key.to_owned(), value);
            } else if let Some(key) = path.strip_prefix("annotations.") {
                let value = input
                    .target
                    .annotations
                    .get(key)
                    .cloned()
                    .unwrap_or_default();
                updated.target.annotations.insert(key.to_owned(), value);
            } else {
                match *path {
                    "labels" => updated.labels = input.labels.clone(),
                    // The target moves as a whole (containerd: digest, size and
                    // media type only make sense together).
                    "target" => updated.target = input.target.clone(),
                    "annotations" => updated.target.annotations = input.target.annotations.clone(),
                    other => {
                        return Err(RefsError::InvalidFieldPath {
                            name: input.name.chars().take(150).collect(),
                            path: other.to_owned(),
                        });
                    }
                }
            }
        }
        Ok(updated)
    }
}

/// The next `updated_at` after `previous`: now, or 1 ns later than `previous`
/// when the clock has not moved past it.
pub(crate) fn next_timestamp(previous: SystemTime) -> SystemTime {
    let now = SystemTime::now();
    if now > previous {
        now
    } else {
        previous
            .checked_add(Duration::from_nanos(1))
            .unwrap_or(previous)
    }
}

/// Field paths for filters, as containerd's image adaptor: `name`,
/// `target.digest`, `target.mediatype`, `labels.<key>`, `annotations.<key>`
/// (the key is the rest of the path joined with `.`).
impl Adaptor for ImageRecord {
    fn field(&self, path: &[String]) -> Option<&str> {
        fn in_map<'m>(map: &'m BTreeMap<String, String>, rest: &[String]) -> Option<&'m str> {
            let value = match rest {
                [key] => map.get(key.as_str()),
                _ => map.get(rest.join(".").as_str()),
            };
            value.map(String::as_str)
        }
        match path.first().map(String::as_str)? {
            "name" => Some(self.name.as_str()).filter(|n| !n.is_empty()),
            "target" => match path.get(1).map(String::as_str)? {
                "digest" => Some(self.target.digest.as_str()),
                "mediatype" => Some(self.target.media_type.as_str()).filter(|m| !m.is_empty()),
                _ => None,
            },
            "labels" => in_map(&self.labels, &path[1..]),
            "annotations" => in_map(&self.target.annotations, &path[1..]),
            _ => None,
        }
    }
}
