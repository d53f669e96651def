//! [`Store::import`]: one entry point for every input format, and the
//! platform selection of multi-platform indexes ([`ImportOptions`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The platform type and its rules live in `imgstore-cri` (the lowest
/// crate that needs them: name resolution); re-exported here unchanged.
pub use imgstore_cri::{Platform, PlatformError};

use crate::oci::{Desc, INDEX_TYPES, Imported, Layout, Plan};
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

/// A temporary file removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
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
    /// decompressed into a temporary file under the store's root, up to 100
    /// times its size (at least 256 MiB): beyond, it is refused
    /// ([`Error::InvalidArchive`]) as a decompression bomb.
    /// Multi-platform indexes give the images `options.platform` chooses;
    /// when an index has none for a wanted platform, the import is refused
    /// with [`Error::NoMatchingPlatform`] listing what the index offers,
    /// and nothing is written. All or nothing, as the functions above.
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
        let io_error = |operation, source| Error::Io {
            operation,
            path: path.to_path_buf(),
            source,
        };
        let mut file = File::open(path).map_err(|e| io_error("open", e))?;
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < magic.len() {
            match file
                .read(&mut magic[got..])
                .map_err(|e| io_error("read", e))?
            {
                0 => break,
                n => got += n,
            }
        }
        if got == 2 && magic == [0x1f, 0x8b] {
            let temp = TempFile(self.root().join(format!(
                "import-{}-{}.tar.tmp",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            )));
            let mut out = File::create(&temp.0).map_err(|source| Error::Io {
                operation: "create",
                path: temp.0.clone(),
                source,
            })?;
            let file = File::open(path).map_err(|e| io_error("open", e))?;
            let decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
            // A gzip bomb must not fill the disk: the temporary tar may grow
            // to MAX_GZIP_RATIO times the file (at least MIN_GZIP_LIMIT).
            let limit = meta
                .len()
                .saturating_mul(MAX_GZIP_RATIO)
                .max(MIN_GZIP_LIMIT);
            let copied = io::copy(&mut decoder.take(limit.saturating_add(1)), &mut out).map_err(
                |source| Error::InvalidArchive {
                    path: path.to_path_buf(),
                    reason: format!("gzip-compressed, and it does not decompress: {source}"),
                },
            )?;
            if copied > limit {
                return Err(Error::InvalidArchive {
                    path: path.to_path_buf(),
                    reason: format!(
                        "gzip-compressed, and it expands to more than {limit} bytes \
                         ({MAX_GZIP_RATIO} times its size): refused as a decompression bomb; \
                         decompress it first (gunzip) to import it"
                    ),
                });
            }
            drop(out);
            return self.import_archive_with(&temp.0, options);
        }
        self.import_archive_with(path, options)
    }
}

impl Store {
    /// The names of the namespace, other than `except`, whose target is an
    /// index. A name of an index means the stored manifest this host
    /// prefers ([`imgstore_cri::read_names`]), so an import that stores a
    /// new image may change what another index listing the same manifest
    /// means: the import re-resolves these (in one read) with
    /// [`update_cache_of`](Store::update_cache_of).
    pub(crate) fn other_index_names(&self, except: &[&str]) -> Result<Vec<String>> {
        Ok(self
            .refs
            .list(&self.namespace, &[])?
            .iter()
            .filter(|record| INDEX_TYPES.contains(&record.target.media_type.as_str()))
            .filter(|record| !except.contains(&record.name.as_str()))
            .map(|record| record.name.clone())
            .collect())
    }

    /// Re-resolves `names` in one batch and updates the CRI cache.
    pub(crate) fn update_cache_of(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let resolved = imgstore_cri::ImageResolver::resolve_many(&self.resolver(), &names)?;
        for (name, image) in names.iter().zip(resolved) {
            self.cache.update_with(name, image)?;
        }
        Ok(())
    }
}
