//! Import of image tarballs: oci-archive (an OCI layout inside a tar) and
//! `docker save` archives.
//!
//! The tar is never unpacked. A first pass indexes its members (name ->
//! offset and size, directory or link), refusing absolute names, names that
//! climb above the archive root, links whose target leaves the archive,
//! duplicate names, device files and members cut short by a truncated file.
//! Members are then read by seeking in the file, so layers stream straight
//! from the archive into the content store. Links are resolved within the
//! index only.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use imgstore_digest::{Algorithm, Digest, Digester};
use serde::Deserialize;

use crate::limits::{
    MAX_ARCHIVE_MEMBERS, MAX_JSON_BLOB, MAX_LAYERS, MAX_LINK_HOPS, MAX_TAR_HEADER_RECORD,
};
use crate::oci::{
    Compression, Desc, Layout, Plan, PlannedImage, PlannedLayer, RawConfig, SYNTHESIZED_MANIFEST,
    count_verification,
};
use crate::{Error, ImportOptions, Imported, Result, Store};

/// Size of a tar block.
const BLOCK: u64 = 512;
/// Media type of the manifests written for docker-save images.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Media type of the configs of docker-save images.
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Media type of uncompressed docker-save layers.
const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of gzip-compressed docker-save layers.
const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of zstd-compressed docker-save layers.
const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// One indexed member.
#[derive(Debug)]
enum Member {
    File {
        offset: u64,
        size: u64,
    },
    Dir,
    /// Target as written, relative to the link's directory.
    Symlink(String),
    /// Target, relative to the archive root.
    Hardlink(String),
}

/// The members of one tar file, by normalised name.
#[derive(Debug)]
pub(crate) struct TarIndex {
    /// The file read.
    file: PathBuf,
    /// The archive as the user named it, for messages (the gzip-compressed
    /// file when `file` is its decompressed copy).
    path: PathBuf,
    members: HashMap<String, Member>,
}

/// `name` without `.` and empty components, `..` applied; `None` when it is
/// absolute or climbs above the root.
fn normalize(name: &str) -> Option<String> {
    if name.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            part => parts.push(part),
        }
    }
    Some(parts.join("/"))
}

/// The value of the last `key` record of pax extended header data
/// (`"<length> <key>=<value>\n"` records); `None` when absent or malformed.
fn pax_value<'a>(records: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut found = None;
    for record in tar::PaxExtensions::new(records) {
        let Ok(record) = record else {
            return None;
        };
        if record.key_bytes() == key.as_bytes() {
            found = Some(record.value_bytes());
        }
    }
    found
}

/// Where a symlink at `link` pointing at `target` leads, within the archive.
fn symlink_target(link: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    match link.rsplit_once('/') {
        Some((parent, _)) => normalize(&format!("{parent}/{target}")),
        None => normalize(target),
    }
}

impl TarIndex {
    fn invalid(&self, reason: impl Into<String>) -> Error {
        Error::InvalidArchive {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Indexes the members of the tar file at `path`.
    pub(crate) fn open(path: &Path) -> Result<TarIndex> {
        TarIndex::open_as(path, path)
    }

    /// Indexes the members of the tar file `file`, which messages call
    /// `shown` (the user's file, when `file` is a decompressed copy).
    ///
    /// Headers are walked by seeking, as Go's `archive/tar` reads them:
    /// GNU long names and links and pax extended headers apply to the next
    /// member (pax `path`, `linkpath` and `size`); each such record is read
    /// into memory, so one over [`MAX_TAR_HEADER_RECORD`] is refused.
    pub(crate) fn open_as(file: &Path, shown: &Path) -> Result<TarIndex> {
        let mut index = TarIndex {
            file: file.to_path_buf(),
            path: shown.to_path_buf(),
            members: HashMap::new(),
        };
        let io_error = |operation, source| Error::Io {
            operation,
            path: shown.to_path_buf(),
            source,
        };
        let mut reader = File::open(file).map_err(|e| io_error("open", e))?;
        let len = reader.metadata().map_err(|e| io_error("stat", e))?.len();
        let mut magic = [0u8; 2];
        if len >= 2 {
            reader
                .read_exact(&mut magic)
                .map_err(|e| io_error("read", e))?;
        }
        if magic == [0x1f, 0x8b] {
            return Err(
                index.invalid("the archive is gzip-compressed; decompress it first (gunzip)")
            );
        }
        let mut position: u64 = 0;
        let mut count = 0usize;
        // Records applying to the next member.
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Option<Vec<u8>> = None;
        let mut block = [0u8; BLOCK as usize];
        loop {
            if position == len {
                // No end-of-archive blocks (tolerated, as the tar crate does).
                break;
            }
            if position + BLOCK > len {
                return Err(index.invalid(format!(
                    "truncated: a header at offset {position} runs past the end ({len} bytes)"
                )));
            }
            reader
                .seek(SeekFrom::Start(position))
                .map_err(|e| io_error("read", e))?;
            reader
                .read_exact(&mut block)
                .map_err(|e| io_error("read", e))?;
            if block.iter().all(|&b| b == 0) {
                break;
            }
            let header = tar::Header::from_byte_slice(&block);
            let stored_sum = header
                .cksum()
                .map_err(|e| index.invalid(format!("unreadable tar: {e}")))?;
            let sum: u32 = block[..148]
                .iter()
                .chain(&block[156..])
                .map(|&b| u32::from(b))
                .sum::<u32>()
                + 8 * 32;
            if sum != stored_sum {
                return Err(index.invalid(format!(
                    "unreadable tar: header checksum mismatch at offset {position}"
                )));
            }
            let kind = header.entry_type();
            let is_record = kind.is_gnu_longname()
                || kind.is_gnu_longlink()
                || kind.is_pax_local_extensions()
                || kind.is_pax_global_extensions();
            let mut size = header
                .entry_size()
                .map_err(|e| index.invalid(format!("unreadable tar: {e}")))?;
            if !is_record && let Some(pax_size) = pax.as_deref().and_then(|p| pax_value(p, "size"))
            {
                size = std::str::from_utf8(pax_size)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| index.invalid("a pax size record is not a number"))?;
            }
            let offset = position + BLOCK;
            let end = offset.checked_add(size).filter(|&end| end <= len);
            let Some(end) = end else {
                let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
                return Err(index.invalid(format!(
                    "truncated: member {name:?} needs {size} bytes at offset {offset}, \
                     the file has {len}"
                )));
            };
            // The next header, after the data rounded up to a block (the
            // padding of the last member may be missing).
            position = end.div_ceil(BLOCK).saturating_mul(BLOCK).min(len);
            if is_record {
                if size > MAX_TAR_HEADER_RECORD {
                    return Err(index.invalid(format!(
                        "a tar header record (long name or pax header) at offset {} has {size} \
                         bytes, more than the {MAX_TAR_HEADER_RECORD} allowed",
                        offset - BLOCK
                    )));
                }
                if kind.is_pax_global_extensions() {
                    // Go does not apply them to later members either.
                    continue;
                }
                let slot = if kind.is_gnu_longname() {
                    &mut long_name
                } else if kind.is_gnu_longlink() {
                    &mut long_link
                } else {
                    &mut pax
                };
                if slot.is_some() {
                    return Err(index.invalid("two header records describe the same member"));
                }
                let mut data = vec![0u8; usize::try_from(size).unwrap_or(usize::MAX)];
                reader
                    .seek(SeekFrom::Start(offset))
                    .map_err(|e| io_error("read", e))?;
                reader
                    .read_exact(&mut data)
                    .map_err(|e| io_error("read", e))?;
                *slot = Some(data);
                continue;
            }
            count += 1;
            if count > MAX_ARCHIVE_MEMBERS {
                return Err(index.invalid(format!("more than {MAX_ARCHIVE_MEMBERS} members")));
            }
            let pax_records = pax.take();
            let pax_field = |key| pax_records.as_deref().and_then(|p| pax_value(p, key));
            let raw_name = match long_name.take() {
                Some(mut name) => {
                    if name.last() == Some(&0) {
                        name.pop();
                    }
                    name
                }
                None => match pax_field("path") {
                    Some(path) => path.to_vec(),
                    None => header.path_bytes().into_owned(),
                },
            };
            let raw_link = match long_link.take() {
                Some(mut link) => {
                    if link.last() == Some(&0) {
                        link.pop();
                    }
                    Some(link)
                }
                None => match pax_field("linkpath") {
                    Some(link) => Some(link.to_vec()),
                    None => header.link_name_bytes().map(|l| l.into_owned()),
                },
            };
            let raw_name = String::from_utf8(raw_name)
                .map_err(|_| index.invalid("a member name is not UTF-8"))?;
            let name = normalize(&raw_name).ok_or_else(|| {
                index.invalid(format!("member {raw_name:?} is outside the archive"))
            })?;
            let link_target = || -> Result<String> {
                let target = raw_link
                    .clone()
                    .ok_or_else(|| index.invalid(format!("link {raw_name:?} has no target")))?;
                String::from_utf8(target)
                    .map_err(|_| index.invalid(format!("link {raw_name:?}: target not UTF-8")))
            };
            let member = match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    Member::File { offset, size }
                }
                tar::EntryType::Directory => Member::Dir,
                tar::EntryType::Symlink => {
                    let target = link_target()?;
                    if symlink_target(&name, &target).is_none() {
                        return Err(index.invalid(format!(
                            "symlink {raw_name:?} -> {target:?} leaves the archive"
                        )));
                    }
                    Member::Symlink(target)
                }
                tar::EntryType::Link => {
                    let target = link_target()?;
                    let resolved = normalize(&target).ok_or_else(|| {
                        index.invalid(format!(
                            "hard link {raw_name:?} -> {target:?} leaves the archive"
                        ))
                    })?;
                    Member::Hardlink(resolved)
                }
                other => {
                    return Err(index.invalid(format!(
                        "member {raw_name:?} is a {other:?} entry, not a file, directory or link"
                    )));
                }
            };
            if name.is_empty() {
                if matches!(member, Member::Dir) {
                    continue;
                }
                return Err(index.invalid(format!("member {raw_name:?} has no name")));
            }
            match index.members.entry(name) {
                Entry::Vacant(slot) => {
                    slot.insert(member);
                }
                Entry::Occupied(slot) => {
                    if !(matches!(slot.get(), Member::Dir) && matches!(member, Member::Dir)) {
                        return Err(index.invalid(format!("member {raw_name:?} appears twice")));
                    }
                }
            }
        }
        if long_name.is_some() || long_link.is_some() || pax.is_some() {
            return Err(index.invalid("a header record describes a member that is not there"));
        }
        Ok(index)
    }

    /// The archive file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `name` is a member (of any type).
    fn contains(&self, name: &str) -> bool {
        normalize(name).is_some_and(|n| self.members.contains_key(&n))
    }

    /// Follows links from `name` to a regular file: its name, offset and
    /// size; `None` when there is no such member.
    fn resolve(&self, name: &str) -> Result<Option<(String, u64, u64)>> {
        let mut current = normalize(name)
            .ok_or_else(|| self.invalid(format!("{name:?} is outside the archive")))?;
        for _ in 0..MAX_LINK_HOPS {
            match self.members.get(&current) {
                None => return Ok(None),
                Some(Member::File { offset, size }) => {
                    return Ok(Some((current, *offset, *size)));
                }
                Some(Member::Dir) => {
                    return Err(self.invalid(format!("{name:?} is a directory, not a file")));
                }
                Some(Member::Symlink(target)) => {
                    current = symlink_target(&current, target).ok_or_else(|| {
                        self.invalid(format!("symlink {current:?} leaves the archive"))
                    })?;
                }
                Some(Member::Hardlink(target)) => current = target.clone(),
            }
        }
        Err(self.invalid(format!("{name:?}: more than {MAX_LINK_HOPS} links")))
    }

    /// Opens member `name` (following links): a reader of exactly its bytes
    /// and its size; `None` when absent.
    pub(crate) fn open_member(&self, name: &str) -> Result<Option<(io::Take<File>, u64)>> {
        let Some((_, offset, size)) = self.resolve(name)? else {
            return Ok(None);
        };
        let io_error = |source| Error::Io {
            operation: "read",
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&self.file).map_err(io_error)?;
        file.seek(SeekFrom::Start(offset)).map_err(io_error)?;
        Ok(Some((file.take(size), size)))
    }

    /// Reads a small member whole; `None` when absent.
    pub(crate) fn read_member(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let Some((mut reader, size)) = self.open_member(name)? else {
            return Ok(None);
        };
        if size > MAX_JSON_BLOB {
            return Err(self.invalid(format!(
                "member {name:?}: {size} bytes is more than the {MAX_JSON_BLOB} allowed"
            )));
        }
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).map_err(|source| Error::Io {
            operation: "read",
            path: self.path.clone(),
            source,
        })?;
        if bytes.len() as u64 != size {
            return Err(self.invalid(format!("truncated: member {name:?}")));
        }
        Ok(Some(bytes))
    }

    /// Reads a member that must be there.
    fn require_member(&self, name: &str) -> Result<Vec<u8>> {
        self.read_member(name)?
            .ok_or_else(|| self.invalid(format!("no member {name:?}")))
    }
}

/// One entry of a docker-save `manifest.json`.
#[derive(Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

fn sha256_desc(media_type: &str, bytes: &[u8]) -> Desc {
    Desc::new(
        media_type,
        Algorithm::Sha256.from_bytes(bytes),
        bytes.len() as u64,
    )
}

/// A config member read by the planner: its descriptor, bytes and diff IDs.
type ReadConfig = (Desc, Arc<Vec<u8>>, Vec<Digest>);

/// What planning learnt of one layer member, kept so a member that many
/// entries name is read and hashed once.
#[derive(Clone)]
enum LayerMember {
    /// Uncompressed: the blob is the diff, named by the config's diff ID.
    Plain,
    /// Compressed: its media type, decompression and digest.
    Compressed(&'static str, Compression, Digest),
}

/// Reads a layer member's first bytes to tell its compression, and hashes a
/// compressed one (its blob digest).
fn inspect_layer_member(tar: &TarIndex, member: &str) -> Result<LayerMember> {
    let (mut reader, _) = tar
        .open_member(member)?
        .ok_or_else(|| tar.invalid(format!("no layer member {member:?}")))?;
    let read_error = |source| Error::Io {
        operation: "read",
        path: tar.path().to_path_buf(),
        source,
    };
    let mut magic = [0u8; 4];
    let mut got = 0;
    while got < magic.len() {
        let n = reader.read(&mut magic[got..]).map_err(read_error)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    let (media_type, compression) = if got >= 2 && magic[..2] == [0x1f, 0x8b] {
        (OCI_LAYER_TAR_GZIP, Compression::Gzip)
    } else if got == 4 && magic == ZSTD_MAGIC {
        (OCI_LAYER_TAR_ZSTD, Compression::Zstd)
    } else {
        return Ok(LayerMember::Plain);
    };
    count_verification();
    let mut digester = Digester::new(Algorithm::Sha256);
    digester.update(&magic[..got]);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = reader.read(&mut buf).map_err(read_error)?;
        if n == 0 {
            break;
        }
        digester.update(&buf[..n]);
    }
    Ok(LayerMember::Compressed(
        media_type,
        compression,
        digester.finish(),
    ))
}

/// The full form of a `RepoTags` entry; a digest reference is refused, as
/// `docker load` refuses it (a tag is what it creates).
fn repo_tag_name(tar: &TarIndex, tag: &str) -> Result<String> {
    let invalid = |reason: String| Error::InvalidName {
        name: tag.to_owned(),
        reason: format!("{}: RepoTags: {reason}", tar.path().display()),
    };
    let reference = imgstore_refs::reference::Reference::parse_normalized(tag)
        .map_err(|e| invalid(e.to_string()))?;
    if reference.digest().is_some() {
        return Err(invalid(
            "a digest reference is not a tag (docker load refuses it too)".to_owned(),
        ));
    }
    imgstore_refs::reference::normalize(tag).map_err(|e| invalid(e.to_string()))
}

/// Plans the import of a docker-save archive: each image gets an OCI
/// manifest (written by this store) over its config and layers. Returns the
/// plan and the archive member of each layer blob. Each member (config or
/// layer) is read and hashed once however many entries name it; entries
/// giving the same image are planned once, with the names of all.
fn plan_docker(tar: &TarIndex) -> Result<(Plan, HashMap<Digest, String>)> {
    let manifest_json = tar.require_member("manifest.json")?;
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&manifest_json).map_err(|source| Error::InvalidJson {
            file: format!("{}: manifest.json", tar.path().display()),
            source,
        })?;
    let mut plan = Plan::default();
    let mut blobs: HashMap<Digest, String> = HashMap::new();
    // By resolved member name: configs (descriptor, bytes, diff IDs) and
    // layers already read; by manifest digest: the images planned.
    let mut configs: HashMap<String, ReadConfig> = HashMap::new();
    let mut layer_members: HashMap<String, LayerMember> = HashMap::new();
    let mut images: HashMap<Digest, usize> = HashMap::new();
    let mut named: HashSet<(String, Digest)> = HashSet::new();
    // The whole file is checked and counted before any member is read.
    for entry in &entries {
        if entry.layers.len() > MAX_LAYERS {
            return Err(tar.invalid(format!(
                "manifest.json entry {}: {} layers is more than the {MAX_LAYERS} allowed",
                entry.config,
                entry.layers.len()
            )));
        }
    }
    let listed = entries.iter().fold(0usize, |sum, entry| {
        sum.saturating_add(1 + entry.layers.len())
            .saturating_add(entry.repo_tags.as_ref().map_or(0, Vec::len))
    });
    plan.count_descriptors(listed, tar.path())?;
    for entry in entries {
        let repo_tags = entry.repo_tags.unwrap_or_default();
        let (config_member, _, _) = tar
            .resolve(&entry.config)?
            .ok_or_else(|| tar.invalid(format!("no member {:?}", entry.config)))?;
        let (config, config_bytes, diff_ids) = match configs.get(&config_member) {
            Some(known) => known.clone(),
            None => {
                let bytes = tar.require_member(&config_member)?;
                plan.count_json_bytes(bytes.len() as u64, tar.path())?;
                count_verification();
                let config = sha256_desc(OCI_CONFIG, &bytes);
                let rootfs: RawConfig =
                    serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
                        file: format!("config {} ({})", config.digest, entry.config),
                        source,
                    })?;
                let known = (config, Arc::new(bytes), rootfs.diff_ids()?);
                configs.insert(config_member, known.clone());
                known
            }
        };
        if diff_ids.len() != entry.layers.len() {
            return Err(Error::InvalidInput {
                what: format!(
                    "{}: manifest.json entry {}",
                    tar.path().display(),
                    entry.config
                ),
                reason: format!(
                    "{} layers, but config {} lists {} diff IDs",
                    entry.layers.len(),
                    config.digest,
                    diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (member, diff_id) in entry.layers.iter().zip(diff_ids) {
            let (resolved, _, size) = tar
                .resolve(member)?
                .ok_or_else(|| tar.invalid(format!("no layer member {member:?}")))?;
            if size == 0 {
                return Err(Error::EmptyLayer { layer: diff_id });
            }
            let inspected = match layer_members.get(&resolved) {
                Some(known) => known.clone(),
                None => {
                    let inspected = inspect_layer_member(tar, &resolved)?;
                    layer_members.insert(resolved.clone(), inspected.clone());
                    inspected
                }
            };
            let (desc, compression) = match inspected {
                LayerMember::Compressed(media_type, compression, digest) => {
                    (Desc::new(media_type, digest, size), compression)
                }
                // The blob is the diff, named by its diff ID; storing it
                // verifies that.
                LayerMember::Plain => (
                    Desc::new(OCI_LAYER_TAR, diff_id.clone(), size),
                    Compression::None,
                ),
            };
            blobs.insert(desc.digest.clone(), resolved);
            layers.push(PlannedLayer {
                desc,
                compression,
                diff_id,
            });
        }
        let manifest_bytes = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_json(),
            "layers": layers.iter().map(|l| l.desc.to_json()).collect::<Vec<_>>(),
        }))
        .map_err(|source| Error::InvalidJson {
            file: "generated manifest".to_owned(),
            source,
        })?;
        let manifest = sha256_desc(OCI_MANIFEST, &manifest_bytes);
        let mut names = Vec::new();
        for tag in repo_tags {
            let name = repo_tag_name(tar, &tag)?;
            // A name repeated for the same image is pointed once.
            if named.insert((name.clone(), manifest.digest.clone())) {
                let mut target = manifest.clone();
                target
                    .annotations
                    .insert(SYNTHESIZED_MANIFEST.to_owned(), "docker-save".to_owned());
                plan.names.push((name.clone(), target));
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        match images.get(&manifest.digest) {
            Some(&i) => plan.images[i].add_names(&names),
            None => {
                images.insert(manifest.digest.clone(), plan.images.len());
                plan.images.push(PlannedImage {
                    manifest,
                    manifest_bytes,
                    config_bytes,
                    layers,
                    names,
                });
            }
        }
    }
    Ok((plan, blobs))
}

impl Store {
    /// Imports every image of an image tarball: a **docker save** archive
    /// (`manifest.json` naming each image's config, `RepoTags` and layer
    /// members; the legacy `<id>/layer.tar` links are followed within the
    /// archive; preferred when the tar also holds an OCI layout, as Docker
    /// 25+ writes) or an **oci-archive** (an OCI image layout in a tar,
    /// imported like [`import_oci_layout`](Store::import_oci_layout)). A
    /// gzip-compressed tarball is refused (decompress it first). For a docker-save image the config is stored as is (the
    /// image ID is its digest), layers as stored in the archive
    /// (uncompressed, or gzip or zstd when the member is), and the store writes
    /// an OCI manifest over them that its `RepoTags` (normalised) name;
    /// images without tags are imported without names.
    ///
    /// The tar is indexed first and refused, naming the archive
    /// ([`Error::InvalidArchive`], `InvalidArgument`), when truncated or
    /// unsafe: absolute member names, names or links leading outside the
    /// archive, duplicate names, device files. All or nothing, with the same
    /// checks and undo as [`import_oci_layout`](Store::import_oci_layout).
    pub fn import_archive(&self, path: impl AsRef<Path>) -> Result<Vec<Imported>> {
        self.import_archive_with(path, &ImportOptions::default())
    }

    /// [`import_archive`](Store::import_archive) with `options` (which
    /// platforms of an oci-archive's multi-platform indexes to take; a
    /// docker-save archive holds one platform and ignores them).
    pub fn import_archive_with(
        &self,
        path: impl AsRef<Path>,
        options: &ImportOptions,
    ) -> Result<Vec<Imported>> {
        let tar = TarIndex::open(path.as_ref())?;
        self.import_tar(&tar, options)
    }

    /// Imports the archive `tar` indexed (see
    /// [`import_archive`](Store::import_archive)).
    pub(crate) fn import_tar(
        &self,
        tar: &TarIndex,
        options: &ImportOptions,
    ) -> Result<Vec<Imported>> {
        // Docker 25+ archives hold both; their manifest.json carries the
        // full names (their index.json's ref.name is only the tag).
        if tar.contains("manifest.json") {
            let (plan, blobs) = plan_docker(tar)?;
            let layout = Layout::Archive { tar, blobs };
            self.import_plan(&layout, &plan)
        } else if tar.contains("oci-layout") {
            let layout = Layout::Archive {
                tar,
                blobs: HashMap::new(),
            };
            let plan = Plan::from_layout(&layout, &options.platform)?;
            self.import_plan(&layout, &plan)
        } else {
            Err(tar.invalid(
                "neither an oci-archive (no oci-layout) nor a docker save archive \
                 (no manifest.json)",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{normalize, symlink_target};

    #[test]
    fn names_are_normalised_inside_the_archive_only() {
        assert_eq!(normalize("./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("./").as_deref(), Some(""));
        assert_eq!(normalize("../a"), None);
        assert_eq!(normalize("a/../../b"), None);
        assert_eq!(normalize("/etc/passwd"), None);
    }

    #[test]
    fn symlinks_resolve_from_their_directory_and_stay_inside() {
        assert_eq!(
            symlink_target("id/layer.tar", "../abc.tar").as_deref(),
            Some("abc.tar")
        );
        assert_eq!(
            symlink_target("id/layer.tar", "../other/layer.tar").as_deref(),
            Some("other/layer.tar")
        );
        assert_eq!(symlink_target("top", "abc.tar").as_deref(), Some("abc.tar"));
        assert_eq!(symlink_target("id/layer.tar", "../../etc/passwd"), None);
        assert_eq!(symlink_target("top", "../x"), None);
        assert_eq!(symlink_target("id/layer.tar", "/etc/passwd"), None);
    }
}
