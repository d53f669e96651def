//! Pull from and push to OCI registries (distribution spec 1.1, Docker
//! Registry HTTP API v2).
//!
//! [`Client`] speaks to one registry: the `/v2/` ping, manifests by tag
//! or digest (containerd's `Accept` list, at most 4 MiB, checked against
//! the digest asked for and `Docker-Content-Digest`), blobs (HEAD, then
//! GET, streamed), monolithic uploads, redirects (credentials only to the
//! registry's own host), 429/5xx retried with a bounded backoff, and
//! anonymous, Basic and Bearer-token auth. It is blocking (ureq over
//! rustls); docs/ARCHITECTURE.md says why.
//!
//! [`Store::pull`](crate::Store::pull) feeds the same plan and apply as an
//! OCI layout import, with the registry as the source of blobs:
//! verified while they stream into the content store, layers already
//! stored not downloaded, all or nothing.
//! [`Store::push`](crate::Store::push) uploads what a registry lacks of an
//! image, then its manifest.

mod client;
mod credentials;
mod error;
mod pull;
mod push;

pub use client::{
    Client, ClientOptions, Credentials, DEFAULT_CERTS_DIR, FetchedManifest, MAX_MANIFEST_BYTES,
    is_loopback,
};
pub use credentials::{DOCKER_HUB_KEY, DockerConfig, config_key, login, login_host};
pub use error::RegistryError;
pub use pull::{LayerStatus, PROGRESS_STEP, PullEvent, PullOptions, PullReport};
pub(crate) use pull::{ProgressReader, RegistrySource, Remote};
pub use push::{DEFAULT_CHUNK_SIZE, PushEvent, PushOptions, PushReport, PushStatus};
