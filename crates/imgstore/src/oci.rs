//! Import of an OCI image layout directory.
//!
//! Two phases. **Plan** reads `oci-layout`, `index.json`, every manifest,
//! nested index and config (verifying digest and size), checks media types
//! and that every layer blob is present with its size: a bad layout fails
//! here with nothing written. **Apply** streams layers into the content store
//! (verified against their digest and, decompressed from gzip, zstd or
//! plain tar, against the config's diff IDs; their tar headers scanned for
//! the regular files' bytes in the same pass), registers them bottom-up, creates images, stores manifests and
//! indexes, creates or moves names, releases the layer references the import
//! took and updates the CRI cache. A failure in apply undoes the names, images
//! and layer records it made; blobs it had already stored stay, unreferenced,
//! for `gc` to remove (they are valid content under their own digest).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::write::MultiGzDecoder;
use imgstore_backend::{Batch, StoreBackend};
use imgstore_digest::{Algorithm, Digest, Digester};
use imgstore_image::{ImageId, ImageStaging, ImageStore, layer_holder};
use imgstore_layer::{BlobRef, ChainId, LayerStaging, NewLayer};
use imgstore_refs::{Descriptor, ImageRecord, TargetChange};
use serde::Deserialize;
use serde_json::Value;

use crate::archive::TarIndex;
use crate::import::{ImportOptions, Platform, PlatformChoice};
use crate::limits::{
    MAX_IMPORT_DESCRIPTORS, MAX_IMPORT_JSON_BYTES, MAX_INDEX_DEPTH, MAX_JSON_BLOB, MAX_LAYERS,
};
use crate::registry::{LayerStatus, ProgressReader, PullEvent, RegistrySource, Remote};
use crate::tarscan::TarScanner;
use crate::{Error, Result, Store};

/// Media types of image manifests this store imports.
pub(crate) const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
/// Media types of indexes (followed to their manifests).
pub(crate) const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// gzip-compressed layer media types.
const GZIP_LAYER_TYPES: [&str; 4] = [
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];
/// zstd-compressed layer media types.
const ZSTD_LAYER_TYPES: [&str; 2] = [
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];
/// Uncompressed layer media types.
const PLAIN_LAYER_TYPES: [&str; 2] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
];
/// The annotation that names an image in an OCI layout.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The annotation the facade puts on the target descriptor of a name
/// whose manifest it wrote itself (a `docker save` archive has none). It
/// stays through `tag` (the new name gets the same descriptor), and tells
/// that the image came without a manifest: Docker then shows no digest
/// (`RepoDigests` `[]`, `<none>` in `images --digests`).
pub const SYNTHESIZED_MANIFEST: &str = "io.imgstore.manifest.synthesized";

/// The digest of the manifest or index a name points at, when that
/// manifest came with the image (OCI layout, oci-archive); `None` for a
/// manifest the facade wrote ([`SYNTHESIZED_MANIFEST`]). What Docker shows
/// as the name's digest.
pub fn digest_shown(target: &Descriptor) -> Option<&Digest> {
    (!target.annotations.contains_key(SYNTHESIZED_MANIFEST)).then_some(&target.digest)
}

/// One image an import brought in (or found already there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The image ID (config digest).
    pub id: ImageId,
    /// The manifest it was imported from.
    pub manifest: Digest,
    /// Names the import pointed at it (or at an index holding it).
    pub names: Vec<String>,
    /// Chain ID of its top layer (`None` for an image without layers).
    pub top_chain_id: Option<ChainId>,
    /// True when this import created the image; false when it was stored already.
    pub created: bool,
    /// Names of `names` that named another image before this import, with
    /// that image's ID: Docker's "The image NAME already exists, renaming
    /// the old one with ID … to empty string".
    pub renamed: Vec<(String, ImageId)>,
}

/// A descriptor as read from JSON, before validation.
#[derive(Deserialize)]
struct RawDescriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// A validated descriptor.
#[derive(Debug, Clone)]
pub(crate) struct Desc {
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) annotations: BTreeMap<String, String>,
    /// The `platform` of an index entry, when given (with an OS).
    pub(crate) platform: Option<Platform>,
}

impl Desc {
    /// A descriptor without annotations or platform.
    pub(crate) fn new(media_type: &str, digest: Digest, size: u64) -> Desc {
        Desc {
            media_type: media_type.to_owned(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }

    /// The descriptor as manifest JSON.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest.to_string(),
            "size": self.size,
        })
    }

    fn from_raw(raw: RawDescriptor, what: &str) -> Result<Desc> {
        let digest: Digest = raw.digest.parse()?;
        let size = u64::try_from(raw.size).map_err(|_| Error::InvalidInput {
            what: format!("{what} descriptor {digest}"),
            reason: format!("negative size {}", raw.size),
        })?;
        Ok(Desc {
            media_type: raw.media_type,
            digest,
            size,
            annotations: raw.annotations,
            platform: raw
                .platform
                .filter(|p| !p.os.is_empty())
                .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref())),
        })
    }

    fn to_descriptor(&self) -> Result<Descriptor> {
        let size = i64::try_from(self.size).map_err(|_| Error::InvalidInput {
            what: format!("descriptor {}", self.digest),
            reason: "size too large".to_owned(),
        })?;
        let mut descriptor = Descriptor::new(self.media_type.clone(), self.digest.clone(), size);
        // Only the facade's own mark goes into the name record; the layout's
        // annotations stay in its index.
        if let Some(value) = self.annotations.get(SYNTHESIZED_MANIFEST) {
            descriptor
                .annotations
                .insert(SYNTHESIZED_MANIFEST.to_owned(), value.clone());
        }
        Ok(descriptor)
    }
}

#[derive(Deserialize)]
struct RawIndex {
    #[serde(default)]
    manifests: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
struct RawManifest {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    config: RawDescriptor,
    #[serde(default)]
    layers: Vec<RawDescriptor>,
}

#[derive(Deserialize)]
pub(crate) struct RawConfig {
    rootfs: RawRootFs,
}

impl RawConfig {
    /// The parsed `rootfs.diff_ids`.
    pub(crate) fn diff_ids(&self) -> Result<Vec<Digest>> {
        Ok(self
            .rootfs
            .diff_ids
            .iter()
            .map(|d| d.parse::<Digest>())
            .collect::<std::result::Result<Vec<_>, _>>()?)
    }
}

#[derive(Deserialize)]
struct RawRootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

/// How a layer blob is decompressed to its diff.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Compression {
    Gzip,
    Zstd,
    None,
}

pub(crate) struct PlannedLayer {
    pub(crate) desc: Desc,
    pub(crate) compression: Compression,
    pub(crate) diff_id: Digest,
}

pub(crate) struct PlannedImage {
    pub(crate) manifest: Desc,
    pub(crate) manifest_bytes: Vec<u8>,
    /// Shared by the images of manifests over one config (read once).
    pub(crate) config_bytes: Arc<Vec<u8>>,
    pub(crate) layers: Vec<PlannedLayer>,
    pub(crate) names: Vec<String>,
}

impl PlannedImage {
    /// Adds the names not listed yet.
    pub(crate) fn add_names(&mut self, names: &[String]) {
        // A set of what is there: an image may gather tens of thousands
        // of names, and a scan per name would be quadratic.
        let mut present: std::collections::HashSet<String> = self.names.iter().cloned().collect();
        for name in names {
            if present.insert(name.clone()) {
                self.names.push(name.clone());
            }
        }
    }
}

#[derive(Default)]
pub(crate) struct Plan {
    /// Nested index blobs, stored as content.
    indexes: Vec<Vec<u8>>,
    pub(crate) images: Vec<PlannedImage>,
    /// Names and the descriptor each points at (manifest or index).
    pub(crate) names: Vec<(String, Desc)>,
    /// Each distinct blob is read and verified once however many paths
    /// reach it: indexes read (with the images below them), manifests
    /// planned (their image), configs read, layer blobs checked.
    indexes_seen: HashMap<Digest, Vec<usize>>,
    manifests_seen: HashMap<Digest, usize>,
    configs_seen: HashMap<Digest, Arc<Vec<u8>>>,
    layers_seen: HashSet<Digest>,
    /// What the plan listed and read so far, against the limits.
    descriptors: usize,
    json_bytes: u64,
}

thread_local! {
    /// Blobs and archive members imports on this thread read and hashed
    /// while planning (see [`blob_verifications_on_this_thread`]).
    static BLOB_VERIFICATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts one blob (or archive member) hashed by the planner.
pub(crate) fn count_verification() {
    BLOB_VERIFICATIONS.with(|count| count.set(count.get() + 1));
}

/// How many blobs (manifests, indexes, configs, `docker save` layer
/// members) the imports run on the calling thread have read and hashed
/// while planning, since the thread started. Tests use it to check that an
/// import reads each distinct blob once however many paths reach it.
#[doc(hidden)]
pub fn blob_verifications_on_this_thread() -> u64 {
    BLOB_VERIFICATIONS.with(Cell::get)
}

/// Refuses a name whose digest is not that of its target: a name
/// `repo@sha256:<d>` may only point at `<d>` (what `imgstore tag` and
/// containerd's resolver assume). A name without a digest passes.
pub(crate) fn check_name_digest(name: &str, target: &Digest) -> Result<()> {
    let reference = imgstore_refs::reference::Reference::parse_normalized(name).map_err(|e| {
        Error::InvalidName {
            name: name.to_owned(),
            reason: e.to_string(),
        }
    })?;
    match reference.digest() {
        Some(digest) if digest != target => Err(Error::NameDigestMismatch {
            name: name.to_owned(),
            target: target.clone(),
        }),
        _ => Ok(()),
    }
}

impl Plan {
    /// Counts `count` more descriptors (or names) listed by the input,
    /// refusing the import past [`MAX_IMPORT_DESCRIPTORS`].
    pub(crate) fn count_descriptors(&mut self, count: usize, input: &Path) -> Result<()> {
        self.descriptors = self.descriptors.saturating_add(count);
        if self.descriptors > MAX_IMPORT_DESCRIPTORS {
            return Err(Error::ImportTooLarge {
                input: input.to_path_buf(),
                limit: "descriptors and names",
                max: MAX_IMPORT_DESCRIPTORS as u64,
            });
        }
        Ok(())
    }

    /// Counts `bytes` more JSON read by the plan, refusing the import past
    /// [`MAX_IMPORT_JSON_BYTES`].
    pub(crate) fn count_json_bytes(&mut self, bytes: u64, input: &Path) -> Result<()> {
        self.json_bytes = self.json_bytes.saturating_add(bytes);
        if self.json_bytes > MAX_IMPORT_JSON_BYTES {
            return Err(Error::ImportTooLarge {
                input: input.to_path_buf(),
                limit: "bytes of JSON (indexes, manifests, configs)",
                max: MAX_IMPORT_JSON_BYTES,
            });
        }
        Ok(())
    }

    /// A JSON blob of the layout, read and verified once, against the limits.
    fn read_json(&mut self, layout: &Layout<'_>, desc: &Desc) -> Result<Vec<u8>> {
        // A blob over the per-blob limit is refused by `read_json_blob`.
        if desc.size <= MAX_JSON_BLOB {
            self.count_json_bytes(desc.size, layout.location())?;
        }
        layout.read_json_blob(desc)
    }
}

/// How many images of an import are staged into one layer batch and one
/// image batch: an import of 1000 images commits twice (plus its names),
/// not five times per image, while the batches of a far larger one stay a
/// few MiB.
const IMAGES_PER_BATCH: usize = 1024;

/// What apply changed, to undo on failure.
#[derive(Default)]
struct Undo {
    /// Images whose hold on their top layer is committed but whose summary
    /// is not (their image batch failed): the holds to drop.
    held: Vec<(ChainId, ImageId)>,
    created_images: Vec<ImageId>,
    created_names: Vec<String>,
    /// Names moved, with the record as it was.
    moved_names: Vec<ImageRecord>,
}

/// Reads blobs of one layout (a directory, a tar archive, or a registry's
/// repository), verifying them.
pub(crate) enum Layout<'a> {
    /// A repository of a registry (a pull): manifests by digest, blobs
    /// streamed from it; layers already stored are not downloaded.
    Registry(&'a RegistrySource<'a>),
    /// An OCI layout directory.
    Dir(&'a Path),
    /// A tar archive: an OCI layout inside it, or blobs at the members
    /// `blobs` names (a docker-save archive).
    Archive {
        tar: &'a TarIndex,
        blobs: HashMap<Digest, String>,
    },
}

impl Layout<'_> {
    /// The directory or archive, for messages.
    fn location(&self) -> &Path {
        match self {
            Layout::Dir(dir) => dir,
            Layout::Archive { tar, .. } => tar.path(),
            Layout::Registry(source) => &source.remote.location,
        }
    }

    /// Tells a pull's observer what happens to a layer (nothing for files).
    fn report(&self, layer: &Digest, status: LayerStatus) {
        if let Layout::Registry(source) = self {
            source.report(&PullEvent {
                layer: layer.clone(),
                status,
            });
        }
    }

    /// Checks at plan time that a layer blob is there with its size: a
    /// registry's are checked (HEAD) just before they are downloaded, and
    /// only those not stored yet.
    fn check_layer_blob(&self, desc: &Desc) -> Result<()> {
        match self {
            Layout::Registry(_) => Ok(()),
            _ => self.open_blob(desc).map(drop),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        // A parsed digest's parts hold no `/` or `..`: the path stays inside.
        Path::new("blobs")
            .join(digest.algorithm().to_string())
            .join(digest.encoded())
    }

    /// A top-level file of the layout (`oci-layout`, `index.json`); `None`
    /// when absent.
    fn read_top_file(&self, name: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Layout::Dir(dir) => {
                let path = dir.join(name);
                let Some((file, len)) = open_regular(&path)? else {
                    return Ok(None);
                };
                if len > MAX_JSON_BLOB {
                    return Err(Error::InvalidInput {
                        what: path.display().to_string(),
                        reason: format!("{len} bytes is more than the {MAX_JSON_BLOB} allowed"),
                    });
                }
                let mut bytes = Vec::new();
                file.take(len)
                    .read_to_end(&mut bytes)
                    .map_err(|source| Error::Io {
                        operation: "read",
                        path,
                        source,
                    })?;
                Ok(Some(bytes))
            }
            Layout::Archive { tar, .. } => tar.read_member(name),
            Layout::Registry(_) => Ok(None),
        }
    }

    /// Opens a blob and checks its length against the descriptor.
    fn open_blob(&self, desc: &Desc) -> Result<Box<dyn Read + Send + '_>> {
        let (reader, len): (Box<dyn Read + Send>, u64) = match self {
            Layout::Dir(dir) => {
                let path = dir.join(self.blob_path(&desc.digest));
                let Some((file, len)) = open_regular(&path)? else {
                    return Err(Error::BlobNotFound {
                        digest: desc.digest.clone(),
                        layout: dir.to_path_buf(),
                    });
                };
                (Box::new(file.take(len)), len)
            }
            Layout::Archive { tar, blobs } => {
                let member = match blobs.get(&desc.digest) {
                    Some(member) => member.clone(),
                    None => self.blob_path(&desc.digest).to_string_lossy().into_owned(),
                };
                let (reader, len) =
                    tar.open_member(&member)?
                        .ok_or_else(|| Error::BlobNotFound {
                            digest: desc.digest.clone(),
                            layout: tar.path().to_path_buf(),
                        })?;
                (Box::new(reader), len)
            }
            Layout::Registry(source) => source.remote.open_blob(desc)?,
        };
        if len != desc.size {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: len,
            });
        }
        Ok(reader)
    }

    /// A small (JSON) blob, read whole and verified.
    fn read_json_blob(&self, desc: &Desc) -> Result<Vec<u8>> {
        if desc.size > MAX_JSON_BLOB {
            return Err(Error::InvalidInput {
                what: format!("blob {}", desc.digest),
                reason: format!(
                    "{} bytes is more than the {MAX_JSON_BLOB} allowed",
                    desc.size
                ),
            });
        }
        let bytes = match self {
            Layout::Registry(source) => source.json_blob(desc)?,
            _ => {
                let mut file = self.open_blob(desc)?;
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes).map_err(|source| Error::Io {
                    operation: "read",
                    path: self.location().join(self.blob_path(&desc.digest)),
                    source,
                })?;
                bytes
            }
        };
        if bytes.len() as u64 != desc.size {
            return Err(Error::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: bytes.len() as u64,
            });
        }
        count_verification();
        let actual = desc.digest.algorithm().from_bytes(&bytes);
        if actual != desc.digest {
            return Err(Error::DigestMismatch {
                digest: desc.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }
}

/// Opens a file of a layout directory: `None` when absent; refused when it
/// is not a regular file (a FIFO would block the import forever, a device
/// never ends). Opened non-blocking, so a FIFO does not block the open.
fn open_regular(path: &Path) -> Result<Option<(File, u64)>> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                operation: "open",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let meta = file.metadata().map_err(|source| Error::Io {
        operation: "stat",
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(Error::InvalidInput {
            what: path.display().to_string(),
            reason: "not a regular file".to_owned(),
        });
    }
    Ok(Some((file, meta.len())))
}

fn parse_json<T: for<'de> Deserialize<'de>>(bytes: &[u8], file: impl Into<String>) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| Error::InvalidJson {
        file: file.into(),
        source,
    })
}

/// Checks `oci-layout` and parses `index.json`: the top-level descriptors.
fn read_layout_index(layout: &Layout<'_>) -> Result<Vec<Desc>> {
    let Some(bytes) = layout.read_top_file("oci-layout")? else {
        return Err(Error::NotOciLayout {
            path: layout.location().to_path_buf(),
            reason: "the oci-layout file is missing".to_owned(),
        });
    };
    let version = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(str::to_owned));
    if version.as_deref() != Some("1.0.0") {
        return Err(Error::NotOciLayout {
            path: layout.location().to_path_buf(),
            reason: format!(
                "oci-layout must hold imageLayoutVersion \"1.0.0\", found {}",
                version.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
            ),
        });
    }
    let Some(index) = layout.read_top_file("index.json")? else {
        return Err(Error::Io {
            operation: "read",
            path: layout.location().join("index.json"),
            source: io::Error::new(io::ErrorKind::NotFound, "index.json is missing"),
        });
    };
    let index: RawIndex = parse_json(&index, "index.json")?;
    index
        .manifests
        .into_iter()
        .map(|raw| Desc::from_raw(raw, "index.json"))
        .collect()
}

impl Plan {
    /// Plans the import of the images of an OCI layout: every entry of
    /// `index.json`, except that entries carrying a platform are chosen by
    /// `platform` among those with the same `ref.name` (or none).
    pub(crate) fn from_layout(layout: &Layout<'_>, platform: &PlatformChoice) -> Result<Plan> {
        let descs = read_layout_index(layout)?;
        let mut plan = Plan::default();
        plan.count_descriptors(descs.len(), layout.location())?;
        let mut names = Vec::with_capacity(descs.len());
        for desc in &descs {
            names.push(match desc.annotations.get(REF_NAME) {
                Some(name) => Some(normalize_name(name)?),
                None => None,
            });
        }
        let mut follow = vec![false; descs.len()];
        let mut groups: Vec<(Option<&String>, Vec<usize>)> = Vec::new();
        for (i, desc) in descs.iter().enumerate() {
            if desc.platform.is_none() {
                follow[i] = true;
                continue;
            }
            let name = names[i].as_ref();
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, members)) => members.push(i),
                None => groups.push((name, vec![i])),
            }
        }
        for (_, members) in &groups {
            let entries: Vec<Desc> = members.iter().map(|&i| descs[i].clone()).collect();
            for chosen in platform.select("index.json", &entries)? {
                follow[members[chosen]] = true;
            }
        }
        // With several platforms under one name, the name goes to the one
        // this host prefers (the host's, else the first in index order):
        // the rule by which a name of an index means one of its manifests.
        let host = Platform::host();
        // The followed entries of each name, in index order (a map: a
        // layout may carry tens of thousands of names).
        let mut sharing: std::collections::HashMap<&String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, name) in names.iter().enumerate() {
            if let Some(name) = name
                && follow[i]
            {
                sharing.entry(name).or_default().push(i);
            }
        }
        let holders: std::collections::HashSet<(&String, usize)> = sharing
            .iter()
            .map(|(name, entries)| {
                let platforms: Vec<Option<&Platform>> = entries
                    .iter()
                    .map(|&j| descs[j].platform.as_ref())
                    .collect();
                let preferred = host.preference_order(&platforms).first().copied();
                (*name, entries[preferred.unwrap_or(0)])
            })
            .collect();
        for (i, desc) in descs.iter().enumerate() {
            if !follow[i] {
                continue;
            }
            let names = match &names[i] {
                Some(name) if holders.contains(&(name, i)) => {
                    check_name_digest(name, &desc.digest)?;
                    plan.names.push((name.clone(), desc.clone()));
                    vec![name.clone()]
                }
                _ => Vec::new(),
            };
            plan.follow(layout, desc, &names, 0, platform)?;
        }
        Ok(plan)
    }

    /// Follows one descriptor: a manifest becomes a planned image; an index
    /// is stored and its manifests followed. Returns the positions of the
    /// images it reaches. A blob reached again is not read again: the images
    /// planned for it take `names` too.
    pub(crate) fn follow(
        &mut self,
        layout: &Layout<'_>,
        desc: &Desc,
        names: &[String],
        depth: usize,
        platform: &PlatformChoice,
    ) -> Result<Vec<usize>> {
        if INDEX_TYPES.contains(&desc.media_type.as_str()) {
            if let Some(reached) = self.indexes_seen.get(&desc.digest) {
                let reached = reached.clone();
                for &i in &reached {
                    self.images[i].add_names(names);
                }
                return Ok(reached);
            }
            if depth >= MAX_INDEX_DEPTH {
                return Err(Error::InvalidInput {
                    what: format!("index {}", desc.digest),
                    reason: format!("indexes nested more than {MAX_INDEX_DEPTH} deep"),
                });
            }
            let bytes = self.read_json(layout, desc)?;
            let index: RawIndex = parse_json(&bytes, format!("index {}", desc.digest))?;
            self.count_descriptors(index.manifests.len(), layout.location())?;
            self.indexes.push(bytes);
            let children = index
                .manifests
                .into_iter()
                .map(|raw| Desc::from_raw(raw, "index"))
                .collect::<Result<Vec<_>>>()?;
            let mut reached: Vec<usize> = Vec::new();
            // Like moby and containerd, the host's platform by default;
            // other platforms' manifests are not followed.
            for chosen in platform.select(&format!("index {}", desc.digest), &children)? {
                for i in self.follow(layout, &children[chosen], names, depth + 1, platform)? {
                    if !reached.contains(&i) {
                        reached.push(i);
                    }
                }
            }
            if reached.is_empty() {
                return Err(Error::InvalidInput {
                    what: format!("index {}", desc.digest),
                    reason: "it holds no image manifest".to_owned(),
                });
            }
            self.indexes_seen
                .insert(desc.digest.clone(), reached.clone());
            return Ok(reached);
        }
        if !MANIFEST_TYPES.contains(&desc.media_type.as_str()) {
            return Err(Error::UnsupportedMediaType {
                what: "manifest",
                media_type: desc.media_type.clone(),
            });
        }
        if let Some(&i) = self.manifests_seen.get(&desc.digest) {
            self.images[i].add_names(names);
            return Ok(vec![i]);
        }
        let manifest_bytes = self.read_json(layout, desc)?;
        let manifest_file = format!("manifest {}", desc.digest);
        let manifest: RawManifest = parse_json(&manifest_bytes, manifest_file.clone())?;
        if let Some(own) = &manifest.media_type
            && own != &desc.media_type
        {
            return Err(Error::InvalidInput {
                what: manifest_file,
                reason: format!(
                    "its mediaType {own:?} differs from its descriptor's {:?}",
                    desc.media_type
                ),
            });
        }
        if manifest.layers.len() > MAX_LAYERS {
            return Err(Error::InvalidInput {
                what: manifest_file,
                reason: format!(
                    "{} layers is more than the {MAX_LAYERS} allowed",
                    manifest.layers.len()
                ),
            });
        }
        self.count_descriptors(1 + manifest.layers.len(), layout.location())?;
        let config = Desc::from_raw(manifest.config, "config")?;
        let config_bytes = match self.configs_seen.get(&config.digest) {
            Some(bytes) => Arc::clone(bytes),
            None => {
                let bytes = Arc::new(self.read_json(layout, &config)?);
                self.configs_seen
                    .insert(config.digest.clone(), Arc::clone(&bytes));
                bytes
            }
        };
        let rootfs: RawConfig = parse_json(&config_bytes, format!("config {}", config.digest))?;
        let diff_ids = rootfs.diff_ids()?;
        if diff_ids.len() != manifest.layers.len() {
            return Err(Error::InvalidInput {
                what: manifest_file,
                reason: format!(
                    "{} layers, but config {} lists {} diff IDs",
                    manifest.layers.len(),
                    config.digest,
                    diff_ids.len()
                ),
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (raw, diff_id) in manifest.layers.into_iter().zip(diff_ids) {
            let desc = Desc::from_raw(raw, "layer")?;
            let compression = if GZIP_LAYER_TYPES.contains(&desc.media_type.as_str()) {
                Compression::Gzip
            } else if ZSTD_LAYER_TYPES.contains(&desc.media_type.as_str()) {
                Compression::Zstd
            } else if PLAIN_LAYER_TYPES.contains(&desc.media_type.as_str()) {
                Compression::None
            } else {
                return Err(Error::UnsupportedMediaType {
                    what: "layer",
                    media_type: desc.media_type.clone(),
                });
            };
            if desc.size == 0 {
                return Err(Error::EmptyLayer {
                    layer: desc.digest.clone(),
                });
            }
            // Present with the right length; content is verified while stored.
            if !self.layers_seen.contains(&desc.digest) {
                layout.check_layer_blob(&desc)?;
                self.layers_seen.insert(desc.digest.clone());
            }
            layers.push(PlannedLayer {
                desc,
                compression,
                diff_id,
            });
        }
        self.images.push(PlannedImage {
            manifest: desc.clone(),
            manifest_bytes,
            config_bytes,
            layers,
            names: names.to_vec(),
        });
        let position = self.images.len() - 1;
        self.manifests_seen.insert(desc.digest.clone(), position);
        Ok(vec![position])
    }
}

/// Hashes what it is written, the diff (uncompressed layer) as it streams,
/// and scans its tar headers for the regular files' bytes.
struct DiffSink {
    /// `None` for an uncompressed layer: its diff is the blob, whose digest
    /// the content store verifies; hashing it twice would only cost time.
    digester: Option<Digester>,
    size: u64,
    scanner: TarScanner,
}

impl Write for DiffSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(digester) = &mut self.digester {
            digester.update(buf);
        }
        self.scanner.feed(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

enum Decoder {
    Gzip(Box<MultiGzDecoder<DiffSink>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, DiffSink>>),
    Plain(Box<DiffSink>),
}

/// What streaming a layer blob found out about its diff.
#[derive(Debug, Clone)]
struct DiffInfo {
    /// sha256 of the uncompressed bytes.
    diff_id: Digest,
    /// Their length.
    size: u64,
    /// The regular files' bytes in the tar, `None` when it does not scan.
    files_size: Option<u64>,
}

/// Passes a layer blob through to the content store while decompressing a
/// copy into a [`DiffSink`]. A diff ID is the hash of the decompressed bytes
/// as they are (umoci's unterminated tars too); the tar headers are only
/// scanned for the files size, which a tar the scanner cannot read leaves
/// unknown without failing the import.
struct LayerTee<R> {
    inner: R,
    decoder: Decoder,
    /// The first decoding failure; the blob is still passed through whole.
    failed: Option<io::Error>,
}

impl<R: Read> Read for LayerTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.failed.is_none() {
            let chunk = &buf[..n];
            let result = match &mut self.decoder {
                Decoder::Gzip(decoder) => decoder.write_all(chunk),
                Decoder::Zstd(decoder) => decoder.write_all(chunk),
                Decoder::Plain(sink) => sink.write_all(chunk),
            };
            if let Err(e) = result {
                self.failed = Some(e);
            }
        }
        Ok(n)
    }
}

impl<R> LayerTee<R> {
    fn new(inner: R, compression: Compression) -> io::Result<LayerTee<R>> {
        let sink = DiffSink {
            digester: match compression {
                Compression::None => None,
                Compression::Gzip | Compression::Zstd => Some(Digester::new(Algorithm::Sha256)),
            },
            size: 0,
            scanner: TarScanner::new(),
        };
        let decoder = match compression {
            Compression::Gzip => Decoder::Gzip(Box::new(MultiGzDecoder::new(sink))),
            Compression::Zstd => Decoder::Zstd(Box::new(zstd::stream::write::Decoder::new(sink)?)),
            Compression::None => Decoder::Plain(Box::new(sink)),
        };
        Ok(LayerTee {
            inner,
            decoder,
            failed: None,
        })
    }

    /// What the diff turned out to be, once the whole blob went through.
    /// `blob` is the digest the content store verified the blob against:
    /// the diff ID of an uncompressed layer.
    fn finish(self, blob: &Digest) -> io::Result<DiffInfo> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let sink = match self.decoder {
            Decoder::Gzip(decoder) => decoder.finish()?,
            // Refuses a stream that does not end on a complete frame.
            Decoder::Zstd(decoder) => decoder.finish()?,
            Decoder::Plain(sink) => *sink,
        };
        Ok(DiffInfo {
            diff_id: match sink.digester {
                Some(digester) => digester.finish(),
                None => blob.clone(),
            },
            size: sink.size,
            files_size: sink.scanner.finish().ok(),
        })
    }
}

impl Store {
    /// Imports every image of the OCI image layout directory `dir` (all
    /// manifests of `index.json`, following nested indexes), and points each
    /// `org.opencontainers.image.ref.name` annotation at its manifest (or
    /// index), moving a name that pointed elsewhere. Importing the same
    /// layout again changes nothing.
    ///
    /// All or nothing: a bad layout is refused before anything is written,
    /// with an error naming the problem (missing blob: `NotFound` naming the
    /// digest; digest, size or diff ID mismatch: `DataCorruption` naming the
    /// blob; an unknown media type, a file that is not JSON or a directory
    /// that is not a layout: `InvalidArgument` naming it). A failure while
    /// storing undoes the names, images and layer records this import made;
    /// layer blobs it had stored by then remain, unreferenced, for `gc`.
    /// Of a multi-platform index, only the manifest for this host is
    /// imported ([`PlatformChoice::Host`](crate::PlatformChoice::Host); an
    /// index with none is refused with [`Error::NoMatchingPlatform`]); see
    /// [`import_with`](Store::import_with) for other choices. The CRI cache is updated once the
    /// import is committed; should that fail, the import is undone too.
    pub fn import_oci_layout(&self, dir: impl AsRef<Path>) -> Result<Vec<Imported>> {
        self.import_oci_layout_with(dir, &ImportOptions::default())
    }

    /// [`import_oci_layout`](Store::import_oci_layout) with `options`
    /// (which platforms of multi-platform indexes to take).
    pub fn import_oci_layout_with(
        &self,
        dir: impl AsRef<Path>,
        options: &ImportOptions,
    ) -> Result<Vec<Imported>> {
        let layout = Layout::Dir(dir.as_ref());
        let plan = Plan::from_layout(&layout, &options.platform)?;
        self.import_plan(&layout, &plan)
    }

    /// Applies a checked plan, all or nothing (see `import_oci_layout`).
    pub(crate) fn import_plan(&self, layout: &Layout<'_>, plan: &Plan) -> Result<Vec<Imported>> {
        let lock = self.lock_imports()?;
        let mut undo = Undo::default();
        match self.apply(layout, plan, &mut undo) {
            Ok(imported) => {
                // New images may be what other names of indexes prefer.
                if !undo.created_images.is_empty()
                    && let Err(e) = self.reindex_index_names()
                {
                    self.undo(undo);
                    return Err(e);
                }
                // A load's log is folded now, by the load, not by the
                // next command (best effort: the import stands either way).
                let _ = self.content.make_durable();
                let _ = self.images.backend().make_durable();
                lock.commit();
                Ok(imported)
            }
            Err(e) => {
                self.undo(undo);
                Err(e)
            }
        }
    }

    fn apply(&self, layout: &Layout<'_>, plan: &Plan, undo: &mut Undo) -> Result<Vec<Imported>> {
        // Diff IDs of layer blobs already streamed by this import.
        let mut streamed: HashMap<Digest, DiffInfo> = HashMap::new();
        let mut imported = Vec::with_capacity(plan.images.len());
        for images in plan.images.chunks(IMAGES_PER_BATCH) {
            self.store_images(layout, images, &mut streamed, undo, &mut imported)?;
        }
        // Written deferred: the names' batch below makes them durable first.
        for index in &plan.indexes {
            self.content.set_deferred(index)?;
        }
        // Every name in one batch: one commit however many names.
        let targets = plan
            .names
            .iter()
            .map(|(name, target)| Ok((name.clone(), target.to_descriptor()?)))
            .collect::<Result<Vec<_>>>()?;
        let mut batch = Batch::new();
        let changes = self
            .refs
            .stage_set_targets(&self.namespace, &targets, &mut batch)?;
        // Each distinct name with its last target, in the order first given
        // (as `stage_set_targets` reports them), and its record as the
        // batch leaves it: what the name index is derived from, in the
        // same batch.
        let mut last: std::collections::HashMap<&str, &Descriptor> =
            std::collections::HashMap::new();
        let mut names: Vec<&String> = Vec::new();
        for (name, target) in &targets {
            if last.insert(name.as_str(), target).is_none() {
                names.push(name);
            }
        }
        let mut records = Vec::with_capacity(names.len());
        for (name, change) in names.iter().zip(&changes) {
            let target = last.get(name.as_str()).copied().cloned();
            records.push(match (change, target) {
                (TargetChange::Moved(old), Some(target)) => {
                    let mut moved = ImageRecord::clone(old);
                    moved.target = target;
                    moved
                }
                (TargetChange::Created, Some(target)) => ImageRecord::new(name.as_str(), target),
                _ => ImageRecord::clone(&*self.refs.get(&self.namespace, name)?),
            });
        }
        let index: Vec<(&str, Option<&ImageRecord>)> = names
            .iter()
            .zip(&records)
            .map(|(name, record)| (name.as_str(), Some(record)))
            .collect();
        self.stage_names(&mut batch, &self.namespace, &index)?;
        // What a moved name meant before: read before the batch commits.
        for (name, change) in names.iter().zip(&changes) {
            if let TargetChange::Moved(_) = change
                && let Some(previous) = self.image_of_name(name)?
            {
                for image in imported.iter_mut() {
                    if image.names.contains(name) && image.id != previous {
                        image.renamed.push(((*name).clone(), previous.clone()));
                    }
                }
            }
        }
        self.refs.commit(&batch)?;
        for (name, change) in names.iter().zip(changes) {
            match change {
                TargetChange::Created => undo.created_names.push((*name).clone()),
                TargetChange::Moved(old) => undo.moved_names.push(ImageRecord::clone(&old)),
                TargetChange::Unchanged => {}
            }
        }
        Ok(imported)
    }

    /// Stores the blobs of `images` (deferred: not synced one by one),
    /// stages their layers, holds and summaries, and commits them in two
    /// batches: the layer records and the images' holds on their top
    /// layers (content backend), then the summaries and child links (image
    /// backend). Each backend syncs the blobs written deferred before its
    /// batch, so no record is durable before the blob it names; a crash
    /// between the two leaves layers and holds no summary names (gc's),
    /// never a half image. No transient layer reference is taken: every
    /// staged layer is held in the same batch (a child's `layer:` holder
    /// or its image's `image:` hold).
    fn store_images(
        &self,
        layout: &Layout<'_>,
        images: &[PlannedImage],
        streamed: &mut HashMap<Digest, DiffInfo>,
        undo: &mut Undo,
        imported: &mut Vec<Imported>,
    ) -> Result<()> {
        let mut layers = LayerStaging::new();
        let mut layer_batch = Batch::new();
        let mut staged_images = ImageStaging::new();
        let mut image_batch = Batch::new();
        let mut created: Vec<(ChainId, ImageId)> = Vec::new();
        let mut created_bare: Vec<ImageId> = Vec::new();
        for image in images {
            self.content.set_deferred(&image.config_bytes)?;
            let present = self.layers_present(layout, image);
            // Like Docker, a pull of an image already stored says nothing
            // per layer (and downloads nothing).
            let stored_image = self
                .images
                .get(&ImageId::of_config(&image.config_bytes))
                .is_ok();
            for (layer, stored) in image.layers.iter().zip(&present) {
                let status = match stored {
                    Some(_) if stored_image => continue,
                    Some(_) => LayerStatus::AlreadyExists,
                    None => LayerStatus::PullingFsLayer,
                };
                layout.report(&layer.desc.digest, status);
            }
            // A pull downloads the missing layers of the image several at
            // once; they are registered in order below.
            let mut downloaded_now: HashSet<Digest> = HashSet::new();
            if let Layout::Registry(source) = layout {
                let mut missing: Vec<&PlannedLayer> = Vec::new();
                for (layer, stored) in image.layers.iter().zip(&present) {
                    if stored.is_none()
                        && !streamed.contains_key(&layer.desc.digest)
                        && downloaded_now.insert(layer.desc.digest.clone())
                    {
                        missing.push(layer);
                    }
                }
                for (layer, info) in self.download_layers(source, &missing)? {
                    streamed.insert(layer, info);
                }
            }
            let mut parent: Option<ChainId> = None;
            for (layer, stored) in image.layers.iter().zip(present) {
                let downloaded = stored.is_none()
                    && (downloaded_now.remove(&layer.desc.digest)
                        || !streamed.contains_key(&layer.desc.digest));
                let info = match (stored, streamed.get(&layer.desc.digest)) {
                    (Some(stored), _) => stored,
                    (None, Some(known)) => known.clone(),
                    (None, None) => {
                        let computed = self.store_layer_blob(layout, layer)?;
                        layout.report(&layer.desc.digest, LayerStatus::VerifyingChecksum);
                        layout.report(&layer.desc.digest, LayerStatus::DownloadComplete);
                        streamed.insert(layer.desc.digest.clone(), computed.clone());
                        computed
                    }
                };
                if info.diff_id != layer.diff_id {
                    return Err(Error::DiffIdMismatch {
                        layer: layer.desc.digest.clone(),
                        expected: layer.diff_id.clone(),
                        actual: info.diff_id,
                    });
                }
                let blob = BlobRef {
                    digest: layer.desc.digest.clone(),
                    size: layer.desc.size,
                    media_type: layer.desc.media_type.clone(),
                };
                let mut new = NewLayer::new(info.diff_id, info.size).with_blob(blob);
                if let Some(files_size) = info.files_size {
                    new = new.with_files_size(files_size);
                }
                let registered = self.layers.stage_register(
                    new,
                    parent.as_ref(),
                    &mut layers,
                    &mut layer_batch,
                )?;
                parent = Some(registered.chain_id().clone());
                if downloaded {
                    layout.report(&layer.desc.digest, LayerStatus::PullComplete);
                }
            }
            let staged = self.images.stage_create(
                &image.config_bytes,
                &mut layers,
                &mut layer_batch,
                &mut staged_images,
                &mut image_batch,
            )?;
            if staged.created {
                match &staged.top {
                    Some(top) => created.push((top.clone(), staged.id.clone())),
                    None => created_bare.push(staged.id.clone()),
                }
            }
            self.content.set_deferred(&image.manifest_bytes)?;
            imported.push(Imported {
                id: staged.id,
                manifest: image.manifest.digest.clone(),
                names: image.names.clone(),
                top_chain_id: parent,
                created: staged.created,
                renamed: Vec::new(),
            });
        }
        if !layer_batch.is_empty() {
            self.layers.commit(&layer_batch, &layers)?;
        }
        let holds = created.len();
        undo.held.extend(created);
        if !image_batch.is_empty() {
            self.images.commit(&image_batch)?;
        }
        let committed = undo.held.split_off(undo.held.len() - holds);
        undo.created_images
            .extend(committed.into_iter().map(|(_, id)| id).chain(created_bare));
        Ok(())
    }

    /// For a pull, the layers of `image` already stored (the chain
    /// registered and the blob in the content store), with what their
    /// records know of their diffs: those are not downloaded. `None` for
    /// every layer of a file import, which re-reads and verifies them all.
    fn layers_present(&self, layout: &Layout<'_>, image: &PlannedImage) -> Vec<Option<DiffInfo>> {
        if !matches!(layout, Layout::Registry(_)) {
            return vec![None; image.layers.len()];
        }
        let mut chain: Option<ChainId> = None;
        image
            .layers
            .iter()
            .map(|layer| {
                let chain_id = match &chain {
                    None => ChainId::base(layer.diff_id.clone()),
                    Some(parent) => parent.child(&layer.diff_id),
                };
                let stored = self
                    .layers
                    .layer(&chain_id)
                    .ok()
                    .flatten()
                    .filter(|_| self.content.contains(&layer.desc.digest).unwrap_or(false))
                    .map(|stored| DiffInfo {
                        diff_id: layer.diff_id.clone(),
                        size: stored.size(),
                        files_size: stored.files_size(),
                    });
                chain = Some(chain_id);
                stored
            })
            .collect()
    }

    /// Downloads `layers` from a registry into the content store, up to
    /// `max_concurrent_downloads` at once (the rest reported `Waiting`),
    /// each streamed and verified as `store_layer_blob` does; progress (the
    /// bytes received, each layer finished) is reported on this thread. The first failure in
    /// layer order is returned once the downloads under way end (no new
    /// one starts after a failure).
    fn download_layers(
        &self,
        source: &RegistrySource<'_>,
        layers: &[&PlannedLayer],
    ) -> Result<Vec<(Digest, DiffInfo)>> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let workers = source.max_concurrent_downloads.min(layers.len());
        for layer in layers.iter().skip(workers) {
            source.report(&PullEvent {
                layer: layer.desc.digest.clone(),
                status: LayerStatus::Waiting,
            });
        }
        let remote: &Remote<'_> = &source.remote;
        let content: &crate::AnyBackend = &self.content;
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        // Per layer: bytes received so far, or the download's end.
        enum Update {
            Bytes(u64),
            // Boxed: an error is large, the byte counts are many.
            Done(Box<Result<DiffInfo>>),
        }
        let (done, finished) = std::sync::mpsc::channel::<(usize, Update)>();
        let mut results: Vec<Option<Result<DiffInfo>>> = (0..layers.len()).map(|_| None).collect();
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let done = done.clone();
                let (next, failed) = (&next, &failed);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= layers.len() || failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = remote.open_blob(&layers[i].desc).and_then(|(reader, len)| {
                            check_blob_size(&layers[i].desc, len)?;
                            let reader = ProgressReader::new(reader, len, |bytes| {
                                // The receiver outlives the workers.
                                let _ = done.send((i, Update::Bytes(bytes)));
                            });
                            store_layer_stream(content, reader, layers[i])
                        });
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if done.send((i, Update::Done(Box::new(result)))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(done);
            for (i, update) in finished {
                let result = match update {
                    Update::Bytes(current) => {
                        source.report(&PullEvent {
                            layer: layers[i].desc.digest.clone(),
                            status: LayerStatus::Downloading {
                                current,
                                total: layers[i].desc.size,
                            },
                        });
                        continue;
                    }
                    Update::Done(result) => *result,
                };
                if result.is_ok() {
                    for status in [
                        LayerStatus::VerifyingChecksum,
                        LayerStatus::DownloadComplete,
                    ] {
                        source.report(&PullEvent {
                            layer: layers[i].desc.digest.clone(),
                            status,
                        });
                    }
                }
                results[i] = Some(result);
            }
        });
        let mut stored = Vec::with_capacity(layers.len());
        for (layer, result) in layers.iter().zip(results) {
            match result {
                Some(Ok(info)) => stored.push((layer.desc.digest.clone(), info)),
                Some(Err(e)) => return Err(e),
                // Never started: a download failed, and that failure
                // comes first or later in this loop.
                None => {}
            }
        }
        Ok(stored)
    }

    /// Streams one layer blob into the content store, verified, and returns
    /// its diff ID, uncompressed size and files size.
    fn store_layer_blob(&self, layout: &Layout<'_>, layer: &PlannedLayer) -> Result<DiffInfo> {
        let file = layout.open_blob(&layer.desc)?;
        store_layer_stream(&self.content, file, layer)
    }
}

/// Refuses a blob whose length is not its descriptor's size.
fn check_blob_size(desc: &Desc, len: u64) -> Result<()> {
    if len != desc.size {
        return Err(Error::SizeMismatch {
            digest: desc.digest.clone(),
            expected: desc.size,
            actual: len,
        });
    }
    Ok(())
}

/// Streams one layer blob read from `file` into `content`, verified
/// against its digest, decompressed on the way for its diff ID, size and
/// files size.
fn store_layer_stream(
    content: &crate::AnyBackend,
    file: impl Read,
    layer: &PlannedLayer,
) -> Result<DiffInfo> {
    let decompress_error = |source| Error::Decompress {
        layer: layer.desc.digest.clone(),
        source,
    };
    let mut tee =
        LayerTee::new(io::BufReader::new(file), layer.compression).map_err(decompress_error)?;
    // Deferred: durable before the layer batch that names it commits.
    let info = content.write_blob_deferred(Some(&layer.desc.digest), &mut tee)?;
    if info.size != layer.desc.size {
        return Err(Error::SizeMismatch {
            digest: layer.desc.digest.clone(),
            expected: layer.desc.size,
            actual: info.size,
        });
    }
    tee.finish(&layer.desc.digest).map_err(decompress_error)
}

impl Store {
    /// Undoes what a failed apply changed, newest first. Failures here are
    /// ignored: the import's own error is the one reported, and transient
    /// layer references left behind live in memory only (gone on reopen).
    fn undo(&self, undo: Undo) {
        let created_images = !undo.created_images.is_empty();
        // The names back as they were, with their index, in one batch.
        let _ = self.restore_import_names(&undo);
        for id in undo.created_images.iter().rev() {
            let _ = self.images.delete(id);
        }
        for (top, id) in undo.held.iter().rev() {
            let _ = self.layers.unhold(top, &layer_holder(id));
        }
        if created_images {
            let _ = self.reindex_index_names();
        }
    }

    /// Deletes the names an import created and points those it moved back
    /// at their old targets, with their index entries, in one batch.
    fn restore_import_names(&self, undo: &Undo) -> Result<()> {
        let mut batch = Batch::new();
        let mut restored: Vec<ImageRecord> = Vec::new();
        let mut deleted: Vec<&str> = Vec::new();
        for name in &undo.created_names {
            self.refs
                .stage_delete(&self.namespace, name, None, &mut batch)?;
            deleted.push(name);
        }
        for old in &undo.moved_names {
            restored.push(self.refs.stage_update(
                &self.namespace,
                old.clone(),
                &["target"],
                &mut batch,
            )?);
        }
        let mut changes: Vec<(&str, Option<&ImageRecord>)> =
            deleted.iter().map(|name| (*name, None)).collect();
        changes.extend(restored.iter().map(|r| (r.name.as_str(), Some(r))));
        self.stage_names(&mut batch, &self.namespace, &changes)?;
        Ok(self.refs.commit(&batch)?)
    }
}

/// The full form of a name from a `ref.name` annotation (`busybox` ->
/// `docker.io/library/busybox:latest`).
fn normalize_name(name: &str) -> Result<String> {
    imgstore_refs::reference::normalize(name).map_err(|e| Error::InvalidInput {
        what: format!("annotation {REF_NAME}={name:?}"),
        reason: e.to_string(),
    })
}
