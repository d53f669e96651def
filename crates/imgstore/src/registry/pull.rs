//! [`Store::pull`]: a registry's image into the store, through the import's
//! plan and apply.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;

use imgstore_backend::StoreBackend;
use imgstore_digest::Digest;
use imgstore_refs::reference::Reference;

use super::{Client, ClientOptions, FetchedManifest, RegistryError};
use crate::AnyBackend;
use crate::import::PlatformChoice;
use crate::oci::{Desc, INDEX_TYPES, Imported, Layout, MANIFEST_TYPES, Plan, check_name_digest};
use crate::{Error, Result, Store};

/// How [`Store::pull`] pulls.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PullOptions {
    /// Which manifest of a multi-platform index to take: this host's by
    /// default (the import's one platform rule), or one given
    /// (`--platform`).
    pub platform: PlatformChoice,
    /// How to reach the registry (insecure registries, credentials).
    pub client: ClientOptions,
    /// Layers downloaded at once: 3 by default, as Docker's
    /// `max-concurrent-downloads` (0 counts as 1).
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> PullOptions {
        PullOptions {
            platform: PlatformChoice::default(),
            client: ClientOptions::default(),
            max_concurrent_downloads: 3,
        }
    }
}

impl PullOptions {
    /// Options taking `platform` of multi-platform indexes.
    pub fn with_platform(platform: PlatformChoice) -> PullOptions {
        PullOptions {
            platform,
            ..PullOptions::default()
        }
    }
}

/// What happens to one layer during a pull, in Docker's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerStatus {
    /// Stored already (chain and blob): not downloaded.
    AlreadyExists,
    /// To be downloaded.
    PullingFsLayer,
    /// To be downloaded once a download slot is free.
    Waiting,
    /// Downloading: `current` of `total` bytes received. Reported when the
    /// download starts (0), every [`PROGRESS_STEP`] bytes, and at its end
    /// (`current == total`).
    Downloading {
        /// Bytes received so far.
        current: u64,
        /// The blob's size.
        total: u64,
    },
    /// Downloaded; its digest and diff ID were checked as it streamed.
    VerifyingChecksum,
    /// Downloaded and verified.
    DownloadComplete,
    /// Registered in the layer store.
    PullComplete,
}

impl fmt::Display for LayerStatus {
    /// Docker's status line: `Already exists`, `Pulling fs layer`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayerStatus::AlreadyExists => "Already exists",
            LayerStatus::PullingFsLayer => "Pulling fs layer",
            LayerStatus::Waiting => "Waiting",
            LayerStatus::Downloading { .. } => "Downloading",
            LayerStatus::VerifyingChecksum => "Verifying Checksum",
            LayerStatus::DownloadComplete => "Download complete",
            LayerStatus::PullComplete => "Pull complete",
        })
    }
}

/// Bytes between two progress reports of a blob being downloaded or
/// uploaded ([`LayerStatus::Downloading`], `PushStatus::Pushing`).
pub const PROGRESS_STEP: u64 = 512 << 10;

/// A reader that tells `report` how many bytes it has handed out: at its
/// start (0), every [`PROGRESS_STEP`] bytes, and when it reaches `total`.
pub(crate) struct ProgressReader<R, F> {
    inner: R,
    current: u64,
    reported: u64,
    total: u64,
    report: F,
}

impl<R: Read, F: FnMut(u64)> ProgressReader<R, F> {
    /// Wraps `inner` (of `total` bytes), reporting 0 now.
    pub(crate) fn new(inner: R, total: u64, mut report: F) -> ProgressReader<R, F> {
        report(0);
        ProgressReader {
            inner,
            current: 0,
            reported: 0,
            total,
            report,
        }
    }
}

impl<R: Read, F: FnMut(u64)> Read for ProgressReader<R, F> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.current += n as u64;
        let done = self.current == self.total && self.reported < self.total;
        if n > 0 && (done || self.current - self.reported >= PROGRESS_STEP) {
            self.reported = self.current;
            (self.report)(self.current);
        }
        Ok(n)
    }
}

/// One step of a pull, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullEvent {
    /// The layer's blob digest (Docker shows its first 12 hex digits).
    pub layer: Digest,
    /// What happened to it.
    pub status: LayerStatus,
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    /// The name that now points at what was pulled, in full form
    /// (`docker.io/library/busybox:latest`).
    pub name: String,
    /// The digest of the manifest or index the name points at.
    pub digest: Digest,
    /// The images stored (one, or one per platform taken).
    pub images: Vec<Imported>,
    /// True when the name pointed at this digest already.
    pub up_to_date: bool,
    /// Layer blobs downloaded.
    pub blobs_downloaded: u64,
    /// HTTP requests sent.
    pub requests: u64,
}

/// The repository a pull reads, shareable by the threads that download
/// layers.
pub(crate) struct Remote<'a> {
    client: &'a Client,
    repository: String,
    /// `host/repository`, naming the source in errors.
    pub(crate) location: PathBuf,
}

impl Remote<'_> {
    /// A blob as a stream, after a HEAD that checks it is there: its
    /// length as the registry announces it (the descriptor's if it does
    /// not); the content store verifies the bytes.
    pub(crate) fn open_blob(&self, desc: &Desc) -> Result<(Box<dyn Read + Send + '_>, u64)> {
        let Some(size) = self.client.blob_size(&self.repository, &desc.digest)? else {
            return Err(Error::BlobNotFound {
                digest: desc.digest.clone(),
                layout: self.location.clone(),
            });
        };
        // A HEAD without a length (allowed) is checked while streaming.
        let size = if size == 0 { desc.size } else { size };
        let reader = self
            .client
            .open_blob(&self.repository, &desc.digest, size)?;
        Ok((reader, size))
    }
}

/// The registry side of a pull's [`Layout`]: the repository, the manifest
/// fetched by tag (not fetched twice), and the progress observer.
pub(crate) struct RegistrySource<'a> {
    pub(crate) remote: Remote<'a>,
    /// Layers downloaded at once (at least 1).
    pub(crate) max_concurrent_downloads: usize,
    top: FetchedManifest,
    /// The store's content: a config stored already is read from here.
    stored: &'a AnyBackend,
    progress: RefCell<&'a mut dyn FnMut(&PullEvent)>,
}

impl RegistrySource<'_> {
    /// Tells the observer.
    pub(crate) fn report(&self, event: &PullEvent) {
        if let Ok(mut progress) = self.progress.try_borrow_mut() {
            (*progress)(event);
        }
    }

    /// A JSON blob (the caller checks its size and digest): a manifest or
    /// index from the manifest endpoint (the one fetched by tag is not
    /// fetched again); a config from the store when it holds it already,
    /// else downloaded.
    pub(crate) fn json_blob(&self, desc: &Desc) -> Result<Vec<u8>> {
        let media_type = desc.media_type.as_str();
        if MANIFEST_TYPES.contains(&media_type) || INDEX_TYPES.contains(&media_type) {
            if desc.digest == self.top.digest {
                return Ok(self.top.bytes.clone());
            }
            return Ok(self
                .remote
                .client
                .get_manifest(&self.remote.repository, desc.digest.as_str())?
                .bytes);
        }
        if let Ok(bytes) = self.stored.get(&desc.digest) {
            return Ok(bytes);
        }
        let (reader, _) = self.remote.open_blob(desc)?;
        let mut bytes = Vec::new();
        // One byte more than announced tells a longer blob from the right one.
        reader
            .take(desc.size.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Io {
                operation: "download",
                path: self.remote.location.join(desc.digest.as_str()),
                source,
            })?;
        Ok(bytes)
    }
}

/// Parses a user's reference the way `docker pull` does: `busybox` is
/// `docker.io/library/busybox:latest`.
pub(crate) fn parse_reference(reference: &str) -> Result<Reference> {
    Reference::parse_normalized(reference)
        .map(Reference::with_default_tag)
        .map_err(|e| {
            RegistryError::InvalidReference {
                reference: reference.to_owned(),
                reason: e.to_string(),
            }
            .into()
        })
}

impl Store {
    /// Pulls `reference` (`busybox`, `127.0.0.1:5000/app:1`,
    /// `repo@sha256:…`) from its registry, as `docker pull` does: the
    /// manifest (of an index, the one `options.platform` chooses), its
    /// config and the layers not stored yet, each streamed into the content
    /// store while its digest and diff ID are checked (the OCI import's
    /// path). All or nothing: nothing is visible until the image is whole,
    /// and a failure leaves names and images as they were. Then the name
    /// (in full form) points at the manifest or index pulled.
    pub fn pull(&self, reference: &str, options: &PullOptions) -> Result<PullReport> {
        self.pull_with_progress(reference, options, &mut |_| {})
    }

    /// [`pull`](Store::pull), telling `progress` what happens to each layer.
    pub fn pull_with_progress(
        &self,
        reference: &str,
        options: &PullOptions,
        progress: &mut dyn FnMut(&PullEvent),
    ) -> Result<PullReport> {
        let parsed = parse_reference(reference)?;
        let client = Client::new(parsed.domain(), &options.client)?;
        let name = parsed.to_string();
        let wanted = match (parsed.digest(), parsed.tag()) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        let top = client.get_manifest(parsed.path(), &wanted)?;
        let size = top.bytes.len() as u64;
        let desc = Desc::new(&top.media_type, top.digest.clone(), size);
        check_name_digest(&name, &desc.digest)?;
        let before = self
            .refs
            .get(&self.namespace, &name)
            .ok()
            .map(|record| record.target.digest.clone());
        let source = RegistrySource {
            remote: Remote {
                client: &client,
                repository: parsed.path().to_owned(),
                location: PathBuf::from(parsed.name()),
            },
            max_concurrent_downloads: options.max_concurrent_downloads.max(1),
            top,
            stored: &self.content,
            progress: RefCell::new(progress),
        };
        let layout = Layout::Registry(&source);
        let mut plan = Plan::default();
        plan.names.push((name.clone(), desc.clone()));
        plan.follow(
            &layout,
            &desc,
            std::slice::from_ref(&name),
            0,
            &options.platform,
        )?;
        let images = self.import_plan(&layout, &plan)?;
        Ok(PullReport {
            up_to_date: before.as_ref() == Some(&desc.digest),
            name,
            digest: desc.digest,
            images,
            blobs_downloaded: client.blob_downloads(),
            requests: client.requests(),
        })
    }
}
