//! The Engine API's JSON shapes (moby's `api/types`), with dockerd's field
//! names and order, made from the facade's views.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use imgstore::digest::Digest;
use imgstore::image::time::parse_rfc3339;
use imgstore::{HistoryEntry, ImageSummary, ImageUsage, Removed, repo_names};
use serde::Serialize;

/// The API version served: Docker 20.10's.
pub const API_VERSION: &str = "1.41";
/// The oldest API version dockerd 20.10 accepts.
pub(crate) const MIN_API_VERSION: &str = "1.12";

/// Go's `time.Time{}.Unix()`: what dockerd reports for an unset time.
const GO_ZERO_TIME_UNIX: i64 = -62_135_596_800;

/// A config's `created` as Unix seconds, as dockerd reports `Created`.
pub(crate) fn unix_seconds(created: Option<&str>) -> i64 {
    let Some(time) = created.and_then(parse_rfc3339) else {
        return GO_ZERO_TIME_UNIX;
    };
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        // Go's Unix() rounds towards minus infinity.
        Err(before) => {
            let before = before.duration();
            let seconds = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            -seconds - i64::from(before.subsec_nanos() > 0)
        }
    }
}

/// A byte count as Go's `int64`.
fn int(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// `types.ImageSummary`: one image of `GET /images/json` and of
/// `GET /system/df`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ImageSummaryJson {
    /// Containers using it: -1 (not computed) in a listing, 0 in `df`.
    containers: i64,
    created: i64,
    id: String,
    /// Config labels: not in the listing records, so `null` (dockerd's
    /// value for an image without labels).
    labels: Option<BTreeMap<String, String>>,
    parent_id: String,
    repo_digests: Option<Vec<String>>,
    repo_tags: Option<Vec<String>>,
    /// -1 unless asked for (`shared-size=1`, and always in `df`).
    shared_size: i64,
    size: i64,
    virtual_size: i64,
}

/// What an image row of a listing or of `df` is made from.
pub(crate) struct SummaryParts<'a> {
    pub id: &'a imgstore::image::ImageId,
    pub references: &'a [String],
    pub created: Option<&'a str>,
    pub parent: Option<&'a imgstore::image::ImageId>,
    pub size: u64,
    pub shared_size: Option<u64>,
    pub containers: i64,
}

impl<'a> SummaryParts<'a> {
    /// A listed image.
    pub fn listed(summary: &'a ImageSummary, shared_size: Option<u64>) -> SummaryParts<'a> {
        SummaryParts {
            id: &summary.id,
            references: &summary.references,
            created: summary.created.as_deref(),
            parent: summary.parent.as_ref(),
            size: summary.size,
            shared_size,
            containers: -1,
        }
    }

    /// An image of `df`: no containers use it.
    pub fn usage(image: &'a ImageUsage) -> SummaryParts<'a> {
        SummaryParts {
            id: &image.id,
            references: &image.references,
            created: image.created.as_deref(),
            parent: None,
            size: image.size,
            shared_size: Some(image.shared_size),
            containers: 0,
        }
    }
}

impl ImageSummaryJson {
    /// The row; `name_digests` as [`imgstore::Store::name_digests`] gives them.
    pub fn new(parts: SummaryParts<'_>, name_digests: &BTreeMap<String, Digest>) -> Self {
        let names = repo_names(parts.references, name_digests);
        let some = |list: Vec<String>| (!list.is_empty()).then_some(list);
        let (repo_digests, repo_tags) = if names.tags.is_empty() && names.digests.is_empty() {
            // dockerd's placeholders for an image without names.
            (
                Some(vec!["<none>@<none>".to_owned()]),
                Some(vec!["<none>:<none>".to_owned()]),
            )
        } else {
            (some(names.digests), some(names.tags))
        };
        ImageSummaryJson {
            containers: parts.containers,
            created: unix_seconds(parts.created),
            id: parts.id.to_string(),
            labels: None,
            parent_id: parts.parent.map(ToString::to_string).unwrap_or_default(),
            repo_digests,
            repo_tags,
            shared_size: parts.shared_size.map_or(-1, int),
            size: int(parts.size),
            virtual_size: int(parts.size),
        }
    }
}

/// `image.HistoryResponseItem`: one line of `GET /images/{name}/history`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct HistoryItem {
    comment: String,
    created: i64,
    created_by: String,
    id: String,
    size: i64,
    tags: Option<Vec<String>>,
}

impl HistoryItem {
    /// The entry; `tags` are the image's, given for its own (newest) entry.
    pub fn new(entry: &HistoryEntry, tags: Option<Vec<String>>) -> HistoryItem {
        HistoryItem {
            comment: entry.comment.clone(),
            created: unix_seconds(entry.created.as_deref()),
            created_by: entry.created_by.clone(),
            id: entry
                .id
                .as_ref()
                .map_or_else(|| "<missing>".to_owned(), ToString::to_string),
            size: int(entry.size),
            tags,
        }
    }
}

/// `types.ImageDeleteResponseItem`: `{"Untagged": …}` or `{"Deleted": …}`.
#[derive(Debug, Serialize)]
pub(crate) enum DeleteItem {
    /// A name removed.
    Untagged(String),
    /// An image or layer deleted.
    Deleted(String),
}

impl From<Removed> for DeleteItem {
    fn from(line: Removed) -> DeleteItem {
        match line {
            Removed::Untagged(name) => DeleteItem::Untagged(name),
            Removed::Deleted(id) => DeleteItem::Deleted(id),
        }
    }
}

/// `types.ImagesPruneReport`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PruneReportJson {
    pub images_deleted: Option<Vec<DeleteItem>>,
    pub space_reclaimed: u64,
}

/// `types.DiskUsage`: images only; imgstore has no containers, volumes or
/// build cache.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DiskUsageJson {
    pub layers_size: i64,
    pub images: Vec<ImageSummaryJson>,
    pub containers: [(); 0],
    pub volumes: [(); 0],
    pub build_cache: [(); 0],
}

impl DiskUsageJson {
    /// From the facade's usage.
    pub fn new(layers_size: u64, images: Vec<ImageSummaryJson>) -> DiskUsageJson {
        DiskUsageJson {
            layers_size: int(layers_size),
            images,
            containers: [],
            volumes: [],
            build_cache: [],
        }
    }
}

/// A line of a JSON message stream (`POST /images/load`):
/// `{"stream": "Loaded image: …\n"}`.
pub(crate) fn stream_line(text: &str) -> String {
    serde_json::json!({ "stream": text }).to_string() + "\n"
}

/// The line that ends a JSON message stream with an error, as dockerd's
/// `{"errorDetail": {"message": …}, "error": …}`.
pub(crate) fn error_line(message: &str) -> String {
    serde_json::json!({ "errorDetail": { "message": message }, "error": message }).to_string()
        + "\n"
}

/// Go's `GOARCH` for this machine, as `/version` reports `Arch`.
pub(crate) fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        other => other,
    }
}
