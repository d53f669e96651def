//! `StoreResolver`: what a reference names, read from the stores themselves.

use imgstore_backend::{ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_image::{ImageId, ImageStore};
use imgstore_refs::RefStore;
use serde::Deserialize;
use serde_json::Value;

use crate::{CriError, CriImage, ImageResolver};

/// The label that pins an image's reference, as containerd's CRI plugin sets it.
pub const PINNED_LABEL: &str = "io.cri-containerd.pinned";

const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Resolves a reference through the stores: the name's record in `refs`
/// (namespace `namespace`) gives a manifest or index in `content`; for an
/// index, the manifest of this host's platform (else the first); the manifest
/// names the config, whose digest is the image ID in `images`. The size is
/// containerd's: manifest + config + layer blobs. A name, manifest or image
/// that is missing resolves to `None`.
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

/// A blob's bytes as `get_many` gave them: `None` when absent.
fn found(
    reference: &str,
    read: imgstore_backend::Result<Vec<u8>>,
) -> Result<Option<Vec<u8>>, CriError> {
    match read {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
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

/// The manifest an index names for this host (else its first); `None` when
/// it names none.
fn manifest_of_index(index: &[u8]) -> Result<Option<Digest>, serde_json::Error> {
    let index: Value = serde_json::from_slice(index)?;
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let for_host = manifests.iter().find(|m| {
        m.pointer("/platform/os").and_then(Value::as_str) == Some(std::env::consts::OS)
            && m.pointer("/platform/architecture").and_then(Value::as_str) == Some(host_arch())
    });
    Ok(for_host.or(manifests.first()).and_then(digest_at))
}

fn digest_at(value: &Value) -> Option<Digest> {
    value.get("digest")?.as_str()?.parse().ok()
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// What a name says before the image store is asked: the image ID its
/// manifest names, containerd's size and whether the name is pinned.
/// [`read_names`] gives them; [`images_of`] completes them into
/// [`CriImage`]s. Split so a caller may read names and manifests while the
/// image store is still restoring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTarget {
    /// The config digest the manifest names.
    pub id: ImageId,
    /// Manifest + config + layer blobs, in bytes.
    pub size: u64,
    /// True when the name carries the pinned label.
    pub pinned: bool,
}

/// For each of `references`, in order: what its record in `refs`
/// (namespace `namespace`) leads to through `content` (for an index, the
/// manifest of this host's platform, else the first), or `None` when the
/// name, index or manifest is missing or names no config. Every index and
/// manifest is read with one `get_many` (verified as every read is).
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
    // What each name's manifest is: its target, or for an index the
    // manifest the index names for this host.
    let mut targets: Vec<Option<Digest>> = records
        .iter()
        .map(|r| r.as_ref().map(|r| r.target.digest.clone()))
        .collect();
    let is_index: Vec<usize> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.as_ref()
                .is_some_and(|r| INDEX_TYPES.contains(&r.target.media_type.as_str()))
        })
        .map(|(i, _)| i)
        .collect();
    if !is_index.is_empty() {
        let digests: Vec<Digest> = is_index
            .iter()
            .filter_map(|&i| targets[i].clone())
            .collect();
        for (&i, read) in is_index.iter().zip(content.get_many(&digests)) {
            targets[i] = match found(references[i], read)? {
                None => None,
                Some(index) => {
                    manifest_of_index(&index).map_err(|e| resolve_error(references[i], e))?
                }
            };
        }
    }
    let wanted: Vec<usize> = (0..targets.len())
        .filter(|&i| targets[i].is_some())
        .collect();
    let digests: Vec<Digest> = wanted.iter().filter_map(|&i| targets[i].clone()).collect();
    let mut out: Vec<Option<NameTarget>> = references.iter().map(|_| None).collect();
    for (&i, read) in wanted.iter().zip(content.get_many(&digests)) {
        let reference = references[i];
        let Some(manifest) = found(reference, read)? else {
            continue;
        };
        let Some((config, blobs_size)) =
            summarize_manifest(&manifest).map_err(|e| resolve_error(reference, e))?
        else {
            continue;
        };
        let pinned = records[i].as_ref().is_some_and(|record| {
            record
                .labels
                .get(PINNED_LABEL)
                .is_some_and(|v| v == "pinned")
        });
        out[i] = Some(NameTarget {
            id: ImageId::from(config),
            size: manifest.len() as u64 + blobs_size,
            pinned,
        });
    }
    Ok(out)
}

/// Completes what [`read_names`] gave with the images themselves: `None`
/// where the name led nowhere or its image is not in `images`.
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
        let image = match images.get(&target.id) {
            Ok(image) => image,
            Err(e) if e.is_not_found() => {
                out.push(None);
                continue;
            }
            Err(e) => return Err(resolve_error(reference, e)),
        };
        out.push(Some(CriImage {
            chain_id: image
                .top_chain_id()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            size: target.size,
            spec: Some(image),
            pinned: target.pinned,
            ..CriImage::new(target.id, reference)
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
