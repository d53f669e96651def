//! Docker image references: `[domain/]path[:tag][@digest]`, parsed with
//! docker/distribution's grammar and normalised as the Docker CLI does.
//!
//! - A first path component is a domain when it contains `.` or `:`, is
//!   `localhost`, or has upper-case letters; otherwise the domain is
//!   `docker.io`, and a single-component name on it gets `library/`.
//!   `index.docker.io` is `docker.io`.
//! - Repository paths are lower case: components of `[a-z0-9]+` joined by
//!   `.`, `_`, `__` or runs of `-`, separated by `/`; domain plus path at most
//!   255 characters.
//! - A tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a tag of 64 lower-case hex
//!   characters is refused, being ambiguous with an image ID, and so is a
//!   name that is 64 hex characters.
//! - A digest follows go-digest's rules (`imgstore_digest`).
//!
//! ```
//! use imgstore_refs::reference::{familiar, normalize, Reference};
//!
//! assert_eq!(normalize("busybox")?, "docker.io/library/busybox:latest");
//! assert_eq!(familiar("docker.io/library/busybox:latest")?, "busybox:latest");
//!
//! let r = Reference::parse_normalized("localhost:5000/team/app:v1")?;
//! assert_eq!((r.domain(), r.path(), r.tag()), ("localhost:5000", "team/app", Some("v1")));
//! # Ok::<(), imgstore_refs::reference::ReferenceError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use imgstore_backend::ErrorKind;
use imgstore_digest::Digest;

use crate::glob::{BadPattern, path_match};

/// The registry of names without a domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag a name without tag or digest gets from [`Reference::with_default_tag`].
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository name (domain + `/` + path).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const MAX_TAG_LEN: usize = 128;

/// A reference that does not parse. All are `InvalidArgument`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// The empty string.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// Not `[domain/]path[:tag][@digest]` at all.
    #[error("invalid reference format: {reference:?}")]
    InvalidFormat {
        /// The input, shortened.
        reference: String,
    },
    /// A repository path with upper-case letters.
    #[error("invalid reference format: repository name ({name}) must be lowercase")]
    NameContainsUppercase {
        /// The path as given.
        name: String,
    },
    /// Domain and path longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A tag outside `[\w][\w.-]{0,127}`.
    #[error("invalid tag format: {tag:?}")]
    InvalidTag {
        /// The tag, shortened.
        tag: String,
    },
    /// A tag of 64 hex characters, which reads as an image ID.
    #[error("invalid tag {tag:?}: a 64-character hexadecimal tag is ambiguous with an image ID")]
    AmbiguousTag {
        /// The tag.
        tag: String,
    },
    /// A repository name of 64 hex characters, which reads as an image ID.
    #[error("invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")]
    AmbiguousName {
        /// The name.
        name: String,
    },
    /// A digest go-digest refuses.
    #[error("invalid digest format {digest:?}: {reason}")]
    InvalidDigest {
        /// The digest part, shortened.
        digest: String,
        /// go-digest's complaint.
        reason: String,
    },
}

impl ReferenceError {
    /// Always [`ErrorKind::InvalidArgument`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(150).collect()
}

/// A named reference, normalised: it always has a domain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses what a user types (`busybox`, `user/app:1`, `quay.io/x@sha256:…`)
    /// into its full form, as docker/distribution's `ParseNormalizedNamed`.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if is_identifier(s) {
            return Err(ReferenceError::AmbiguousName { name: s.to_owned() });
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder.split(':').next().unwrap_or_default();
        if remote_name.bytes().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::NameContainsUppercase {
                name: shorten(remote_name),
            });
        }
        let (rest, digest) = match remainder.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        let invalid = || ReferenceError::InvalidFormat {
            reference: shorten(s),
        };
        if !is_domain(domain) || !is_path(path) {
            return Err(invalid());
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(tag) = tag {
            if !is_tag(tag) {
                return Err(ReferenceError::InvalidTag { tag: shorten(tag) });
            }
            if is_identifier(tag) {
                return Err(ReferenceError::AmbiguousTag {
                    tag: tag.to_owned(),
                });
            }
        }
        let digest = digest
            .map(|d| {
                Digest::parse(d).map_err(|e| ReferenceError::InvalidDigest {
                    digest: shorten(d),
                    reason: e.to_string(),
                })
            })
            .transpose()?;
        Ok(Reference {
            domain: domain.to_owned(),
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The registry, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path on the registry, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name, `domain/path`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// True without tag and digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// The same reference with tag `latest` when it has neither tag nor
    /// digest (distribution's `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Reference {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// The name as Docker shows it: without `docker.io/`, and without
    /// `library/` for official single-component images.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as Docker shows it: familiar name, tag, digest.
    pub fn familiar_string(&self) -> String {
        let mut out = self.familiar_name();
        self.push_tag_and_digest(&mut out);
        out
    }

    fn push_tag_and_digest(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest.as_str());
        }
    }
}

impl fmt::Display for Reference {
    /// The full form: `domain/path[:tag][@digest]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = format!("{}/{}", self.domain, self.path);
        self.push_tag_and_digest(&mut out);
        f.write_str(&out)
    }
}

/// A stored reference's parts as Docker's listings show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamiliarParts<'a> {
    /// The name as [`Reference::familiar_name`] gives it.
    pub name: &'a str,
    /// The tag, if any.
    pub tag: Option<&'a str>,
    /// The digest, if any, as written.
    pub digest: Option<&'a str>,
}

/// The familiar parts of a reference in full form (what
/// [`Reference`]'s `Display` writes and stores keep), by slicing it without
/// validating it again: a listing reads thousands of stored names it
/// validated when they were written. `None` when `full` does not start with
/// a domain; the caller then parses it with [`Reference::parse_normalized`].
pub fn familiar_parts(full: &str) -> Option<FamiliarParts<'_>> {
    let (named, digest) = match full.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (full, None),
    };
    let (name, tag) = match named.rfind(':') {
        Some(i) if !named[i..].contains('/') => (&named[..i], Some(&named[i + 1..])),
        _ => (named, None),
    };
    let (domain, path) = name.split_once('/')?;
    if domain != DEFAULT_DOMAIN {
        let is_domain = domain.contains(['.', ':']) || domain == "localhost";
        return is_domain.then_some(FamiliarParts { name, tag, digest });
    }
    let name = match path.strip_prefix(OFFICIAL_REPO_PREFIX) {
        Some(rest) if !rest.contains('/') => rest,
        _ => path,
    };
    Some(FamiliarParts { name, tag, digest })
}

impl FromStr for Reference {
    type Err = ReferenceError;
    /// [`Reference::parse_normalized`].
    fn from_str(s: &str) -> Result<Reference, ReferenceError> {
        Reference::parse_normalized(s)
    }
}

/// A named reference or a bare digest, as distribution's `ParseAnyReference`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyReference {
    /// A name, maybe with tag and digest.
    Named(Reference),
    /// A digest alone (`sha256:…`, or 64 hex characters read as sha256).
    Digest(Digest),
}

impl AnyReference {
    /// A 64-hex string becomes `sha256:<hex>`, a valid digest stays a digest,
    /// anything else is parsed as a normalised name.
    pub fn parse(s: &str) -> Result<AnyReference, ReferenceError> {
        if is_identifier(s) {
            let digest = Digest::parse(&format!("sha256:{s}")).map_err(|e| {
                ReferenceError::InvalidDigest {
                    digest: shorten(s),
                    reason: e.to_string(),
                }
            })?;
            return Ok(AnyReference::Digest(digest));
        }
        if let Ok(digest) = Digest::parse(s) {
            return Ok(AnyReference::Digest(digest));
        }
        Reference::parse_normalized(s).map(AnyReference::Named)
    }

    /// Where it sorts among a CRI image's references.
    pub fn rank(&self) -> ReferenceRank {
        match self {
            AnyReference::Digest(_) => ReferenceRank::Digest,
            AnyReference::Named(r) => match (r.tag.is_some(), r.digest.is_some()) {
                (true, true) => ReferenceRank::NameTagDigest,
                (true, false) => ReferenceRank::NameTag,
                (false, true) => ReferenceRank::NameDigest,
                (false, false) => ReferenceRank::Name,
            },
        }
    }
}

impl fmt::Display for AnyReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyReference::Named(r) => r.fmt(f),
            AnyReference::Digest(d) => f.write_str(d.as_str()),
        }
    }
}

/// How much a reference says, most first: the order of containerd's CRI
/// image references.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReferenceRank {
    /// `name:tag@digest`.
    NameTagDigest,
    /// `name:tag`.
    NameTag,
    /// `name@digest`.
    NameDigest,
    /// `name`.
    Name,
    /// A digest alone.
    Digest,
    /// A string that does not parse.
    Unparsable,
}

/// The rank of one reference string.
pub fn rank(reference: &str) -> ReferenceRank {
    AnyReference::parse(reference).map_or(ReferenceRank::Unparsable, |r| r.rank())
}

/// Sorts references as containerd's CRI image store does: by
/// [`ReferenceRank`], then lexically. Parsed references come back in their
/// normalised form (`busybox` as `docker.io/library/busybox`, 64 hex as
/// `sha256:<hex>`); strings that do not parse come last, as given.
/// Duplicates are kept.
///
/// ```
/// use imgstore_refs::reference::sort_references;
///
/// let sorted = sort_references(["busybox", "not a ref", "busybox:1.36"]);
/// assert_eq!(sorted, ["docker.io/library/busybox:1.36", "docker.io/library/busybox", "not a ref"]);
/// ```
pub fn sort_references<I>(references: I) -> Vec<String>
where
    I: IntoIterator,
    I::Item: AsRef<str>,
{
    let mut parsed = Vec::new();
    let mut unparsable = Vec::new();
    for reference in references {
        let reference = reference.as_ref();
        match AnyReference::parse(reference) {
            Ok(r) => parsed.push((r.rank(), r.to_string())),
            Err(_) => unparsable.push(reference.to_owned()),
        }
    }
    parsed.sort();
    unparsable.sort();
    parsed
        .into_iter()
        .map(|(_, s)| s)
        .chain(unparsable)
        .collect()
}

/// `reference` in full form with the default tag: `busybox` ->
/// `docker.io/library/busybox:latest`.
pub fn normalize(reference: &str) -> Result<String, ReferenceError> {
    Ok(Reference::parse_normalized(reference)?
        .with_default_tag()
        .to_string())
}

/// `reference` as Docker shows it: `docker.io/library/busybox:latest` ->
/// `busybox:latest`.
pub fn familiar(reference: &str) -> Result<String, ReferenceError> {
    Ok(Reference::parse_normalized(reference)?.familiar_string())
}

/// Docker's `--filter reference=PATTERN` test (distribution's
/// `FamiliarMatch`): the shell `pattern` ([`path_match`]) against the
/// reference as Docker shows it (`busybox:latest`), then against its familiar
/// name alone (`busybox`). `Ok(false)` for a reference that does not parse.
///
/// ```
/// use imgstore_refs::reference::familiar_match;
///
/// assert_eq!(familiar_match("busybox", "docker.io/library/busybox:latest"), Ok(true));
/// assert_eq!(familiar_match("*:1.*", "docker.io/library/busybox:1.36"), Ok(true));
/// assert_eq!(familiar_match("demo/*", "registry.demo.test/demo/base:v1"), Ok(false));
/// ```
pub fn familiar_match(pattern: &str, reference: &str) -> Result<bool, BadPattern> {
    let Ok(reference) = Reference::parse_normalized(reference) else {
        return Ok(false);
    };
    if path_match(pattern, &reference.familiar_string())? {
        return Ok(true);
    }
    path_match(pattern, &reference.familiar_name())
}

/// 64 lower-case hex characters: an image ID, not a name.
fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// distribution's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (&str, String) {
    let (mut domain, remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, name),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN;
    }
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder.to_owned()
    };
    (domain, remainder)
}

/// `host[:port]`, host a domain name (components of `[A-Za-z0-9-]` not
/// starting or ending with `-`, joined by `.`) or `[ipv6]`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        if inside.is_empty() || !inside.bytes().all(|c| c.is_ascii_hexdigit() || c == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    let host_ok = domain.starts_with('[')
        || host.split('.').all(|c| {
            !c.is_empty()
                && !c.starts_with('-')
                && !c.ends_with('-')
                && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// Path components of `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn is_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_path_component)
}

fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !bytes.first().copied().is_some_and(alnum) || !bytes.last().copied().is_some_and(alnum) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator run between two alphanumerics.
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|c| c == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    tag.len() <= MAX_TAG_LEN
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|c| word(c) || c == b'.' || c == b'-')
}
