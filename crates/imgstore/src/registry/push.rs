//! [`Store::push`]: an image of the store into a registry.

use std::fmt;

use imgstore_backend::StoreBackend;
use imgstore_digest::Digest;
use serde_json::Value;

use super::pull::parse_reference;
use super::{Client, ClientOptions, ProgressReader};
use crate::oci::{MANIFEST_TYPES, RawConfig};
use crate::{AnyBackend, Error, Result, Store};

/// How [`Store::push`] pushes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PushOptions {
    /// How to reach the registry (insecure registries, credentials).
    pub client: ClientOptions,
    /// A blob larger than this is uploaded in chunks of this many bytes
    /// (`PATCH` with `Content-Range`, then `PUT ?digest=`), a smaller one
    /// in a single `PUT`: [`DEFAULT_CHUNK_SIZE`] by default; 0 sends every
    /// blob whole.
    pub chunk_size: u64,
    /// Layers uploaded at once: 5 by default, as Docker's
    /// `max-concurrent-uploads` (0 counts as 1).
    pub max_concurrent_uploads: usize,
}

/// The default [`PushOptions::chunk_size`]: 64 MiB, so most layers go in
/// one request and a large one in a few.
pub const DEFAULT_CHUNK_SIZE: u64 = 64 << 20;

impl Default for PushOptions {
    fn default() -> PushOptions {
        PushOptions {
            client: ClientOptions::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_concurrent_uploads: 5,
        }
    }
}

/// What happens to one layer during a push, in Docker's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushStatus {
    /// About to be checked.
    Preparing,
    /// To be checked and uploaded once an upload slot is free.
    Waiting,
    /// Uploading: `current` of `total` bytes sent. Reported when the upload
    /// starts (0), every [`PROGRESS_STEP`](super::PROGRESS_STEP) bytes, and
    /// at its end (`current == total`), before [`PushStatus::Pushed`].
    Pushing {
        /// Bytes sent so far.
        current: u64,
        /// The blob's size.
        total: u64,
    },
    /// The registry had it: not uploaded.
    LayerAlreadyExists,
    /// Uploaded.
    Pushed,
    /// Linked from another repository of the registry
    /// ([`PushEvent::mounted_from`]), not uploaded.
    Mounted,
}

impl fmt::Display for PushStatus {
    /// Docker's status line: `Preparing`, `Layer already exists`, `Pushed`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PushStatus::Preparing => "Preparing",
            PushStatus::Waiting => "Waiting",
            PushStatus::Pushing { .. } => "Pushing",
            PushStatus::LayerAlreadyExists => "Layer already exists",
            PushStatus::Pushed => "Pushed",
            PushStatus::Mounted => "Mounted from",
        })
    }
}

/// One step of a push, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// The layer's diff ID (Docker shows its first 12 hex digits).
    pub diff_id: Digest,
    /// The layer's blob digest.
    pub layer: Digest,
    /// What happened to it.
    pub status: PushStatus,
    /// For [`PushStatus::Mounted`], the repository it was mounted from.
    pub mounted_from: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct PushReport {
    /// The repository pushed to, in full form (`127.0.0.1:5000/app`).
    pub repository: String,
    /// The tag (or digest) the manifest was put under.
    pub tag: String,
    /// The manifest's digest, as the registry confirmed it.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// Blobs uploaded (layers and config).
    pub blobs_uploaded: u64,
    /// `PATCH` requests of chunked uploads (0 when every blob went whole).
    pub chunks_uploaded: u64,
}

/// Where a push's uploads go and how.
struct Upload<'a> {
    client: &'a Client,
    repository: &'a str,
    /// Another repository of the registry to mount blobs from.
    mount_from: Option<&'a str>,
    chunk_size: u64,
}

/// A blob a manifest lists.
struct ManifestBlob {
    digest: Digest,
    size: u64,
}

fn manifest_blob(value: &Value, manifest: &Digest) -> Result<ManifestBlob> {
    let bad = |reason: &str| Error::InvalidInput {
        what: format!("manifest {manifest}"),
        reason: reason.to_owned(),
    };
    let digest = value
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a descriptor without digest"))?
        .parse::<Digest>()?;
    let size = value
        .get("size")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("a descriptor without size"))?;
    Ok(ManifestBlob { digest, size })
}

impl Store {
    /// Pushes the image `image_or_name` (a name or image ID) to `reference`
    /// (`127.0.0.1:5000/app:1`; the tag defaults to `latest`), as `docker
    /// push` does: each blob of its manifest (config and layers) the
    /// registry lacks is uploaded, read from the content store (verified as
    /// it streams), then the manifest, under the tag. The manifest pushed is
    /// the one stored for the image: the name's own when it names a
    /// manifest, else the one for the image found through the names (a
    /// `docker save` image's is the one the import wrote). The registry's
    /// `Docker-Content-Digest` must be the manifest's.
    pub fn push(
        &self,
        image_or_name: &str,
        reference: &str,
        options: &PushOptions,
    ) -> Result<PushReport> {
        self.push_with_progress(image_or_name, reference, options, &mut |_| {})
    }

    /// [`push`](Store::push), telling `progress` what happens to each layer.
    pub fn push_with_progress(
        &self,
        image_or_name: &str,
        reference: &str,
        options: &PushOptions,
        progress: &mut dyn FnMut(&PushEvent),
    ) -> Result<PushReport> {
        let target = parse_reference(reference)?;
        let id = self.resolve(image_or_name)?;
        let own = imgstore_refs::reference::normalize(image_or_name)
            .ok()
            .and_then(|name| self.refs.get(&self.namespace, &name).ok())
            .map(|record| record.target.clone())
            .filter(|target| MANIFEST_TYPES.contains(&target.media_type.as_str()));
        let manifest = match own {
            Some(manifest) => manifest,
            None => self
                .find_manifest(&id)?
                .ok_or_else(|| Error::NoManifest { image: id.clone() })?,
        };
        let bytes = self.content.get(&manifest.digest)?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
            file: format!("manifest {}", manifest.digest),
            source,
        })?;
        let config = manifest_blob(json.get("config").unwrap_or(&Value::Null), &manifest.digest)?;
        let layers = json
            .get("layers")
            .and_then(Value::as_array)
            .map(|layers| {
                layers
                    .iter()
                    .map(|layer| manifest_blob(layer, &manifest.digest))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?
            .unwrap_or_default();
        let config_bytes = self.content.get(&config.digest)?;
        let diff_ids = serde_json::from_slice::<RawConfig>(&config_bytes)
            .map_err(|source| Error::InvalidJson {
                file: format!("config {}", config.digest),
                source,
            })?
            .diff_ids()?;
        if diff_ids.len() != layers.len() {
            return Err(Error::InvalidInput {
                what: format!("manifest {}", manifest.digest),
                reason: format!(
                    "{} layers, but config {} lists {} diff IDs",
                    layers.len(),
                    config.digest,
                    diff_ids.len()
                ),
            });
        }

        let client = Client::new(target.domain(), &options.client)?;
        let repository = target.path();
        // Docker lists layers top first.
        let order: Vec<usize> = (0..layers.len()).rev().collect();
        for &i in &order {
            progress(&PushEvent {
                diff_id: diff_ids[i].clone(),
                layer: layers[i].digest.clone(),
                status: PushStatus::Preparing,
                mounted_from: None,
            });
        }
        // Another repository of the same registry naming this image likely
        // holds its blobs: they are mounted from there, not uploaded.
        let mount_from = self
            .names_meaning(&id)?
            .iter()
            .filter_map(|name| {
                imgstore_refs::reference::Reference::parse_normalized(&name.name).ok()
            })
            .filter(|name| name.domain() == target.domain() && name.path() != target.path())
            .map(|name| name.path().to_owned())
            .min();
        let upload = Upload {
            client: &client,
            repository,
            mount_from: mount_from.as_deref(),
            chunk_size: options.chunk_size,
        };
        let mut sent = Sent::default();
        let workers = options.max_concurrent_uploads.clamp(1, order.len().max(1));
        for &i in order.iter().skip(workers) {
            progress(&PushEvent {
                diff_id: diff_ids[i].clone(),
                layer: layers[i].digest.clone(),
                status: PushStatus::Waiting,
                mounted_from: None,
            });
        }
        let blobs: Vec<&ManifestBlob> = order.iter().map(|&i| &layers[i]).collect();
        self.upload_layers(&upload, &blobs, workers, &mut |k, update| {
            let i = order[k];
            let status = match update {
                Update::Bytes(current) => PushStatus::Pushing {
                    current,
                    total: layers[i].size,
                },
                Update::Done(uploaded) => {
                    sent.add(uploaded);
                    uploaded.status
                }
            };
            progress(&PushEvent {
                diff_id: diff_ids[i].clone(),
                layer: layers[i].digest.clone(),
                status,
                mounted_from: mount_from.clone().filter(|_| status == PushStatus::Mounted),
            });
        })?;
        sent.add(upload_blob(&self.content, &upload, &config, &mut |_| {})?);
        let tag = match (target.tag(), target.digest()) {
            (Some(tag), _) => tag.to_owned(),
            (None, Some(digest)) => digest.to_string(),
            (None, None) => "latest".to_owned(),
        };
        let digest = client.put_manifest(repository, &tag, &manifest.media_type, &bytes)?;
        Ok(PushReport {
            repository: target.name(),
            tag,
            digest,
            size: bytes.len() as u64,
            blobs_uploaded: sent.blobs,
            chunks_uploaded: sent.chunks,
        })
    }

    /// Uploads `blobs` (a push's layers), `workers` at once; `report`
    /// hears, on this thread, the bytes each has sent and how each ended,
    /// by its index in `blobs`. The first failure in `blobs`' order is
    /// returned once the uploads under way end (none starts after it).
    fn upload_layers(
        &self,
        upload: &Upload<'_>,
        blobs: &[&ManifestBlob],
        workers: usize,
        report: &mut dyn FnMut(usize, Update),
    ) -> Result<()> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let content: &AnyBackend = &self.content;
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let (tx, updates) = std::sync::mpsc::channel::<(usize, Result<Update>)>();
        let mut failures: Vec<(usize, Error)> = Vec::new();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, failed) = (&next, &failed);
                scope.spawn(move || {
                    loop {
                        let k = next.fetch_add(1, Ordering::Relaxed);
                        if k >= blobs.len() || failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = upload_blob(content, upload, blobs[k], &mut |bytes| {
                            // The receiver outlives the workers.
                            let _ = tx.send((k, Ok(Update::Bytes(bytes))));
                        });
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if tx.send((k, result.map(Update::Done))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (k, update) in updates {
                match update {
                    Ok(update) => report(k, update),
                    Err(e) => failures.push((k, e)),
                }
            }
        });
        match failures.into_iter().min_by_key(|(k, _)| *k) {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}

/// What a push's upload of one layer tells its caller.
enum Update {
    /// Bytes sent so far.
    Bytes(u64),
    /// The upload ended.
    Done(Uploaded),
}

/// How one blob's upload ended.
#[derive(Clone, Copy)]
struct Uploaded {
    status: PushStatus,
    /// `PATCH` requests it took.
    chunks: u64,
}

/// What a push sent, added up.
#[derive(Default)]
struct Sent {
    blobs: u64,
    chunks: u64,
}

impl Sent {
    fn add(&mut self, uploaded: Uploaded) {
        if uploaded.status == PushStatus::Pushed {
            self.blobs += 1;
        }
        self.chunks += uploaded.chunks;
    }
}

/// Uploads a blob of `content` unless the registry has it, or can mount it
/// from the repository `upload.mount_from`: what happened. `sent` hears the
/// bytes sent so far.
fn upload_blob(
    content: &AnyBackend,
    upload: &Upload<'_>,
    blob: &ManifestBlob,
    sent: &mut dyn FnMut(u64),
) -> Result<Uploaded> {
    let (client, repository) = (upload.client, upload.repository);
    let done = |status| Uploaded { status, chunks: 0 };
    if client.has_blob_for_push(repository, &blob.digest)? {
        return Ok(done(PushStatus::LayerAlreadyExists));
    }
    if let Some(from) = upload.mount_from
        && client.mount_blob(repository, &blob.digest, from)?
    {
        return Ok(done(PushStatus::Mounted));
    }
    let reader = content.open_blob(&blob.digest)?;
    let mut reader = ProgressReader::new(reader, blob.size, sent);
    let chunks = client.put_blob(
        repository,
        &blob.digest,
        blob.size,
        &mut reader,
        upload.chunk_size,
    )?;
    Ok(Uploaded {
        status: PushStatus::Pushed,
        chunks,
    })
}
