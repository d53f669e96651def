//! Export of images: an OCI image layout directory, an oci-archive (the same
//! layout in a tar) or a `docker save` tar.
//!
//! Every input is resolved first (a name keeps its name; an ID or short ID
//! exports the image without one), then what to write is planned from the
//! stores: for the OCI formats the name's target (a manifest, or an index and
//! those of its manifests that are stored) with its config and layer blobs as
//! stored; for `docker save` each image's config and its layers, decompressed
//! on the fly to the tars whose sha256 is the diff ID. Output goes to a
//! temporary file or directory beside the destination, renamed into place
//! once complete, so a failure leaves nothing at the destination. Blobs are
//! streamed (memory does not grow with layer size) and re-verified as they
//! are read (the backend re-hashes every blob it serves).

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use flate2::read::MultiGzDecoder;
use imgstore_backend::{ErrorKind, StoreBackend};
use imgstore_digest::{Algorithm, Digest, Digester};
use imgstore_image::{ImageId, ImageStore};
use imgstore_layer::{ChainId, Layer};
use imgstore_refs::Descriptor;
use serde_json::{Value, json};

use crate::{Error, Result, Store};

/// Media types of indexes (followed to their stored manifests).
const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/// Media types of image manifests.
const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The OCI name annotation (a full reference, as skopeo's `oci:DIR:NAME`).
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's name annotation (the full name).
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// Nested indexes deeper than this are not followed.
const MAX_INDEX_DEPTH: usize = 8;
/// Buffer of the output writers.
const WRITE_BUFFER: usize = 256 << 10;

/// The format [`Store::export`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExportFormat {
    /// An OCI image layout directory: `oci-layout`, `index.json` (one entry
    /// per name, annotated with `org.opencontainers.image.ref.name` and
    /// `io.containerd.image.name`, both the full name), `blobs/sha256/…`.
    OciLayout,
    /// The same layout in a tar file (skopeo's `oci-archive:`).
    OciArchive,
    /// A `docker save` tar: `manifest.json` (`Config`, `RepoTags`,
    /// `Layers`), `<config hex>.json`, uncompressed layer tars
    /// `<diff ID hex>.tar`, and `repositories`.
    DockerSave,
}

/// What [`Store::export`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The destination, as given (for
    /// [`export_to_writer`](Store::export_to_writer), the stream's name).
    pub path: PathBuf,
    /// The format written.
    pub format: ExportFormat,
    /// One entry per distinct input, in the order given.
    pub images: Vec<ExportedImage>,
    /// Files of content written: blobs (OCI formats), or configs and layer
    /// tars (`docker save`).
    pub blobs: usize,
    /// Their bytes (layers uncompressed for `docker save`).
    pub bytes: u64,
}

impl ExportReport {
    fn new(path: &Path, format: ExportFormat) -> ExportReport {
        ExportReport {
            path: path.to_path_buf(),
            format,
            images: Vec::new(),
            blobs: 0,
            bytes: 0,
        }
    }
}

/// One exported image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedImage {
    /// The image (for a name pointing at an index, this host's image).
    pub id: ImageId,
    /// The stored full name it was exported under; `None` for an image
    /// given by ID.
    pub name: Option<String>,
    /// What the export's top level points at: the manifest or index
    /// (OCI formats), the config (`docker save`).
    pub target: Digest,
}

/// One resolved input.
struct Item {
    name: Option<String>,
    id: ImageId,
    /// The name's target; `None` for an image given by ID.
    target: Option<Descriptor>,
}

/// A blob to write: JSON already read (verified) or a stored blob streamed.
enum Blob {
    Bytes(Digest, Vec<u8>),
    Stored(Digest, u64),
}

impl Blob {
    fn digest(&self) -> &Digest {
        match self {
            Blob::Bytes(digest, _) | Blob::Stored(digest, _) => digest,
        }
    }
}

/// What an OCI export writes.
#[derive(Default)]
struct OciPlan {
    /// `index.json` entries.
    entries: Vec<Value>,
    blobs: Vec<Blob>,
    seen: HashSet<Digest>,
}

impl OciPlan {
    fn add(&mut self, blob: Blob) {
        if self.seen.insert(blob.digest().clone()) {
            self.blobs.push(blob);
        }
    }
}

/// One image of a `docker save` export.
struct DockerImage {
    id: ImageId,
    config: Vec<u8>,
    /// Full names, in the order given.
    names: Vec<String>,
    /// Bottom first.
    layers: Vec<Layer>,
}

/// Where an export writes: a directory or a tar.
trait Sink {
    fn dir(&mut self, name: &str) -> Result<()>;
    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()>;
    /// Writes exactly `size` bytes from `reader` (which checks that count).
    fn stream(&mut self, name: &str, size: u64, reader: &mut Checked<'_>) -> Result<()>;
}

fn io_error<'a>(operation: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

/// A directory being filled.
struct DirSink {
    root: PathBuf,
}

impl Sink for DirSink {
    fn dir(&mut self, name: &str) -> Result<()> {
        let path = self.root.join(name);
        fs::create_dir_all(&path).map_err(io_error("create directory", &path))
    }

    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.root.join(name);
        let mut file = File::create(&path).map_err(io_error("create", &path))?;
        file.write_all(bytes).map_err(io_error("write", &path))?;
        file.sync_all().map_err(io_error("sync", &path))
    }

    fn stream(&mut self, name: &str, _size: u64, reader: &mut Checked<'_>) -> Result<()> {
        let path = self.root.join(name);
        let file = File::create(&path).map_err(io_error("create", &path))?;
        let mut out = BufWriter::with_capacity(WRITE_BUFFER, file);
        if let Err(e) = io::copy(reader, &mut out) {
            return Err(reader.failure(e, &path));
        }
        let file = out.into_inner().map_err(|e| Error::Io {
            operation: "write",
            path: path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_error("sync", &path))
    }
}

/// A tar being written to a file or a stream, entries with fixed metadata
/// (mtime 0, uid and gid 0, no user names), so the same images give the
/// same bytes. Members are written one after the other: nothing seeks.
struct TarSink<W: Write> {
    /// What errors name: the file, or the stream as the caller calls it.
    path: PathBuf,
    builder: tar::Builder<BufWriter<W>>,
}

impl<W: Write> TarSink<W> {
    fn new(path: PathBuf, out: W) -> TarSink<W> {
        TarSink {
            path,
            builder: tar::Builder::new(BufWriter::with_capacity(WRITE_BUFFER, out)),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    /// Writes the end of the archive and flushes: the output.
    fn finish(self) -> Result<W> {
        let path = self.path;
        let out = self
            .builder
            .into_inner()
            .map_err(io_error("write", &path))?;
        out.into_inner().map_err(|e| Error::Io {
            operation: "write",
            path: path.clone(),
            source: e.into_error(),
        })
    }
}

impl<W: Write> Sink for TarSink<W> {
    fn dir(&mut self, name: &str) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, 0o755, 0);
        self.builder
            .append_data(&mut header, format!("{name}/"), io::empty())
            .map_err(io_error("write", &self.path))
    }

    fn file(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        self.builder
            .append_data(&mut header, name, bytes)
            .map_err(io_error("write", &self.path))
    }

    fn stream(&mut self, name: &str, size: u64, reader: &mut Checked<'_>) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, 0o644, size);
        match self.builder.append_data(&mut header, name, &mut *reader) {
            Ok(()) => Ok(()),
            Err(e) => Err(reader.failure(e, &self.path)),
        }
    }
}

/// Reads a blob (decompressed or not) and checks what comes out: exactly
/// `size` bytes and, when given, their sha256. The first failure is kept,
/// typed, for [`failure`](Checked::failure).
struct Checked<'a> {
    inner: Box<dyn Read + 'a>,
    /// The blob read (named in errors).
    blob: Digest,
    size: u64,
    /// The diff ID the bytes must hash to (decompressed layers).
    diff_id: Option<Digest>,
    digester: Option<Digester>,
    decompressing: bool,
    count: u64,
    failed: Option<Error>,
}

impl<'a> Checked<'a> {
    fn new(inner: Box<dyn Read + 'a>, blob: Digest, size: u64) -> Checked<'a> {
        Checked {
            inner,
            blob,
            size,
            diff_id: None,
            digester: None,
            decompressing: false,
            count: 0,
            failed: None,
        }
    }

    fn fail(&mut self, error: Error) -> io::Error {
        let message = error.to_string();
        self.failed.get_or_insert(error);
        io::Error::new(io::ErrorKind::InvalidData, message)
    }

    /// The error to report for a failed copy: the typed one kept, or `e`.
    fn failure(&mut self, e: io::Error, path: &Path) -> Error {
        self.failed.take().unwrap_or_else(|| Error::Io {
            operation: "write",
            path: path.to_path_buf(),
            source: e,
        })
    }

    /// A read error of the blob: the backend's own error (corruption) when
    /// it carries one, a decompression error, or an I/O error.
    fn classify(&self, e: io::Error) -> Error {
        let e = if e
            .get_ref()
            .is_some_and(|inner| inner.is::<imgstore_backend::Error>())
        {
            match e
                .into_inner()
                .map(|inner| inner.downcast::<imgstore_backend::Error>())
            {
                Some(Ok(inner)) => return Error::Backend(*inner),
                Some(Err(other)) => io::Error::other(other),
                None => io::Error::other("blob read failed"),
            }
        } else {
            e
        };
        if self.decompressing {
            return Error::Decompress {
                layer: self.blob.clone(),
                source: e,
            };
        }
        Error::Io {
            operation: "read blob",
            path: PathBuf::from(self.blob.to_string()),
            source: e,
        }
    }
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(failed) = &self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                failed.to_string(),
            ));
        }
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                let error = self.classify(e);
                return Err(self.fail(error));
            }
        };
        if n == 0 {
            if self.count != self.size {
                let error = Error::SizeMismatch {
                    digest: self.diff_id.clone().unwrap_or_else(|| self.blob.clone()),
                    expected: self.size,
                    actual: self.count,
                };
                return Err(self.fail(error));
            }
            if let (Some(expected), Some(digester)) = (self.diff_id.clone(), self.digester.take()) {
                let actual = digester.finish();
                if actual != expected {
                    let error = Error::DiffIdMismatch {
                        layer: self.blob.clone(),
                        expected,
                        actual,
                    };
                    return Err(self.fail(error));
                }
            }
            return Ok(0);
        }
        self.count += n as u64;
        if self.count > self.size {
            let error = Error::SizeMismatch {
                digest: self.diff_id.clone().unwrap_or_else(|| self.blob.clone()),
                expected: self.size,
                actual: self.count,
            };
            return Err(self.fail(error));
        }
        if let Some(digester) = &mut self.digester {
            digester.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// A path removed when dropped, unless kept (the output until it is in place).
struct Temp {
    path: PathBuf,
    keep: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path).or_else(|_| fs::remove_file(&self.path));
        }
    }
}

/// A fresh name beside `dest` for the output being written.
fn temp_beside(dest: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".to_owned());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dest.with_file_name(format!(
        ".{name}.imgstore-export-{}-{n}",
        std::process::id()
    ))
}

/// Refuses a destination that exists, except an empty directory for a
/// layout directory.
fn check_destination(dest: &Path, format: ExportFormat, replace: bool) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        // A file (or a link, itself replaced) that a tar may replace.
        Ok(meta) if replace && format != ExportFormat::OciLayout && !meta.is_dir() => Ok(()),
        Err(source) => Err(Error::Io {
            operation: "stat",
            path: dest.to_path_buf(),
            source,
        }),
        Ok(meta) => {
            let empty_dir = meta.is_dir()
                && fs::read_dir(dest)
                    .map_err(io_error("read directory", dest))?
                    .next()
                    .is_none();
            if format == ExportFormat::OciLayout && empty_dir {
                Ok(())
            } else {
                Err(Error::DestinationExists {
                    path: dest.to_path_buf(),
                })
            }
        }
    }
}

/// Moves the finished output into place, never over existing content unless
/// `replace` (a tar over a file: one rename, so `dest` is the old file or
/// the new one, never a mix).
fn commit(temp: &mut Temp, dest: &Path, format: ExportFormat, replace: bool) -> Result<()> {
    let exists = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
        )
    };
    if replace && format != ExportFormat::OciLayout {
        check_destination(dest, format, true)?;
        fs::rename(&temp.path, dest).map_err(io_error("rename into place", dest))?;
        temp.keep = true;
    } else if format == ExportFormat::OciLayout {
        // rename(2) replaces an empty directory and refuses a non-empty one.
        if let Err(e) = fs::rename(&temp.path, dest) {
            return Err(if exists(&e) || dest.exists() {
                Error::DestinationExists {
                    path: dest.to_path_buf(),
                }
            } else {
                Error::Io {
                    operation: "rename into place",
                    path: dest.to_path_buf(),
                    source: e,
                }
            });
        }
        temp.keep = true;
    } else {
        // A hard link never replaces an existing file.
        match fs::hard_link(&temp.path, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::DestinationExists {
                    path: dest.to_path_buf(),
                });
            }
            // A filesystem without hard links: check, then rename.
            Err(_) => {
                check_destination(dest, format, false)?;
                fs::rename(&temp.path, dest).map_err(io_error("rename into place", dest))?;
                temp.keep = true;
            }
        }
    }
    if let Some(parent) = dest.parent() {
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// How a stored layer blob is compressed, from its first bytes.
enum Compression {
    Gzip,
    Zstd,
    None,
}

fn sniff(reader: &mut BufReader<Box<dyn Read + Send>>) -> io::Result<Compression> {
    use io::BufRead;
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    })
}

/// A docker-save layer member name: `<diff ID hex>.tar`.
fn layer_member(layer: &Layer) -> String {
    format!("{}.tar", layer.diff_id().encoded())
}

fn to_json_bytes(value: &Value, what: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::InvalidJson {
        file: what.to_owned(),
        source,
    })
}

fn descriptor_json(media_type: &str, digest: &Digest, size: u64) -> Value {
    json!({ "mediaType": media_type, "digest": digest.to_string(), "size": size })
}

/// The OCI equivalent of a Docker layer media type (synthesized manifests).
fn oci_layer_type(media_type: &str) -> &str {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        other => other,
    }
}

impl Store {
    /// Exports `images` (names as stored or as typed, full IDs or unique
    /// prefixes of one, resolved like [`resolve`](Store::resolve)) to
    /// `dest` in `format`.
    ///
    /// A name keeps its name: in `index.json` (annotations
    /// `org.opencontainers.image.ref.name` and `io.containerd.image.name`,
    /// both the full name) or in `RepoTags` (Docker's familiar form). An ID
    /// exports the image without a name. For the OCI formats a name
    /// pointing at an index exports the index with those of its manifests
    /// that are stored; blobs are written as stored. `docker save` writes
    /// each image once (its names merged), with its layers decompressed;
    /// each layer tar's sha256 is checked against its diff ID.
    ///
    /// The destination must not exist (for [`ExportFormat::OciLayout`], an
    /// empty directory is accepted): [`Error::DestinationExists`]
    /// (`AlreadyExists`) otherwise, with nothing changed. Output is written
    /// beside it and renamed into place once complete: on any failure
    /// (`NotFound` for an unknown image, `DataCorruption` for content that
    /// no longer verifies) nothing is left at `dest`. Streamed: memory does
    /// not depend on layer size. Holds the store's change lock: the view is
    /// first brought up to date with other processes sharing the root, and
    /// imports, tags and removals (of any of them) wait while an export runs.
    pub fn export(
        &self,
        images: &[&str],
        dest: impl AsRef<Path>,
        format: ExportFormat,
    ) -> Result<ExportReport> {
        self.export_to(images, dest.as_ref(), format, false)
    }

    /// [`export`](Store::export) that, for the tar formats, replaces a file
    /// already at `dest`, as `docker save -o` does: the new tar is written
    /// beside it and renamed over it once complete, so a failure leaves the
    /// old file as it was. A directory at `dest` is still refused
    /// ([`Error::DestinationExists`]); for [`ExportFormat::OciLayout`] this
    /// is `export`.
    pub fn export_replacing(
        &self,
        images: &[&str],
        dest: impl AsRef<Path>,
        format: ExportFormat,
    ) -> Result<ExportReport> {
        self.export_to(images, dest.as_ref(), format, true)
    }

    fn export_to(
        &self,
        images: &[&str],
        dest: &Path,
        format: ExportFormat,
        replace: bool,
    ) -> Result<ExportReport> {
        check_destination(dest, format, replace)?;
        let lock = self.lock_imports()?;
        let items = self.export_items(images)?;
        let mut temp = Temp {
            path: temp_beside(dest),
            keep: false,
        };
        let mut report = ExportReport::new(dest, format);
        match format {
            ExportFormat::OciLayout => {
                fs::create_dir(&temp.path).map_err(io_error("create directory", &temp.path))?;
                let mut sink = DirSink {
                    root: temp.path.clone(),
                };
                self.write_oci(&items, &mut sink, &mut report)?;
            }
            ExportFormat::OciArchive | ExportFormat::DockerSave => {
                let file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&temp.path)
                    .map_err(io_error("create", &temp.path))?;
                let mut sink = TarSink::new(temp.path.clone(), file);
                self.write_tar(&items, &mut sink, &mut report)?;
                let file = sink.finish()?;
                file.sync_all().map_err(io_error("sync", &temp.path))?;
            }
        }
        commit(&mut temp, dest, format, replace)?;
        // Nothing in the store changed.
        lock.finish(Ok(report))
    }

    /// [`export`](Store::export) to a stream, as `docker save IMAGE > x.tar`
    /// writes to standard output: the tar formats only, written member after
    /// member as they are read from the store (nothing seeks, no temporary
    /// file; memory does not depend on layer size), then flushed. `name`
    /// names the stream in errors and in the report (`stdout`).
    ///
    /// [`ExportFormat::OciLayout`] is a directory and is refused
    /// ([`Error::InvalidInput`]) before anything is written. Images are
    /// resolved before the first byte is written, so an unknown image
    /// writes nothing; a failure later (content that no longer verifies,
    /// a closed pipe) leaves a truncated tar in the stream, which a reader
    /// refuses, and returns the error.
    pub fn export_to_writer(
        &self,
        images: &[&str],
        out: impl Write,
        name: impl AsRef<Path>,
        format: ExportFormat,
    ) -> Result<ExportReport> {
        let name = name.as_ref();
        if format == ExportFormat::OciLayout {
            return Err(Error::InvalidInput {
                what: format!("{}: format oci-layout", name.display()),
                reason: "an OCI layout is a directory and cannot be written to a stream; \
                         write an oci-archive (a tar) or give a directory"
                    .to_owned(),
            });
        }
        let lock = self.lock_imports()?;
        let items = self.export_items(images)?;
        let mut report = ExportReport::new(name, format);
        let mut sink = TarSink::new(name.to_path_buf(), out);
        self.write_tar(&items, &mut sink, &mut report)?;
        let mut out = sink.finish()?;
        out.flush().map_err(io_error("write", name))?;
        lock.finish(Ok(report))
    }

    /// The inputs resolved, each (name, image) once, in the order given.
    fn export_items(&self, images: &[&str]) -> Result<Vec<Item>> {
        let mut items: Vec<Item> = Vec::new();
        for input in images {
            let item = self.export_item(input)?;
            if !items
                .iter()
                .any(|seen| seen.id == item.id && seen.name == item.name)
            {
                items.push(item);
            }
        }
        Ok(items)
    }

    /// Writes one of the tar formats into `sink`.
    fn write_tar(
        &self,
        items: &[Item],
        sink: &mut dyn Sink,
        report: &mut ExportReport,
    ) -> Result<()> {
        match report.format {
            ExportFormat::DockerSave => self.write_docker(items, sink, report),
            ExportFormat::OciLayout | ExportFormat::OciArchive => {
                self.write_oci(items, sink, report)
            }
        }
    }

    /// What one input means: a name (its record), else an image.
    fn export_item(&self, input: &str) -> Result<Item> {
        match self.find_record(input) {
            Ok(record) => Ok(Item {
                name: Some(record.name.clone()),
                id: self.image_of_name(&record.name)?.ok_or_else(|| {
                    imgstore_cri::CriError::NotFound {
                        what: record.name.clone(),
                    }
                })?,
                target: Some(record.target.clone()),
            }),
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidArgument) => {
                Ok(Item {
                    name: None,
                    id: self.resolve(input)?,
                    target: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The image's config, read (and verified) from the image store's backend.
    fn export_config(&self, id: &ImageId) -> Result<Vec<u8>> {
        Ok(self.images.backend().get(id.digest())?)
    }

    /// The image's layers, bottom first, checked against its diff IDs.
    fn export_layers(&self, id: &ImageId) -> Result<Vec<Layer>> {
        let image = self.images.get(id)?;
        let mut layers = Vec::new();
        let mut current: Option<ChainId> = image.top_chain_id().cloned();
        while let Some(chain) = current {
            let layer = self
                .layers
                .layer(&chain)?
                .ok_or_else(|| Error::NotExportable {
                    image: id.clone(),
                    reason: format!("layer {chain} is not stored"),
                })?;
            if layer.blob().is_none() {
                return Err(Error::NotExportable {
                    image: id.clone(),
                    reason: format!("layer {chain} has no stored blob"),
                });
            }
            current = layer.parent().cloned();
            layers.push(layer);
        }
        layers.reverse();
        let diff_ids: Vec<&Digest> = layers.iter().map(Layer::diff_id).collect();
        if diff_ids.len() != image.diff_ids().len()
            || diff_ids.iter().zip(image.diff_ids()).any(|(a, b)| *a != b)
        {
            return Err(Error::NotExportable {
                image: id.clone(),
                reason: "its layer chain does not match its config's diff IDs".to_owned(),
            });
        }
        Ok(layers)
    }

    /// Plans and writes an OCI layout (directory or tar).
    fn write_oci(
        &self,
        items: &[Item],
        sink: &mut dyn Sink,
        report: &mut ExportReport,
    ) -> Result<()> {
        let mut plan = OciPlan::default();
        for item in items {
            let target = match &item.target {
                Some(target) => {
                    let size = u64::try_from(target.size).unwrap_or(0);
                    if INDEX_TYPES.contains(&target.media_type.as_str()) {
                        if self.plan_index(&target.digest, size, 0, &mut plan)? == 0 {
                            return Err(Error::NotExportable {
                                image: item.id.clone(),
                                reason: format!("index {} has no stored manifest", target.digest),
                            });
                        }
                    } else if !self.plan_manifest(&target.digest, size, &mut plan)? {
                        return Err(Error::NotExportable {
                            image: item.id.clone(),
                            reason: format!(
                                "manifest {} or a blob it names is not stored",
                                target.digest
                            ),
                        });
                    }
                    (target.media_type.clone(), target.digest.clone(), size)
                }
                None => self.plan_image_manifest(&item.id, &mut plan)?,
            };
            let (media_type, digest, size) = target;
            let mut entry = descriptor_json(&media_type, &digest, size);
            if let Some(name) = &item.name {
                entry["annotations"] = json!({ REF_NAME: name, CONTAINERD_NAME: name });
            }
            if !plan.entries.contains(&entry) {
                plan.entries.push(entry);
            }
            report.images.push(ExportedImage {
                id: item.id.clone(),
                name: item.name.clone(),
                target: digest,
            });
        }

        sink.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": plan.entries,
        });
        sink.file("index.json", &to_json_bytes(&index, "index.json")?)?;
        sink.dir("blobs")?;
        sink.dir("blobs/sha256")?;
        for blob in &plan.blobs {
            let name = format!("blobs/sha256/{}", blob.digest().encoded());
            match blob {
                Blob::Bytes(_, bytes) => {
                    sink.file(&name, bytes)?;
                    report.bytes += bytes.len() as u64;
                }
                Blob::Stored(digest, size) => {
                    let reader = self.content.open_blob(digest)?;
                    let mut checked = Checked::new(reader, digest.clone(), *size);
                    sink.stream(&name, *size, &mut checked)?;
                    report.bytes += size;
                }
            }
            report.blobs += 1;
        }
        Ok(())
    }

    /// Adds an image given by ID: its manifest as a name reaches it, or one
    /// written for it from its config and layer records. Returns the
    /// `index.json` descriptor's media type, digest and size.
    fn plan_image_manifest(
        &self,
        id: &ImageId,
        plan: &mut OciPlan,
    ) -> Result<(String, Digest, u64)> {
        if let Some(found) = self.find_manifest(id)? {
            let size = u64::try_from(found.size).unwrap_or(0);
            if MANIFEST_TYPES.contains(&found.media_type.as_str())
                && self.plan_manifest(&found.digest, size, plan)?
            {
                return Ok((found.media_type.clone(), found.digest.clone(), size));
            }
        }
        let config = self.export_config(id)?;
        let layers = self.export_layers(id)?;
        let mut layer_descs = Vec::with_capacity(layers.len());
        for layer in &layers {
            // export_layers checked every layer has a blob.
            if let Some(blob) = layer.blob() {
                layer_descs.push(descriptor_json(
                    oci_layer_type(&blob.media_type),
                    &blob.digest,
                    blob.size,
                ));
            }
        }
        let manifest = to_json_bytes(
            &json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor_json(OCI_CONFIG, id.digest(), config.len() as u64),
                "layers": layer_descs,
            }),
            "generated manifest",
        )?;
        let digest = Algorithm::Sha256.from_bytes(&manifest);
        let size = manifest.len() as u64;
        plan.add(Blob::Bytes(digest.clone(), manifest));
        plan.add(Blob::Bytes(id.digest().clone(), config));
        for layer in &layers {
            if let Some(blob) = layer.blob() {
                plan.add(Blob::Stored(blob.digest.clone(), blob.size));
            }
        }
        Ok((OCI_MANIFEST.to_owned(), digest, size))
    }

    /// Reads a stored JSON blob (verified), checking its size; `None` when
    /// not stored.
    fn stored_json(&self, digest: &Digest, size: u64) -> Result<Option<(Vec<u8>, Value)>> {
        let bytes = match self.content.get(digest) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if bytes.len() as u64 != size {
            return Err(Error::SizeMismatch {
                digest: digest.clone(),
                expected: size,
                actual: bytes.len() as u64,
            });
        }
        let value = serde_json::from_slice(&bytes).map_err(|source| Error::InvalidJson {
            file: format!("stored blob {digest}"),
            source,
        })?;
        Ok(Some((bytes, value)))
    }

    /// Adds a stored manifest with its config and layers; false (nothing
    /// added) when it or one of them is not stored.
    fn plan_manifest(&self, digest: &Digest, size: u64, plan: &mut OciPlan) -> Result<bool> {
        let Some((bytes, manifest)) = self.stored_json(digest, size)? else {
            return Ok(false);
        };
        let mut blobs = Vec::new();
        let descriptors = std::iter::once(&manifest["config"]).chain(
            manifest["layers"]
                .as_array()
                .map(|a| a.iter())
                .into_iter()
                .flatten(),
        );
        for (i, desc) in descriptors.enumerate() {
            let (Some(child), Some(child_size)) = (desc["digest"].as_str(), desc["size"].as_u64())
            else {
                return Err(Error::InvalidInput {
                    what: format!("stored manifest {digest}"),
                    reason: "a descriptor without digest or size".to_owned(),
                });
            };
            let child: Digest = child.parse()?;
            if i == 0 {
                match self.stored_json(&child, child_size)? {
                    Some((config, _)) => blobs.push(Blob::Bytes(child, config)),
                    None => return Ok(false),
                }
            } else {
                match self.content.size(&child) {
                    Ok(stored) if stored == child_size => {
                        blobs.push(Blob::Stored(child, child_size));
                    }
                    Ok(stored) => {
                        return Err(Error::SizeMismatch {
                            digest: child,
                            expected: child_size,
                            actual: stored,
                        });
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        plan.add(Blob::Bytes(digest.clone(), bytes));
        for blob in blobs {
            plan.add(blob);
        }
        Ok(true)
    }

    /// Adds a stored index and those of its manifests that are stored (with
    /// nested indexes); returns how many manifests.
    fn plan_index(
        &self,
        digest: &Digest,
        size: u64,
        depth: usize,
        plan: &mut OciPlan,
    ) -> Result<usize> {
        if depth > MAX_INDEX_DEPTH {
            return Ok(0);
        }
        let Some((bytes, index)) = self.stored_json(digest, size)? else {
            return Ok(0);
        };
        let mut found = 0;
        for child in index["manifests"].as_array().into_iter().flatten() {
            let (Some(media_type), Some(child_digest), Some(child_size)) = (
                child["mediaType"].as_str(),
                child["digest"].as_str(),
                child["size"].as_u64(),
            ) else {
                continue;
            };
            let Ok(child_digest) = child_digest.parse::<Digest>() else {
                continue;
            };
            if INDEX_TYPES.contains(&media_type) {
                found += self.plan_index(&child_digest, child_size, depth + 1, plan)?;
            } else if MANIFEST_TYPES.contains(&media_type)
                && self.plan_manifest(&child_digest, child_size, plan)?
            {
                found += 1;
            }
        }
        plan.add(Blob::Bytes(digest.clone(), bytes));
        Ok(found)
    }

    /// Plans and writes a `docker save` tar.
    fn write_docker(
        &self,
        items: &[Item],
        sink: &mut dyn Sink,
        report: &mut ExportReport,
    ) -> Result<()> {
        let mut images: Vec<DockerImage> = Vec::new();
        for item in items {
            let position = match images.iter().position(|image| image.id == item.id) {
                Some(position) => position,
                None => {
                    images.push(DockerImage {
                        id: item.id.clone(),
                        config: self.export_config(&item.id)?,
                        names: Vec::new(),
                        layers: self.export_layers(&item.id)?,
                    });
                    images.len() - 1
                }
            };
            if let Some(name) = &item.name
                && !images[position].names.contains(name)
            {
                images[position].names.push(name.clone());
            }
            report.images.push(ExportedImage {
                id: item.id.clone(),
                name: item.name.clone(),
                target: item.id.digest().clone(),
            });
        }

        let mut written: HashSet<Digest> = HashSet::new();
        let mut manifest = Vec::with_capacity(images.len());
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for image in &images {
            let config_member = format!("{}.json", image.id.digest().encoded());
            sink.file(&config_member, &image.config)?;
            report.blobs += 1;
            report.bytes += image.config.len() as u64;
            for layer in &image.layers {
                if written.insert(layer.diff_id().clone()) {
                    self.write_layer_tar(layer, sink)?;
                    report.blobs += 1;
                    report.bytes += layer.size();
                }
            }
            let mut repo_tags = Vec::new();
            for name in &image.names {
                // Digest references cannot be tags; Docker leaves them out.
                let Ok(reference) = imgstore_refs::reference::Reference::parse_normalized(name)
                else {
                    continue;
                };
                let Some(tag) = reference.tag() else {
                    continue;
                };
                if reference.digest().is_some() {
                    continue;
                }
                repo_tags.push(reference.familiar_string());
                if let Some(top) = image.layers.last() {
                    repositories
                        .entry(reference.familiar_name())
                        .or_default()
                        .insert(tag.to_owned(), top.diff_id().encoded().to_owned());
                }
            }
            manifest.push(json!({
                "Config": config_member,
                "RepoTags": if repo_tags.is_empty() { Value::Null } else { json!(repo_tags) },
                "Layers": image.layers.iter().map(layer_member).collect::<Vec<_>>(),
            }));
        }
        sink.file(
            "manifest.json",
            &to_json_bytes(&Value::Array(manifest), "manifest.json")?,
        )?;
        if !repositories.is_empty() {
            sink.file(
                "repositories",
                &to_json_bytes(&json!(repositories), "repositories")?,
            )?;
        }
        Ok(())
    }

    /// Streams one layer as an uncompressed tar member, decompressing the
    /// stored blob on the fly and checking the result against the diff ID.
    fn write_layer_tar(&self, layer: &Layer, sink: &mut dyn Sink) -> Result<()> {
        let Some(blob) = layer.blob() else {
            return Err(Error::InvalidInput {
                what: format!("layer {}", layer.chain_id()),
                reason: "no stored blob".to_owned(),
            });
        };
        let mut reader =
            BufReader::with_capacity(WRITE_BUFFER, self.content.open_blob(&blob.digest)?);
        let compression = sniff(&mut reader).map_err(|e| Error::Decompress {
            layer: blob.digest.clone(),
            source: e,
        })?;
        let (inner, decompressing): (Box<dyn Read>, bool) = match compression {
            Compression::Gzip => (Box::new(MultiGzDecoder::new(reader)), true),
            Compression::None => (Box::new(reader), false),
            Compression::Zstd => {
                let decoder = zstd::stream::read::Decoder::with_buffer(reader).map_err(|e| {
                    Error::Decompress {
                        layer: blob.digest.clone(),
                        source: e,
                    }
                })?;
                (Box::new(decoder), true)
            }
        };
        let mut checked = Checked::new(inner, blob.digest.clone(), layer.size());
        checked.diff_id = Some(layer.diff_id().clone());
        checked.digester = Some(Digester::new(Algorithm::Sha256));
        checked.decompressing = decompressing;
        sink.stream(&layer_member(layer), layer.size(), &mut checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_layer_types_map_to_oci() {
        assert_eq!(
            oci_layer_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(
            oci_layer_type("application/vnd.oci.image.layer.v1.tar+zstd"),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }

    #[test]
    fn checked_reader_refuses_short_long_and_wrong_content() {
        let blob = Algorithm::Sha256.from_bytes(b"abc");
        let mut short = Checked::new(Box::new(&b"ab"[..]), blob.clone(), 3);
        let err = io::copy(&mut short, &mut io::sink()).err();
        assert!(err.is_some());
        assert!(matches!(
            short.failed,
            Some(Error::SizeMismatch {
                expected: 3,
                actual: 2,
                ..
            })
        ));

        let mut long = Checked::new(Box::new(&b"abcd"[..]), blob.clone(), 3);
        assert!(io::copy(&mut long, &mut io::sink()).is_err());
        assert!(matches!(
            long.failed,
            Some(Error::SizeMismatch {
                expected: 3,
                actual: 4,
                ..
            })
        ));

        let mut wrong = Checked::new(Box::new(&b"abd"[..]), blob.clone(), 3);
        wrong.diff_id = Some(blob.clone());
        wrong.digester = Some(Digester::new(Algorithm::Sha256));
        assert!(io::copy(&mut wrong, &mut io::sink()).is_err());
        assert!(matches!(wrong.failed, Some(Error::DiffIdMismatch { .. })));

        let mut good = Checked::new(Box::new(&b"abc"[..]), blob.clone(), 3);
        good.diff_id = Some(blob);
        good.digester = Some(Digester::new(Algorithm::Sha256));
        assert_eq!(io::copy(&mut good, &mut io::sink()).ok(), Some(3));
    }
}
