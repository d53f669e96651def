//! `StoreResolver`: what a reference names, read from the stores themselves.

use std::collections::{HashMap, HashSet};

use imgstore_backend::{ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_image::{ImageId, ImageStore};
use imgstore_refs::{ImageRecord, RefStore};
use serde::Deserialize;
use serde_json::Value;

use crate::{CriError, CriImage, ImageResolver, Platform};

/// The label that pins an image's reference, as containerd's CRI plugin sets it.
pub const PINNED_LABEL: &str = "io.cri-containerd.pinned";

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// Indexes nested deeper than this are not followed (as the facade's import).
const MAX_INDEX_DEPTH: usize = 8;
/// Index entries larger than this are not manifests (the facade's import
/// refuses larger JSON blobs).
const MAX_JSON_BLOB: u64 = 16 << 20;
/// A name is followed to at most this many manifests: nested indexes
/// cannot make one name cost more.
const MAX_CANDIDATES: usize = 1024;

/// Resolves a reference through the stores: the name's record in `refs`
/// (namespace `namespace`) gives a manifest or index in `content`; an index
/// is followed to the stored manifest the host prefers (see
/// [`read_names`]); the manifest names the config, whose digest is the
/// image ID in `images`. The size is containerd's: manifest + config + layer
/// blobs. A name, manifest or image that is missing resolves to `None`.
pub struct StoreResolver<'a, R, C: ?Sized, I> {
    /// Namespace of the names.
    pub namespace: &'a str,
    /// The names.
    pub refs: &'a RefStore<R>,
    /// Where manifests and indexes are stored.
    pub content: &'a C,
    /// The images.
    pub images: &'a I,
}

fn resolve_error(reference: &str, e: impl std::error::Error + Send + Sync + 'static) -> CriError {
    CriError::Resolve {
        reference: reference.to_owned(),
        source: Box::new(e),
    }
}

/// A blob's bytes as `get_many` gave them: `None` when absent, or corrupt
/// (what the store holds for a name is what it can read back; the name
/// then leads nowhere, which `fsck` reports, rather than failing every
/// resolution and so the store's open).
fn found(
    reference: &str,
    read: imgstore_backend::Result<Vec<u8>>,
) -> Result<Option<Vec<u8>>, CriError> {
    match read {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::DataCorruption) => Ok(None),
        Err(e) => Err(resolve_error(reference, e)),
    }
}

/// The manifest fields the cache reads, typed as manifests write them: a
/// config descriptor and layer sizes. Anything else is skipped unparsed.
#[derive(Deserialize)]
struct ManifestView {
    #[serde(default)]
    config: Option<DescriptorView>,
    #[serde(default)]
    layers: Option<Vec<DescriptorView>>,
}

#[derive(Deserialize)]
struct DescriptorView {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    size: Option<u64>,
}

/// What a manifest gives the cache: the config digest and the summed sizes
/// of config and layer blobs. `None` when it names no config.
type ManifestSummary = Option<(Digest, u64)>;

/// Reads a manifest: typed when it has the usual shape, else as any JSON
/// value (a field of an unexpected type then counts as absent, as before).
fn summarize_manifest(bytes: &[u8]) -> Result<ManifestSummary, serde_json::Error> {
    if let Ok(view) = serde_json::from_slice::<ManifestView>(bytes) {
        let Some(config) = view.config else {
            return Ok(None);
        };
        let Some(digest) = config.digest.and_then(|d| d.parse().ok()) else {
            return Ok(None);
        };
        let layers: u64 = view
            .layers
            .unwrap_or_default()
            .iter()
            .filter_map(|l| l.size)
            .sum();
        return Ok(Some((digest, config.size.unwrap_or(0) + layers)));
    }
    let manifest: Value = serde_json::from_slice(bytes)?;
    let Some(config) = manifest.get("config").and_then(digest_at) else {
        return Ok(None);
    };
    let config_size = manifest
        .pointer("/config/size")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let layers_size: u64 = manifest
        .get("layers")
        .and_then(Value::as_array)
        .map(|layers| {
            layers
                .iter()
                .filter_map(|l| l.get("size").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    Ok(Some((config, config_size + layers_size)))
}

/// A step on the way from a name to its manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Manifest(Digest),
    Index(Digest),
}

/// The entries of an index worth following, in the order `host` prefers
/// them ([`Platform::preference_order`]): manifests and nested indexes
/// whose descriptor is well-formed. An index that is not JSON has none.
fn index_entries(host: &Platform, index: &[u8]) -> Vec<Step> {
    let Ok(index) = serde_json::from_slice::<Value>(index) else {
        return Vec::new();
    };
    let entries = index
        .get("manifests")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let platforms: Vec<Option<Platform>> = entries
        .iter()
        .map(|entry| {
            let platform = entry.get("platform")?;
            let os = platform.get("os")?.as_str().filter(|os| !os.is_empty())?;
            let architecture = platform
                .get("architecture")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let variant = platform.get("variant").and_then(Value::as_str);
            Some(Platform::new(os, architecture, variant))
        })
        .collect();
    let platforms: Vec<Option<&Platform>> = platforms.iter().map(Option::as_ref).collect();
    host.preference_order(&platforms)
        .into_iter()
        .filter_map(|i| {
            let entry = &entries[i];
            let digest = digest_at(entry)?;
            let size = entry.get("size").and_then(Value::as_u64)?;
            let media_type = entry.get("mediaType").and_then(Value::as_str)?;
            if size > MAX_JSON_BLOB {
                return None;
            }
            if INDEX_TYPES.contains(&media_type) {
                Some(Step::Index(digest))
            } else if MANIFEST_TYPES.contains(&media_type) {
                Some(Step::Manifest(digest))
            } else {
                None
            }
        })
        .collect()
}

fn digest_at(value: &Value) -> Option<Digest> {
    value.get("digest")?.as_str()?.parse().ok()
}

/// What each name may mean, as manifests in the order of preference: its
/// target, or for an index (nested ones followed, up to
/// [`MAX_INDEX_DEPTH`]) the entries this host prefers first. Every index
/// of one level is read with one `get_many`.
fn manifest_steps<C: StoreBackend + ?Sized>(
    content: &C,
    references: &[&str],
    mut steps: Vec<Vec<Step>>,
) -> Result<Vec<Vec<Digest>>, CriError> {
    let host = Platform::host();
    // Per name, the indexes already followed: one listed twice (or by
    // two nested indexes) is followed once.
    let mut followed: Vec<HashSet<Digest>> = vec![HashSet::new(); steps.len()];
    for _ in 0..=MAX_INDEX_DEPTH {
        let mut wanted: Vec<Digest> = Vec::new();
        let mut first_asker: HashMap<Digest, usize> = HashMap::new();
        for (i, name_steps) in steps.iter().enumerate() {
            for step in name_steps {
                if let Step::Index(digest) = step
                    && !first_asker.contains_key(digest)
                {
                    first_asker.insert(digest.clone(), i);
                    wanted.push(digest.clone());
                }
            }
        }
        if wanted.is_empty() {
            break;
        }
        let mut entries: HashMap<Digest, Vec<Step>> = HashMap::with_capacity(wanted.len());
        for (digest, read) in wanted.iter().zip(content.get_many(&wanted)) {
            let asker = first_asker.get(digest).copied().unwrap_or_default();
            let listed = match found(references[asker], read)? {
                Some(index) => index_entries(&host, &index),
                None => Vec::new(),
            };
            entries.insert(digest.clone(), listed);
        }
        for (name_steps, followed) in steps.iter_mut().zip(&mut followed) {
            let mut expanded = Vec::with_capacity(name_steps.len());
            for step in name_steps.drain(..) {
                match step {
                    Step::Index(digest) => {
                        if followed.insert(digest.clone())
                            && let Some(listed) = entries.get(&digest)
                        {
                            expanded.extend(listed.iter().cloned());
                        }
                    }
                    manifest => expanded.push(manifest),
                }
                expanded.truncate(MAX_CANDIDATES);
            }
            *name_steps = expanded;
        }
    }
    Ok(steps
        .into_iter()
        .map(|name_steps| {
            let mut seen = HashSet::new();
            name_steps
                .into_iter()
                .filter_map(|step| match step {
                    // Nested deeper than followed: not an image.
                    Step::Index(_) => None,
                    Step::Manifest(digest) => seen.insert(digest.clone()).then_some(digest),
                })
                .collect()
        })
        .collect())
}

/// What a name says before the image store is asked: the images its
/// manifests name, most preferred first, and whether the name is pinned.
/// [`read_names`] gives them; [`images_of`] completes them into
/// [`CriImage`]s. Split so a caller may read names and manifests while the
/// image store is still restoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTarget {
    /// The stored manifests the name may mean, as the images they name,
    /// most preferred first: the name's manifest, or for an index those of
    /// its manifests that are stored, this host's first, then the others in
    /// index order. The name means the first whose image is stored.
    pub candidates: Vec<ManifestTarget>,
    /// True when the name carries the pinned label.
    pub pinned: bool,
}

/// One stored manifest a name may lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestTarget {
    /// The config digest the manifest names: the image ID.
    pub id: ImageId,
    /// Manifest + config + layer blobs, in bytes.
    pub size: u64,
}

/// For each of `references`, in order: what its record in `refs`
/// (namespace `namespace`) leads to through `content`, or `None` when the
/// name is missing or leads to no stored manifest naming a config.
///
/// What a name whose target is an index means is decided here, once, for
/// every user of names (the CRI cache, and through it `images`, prune,
/// rmi, inspect and export): the index's manifest for this host
/// ([`Platform::host`]) when it is stored with its image, else the first
/// of its manifests, in index order, that is. So a name loaded for another
/// platform means what was stored for it, and the store's content is the
/// record of that choice: no second record can disagree with it (a label
/// would have to follow every tag, import and removal). moby's containerd
/// image store picks the "best available platform" the same way.
/// [`images_of`] takes the first candidate whose image is stored. Every
/// index and manifest is read with one `get_many` per level of nesting
/// (verified as every read is).
pub fn read_names<R, C>(
    namespace: &str,
    refs: &RefStore<R>,
    content: &C,
    references: &[&str],
) -> Result<Vec<Option<NameTarget>>, CriError>
where
    R: RecordStore,
    C: StoreBackend + ?Sized,
{
    let mut records = Vec::with_capacity(references.len());
    for reference in references {
        records.push(match refs.get(namespace, reference) {
            Ok(record) => Some(record),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(resolve_error(reference, e)),
        });
    }
    let records: Vec<Option<&ImageRecord>> = records.iter().map(|r| r.as_deref()).collect();
    read_records(content, references, &records)
}

/// [`read_names`] over records the caller holds (a record about to be
/// written, in the same batch as what is derived from it): for each of
/// `records`, named `references[i]` in errors, what it leads to through
/// `content`; `None` for a missing record.
pub fn read_records<C>(
    content: &C,
    references: &[&str],
    records: &[Option<&ImageRecord>],
) -> Result<Vec<Option<NameTarget>>, CriError>
where
    C: StoreBackend + ?Sized,
{
    let steps: Vec<Vec<Step>> = records
        .iter()
        .map(|record| match record {
            None => Vec::new(),
            Some(r) if INDEX_TYPES.contains(&r.target.media_type.as_str()) => {
                vec![Step::Index(r.target.digest.clone())]
            }
            Some(r) => vec![Step::Manifest(r.target.digest.clone())],
        })
        .collect();
    let manifests = manifest_steps(content, references, steps)?;

    // Every distinct manifest once, in one read.
    let mut wanted: Vec<Digest> = Vec::new();
    let mut first_asker: HashMap<&Digest, usize> = HashMap::new();
    for (i, digests) in manifests.iter().enumerate() {
        for digest in digests {
            if !first_asker.contains_key(digest) {
                first_asker.insert(digest, i);
                wanted.push(digest.clone());
            }
        }
    }
    let mut summaries: HashMap<&Digest, ManifestTarget> = HashMap::with_capacity(wanted.len());
    for (digest, read) in wanted.iter().zip(content.get_many(&wanted)) {
        let asker = first_asker.get(digest).copied().unwrap_or_default();
        let Some(manifest) = found(references[asker], read)? else {
            continue;
        };
        // A blob that is no manifest (not JSON, no config) is no image.
        if let Ok(Some((config, blobs_size))) = summarize_manifest(&manifest) {
            summaries.insert(
                digest,
                ManifestTarget {
                    id: ImageId::from(config),
                    size: manifest.len() as u64 + blobs_size,
                },
            );
        }
    }
    Ok(records
        .iter()
        .zip(&manifests)
        .map(|(record, digests)| {
            let record = record.as_ref()?;
            let candidates: Vec<ManifestTarget> = digests
                .iter()
                .filter_map(|digest| summaries.get(digest).cloned())
                .collect();
            if candidates.is_empty() {
                return None;
            }
            let pinned = record
                .labels
                .get(PINNED_LABEL)
                .is_some_and(|v| v == "pinned");
            Some(NameTarget { candidates, pinned })
        })
        .collect())
}

/// Completes what [`read_names`] gave with the images themselves: each
/// name means its first candidate whose image is in `images`; `None` where
/// the name led nowhere or none of its images is stored.
pub fn images_of<I: ImageStore>(
    images: &I,
    references: &[&str],
    targets: Vec<Option<NameTarget>>,
) -> Result<Vec<Option<CriImage>>, CriError> {
    let mut out = Vec::with_capacity(targets.len());
    for (reference, target) in references.iter().zip(targets) {
        let Some(target) = target else {
            out.push(None);
            continue;
        };
        let mut chosen = None;
        for candidate in target.candidates {
            match images.get(&candidate.id) {
                Ok(image) => {
                    chosen = Some((candidate, image));
                    break;
                }
                // A listed image whose config no longer verifies leads
                // nowhere, like a corrupt manifest (fsck reports it).
                Err(e) if e.is_not_found() || e.kind() == ErrorKind::DataCorruption => {}
                Err(e) => return Err(resolve_error(reference, e)),
            }
        }
        out.push(chosen.map(|(candidate, image)| {
            CriImage {
                chain_id: image
                    .top_chain_id()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                size: candidate.size,
                spec: Some(image),
                pinned: target.pinned,
                ..CriImage::new(candidate.id, reference)
            }
        }));
    }
    Ok(out)
}

impl<R, C, I> ImageResolver for StoreResolver<'_, R, C, I>
where
    R: RecordStore,
    C: StoreBackend + ?Sized,
    I: ImageStore,
{
    fn resolve(&self, reference: &str) -> Result<Option<CriImage>, CriError> {
        Ok(self.resolve_many(&[reference])?.pop().flatten())
    }

    /// [`read_names`], then [`images_of`].
    fn resolve_many(&self, references: &[&str]) -> Result<Vec<Option<CriImage>>, CriError> {
        let targets = read_names(self.namespace, self.refs, self.content, references)?;
        images_of(self.images, references, targets)
    }
}
