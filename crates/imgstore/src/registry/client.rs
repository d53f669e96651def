//! A blocking client of one registry (distribution spec 1.1): manifests,
//! blobs, monolithic uploads, auth, redirects and retries.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use imgstore_digest::{Algorithm, Digest};
use ureq::http;

use super::RegistryError;

/// The `Accept` header of manifest requests, as containerd sends it.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, */*";
/// containerd's limit on a manifest's size.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Redirects one request may follow.
const MAX_REDIRECTS: usize = 10;
/// Attempts of a request answered 429 or 5xx (or whose connection failed).
const MAX_ATTEMPTS: u32 = 4;
/// The first wait before a retry; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How a [`Client`] reaches its registry.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Insecure registries (`host` or `host:port`), like Docker's
    /// `--insecure-registry`: HTTPS without verifying the certificate, or
    /// plain HTTP when HTTPS fails.
    pub insecure_registries: Vec<String>,
    /// False makes the client's registry insecure whatever its name, as
    /// podman's and skopeo's `--tls-verify=false`. True by default.
    pub tls_verify: bool,
    /// Credentials for Basic auth and for the token endpoint of the Bearer
    /// flow; anonymous without.
    pub credentials: Option<Credentials>,
    /// Docker's directory of per-registry certificate authorities:
    /// `<dir>/<host[:port]>/*.crt` (`ca.crt`) are trusted for that
    /// registry besides the system's roots; a registry with such a
    /// directory is spoken to over HTTPS, loopback or not.
    /// [`DEFAULT_CERTS_DIR`] when `None`.
    pub certs_dir: Option<PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            insecure_registries: Vec::new(),
            tls_verify: true,
            credentials: None,
            certs_dir: None,
        }
    }
}

/// Where Docker reads per-registry CA certificates.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// The CA certificates of `<certs_dir>/<host>/*.crt`, DER; empty when the
/// directory does not exist.
fn registry_roots(
    certs_dir: &Path,
    host: &str,
) -> Result<Vec<ureq::tls::Certificate<'static>>, RegistryError> {
    let dir = certs_dir.join(host);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RegistryError::Certificates {
                path: dir,
                reason: e.to_string(),
            });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "crt"))
        .collect();
    files.sort();
    let mut roots = Vec::new();
    for path in files {
        let bad = |reason: String| RegistryError::Certificates {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(cert) = item.map_err(|e| bad(e.to_string()))? {
                roots.push(cert);
            }
        }
    }
    Ok(roots)
}

/// A manifest (or index) as the registry sent it, checked against its digest.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    /// The bytes, verified.
    pub bytes: Vec<u8>,
    /// Its media type (the `Content-Type`, or the JSON's `mediaType`).
    pub media_type: String,
    /// Its digest.
    pub digest: Digest,
}

/// A request body: nothing, bytes (which a retry may send again), or a
/// stream (sent once; its length goes in a `Content-Length` header).
enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut dyn Read),
}

impl Payload<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Payload::Stream(..))
    }
}

/// How a client reaches its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    /// HTTPS, the certificate verified.
    Https,
    /// A loopback registry: plain HTTP until it answers that it speaks
    /// only HTTPS (a 400 saying so); then HTTPS, verified.
    PlainUntilTls,
    /// An insecure registry, as Docker reaches one: HTTPS without
    /// verifying the certificate, unless the first connection fails
    /// (nothing listens, or the registry speaks plain HTTP); then plain HTTP.
    HttpsUntilPlain,
}

/// The trust a client's HTTPS connections use.
#[derive(Debug, Clone)]
struct TlsTrust {
    /// False for an insecure registry: any certificate is accepted.
    verify: bool,
    /// The registry's own CAs, from `certs.d`, trusted besides the system's.
    extra_roots: Vec<ureq::tls::Certificate<'static>>,
}

impl TlsTrust {
    /// The TLS settings: the system's roots (rustls-native-certs: the
    /// platform's store, or `SSL_CERT_FILE` / `SSL_CERT_DIR`) and the
    /// registry's own; the bundled web roots only when the system has none.
    fn config(&self) -> ureq::tls::TlsConfig {
        if !self.verify {
            return ureq::tls::TlsConfig::builder()
                .disable_verification(true)
                .build();
        }
        // A file of the store that does not parse is skipped, as curl and
        // openssl skip it; the certificates that do parse are trusted.
        let system = rustls_native_certs::load_native_certs().certs;
        if system.is_empty() && self.extra_roots.is_empty() {
            return ureq::tls::TlsConfig::default();
        }
        let roots: Vec<ureq::tls::Certificate<'static>> = system
            .iter()
            .map(|der| ureq::tls::Certificate::from_der(der.as_ref()).to_owned())
            .chain(self.extra_roots.iter().cloned())
            .collect();
        ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
            .build()
    }
}

/// A blocking client of one registry. Tokens of the Bearer flow are cached
/// per scope; requests are counted (tests check what a pull downloads).
pub struct Client {
    /// For plain HTTP requests.
    plain_agent: ureq::Agent,
    /// For HTTPS requests, made at the first one (reading the system's
    /// roots costs milliseconds a loopback pull does not spend).
    tls_agent: OnceLock<ureq::Agent>,
    tls: TlsTrust,
    /// `host[:port]` as named in references (`docker.io` is reached as
    /// `registry-1.docker.io`).
    host: String,
    /// The host requests go to (`registry-1.docker.io` for `docker.io`).
    api_host: String,
    scheme: Scheme,
    /// Set when the client left its first scheme: a [`Scheme::PlainUntilTls`]
    /// registry turned out to speak HTTPS, a [`Scheme::HttpsUntilPlain`]
    /// one failed over HTTPS.
    switched: AtomicBool,
    /// Set when a [`Scheme::HttpsUntilPlain`] registry answered over HTTPS:
    /// a later failure is not a reason to switch.
    answered: AtomicBool,
    /// Where `certs.d` is looked up, named in certificate errors.
    certs_dir: PathBuf,
    credentials: Option<Credentials>,
    /// `Authorization` values by scope (Bearer), or under "" (Basic).
    authorizations: Mutex<HashMap<String, String>>,
    /// Held while a challenge is answered: requests of several threads
    /// (a push's uploads) challenged at once fetch one token, not one each.
    answering: Mutex<()>,
    requests: AtomicU64,
    blob_downloads: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base())
            .finish_non_exhaustive()
    }
}

/// True for a registry Docker speaks plain HTTP to without being told:
/// `localhost` and loopback addresses, any port.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An agent that leaves redirects and error statuses to [`Client::send`]:
/// credentials must not follow a redirect to another host, and a
/// registry's error body is worth showing.
fn agent(tls: ureq::tls::TlsConfig) -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(300)))
        .user_agent(concat!("imgstore/", env!("CARGO_PKG_VERSION")))
        .tls_config(tls)
        .build()
        .into()
}

impl Client {
    /// A client of the registry `host` (`docker.io`, `ghcr.io`,
    /// `127.0.0.1:5000`): HTTPS verified against the system's roots and
    /// the CAs of its `certs.d` directory. An insecure registry
    /// (`options.insecure_registries`, `options.tls_verify` false) is
    /// reached as Docker reaches one: HTTPS without verifying the
    /// certificate, and plain HTTP if the first HTTPS connection fails.
    /// A loopback registry without a `certs.d` directory (as Docker
    /// allows) is spoken to over plain HTTP until it answers that it speaks
    /// only HTTPS; then over HTTPS, verified. Connects lazily; fails only
    /// on a `certs.d` file that cannot be read.
    pub fn new(host: &str, options: &ClientOptions) -> Result<Client, RegistryError> {
        let certs_dir = options
            .certs_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CERTS_DIR));
        let roots = registry_roots(&certs_dir, host)?;
        let insecure = !options.tls_verify
            || options
                .insecure_registries
                .iter()
                .any(|h| h.as_str() == host);
        let scheme = if insecure {
            Scheme::HttpsUntilPlain
        } else if is_loopback(host) && roots.is_empty() {
            Scheme::PlainUntilTls
        } else {
            Scheme::Https
        };
        // Docker Hub's references say docker.io; its API lives here.
        let api_host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        Ok(Client {
            plain_agent: agent(ureq::tls::TlsConfig::default()),
            tls_agent: OnceLock::new(),
            tls: TlsTrust {
                verify: !insecure,
                extra_roots: roots,
            },
            host: host.to_owned(),
            api_host: api_host.to_owned(),
            scheme,
            switched: AtomicBool::new(false),
            answered: AtomicBool::new(false),
            certs_dir,
            credentials: options.credentials.clone(),
            authorizations: Mutex::new(HashMap::new()),
            answering: Mutex::new(()),
            requests: AtomicU64::new(0),
            blob_downloads: AtomicU64::new(0),
        })
    }

    /// The registry as references name it.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `https://host` or `http://host`: where requests go now.
    fn base(&self) -> String {
        let switched = self.switched.load(Ordering::Relaxed);
        let https = match self.scheme {
            Scheme::Https => true,
            Scheme::PlainUntilTls => switched,
            Scheme::HttpsUntilPlain => !switched,
        };
        let scheme = if https { "https" } else { "http" };
        format!("{scheme}://{}", self.api_host)
    }

    /// The agent for `url`: the HTTPS one (made now if need be) or the plain one.
    fn agent_for(&self, url: &str) -> &ureq::Agent {
        if url.starts_with("https://") {
            self.tls_agent.get_or_init(|| agent(self.tls.config()))
        } else {
            &self.plain_agent
        }
    }

    /// The error of a request whose connection failed: a certificate the
    /// client does not trust is named as such, with how to trust it.
    fn transport_error(&self, method: &str, url: &str, source: ureq::Error) -> RegistryError {
        match certificate_problem(&source) {
            Some(reason) => RegistryError::UntrustedCertificate {
                method: method.to_owned(),
                url: url.to_owned(),
                reason,
                ca_file: self.certs_dir.join(&self.host).join("ca.crt"),
            },
            None => transport(method, url, source),
        }
    }

    /// HTTP requests sent so far (every attempt, redirect and token fetch).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Blob downloads (GETs of `/blobs/`) started so far.
    pub fn blob_downloads(&self) -> u64 {
        self.blob_downloads.load(Ordering::Relaxed)
    }

    /// `GET /v2/`: checks the registry speaks the API (authenticating if it asks).
    pub fn ping(&self) -> Result<(), RegistryError> {
        let url = format!("{}/v2/", self.base());
        let response = self.send("GET", &url, "", &[], Payload::Empty)?;
        expect_status(response, "GET", &url, &[200]).map(drop)
    }

    /// The manifest or index `reference` (a tag or a digest) of `repository`,
    /// at most [`MAX_MANIFEST_BYTES`], verified: against the digest asked
    /// for, and against `Docker-Content-Digest` when the registry sends it.
    pub fn get_manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base());
        let response = self.send(
            "GET",
            &url,
            &pull_scope(repository),
            &[("Accept", MANIFEST_ACCEPT)],
            Payload::Empty,
        )?;
        let response = expect_status(response, "GET", &url, &[200])?;
        let content_type = header(&response, "Content-Type");
        let announced = header(&response, "Docker-Content-Digest");
        let too_large = || RegistryError::ManifestTooLarge {
            url: url.clone(),
            limit: MAX_MANIFEST_BYTES,
        };
        if header(&response, "Content-Length")
            .and_then(|len| len.parse::<u64>().ok())
            .is_some_and(|len| len > MAX_MANIFEST_BYTES)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader()
            .take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| transport("GET", &url, ureq::Error::Io(e)))?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(too_large());
        }
        let asked = reference.parse::<Digest>().ok();
        let mut digest = None;
        for expected in asked.into_iter().chain(
            announced
                .map(|value| {
                    value
                        .parse::<Digest>()
                        .map_err(|e| RegistryError::Protocol {
                            url: url.clone(),
                            reason: format!("Docker-Content-Digest {value:?}: {e}"),
                        })
                })
                .transpose()?,
        ) {
            let actual = expected.algorithm().from_bytes(&bytes);
            if actual != expected {
                return Err(RegistryError::DigestMismatch {
                    url,
                    expected,
                    actual,
                });
            }
            digest = Some(expected);
        }
        let digest = digest.unwrap_or_else(|| Algorithm::Sha256.from_bytes(&bytes));
        let media_type = content_type
            .map(|value| value.split(';').next().unwrap_or("").trim().to_owned())
            .filter(|t| t.starts_with("application/vnd."))
            .or_else(|| json_media_type(&bytes))
            .unwrap_or_default();
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// `HEAD` of a blob: its size when the registry has it, `None` on 404.
    pub fn blob_size(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        self.head_blob(repository, digest, &pull_scope(repository))
    }

    fn head_blob(
        &self,
        repository: &str,
        digest: &Digest,
        scope: &str,
    ) -> Result<Option<u64>, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base());
        let response = self.send("HEAD", &url, scope, &[], Payload::Empty)?;
        if response.status().as_u16() == 404 {
            return Ok(None);
        }
        let response = expect_status(response, "HEAD", &url, &[200])?;
        Ok(header(&response, "Content-Length").and_then(|len| len.parse().ok()))
    }

    /// A blob's `size` bytes as a stream (the caller verifies them: the
    /// content store does as it writes). A download cut short (the
    /// connection fails, or ends before `size` bytes) resumes where it
    /// stopped with a `Range` request, up to 3 times; then the read fails
    /// naming the blob and how far it got.
    pub fn open_blob<'c>(
        &'c self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<Box<dyn Read + Send + 'c>, RegistryError> {
        let url = format!("{}/v2/{repository}/blobs/{digest}", self.base());
        self.blob_downloads.fetch_add(1, Ordering::Relaxed);
        let scope = pull_scope(repository);
        let response = self.send("GET", &url, &scope, &[], Payload::Empty)?;
        let response = expect_status(response, "GET", &url, &[200])?;
        Ok(Box::new(ResumingBlob {
            client: self,
            url,
            scope,
            body: body_reader(response),
            offset: 0,
            size,
            resumes: 0,
        }))
    }

    /// True when the registry has the blob in `repository` (for a push).
    pub fn has_blob_for_push(
        &self,
        repository: &str,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        Ok(self
            .head_blob(repository, digest, &push_scope(repository))?
            .is_some())
    }

    /// Uploads a blob of `size` bytes read from `reader`: `POST` an
    /// upload, then, for a blob of at most `chunk_size` bytes, one `PUT` of
    /// the bytes with `?digest=` (monolithic); for a larger one, `PATCH`es
    /// of `chunk_size` bytes each with their `Content-Range` (at least the
    /// registry's `OCI-Chunk-Min-Length`), then an empty `PUT` with
    /// `?digest=` (chunked). A `chunk_size` of 0 uploads every blob whole.
    /// Returns the `PATCH`es sent.
    pub fn put_blob(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        reader: &mut dyn Read,
        chunk_size: u64,
    ) -> Result<u64, RegistryError> {
        let scope = push_scope(repository);
        let url = format!("{}/v2/{repository}/blobs/uploads/", self.base());
        let response = self.send("POST", &url, &scope, &[], Payload::Bytes(&[]))?;
        let response = expect_status(response, "POST", &url, &[202])?;
        let mut location = upload_location(&response, &url)?;
        let min_chunk = header(&response, "OCI-Chunk-Min-Length")
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        let mut patches = 0;
        if chunk_size > 0 && size > chunk_size {
            let chunk_size = chunk_size.max(min_chunk);
            let mut offset = 0;
            while offset < size {
                let length = chunk_size.min(size - offset);
                let range = format!("{offset}-{}", offset + length - 1);
                let content_length = length.to_string();
                let mut chunk = (&mut *reader).take(length);
                let response = self.send(
                    "PATCH",
                    &location,
                    &scope,
                    &[
                        ("Content-Type", "application/octet-stream"),
                        ("Content-Length", &content_length),
                        ("Content-Range", &range),
                    ],
                    Payload::Stream(&mut chunk),
                )?;
                let response = expect_status(response, "PATCH", &location, &[202])?;
                location = upload_location(&response, &location)?;
                offset += length;
                patches += 1;
            }
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let put_url = format!(
            "{location}{separator}digest={}",
            percent_encode(digest.as_str())
        );
        let response = if patches > 0 {
            self.send(
                "PUT",
                &put_url,
                &scope,
                &[("Content-Length", "0")],
                Payload::Bytes(&[]),
            )?
        } else {
            let length = size.to_string();
            self.send(
                "PUT",
                &put_url,
                &scope,
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", &length),
                ],
                Payload::Stream(reader),
            )?
        };
        expect_status(response, "PUT", &put_url, &[201])?;
        Ok(patches)
    }

    /// Asks the registry to link a blob `from` another repository of its
    /// own into `repository` (cross-repository mount): true when it did
    /// (201). A registry that cannot answers 202, starting an ordinary
    /// upload, which is left unused (it expires): false.
    pub fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        // Both repositories' scopes: pushing to one, pulling from the other.
        let scope = format!("{} {}", push_scope(repository), pull_scope(from));
        let url = format!(
            "{}/v2/{repository}/blobs/uploads/?mount={}&from={}",
            self.base(),
            percent_encode(digest.as_str()),
            percent_encode(from)
        );
        let response = self.send("POST", &url, &scope, &[], Payload::Bytes(&[]))?;
        let response = expect_status(response, "POST", &url, &[201, 202])?;
        Ok(response.status().as_u16() == 201)
    }

    /// Uploads a manifest under `reference` (a tag or its digest); returns
    /// the digest the registry announced, checked against the bytes'.
    pub fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest, RegistryError> {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base());
        let response = self.send(
            "PUT",
            &url,
            &push_scope(repository),
            &[("Content-Type", media_type)],
            Payload::Bytes(bytes),
        )?;
        let response = expect_status(response, "PUT", &url, &[201])?;
        let ours = Algorithm::Sha256.from_bytes(bytes);
        if let Some(value) = header(&response, "Docker-Content-Digest") {
            let announced = value
                .parse::<Digest>()
                .map_err(|e| RegistryError::Protocol {
                    url: url.clone(),
                    reason: format!("Docker-Content-Digest {value:?}: {e}"),
                })?;
            if announced != ours {
                return Err(RegistryError::DigestMismatch {
                    url,
                    expected: ours,
                    actual: announced,
                });
            }
        }
        Ok(ours)
    }

    /// Sends one request: authenticates on a 401 challenge (once), follows
    /// redirects (credentials only to the registry's own host), retries 429,
    /// 5xx and failed connections with a doubling backoff (bytes bodies
    /// only: a stream cannot be sent twice).
    fn send(
        &self,
        method: &str,
        url: &str,
        scope: &str,
        headers: &[(&str, &str)],
        mut payload: Payload<'_>,
    ) -> Result<http::Response<ureq::Body>, RegistryError> {
        let mut current = url.to_owned();
        let mut redirects = 0;
        let mut attempt = 0;
        let mut authenticated = false;
        loop {
            attempt += 1;
            let same_host = host_of(&current) == host_of(&self.base());
            let authorization = if same_host {
                self.authorization(scope)
            } else {
                None
            };
            let mut builder = http::Request::builder()
                .method(method)
                .uri(current.as_str());
            for (name, value) in headers {
                builder = builder.header(*name, *value);
            }
            if let Some(value) = &authorization {
                builder = builder.header("Authorization", value.as_str());
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let agent = self.agent_for(&current);
            let sent = match &mut payload {
                Payload::Empty => builder
                    .body(ureq::SendBody::none())
                    .map_err(|e| protocol(&current, e))
                    .map(|request| agent.run(request)),
                Payload::Bytes(bytes) => builder
                    .body(*bytes)
                    .map_err(|e| protocol(&current, e))
                    .map(|request| agent.run(request)),
                Payload::Stream(reader) => builder
                    .body(ureq::SendBody::from_reader(&mut **reader))
                    .map_err(|e| protocol(&current, e))
                    .map(|request| agent.run(request)),
            }?;
            let response = match sent {
                Ok(response) => {
                    if current.starts_with("https://") {
                        self.answered.store(true, Ordering::Relaxed);
                    }
                    response
                }
                Err(_) if payload.replayable() && self.plain_instead(&current) => {
                    current = format!("http://{}", &current["https://".len()..]);
                    continue;
                }
                Err(e) if payload.replayable() && attempt < MAX_ATTEMPTS && retriable(&e) => {
                    backoff(attempt);
                    continue;
                }
                Err(e) => return Err(self.transport_error(method, &current, e)),
            };
            let status = response.status().as_u16();
            let response =
                match self.https_instead(response, method, &current, payload.replayable()) {
                    Ok(https) => {
                        current = https;
                        continue;
                    }
                    Err(response) => response,
                };
            if matches!(status, 301 | 302 | 303 | 307 | 308)
                && let Some(location) = header(&response, "Location")
            {
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(RegistryError::TooManyRedirects {
                        url: url.to_owned(),
                        max: MAX_REDIRECTS,
                    });
                }
                current = resolve_location(&current, &location);
                continue;
            }
            if status == 401
                && same_host
                && !authenticated
                && payload.replayable()
                && let Some(challenge) = header(&response, "WWW-Authenticate")
            {
                authenticated = true;
                // Another thread may have answered the same challenge
                // while this request was under way: its answer is used.
                let _answering = self.answering.lock();
                if self.authorization(scope) == authorization {
                    self.answer_challenge(&challenge, scope, &current)?;
                }
                continue;
            }
            if (status == 429 || status >= 500) && payload.replayable() && attempt < MAX_ATTEMPTS {
                backoff(attempt);
                continue;
            }
            return Ok(response);
        }
    }

    /// For an insecure registry ([`Scheme::HttpsUntilPlain`]) whose HTTPS
    /// request for `url` failed before it ever answered over HTTPS: the
    /// client switches to plain HTTP (Docker's fallback), and true says to
    /// send the request again that way.
    fn plain_instead(&self, url: &str) -> bool {
        let switch = self.scheme == Scheme::HttpsUntilPlain
            && !self.answered.load(Ordering::Relaxed)
            && url.starts_with(&format!("https://{}/", self.api_host));
        if switch {
            self.switched.store(true, Ordering::Relaxed);
        }
        switch
    }

    /// For a registry spoken to over plain HTTP until it answers that it
    /// speaks only HTTPS: when `response` (to a request for `url` that can
    /// be sent again) is that answer (a 400 whose body names HTTPS, as Go's
    /// and nginx's servers send; for a `HEAD`, which has no body, the
    /// answer to a `GET /v2/`), the client switches to HTTPS and the URL
    /// to send the request to again. Otherwise the response, unchanged.
    fn https_instead(
        &self,
        response: http::Response<ureq::Body>,
        method: &str,
        url: &str,
        replayable: bool,
    ) -> Result<String, http::Response<ureq::Body>> {
        let plain_base = format!("http://{}/", self.api_host);
        if self.scheme != Scheme::PlainUntilTls
            || response.status().as_u16() != 400
            || !replayable
            || !url.starts_with(&plain_base)
        {
            return Err(response);
        }
        let says_https = |body: ureq::Body| {
            let mut bytes = Vec::new();
            // An unreadable body is no such answer; the status says the rest.
            let _ = body.into_reader().take(64 << 10).read_to_end(&mut bytes);
            let https = String::from_utf8_lossy(&bytes).contains("HTTPS");
            (https, bytes)
        };
        let (parts, body) = response.into_parts();
        let (mut https, bytes) = says_https(body);
        if method == "HEAD" {
            self.requests.fetch_add(1, Ordering::Relaxed);
            https = self
                .plain_agent
                .get(format!("{plain_base}v2/"))
                .call()
                .is_ok_and(|ping| ping.status().as_u16() == 400 && says_https(ping.into_body()).0);
        }
        if https {
            self.switched.store(true, Ordering::Relaxed);
            return Ok(format!("https://{}", &url["http://".len()..]));
        }
        Err(http::Response::from_parts(
            parts,
            ureq::Body::builder().data(bytes),
        ))
    }

    /// The `Authorization` value known for `scope`: its Bearer token, or Basic.
    fn authorization(&self, scope: &str) -> Option<String> {
        let known = self.authorizations.lock().ok()?;
        known.get(scope).or_else(|| known.get("")).cloned()
    }

    /// Learns how to authenticate from a `WWW-Authenticate` challenge:
    /// Basic with the credentials, or a Bearer token fetched from the realm
    /// for the scope (with the credentials, if any), cached by scope.
    fn answer_challenge(
        &self,
        challenge: &str,
        scope: &str,
        url: &str,
    ) -> Result<(), RegistryError> {
        let (scheme, params) = parse_challenge(challenge);
        let value = if scheme.eq_ignore_ascii_case("basic") {
            let Some(credentials) = &self.credentials else {
                // Anonymous: the 401 is the answer, shown to the user.
                return Ok(());
            };
            let value = basic(credentials);
            if let Ok(mut known) = self.authorizations.lock() {
                known.insert(String::new(), value);
            }
            return Ok(());
        } else if scheme.eq_ignore_ascii_case("bearer") {
            let realm = params.get("realm").ok_or_else(|| RegistryError::Protocol {
                url: url.to_owned(),
                reason: format!("a Bearer challenge without realm: {challenge}"),
            })?;
            let mut query = Vec::new();
            if let Some(service) = params.get("service") {
                query.push(format!("service={}", percent_encode(service)));
            }
            let scope = if scope.is_empty() {
                params.get("scope").cloned().unwrap_or_default()
            } else {
                scope.to_owned()
            };
            // Several scopes (a mount's) are several parameters.
            for scope in scope.split(' ').filter(|s| !s.is_empty()) {
                query.push(format!("scope={}", percent_encode(scope)));
            }
            let token_url = if query.is_empty() {
                realm.clone()
            } else {
                let separator = if realm.contains('?') { '&' } else { '?' };
                format!("{realm}{separator}{}", query.join("&"))
            };
            format!("Bearer {}", self.fetch_token(&token_url)?)
        } else {
            return Ok(());
        };
        if let Ok(mut known) = self.authorizations.lock() {
            known.insert(scope.to_owned(), value);
        }
        Ok(())
    }

    /// `GET` of a token endpoint: `{"token": …}` (or `access_token`).
    fn fetch_token(&self, token_url: &str) -> Result<String, RegistryError> {
        let mut builder = http::Request::builder().method("GET").uri(token_url);
        if let Some(credentials) = &self.credentials {
            builder = builder.header("Authorization", basic(credentials));
        }
        let request = builder
            .body(ureq::SendBody::none())
            .map_err(|e| protocol(token_url, e))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let response = self
            .agent_for(token_url)
            .run(request)
            .map_err(|e| self.transport_error("GET", token_url, e))?;
        let response = expect_status(response, "GET", token_url, &[200])?;
        let mut bytes = Vec::new();
        response
            .into_body()
            .into_reader()
            .take(1 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| transport("GET", token_url, ureq::Error::Io(e)))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| RegistryError::Protocol {
                url: token_url.to_owned(),
                reason: format!("the token answer is not JSON: {e}"),
            })?;
        json.get("token")
            .or_else(|| json.get("access_token"))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| RegistryError::Protocol {
                url: token_url.to_owned(),
                reason: "the token answer holds no token".to_owned(),
            })
    }
}

/// Resumes of one blob download after it was cut short.
const MAX_RESUMES: u32 = 3;

/// A blob download that resumes with `Range: bytes=OFFSET-` when the
/// connection fails or ends early.
struct ResumingBlob<'c> {
    client: &'c Client,
    url: String,
    scope: String,
    body: ureq::BodyReader<'static>,
    /// Bytes handed out so far.
    offset: u64,
    /// Bytes the blob has (from its descriptor / HEAD).
    size: u64,
    resumes: u32,
}

impl ResumingBlob<'_> {
    /// Asks for the rest of the blob; a registry that ignores ranges (200)
    /// sends it whole, and the bytes already handed out are skipped.
    fn resume(&mut self, cause: std::io::Error) -> std::io::Result<()> {
        if self.resumes >= MAX_RESUMES {
            return Err(std::io::Error::new(
                cause.kind(),
                format!(
                    "{}: cut short after {} of {} bytes, {MAX_RESUMES} resumes: {cause}",
                    self.url, self.offset, self.size
                ),
            ));
        }
        self.resumes += 1;
        let range = format!("bytes={}-", self.offset);
        let response = self
            .client
            .send(
                "GET",
                &self.url,
                &self.scope,
                &[("Range", &range)],
                Payload::Empty,
            )
            .and_then(|response| expect_status(response, "GET", &self.url, &[200, 206]))
            .map_err(std::io::Error::other)?;
        let whole = response.status().as_u16() == 200;
        self.body = body_reader(response);
        if whole {
            let skipped = std::io::copy(
                &mut (&mut self.body).take(self.offset),
                &mut std::io::sink(),
            )?;
            if skipped < self.offset {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{}: shorter on a retry than before", self.url),
                ));
            }
        }
        Ok(())
    }
}

impl Read for ResumingBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            match self.body.read(buf) {
                Ok(0) if self.offset < self.size && !buf.is_empty() => {
                    let early = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the connection ended early",
                    );
                    self.resume(early)?;
                }
                Ok(n) => {
                    self.offset += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => self.resume(e)?,
            }
        }
    }
}

fn body_reader(response: http::Response<ureq::Body>) -> ureq::BodyReader<'static> {
    response
        .into_body()
        .into_with_config()
        .limit(u64::MAX)
        .reader()
}

fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

fn header(response: &http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// The absolute URL of an upload's `Location` (where its next request goes).
fn upload_location(
    response: &http::Response<ureq::Body>,
    url: &str,
) -> Result<String, RegistryError> {
    let location = header(response, "Location").ok_or_else(|| RegistryError::Protocol {
        url: url.to_owned(),
        reason: "the upload's answer has no Location".to_owned(),
    })?;
    Ok(resolve_location(url, &location))
}

/// What is wrong with the server's certificate, when that is why a
/// connection failed (rustls's words: `invalid peer certificate: UnknownIssuer`).
fn certificate_problem(error: &ureq::Error) -> Option<String> {
    let tls = match error {
        ureq::Error::Rustls(tls) => tls,
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    match tls {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::UnsupportedNameType => Some(tls.to_string()),
        _ => None,
    }
}

/// The response when its status is one of `ok`; else the registry's error.
fn expect_status(
    response: http::Response<ureq::Body>,
    method: &str,
    url: &str,
    ok: &[u16],
) -> Result<http::Response<ureq::Body>, RegistryError> {
    let status = response.status().as_u16();
    if ok.contains(&status) {
        return Ok(response);
    }
    let mut body = Vec::new();
    // The body explains the status; a body that cannot be read leaves the
    // status alone to say it.
    let _ = response
        .into_body()
        .into_reader()
        .take(64 << 10)
        .read_to_end(&mut body);
    Err(RegistryError::Status {
        method: method.to_owned(),
        url: url.to_owned(),
        status,
        message: error_message(&body),
    })
}

/// `errors[].code: message` of a registry error body, else its start.
fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(errors) = json.get("errors").and_then(serde_json::Value::as_array)
    {
        let messages: Vec<String> = errors
            .iter()
            .map(|e| {
                let code = e
                    .get("code")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                let message = e
                    .get("message")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("");
                match (code.is_empty(), message.is_empty()) {
                    (false, false) => format!("{code}: {message}"),
                    (false, true) => code.to_owned(),
                    _ => message.to_owned(),
                }
            })
            .collect();
        if !messages.is_empty() {
            return messages.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

fn json_media_type(bytes: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    json.get("mediaType")?.as_str().map(str::to_owned)
}

fn transport(method: &str, url: &str, source: ureq::Error) -> RegistryError {
    RegistryError::Transport {
        method: method.to_owned(),
        url: url.to_owned(),
        source: Box::new(source),
    }
}

fn protocol(url: &str, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Protocol {
        url: url.to_owned(),
        reason: e.to_string(),
    }
}

/// Connection failures worth another attempt (not TLS or protocol errors).
fn retriable(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_)
    )
}

fn backoff(attempt: u32) {
    std::thread::sleep(FIRST_BACKOFF * 2u32.saturating_pow(attempt.saturating_sub(1)));
}

/// `scheme://host[:port]` of a URL, lower-cased, to compare origins.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// An absolute URL for a `Location` header (absolute, or relative to `base`).
fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let dir = base.rsplit_once('/').map_or(base, |(dir, _)| dir);
        format!("{dir}/{location}")
    }
}

/// `Basic base64(user:password)`.
fn basic(credentials: &Credentials) -> String {
    format!(
        "Basic {}",
        base64(format!("{}:{}", credentials.username, credentials.password).as_bytes())
    )
}

/// Standard base64 with padding (RFC 4648), for Basic auth.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` when it is not.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut bits: u32 = 0;
    let mut count = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The scheme and parameters of a `WWW-Authenticate` value:
/// `Bearer realm="…",service="…",scope="…"`.
fn parse_challenge(value: &str) -> (String, HashMap<String, String>) {
    let value = value.trim();
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_owned());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    (scheme.to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        for text in [&b""[..], b"f", b"fo", b"foo", b"alice:s3cret"] {
            assert_eq!(base64_decode(&base64(text)).as_deref(), Some(text));
        }
        assert_eq!(base64_decode("not base64!"), None);
    }

    #[test]
    fn bearer_challenge_parses_realm_service_and_scope() {
        let (scheme, params) = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(scheme, "Bearer");
        assert_eq!(params["realm"], "https://auth.docker.io/token");
        assert_eq!(params["service"], "registry.docker.io");
        assert_eq!(params["scope"], "repository:library/busybox:pull");
    }

    #[test]
    fn loopback_registries_are_recognised() {
        for host in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.8.9.1",
            "[::1]:5000",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["docker.io", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn locations_resolve_against_the_request() {
        assert_eq!(
            resolve_location(
                "http://r:5000/v2/a/blobs/uploads/",
                "/v2/a/blobs/uploads/u1?x=1"
            ),
            "http://r:5000/v2/a/blobs/uploads/u1?x=1"
        );
        assert_eq!(
            resolve_location("http://r:5000/v2/a", "https://s3.example/b"),
            "https://s3.example/b"
        );
        assert_eq!(host_of("http://R:5000/v2/"), "r:5000");
    }

    #[test]
    fn registry_error_bodies_are_summarised() {
        assert_eq!(
            error_message(
                br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#
            ),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(error_message(b"  not json \n"), "not json");
    }
}
