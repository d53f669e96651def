//! The registry client's error type.

use imgstore_backend::ErrorKind;
use imgstore_digest::Digest;

/// A registry request that failed, naming the request and what went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The reference does not parse, or names no repository.
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why it is refused.
        reason: String,
    },
    /// The connection failed (refused, reset, timed out, TLS).
    #[error("{method} {url}: {source}")]
    Transport {
        /// The HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The registry's TLS certificate is not trusted (unknown issuer,
    /// expired, for another name): refused, saying how to trust it.
    #[error(
        "{method} {url}: the registry's certificate is not trusted ({reason}); \
         trust its CA in {} or the system's roots, or do not verify it (--tls-verify=false)",
        .ca_file.display()
    )]
    UntrustedCertificate {
        /// The HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// What is wrong with the certificate, in rustls's words.
        reason: String,
        /// Where Docker's `certs.d` would hold the registry's CA.
        ca_file: std::path::PathBuf,
    },
    /// The registry answered with an error status; `message` is its error
    /// body (`errors[].code: message`) or the start of the body's text.
    #[error("{method} {url}: {status}{}", if .message.is_empty() { String::new() } else { format!(": {}", .message) })]
    Status {
        /// The HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// What the registry said.
        message: String,
    },
    /// A manifest larger than containerd's limit.
    #[error("{url}: the manifest is more than {limit} bytes")]
    ManifestTooLarge {
        /// The URL requested.
        url: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// Content that does not hash to the digest it was asked or announced as.
    #[error("{url}: the registry sent content that hashes to {actual}, not {expected}")]
    DigestMismatch {
        /// The URL requested.
        url: String,
        /// The digest asked for (or announced in `Docker-Content-Digest`).
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// More redirects than a request may follow (a loop).
    #[error("{url}: more than {max} redirects")]
    TooManyRedirects {
        /// The URL first requested.
        url: String,
        /// The limit.
        max: usize,
    },
    /// A CA certificate of a registry's `certs.d` directory is unreadable.
    #[error("{}: {reason}", .path.display())]
    Certificates {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Docker's credentials file (or its helper program) failed.
    #[error("{}: {reason}", .path.display())]
    Credentials {
        /// The credentials file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A response the protocol does not allow (no `Location` on an upload,
    /// a token endpoint without a token, a bad `Docker-Content-Digest`).
    #[error("{url}: {reason}")]
    Protocol {
        /// The URL requested.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl RegistryError {
    /// containerd's error kind: 404 is `NotFound`, 401 and 403
    /// `FailedPrecondition` (credentials needed), bad content
    /// `DataCorruption`, a bad reference `InvalidArgument`, the rest `Io`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::InvalidReference { .. }
            | RegistryError::Certificates { .. }
            | RegistryError::Credentials { .. } => ErrorKind::InvalidArgument,
            RegistryError::Status { status: 404, .. } => ErrorKind::NotFound,
            RegistryError::Status {
                status: 401 | 403, ..
            } => ErrorKind::FailedPrecondition,
            RegistryError::ManifestTooLarge { .. } | RegistryError::DigestMismatch { .. } => {
                ErrorKind::DataCorruption
            }
            RegistryError::Transport { .. }
            | RegistryError::UntrustedCertificate { .. }
            | RegistryError::Status { .. }
            | RegistryError::TooManyRedirects { .. }
            | RegistryError::Protocol { .. } => ErrorKind::Io,
        }
    }
}
