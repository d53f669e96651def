//! [`Store::import`]: one entry point for every input format, and the
//! platform selection of multi-platform indexes ([`ImportOptions`]).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

/// The platform type and its rules live in `imgstore-cri` (the lowest
/// crate that needs them: name resolution); re-exported here unchanged.
pub use imgstore_cri::{Platform, PlatformError};

use crate::archive::TarIndex;
use crate::oci::{Desc, Imported, Layout, Plan};
use crate::tmpdir::TempFile;
use crate::{Error, Result, Store};

impl From<PlatformError> for Error {
    /// A platform that does not parse is bad input, named as before:
    /// `platform "linux": expected os/arch or os/arch/variant`.
    fn from(e: PlatformError) -> Error {
        Error::InvalidInput {
            what: format!("platform {:?}", e.input),
            reason: e.reason.to_owned(),
        }
    }
}

/// Which manifests of a multi-platform index an import takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PlatformChoice {
    /// The one for this host ([`Platform::host`]), as `docker load` and
    /// containerd do; an index with none is refused
    /// ([`Error::NoMatchingPlatform`]).
    #[default]
    Host,
    /// Every platform's manifest (entries for `unknown/unknown`, which
    /// carry build attestations rather than images, are skipped).
    All,
    /// The one for this platform; an index with none is refused.
    Exact(Platform),
}

/// How [`Store::import_with`] imports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Which platforms of a multi-platform index to import (the host's by
    /// default). `docker save` archives hold one platform and ignore it.
    pub platform: PlatformChoice,
}

impl ImportOptions {
    /// Options taking `platform` from multi-platform indexes.
    pub fn with_platform(platform: PlatformChoice) -> ImportOptions {
        ImportOptions { platform }
    }
}

impl PlatformChoice {
    /// Picks among the entries of one index (`index` names it for errors):
    /// the positions to follow. Entries without a platform are always
    /// followed; among those with one, [`All`](PlatformChoice::All) takes
    /// every image and the others the best match (the same variant before
    /// none), the first in index order among equals.
    pub(crate) fn select(&self, index: &str, entries: &[Desc]) -> Result<Vec<usize>> {
        let mut chosen: Vec<usize> = Vec::new();
        let mut candidates: Vec<(usize, &Platform)> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match &entry.platform {
                None => chosen.push(i),
                Some(p) if p.is_attestation() => {}
                Some(p) => candidates.push((i, p)),
            }
        }
        if candidates.is_empty() {
            return Ok(chosen);
        }
        let wanted = match self {
            PlatformChoice::All => {
                chosen.extend(candidates.iter().map(|(i, _)| *i));
                chosen.sort_unstable();
                return Ok(chosen);
            }
            PlatformChoice::Host => Platform::host(),
            PlatformChoice::Exact(platform) => platform.clone(),
        };
        match wanted.best_match(candidates.iter().map(|(_, p)| *p)) {
            Some(best) => {
                chosen.push(candidates[best].0);
                chosen.sort_unstable();
                Ok(chosen)
            }
            None => Err(Error::NoMatchingPlatform {
                index: index.to_owned(),
                wanted: wanted.to_string(),
                available: candidates.iter().map(|(_, p)| p.to_string()).collect(),
            }),
        }
    }
}

/// A gzip-compressed tarball may expand to this many times its size ...
const MAX_GZIP_RATIO: u64 = 100;
/// ... or to this many bytes, whichever is more; beyond, it is refused as a
/// decompression bomb before it fills the disk.
const MIN_GZIP_LIMIT: u64 = 256 << 20;

/// Decompresses the gzip stream `file` (the user's `path`) into `out`,
/// stopping after `limit + 1` bytes: the bytes written. A stream that does
/// not decompress is [`Error::InvalidArchive`]; a failure to read the file
/// or to write the copy (a full disk) stays an [`Error::Io`] naming `path`.
fn decompress_into(path: &Path, file: File, mut out: &File, limit: u64) -> Result<u64> {
    let mut decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
    let mut buf = vec![0u8; 1 << 20];
    let mut copied: u64 = 0;
    while copied <= limit {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // flate2 reports bad compressed data as these kinds; anything
            // else comes from reading the file.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Err(Error::InvalidArchive {
                    path: path.to_path_buf(),
                    reason: format!("gzip-compressed, and it does not decompress: {e}"),
                });
            }
            Err(source) => {
                return Err(Error::Io {
                    operation: "read",
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        out.write_all(&buf[..n]).map_err(|source| Error::Io {
            operation: "write the decompressed copy of",
            path: path.to_path_buf(),
            source,
        })?;
        copied += n as u64;
    }
    Ok(copied)
}

impl Store {
    /// Imports whatever `path` is, with the default [`ImportOptions`] (this
    /// host's platform): see [`import_with`](Store::import_with).
    pub fn import(&self, path: impl AsRef<Path>) -> Result<Vec<Imported>> {
        self.import_with(path, &ImportOptions::default())
    }

    /// Imports every image of `path`: a directory is an OCI image layout
    /// ([`import_oci_layout`](Store::import_oci_layout)); a file is an
    /// oci-archive or `docker save` tar
    /// ([`import_archive`](Store::import_archive)), possibly
    /// gzip-compressed (`docker save | gzip`), in which case it is first
    /// decompressed into a temporary file in `<root>/tmp/` (locked while
    /// the import runs; one an interrupted import leaves is removed by the
    /// next open and by `gc`, and reported by `fsck`), up to 100
    /// times its size (at least 256 MiB): beyond, it is refused
    /// ([`Error::InvalidArchive`]) as a decompression bomb.
    /// Multi-platform indexes give the images `options.platform` chooses;
    /// when an index has none for a wanted platform, the import is refused
    /// with [`Error::NoMatchingPlatform`] listing what the index offers,
    /// and nothing is written. All or nothing, as the functions above.
    /// A path that is neither a directory nor a regular file (a named pipe,
    /// `/dev/stdin`) is read as a stream ([`import_reader`](Store::import_reader)).
    pub fn import_with(
        &self,
        path: impl AsRef<Path>,
        options: &ImportOptions,
    ) -> Result<Vec<Imported>> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            operation: "stat",
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            let layout = Layout::Dir(path);
            let plan = Plan::from_layout(&layout, &options.platform)?;
            return self.import_plan(&layout, &plan);
        }
        if !meta.is_file() {
            // A pipe (`-i /dev/stdin`, `<(cat x.tar)`) cannot seek: read it
            // as a stream.
            let stream = File::open(path).map_err(|source| Error::Io {
                operation: "open",
                path: path.to_path_buf(),
                source,
            })?;
            return self.import_reader(stream, path, options);
        }
        self.import_tar_file(path, path, meta.len(), options)
    }

    /// Imports an image tarball read from `reader` to its end: a pipe, as
    /// `docker load < x.tar` or `cat x.tar | docker load` read standard
    /// input. `name` names the input in errors (`stdin`).
    ///
    /// A tar is indexed and then read by seeking, which a pipe cannot do:
    /// the input is first copied into a temporary file in `<root>/tmp/`
    /// (with the same locking and cleanup as a gzip copy, see
    /// [`import_with`](Store::import_with)), so memory stays bounded
    /// whatever its size, and disk use is its size (twice that, plus the
    /// decompressed tar, when it is gzip-compressed). Then it is imported
    /// as a file would be: an oci-archive or `docker save` tar, possibly
    /// gzip-compressed, with `options`, all or nothing. An OCI layout
    /// directory cannot come through a stream.
    pub fn import_reader(
        &self,
        mut reader: impl Read,
        name: impl AsRef<Path>,
        options: &ImportOptions,
    ) -> Result<Vec<Imported>> {
        let name = name.as_ref();
        let temp = TempFile::create(self.root(), "stream").map_err(|source| Error::Io {
            operation: "create a temporary file for",
            path: name.to_path_buf(),
            source,
        })?;
        let mut spool = temp.file();
        let mut buf = vec![0u8; 1 << 20];
        let mut len: u64 = 0;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(Error::Io {
                        operation: "read",
                        path: name.to_path_buf(),
                        source,
                    });
                }
            };
            spool.write_all(&buf[..n]).map_err(|source| Error::Io {
                operation: "write the temporary copy of",
                path: name.to_path_buf(),
                source,
            })?;
            len += n as u64;
        }
        self.import_tar_file(temp.path(), name, len, options)
    }

    /// Imports the tar file `file` of `len` bytes, possibly gzip-compressed,
    /// which errors call `shown` (the user's file, or the stream a
    /// temporary `file` holds).
    fn import_tar_file(
        &self,
        file: &Path,
        shown: &Path,
        len: u64,
        options: &ImportOptions,
    ) -> Result<Vec<Imported>> {
        let io_error = |operation, source| Error::Io {
            operation,
            path: shown.to_path_buf(),
            source,
        };
        let mut reader = File::open(file).map_err(|e| io_error("open", e))?;
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < magic.len() {
            match reader
                .read(&mut magic[got..])
                .map_err(|e| io_error("read", e))?
            {
                0 => break,
                n => got += n,
            }
        }
        if got == 2 && magic == [0x1f, 0x8b] {
            let temp = TempFile::create(self.root(), "import").map_err(|source| Error::Io {
                operation: "create a temporary file for",
                path: shown.to_path_buf(),
                source,
            })?;
            let reader = File::open(file).map_err(|e| io_error("open", e))?;
            // A gzip bomb must not fill the disk: the temporary tar may grow
            // to MAX_GZIP_RATIO times the file (at least MIN_GZIP_LIMIT).
            let limit = len.saturating_mul(MAX_GZIP_RATIO).max(MIN_GZIP_LIMIT);
            let copied = decompress_into(shown, reader, temp.file(), limit)?;
            if copied > limit {
                return Err(Error::InvalidArchive {
                    path: shown.to_path_buf(),
                    reason: format!(
                        "gzip-compressed, and it expands to more than {limit} bytes \
                         ({MAX_GZIP_RATIO} times its size): refused as a decompression bomb; \
                         decompress it first (gunzip) to import it"
                    ),
                });
            }
            // Errors name the user's file, not the temporary copy.
            let tar = TarIndex::open_as(temp.path(), shown)?;
            return self.import_tar(&tar, options);
        }
        let tar = TarIndex::open_as(file, shown)?;
        self.import_tar(&tar, options)
    }
}
