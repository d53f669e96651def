//! `StoreResolver`: what a reference names, read from the stores themselves.

use imgstore_backend::{ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_image::{ImageId, ImageStore};
use imgstore_refs::RefStore;
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

impl<R, C, I> StoreResolver<'_, R, C, I>
where
    R: RecordStore,
    C: StoreBackend + ?Sized,
    I: ImageStore,
{
    /// The JSON of a blob; `None` when absent.
    fn json(&self, reference: &str, digest: &Digest) -> Result<Option<(Value, u64)>, CriError> {
        let bytes = match self.content.get(digest) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(resolve_error(reference, e)),
        };
        let value = serde_json::from_slice(&bytes).map_err(|e| resolve_error(reference, e))?;
        Ok(Some((value, bytes.len() as u64)))
    }
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

impl<R, C, I> ImageResolver for StoreResolver<'_, R, C, I>
where
    R: RecordStore,
    C: StoreBackend + ?Sized,
    I: ImageStore,
{
    fn resolve(&self, reference: &str) -> Result<Option<CriImage>, CriError> {
        let record = match self.refs.get(self.namespace, reference) {
            Ok(record) => record,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(resolve_error(reference, e)),
        };
        let mut target = record.target.digest.clone();
        if INDEX_TYPES.contains(&record.target.media_type.as_str()) {
            let Some((index, _)) = self.json(reference, &target)? else {
                return Ok(None);
            };
            let manifests = index
                .get("manifests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let for_host = manifests.iter().find(|m| {
                m.pointer("/platform/os").and_then(Value::as_str) == Some(std::env::consts::OS)
                    && m.pointer("/platform/architecture").and_then(Value::as_str)
                        == Some(host_arch())
            });
            match for_host.or(manifests.first()).and_then(digest_at) {
                Some(manifest) => target = manifest,
                None => return Ok(None),
            }
        }
        let Some((manifest, manifest_size)) = self.json(reference, &target)? else {
            return Ok(None);
        };
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
        let id = ImageId::from(config);
        let image = match self.images.get(&id) {
            Ok(image) => image,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(resolve_error(reference, e)),
        };
        Ok(Some(CriImage {
            chain_id: image
                .top_chain_id()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            size: manifest_size + config_size + layers_size,
            spec: Some(image),
            pinned: record
                .labels
                .get(PINNED_LABEL)
                .is_some_and(|v| v == "pinned"),
            ..CriImage::new(id, reference)
        }))
    }
}
