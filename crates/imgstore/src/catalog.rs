//! The catalog: the image list of one namespace as a store last flushed it,
//! kept in `<root>/catalog/<namespace>` so that listing images does not
//! have to open the store.
//!
//! Opening a store reads every layer record, config and name (a few hundred
//! milliseconds for 10k images); `imgstore images` needs none of that when
//! nothing changed since the list was last computed. The catalog is derived
//! state, like the CRI cache, never a source of truth:
//!
//! - it is written from a store's memory by
//!   [`Store::flush_catalog`](crate::Store::flush_catalog) (on drop, and by
//!   the command before it exits) when a change or an open left it behind,
//!   under the root's shared lock and only while the generation is still the
//!   one that memory reflects, after the backends are made durable (so a
//!   power loss cannot leave a catalog ahead of the databases);
//! - it carries the `store.lock` generation it reflects; every change bumps
//!   (and syncs) the generation before touching anything, so a catalog of an
//!   older generation, a torn one (its SHA-256 trailer does not match), one
//!   of another backend or namespace, or one of another format version is
//!   ignored, and the caller opens the store instead;
//! - it is read under the shared lock, so no change runs between reading the
//!   generation and reading the catalog.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use imgstore_digest::{Algorithm, Digest};
use imgstore_image::{ImageId, ImageStore};
use imgstore_refs::validate_namespace;

use crate::lock::StoreLock;
use crate::namespaces::Elsewhere;
use crate::view::{ImageFilters, select_images, sort_for_listing};
use crate::{Backend, ImageQuery, ImageSummary, Options, Result, Store, digest_shown};
use imgstore_cri::RefCache;

/// The first bytes of a catalog file.
const MAGIC: &[u8] = b"imgstore catalog\n";
/// The format version; a catalog of another version is ignored.
const VERSION: u32 = 2;
/// The length of the SHA-256 trailer.
const TRAILER: usize = 32;

/// One image of the catalog: its summary and whether it has child images
/// (an unnamed image with children is an intermediate one, hidden without
/// `-a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CatalogEntry {
    pub(crate) summary: ImageSummary,
    pub(crate) has_children: bool,
    /// The target digest of each of `summary.references`'s records, in the
    /// same order (what `images --digests` shows).
    pub(crate) targets: Vec<String>,
}

/// Where the catalog of `namespace` lives.
fn path_of(root: &Path, namespace: &str) -> PathBuf {
    // Namespaces are validated (letters, digits, `.`, `-`): a safe file name.
    root.join("catalog").join(namespace)
}

fn backend_code(backend: Backend) -> u8 {
    match backend {
        Backend::Sqlite => 0,
        Backend::Fs => 1,
    }
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    put_u64(out, value.len() as u64);
    out.extend_from_slice(value.as_bytes());
}

fn put_opt(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => {
            out.push(1);
            put_str(out, value);
        }
        None => out.push(0),
    }
}

/// The bytes of a catalog (see the module docs), trailer included.
fn encode(generation: u64, backend: Backend, namespace: &str, entries: &[CatalogEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + entries.len() * 192);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    put_u64(&mut out, generation);
    out.push(backend_code(backend));
    put_str(&mut out, namespace);
    put_u64(&mut out, entries.len() as u64);
    for CatalogEntry {
        summary,
        has_children,
        targets,
    } in entries
    {
        put_str(&mut out, summary.id.as_str());
        put_u64(&mut out, summary.references.len() as u64);
        for (i, reference) in summary.references.iter().enumerate() {
            put_str(&mut out, reference);
            put_str(&mut out, targets.get(i).map_or("", String::as_str));
        }
        put_u64(&mut out, summary.size);
        put_u64(&mut out, summary.content_size);
        put_opt(&mut out, summary.created.as_deref());
        out.push(u8::from(summary.pinned));
        put_opt(&mut out, summary.parent.as_ref().map(ImageId::as_str));
        out.push(u8::from(*has_children));
    }
    let trailer = Algorithm::Sha256.from_bytes(&out);
    out.extend_from_slice(trailer.hash_bytes().as_ref());
    out
}

/// Reads a catalog's fields in order; every read is bounds-checked, so a
/// damaged file is `None`, never a panic.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.bytes.len() {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    /// A count of items that each take at least `min_size` bytes: bounded
    /// by what is left, so a forged count cannot make us allocate.
    fn count(&mut self, min_size: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.bytes.len() / min_size.max(1)).then_some(n)
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.u64()?).ok()?;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn opt(&mut self) -> Option<Option<&'a str>> {
        if self.bool()? {
            Some(Some(self.str()?))
        } else {
            Some(None)
        }
    }
    fn id(&mut self) -> Option<ImageId> {
        self.str()?.parse().ok()
    }
}

/// The entries of `bytes` when it is an intact catalog of exactly this
/// generation, backend and namespace; `None` otherwise. Targets are only
/// skipped over (not copied) unless `with_targets`.
fn decode(
    bytes: &[u8],
    generation: u64,
    backend: Backend,
    namespace: &str,
    with_targets: bool,
) -> Option<Vec<CatalogEntry>> {
    let body_len = bytes.len().checked_sub(TRAILER)?;
    let (body, trailer) = bytes.split_at(body_len);
    let mut r = Reader { bytes: body };
    if r.take(MAGIC.len())? != MAGIC
        || r.u32()? != VERSION
        || r.u64()? != generation
        || r.u8()? != backend_code(backend)
        || r.str()? != namespace
    {
        return None;
    }
    if Algorithm::Sha256.from_bytes(body).hash_bytes().as_ref() != trailer {
        return None;
    }
    // An entry takes at least 8 (id length) + 8 + 8 + 8 + 1 + 1 + 1 + 1
    // bytes, and a reference 8 + 8 (name and target lengths).
    let count = r.count(36)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.id()?;
        let n = r.count(16)?;
        let mut references = Vec::with_capacity(n);
        let mut targets = Vec::with_capacity(if with_targets { n } else { 0 });
        for _ in 0..n {
            references.push(r.str()?.to_owned());
            let target = r.str()?;
            if with_targets {
                targets.push(target.to_owned());
            }
        }
        let size = r.u64()?;
        let content_size = r.u64()?;
        let created = r.opt()?.map(str::to_owned);
        let pinned = r.bool()?;
        let parent = match r.opt()? {
            Some(parent) => Some(parent.parse().ok()?),
            None => None,
        };
        let has_children = r.bool()?;
        entries.push(CatalogEntry {
            summary: ImageSummary {
                id,
                references,
                size,
                content_size,
                created,
                pinned,
                parent,
            },
            has_children,
            targets,
        });
    }
    r.bytes.is_empty().then_some(entries)
}

/// Replaces the catalog of `namespace` atomically (a temporary file renamed
/// over it). Not synced: a catalog lost or torn by a crash is only ignored.
fn write(root: &Path, namespace: &str, bytes: &[u8]) -> io::Result<()> {
    let path = path_of(root, namespace);
    let dir = root.join("catalog");
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)?;
    // Unique per call: two stores of one process may write at once.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{namespace}.{}.{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| file.write_all(bytes));
    if let Err(e) = written.and_then(|()| fs::rename(&temp, &path)) {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    Ok(())
}

/// Removes the temporary files of catalog writes a crash interrupted;
/// returns how many files and bytes went. Called by gc, whose exclusive
/// lock keeps every catalog writer out. Best effort.
pub(crate) fn remove_leftovers(root: &Path) -> (usize, u64) {
    let Ok(entries) = fs::read_dir(root.join("catalog")) else {
        return (0, 0);
    };
    let (mut files, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let size = entry.metadata().map_or(0, |m| m.len());
            if fs::remove_file(entry.path()).is_ok() {
                files += 1;
                bytes += size;
            }
        }
    }
    (files, bytes)
}

/// The current catalog's entries, read under the shared lock; `None` when
/// there is no usable catalog (or no store) at `root`. The root is checked
/// as [`Store::open_with`] checks it (owner, recorded backend), so a
/// listing from the catalog fails where an open would.
fn read_current(
    root: &Path,
    options: &Options,
    with_targets: bool,
) -> Result<Option<Vec<CatalogEntry>>> {
    let Some(backend) = crate::root::check_existing(root, options)? else {
        return Ok(None);
    };
    let Some(lock) = StoreLock::open_existing(root, options.lock_timeout) else {
        return Ok(None);
    };
    Ok(lock.with_shared(|generation| {
        let bytes = fs::read(path_of(root, &options.namespace)).ok()?;
        decode(
            &bytes,
            generation,
            backend,
            &options.namespace,
            with_targets,
        )
    }))
}

/// The entries (with targets) of the catalog of `namespace` at `root` when
/// it is intact and of exactly `generation` and `backend`; `None` otherwise
/// (what `fsck` compares with a fresh derivation).
pub(crate) fn read_catalog(
    root: &Path,
    generation: u64,
    backend: Backend,
    namespace: &str,
) -> Option<Vec<CatalogEntry>> {
    let bytes = fs::read(path_of(root, namespace)).ok()?;
    decode(&bytes, generation, backend, namespace, true)
}

/// Lists images as [`Store::list_images`] would, from the catalog the last
/// change (or open) left at `root`, without opening the store: for a
/// command-line `images` on a large store this is the difference between
/// reading one file and reading every record.
///
/// `Ok(None)` when the catalog cannot answer: the root holds no store or no
/// current catalog for this backend and namespace, or the query filters by
/// `label`, `before` or `since`, which need the configs. The caller then
/// opens the store. A malformed `dangling` or `reference` filter is
/// `InvalidInput`, as from [`Store::list_images`]; an invalid namespace
/// `InvalidArgument`, as from [`Store::open_with`].
pub fn list_images_cached(
    root: impl AsRef<Path>,
    options: &Options,
    query: &ImageQuery,
) -> Result<Option<Vec<ImageSummary>>> {
    Ok(cached(root.as_ref(), options, query, false)?.map(|(images, _)| images))
}

/// What [`list_images_and_targets_cached`] gives: the images, and each
/// name's target digest by name.
pub type ListingWithTargets = (Vec<ImageSummary>, BTreeMap<String, String>);

/// [`list_images_cached`] with, for every name of the namespace that leads
/// to a stored image, the digest its record targets (the manifest or index
/// `images --digests` shows), when that manifest came with the image
/// ([`digest_shown`]); `Ok(None)` in the same cases.
pub fn list_images_and_targets_cached(
    root: impl AsRef<Path>,
    options: &Options,
    query: &ImageQuery,
) -> Result<Option<ListingWithTargets>> {
    cached(root.as_ref(), options, query, true)
}

/// Both listings; the targets (decoded and collected only `with_targets`)
/// cost a tenth of a plain listing's time.
fn cached(
    root: &Path,
    options: &Options,
    query: &ImageQuery,
    with_targets: bool,
) -> Result<Option<ListingWithTargets>> {
    validate_namespace(&options.namespace)?;
    let needs_configs = query.filters.iter().any(|raw| {
        !matches!(
            raw.split_once('=').map(|(key, _)| key),
            Some("dangling" | "reference" | "until")
        )
    });
    if needs_configs {
        return Ok(None);
    }
    let Some(entries) = read_current(root, options, with_targets)? else {
        return Ok(None);
    };
    let targets: BTreeMap<String, String> = entries
        .iter()
        .filter(|_| with_targets)
        .flat_map(|entry| {
            entry
                .summary
                .references
                .iter()
                .cloned()
                .zip(entry.targets.iter().cloned())
        })
        // An empty target: no digest to show (see `digest_shown`).
        .filter(|(_, target)| !target.is_empty())
        .collect();
    let filters = ImageFilters::parse(&query.filters, &|_| Ok(None))?;
    let images = select_images(entries, query.all, &filters, &|_| true)?;
    Ok(Some((images, targets)))
}

impl Store {
    /// Writes the catalog of this store's namespace for the generation it
    /// holds, computed from memory. Best effort: a catalog that cannot be
    /// written is only missing, and the next listing opens the store.
    pub(crate) fn write_catalog(&self, generation: u64) {
        if !self.holds_every_record() {
            // A catalog from this memory would miss what open skipped.
            return;
        }
        let entries = self.catalog_entries();
        let bytes = encode(generation, self.backend_kind(), &self.namespace, &entries);
        let _ = write(&self.root, &self.namespace, &bytes);
    }

    /// Whether memory holds every stored record: no image config, layer
    /// record or name was skipped on open (an image skipped and deleted
    /// since, by `fsck` repair, no longer counts). Only then is a listing
    /// derived from memory what the records give.
    pub(crate) fn holds_every_record(&self) -> bool {
        self.unlisted_image_configs()
            .is_ok_and(|unlisted| unlisted.is_empty())
            && self.layers.restore_problems().is_empty()
            && self.refs.restore_problems().is_empty()
    }

    /// Whether the catalog at the root is current for `generation`.
    pub(crate) fn catalog_is_current(&self, generation: u64) -> bool {
        let mut header = Vec::new();
        let Ok(file) = File::open(path_of(&self.root, &self.namespace)) else {
            return false;
        };
        let probe = MAGIC.len() + 4 + 8;
        if file.take(probe as u64).read_to_end(&mut header).is_err() || header.len() < probe {
            return false;
        }
        header.starts_with(MAGIC)
            && header[MAGIC.len()..MAGIC.len() + 4] == VERSION.to_le_bytes()
            && header[MAGIC.len() + 4..probe] == generation.to_le_bytes()
    }

    /// Every image with whether it has children: the catalog's content.
    /// Sorted as listed, so a listing from the catalog has nothing to move.
    pub(crate) fn catalog_entries(&self) -> Vec<CatalogEntry> {
        self.catalog_entries_with(&self.namespace, &self.cache, &self.elsewhere.read())
    }

    /// The catalog of `namespace` as its CRI cache `cache` and what the
    /// other namespaces reach, `elsewhere`, give it (what `fsck` derives
    /// afresh to compare with the catalog at the root).
    pub(crate) fn catalog_entries_with(
        &self,
        namespace: &str,
        cache: &RefCache,
        elsewhere: &Elsewhere,
    ) -> Vec<CatalogEntry> {
        let mut entries: Vec<CatalogEntry> = self
            .images_with(cache, elsewhere)
            .into_iter()
            .map(|summary| CatalogEntry {
                has_children: self
                    .images
                    .children(&summary.id)
                    .map_or(true, |children| !children.is_empty()),
                targets: summary
                    .references
                    .iter()
                    .map(|name| {
                        self.refs
                            .get(namespace, name)
                            .ok()
                            .and_then(|record| digest_shown(&record.target).map(Digest::to_string))
                            .unwrap_or_default()
                    })
                    .collect(),
                summary,
            })
            .collect();
        sort_for_listing(&mut entries);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imgstore_digest::Digest;

    fn id(n: u8) -> ImageId {
        let digest: Digest = Algorithm::Sha256.from_bytes(&[n]);
        ImageId::from(digest)
    }

    fn sample() -> Vec<CatalogEntry> {
        vec![
            CatalogEntry {
                summary: ImageSummary {
                    id: id(1),
                    references: vec!["docker.io/library/a:1".into(), "b:2".into()],
                    size: 10,
                    content_size: 20,
                    created: Some("2024-01-01T00:00:00Z".into()),
                    pinned: true,
                    parent: None,
                },
                has_children: true,
                targets: vec![format!("sha256:{}", "a".repeat(64)), String::new()],
            },
            CatalogEntry {
                summary: ImageSummary {
                    id: id(2),
                    references: vec![],
                    size: 0,
                    content_size: 7,
                    created: None,
                    pinned: false,
                    parent: Some(id(1)),
                },
                has_children: false,
                targets: vec![],
            },
        ]
    }

    #[test]
    fn a_catalog_round_trips_for_its_own_generation_backend_and_namespace() {
        let bytes = encode(7, Backend::Sqlite, "default", &sample());
        assert_eq!(
            decode(&bytes, 7, Backend::Sqlite, "default", true),
            Some(sample())
        );
        let without: Vec<CatalogEntry> = sample()
            .into_iter()
            .map(|entry| CatalogEntry {
                targets: Vec::new(),
                ..entry
            })
            .collect();
        assert_eq!(
            decode(&bytes, 7, Backend::Sqlite, "default", false),
            Some(without)
        );
        assert_eq!(decode(&bytes, 8, Backend::Sqlite, "default", true), None);
        assert_eq!(decode(&bytes, 7, Backend::Fs, "default", true), None);
        assert_eq!(decode(&bytes, 7, Backend::Sqlite, "k8s.io", true), None);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = encode(3, Backend::Fs, "default", &sample());
        for len in 0..bytes.len() {
            assert_eq!(decode(&bytes[..len], 3, Backend::Fs, "default", true), None);
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x20;
            assert_eq!(
                decode(&damaged, 3, Backend::Fs, "default", true),
                None,
                "byte {i}"
            );
        }
    }

    /// Bodies of random bytes behind a valid header and a matching trailer
    /// (what only a writer of the file could forge): decoded or refused,
    /// never a panic or a huge allocation.
    #[test]
    fn random_bodies_with_a_valid_header_and_trailer_never_panic() {
        let mut rng = imgstore_backend::testkit::Rng::new(0x0063_6174_616c_6f67);
        let valid = encode(1, Backend::Sqlite, "default", &sample());
        let header = MAGIC.len() + 4 + 8 + 1 + 8 + "default".len();
        for round in 0..20_000 {
            let mut body = valid[..valid.len() - TRAILER].to_vec();
            match round % 3 {
                // Flip a few bytes past the header.
                0 => {
                    for _ in 0..1 + rng.range(0, 4) {
                        let at = header + rng.range(0, (body.len() - header) as u64) as usize;
                        body[at] = rng.range(0, 256) as u8;
                    }
                }
                // Cut the body short or extend it with noise.
                1 => body.truncate(header + rng.range(0, (body.len() - header) as u64) as usize),
                _ => {
                    for _ in 0..rng.range(1, 64) {
                        body.push(rng.range(0, 256) as u8);
                    }
                }
            }
            let trailer = Algorithm::Sha256.from_bytes(&body);
            body.extend_from_slice(trailer.hash_bytes().as_ref());
            let _ = decode(&body, 1, Backend::Sqlite, "default", true);
        }
    }

    #[test]
    fn a_forged_count_is_refused_without_allocating_it() {
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC);
        body.extend_from_slice(&VERSION.to_le_bytes());
        put_u64(&mut body, 1);
        body.push(0);
        put_str(&mut body, "default");
        put_u64(&mut body, u64::MAX);
        let trailer = Algorithm::Sha256.from_bytes(&body);
        body.extend_from_slice(trailer.hash_bytes().as_ref());
        assert_eq!(decode(&body, 1, Backend::Sqlite, "default", true), None);
    }
}
