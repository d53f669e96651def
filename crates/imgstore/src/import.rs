//! [`Store::import`]: one entry point for every input format, and the
//! platform selection of multi-platform indexes ([`ImportOptions`]).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::str::FromStr;

use crate::archive::TarIndex;
use crate::oci::{Desc, Imported, Layout, Plan};
use crate::tmpdir::TempFile;
use crate::{Error, Result, Store};

/// A platform as OCI image indexes name it: `os/architecture[/variant]`
/// with Go's names (`linux/amd64`, `linux/arm64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// The operating system (`linux`, `windows`).
    pub os: String,
    /// The CPU architecture, normalised (`amd64`, `arm64`, `arm`, `386`).
    pub architecture: String,
    /// The CPU variant (`v7` for `arm`), `None` when not given.
    pub variant: Option<String>,
}

impl Platform {
    /// A platform from its parts, normalised as [`FromStr`] does
    /// (`x86_64` -> `amd64`, `aarch64` -> `arm64`, `arm64/v8` -> `arm64`).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let architecture = architecture.to_ascii_lowercase();
        let variant = variant
            .filter(|v| !v.is_empty())
            .map(str::to_ascii_lowercase);
        let (architecture, variant) = match (architecture.as_str(), variant) {
            ("x86_64" | "x86-64", variant) => ("amd64".to_owned(), variant),
            ("i386" | "i686" | "x86", variant) => ("386".to_owned(), variant),
            ("aarch64" | "arm64", variant) => {
                // containerd treats arm64 and arm64/v8 as one platform.
                ("arm64".to_owned(), variant.filter(|v| v != "v8"))
            }
            ("armhf", None) => ("arm".to_owned(), Some("v7".to_owned())),
            ("armel", None) => ("arm".to_owned(), Some("v6".to_owned())),
            (_, variant) => (architecture, variant),
        };
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// The platform this program runs on, in Go's names (as containerd's
    /// default platform): `linux/amd64` on an x86_64 Linux host.
    pub fn host() -> Platform {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "x86" => "386",
            "aarch64" => "arm64",
            "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
            "mips64" if cfg!(target_endian = "little") => "mips64le",
            "mips" if cfg!(target_endian = "little") => "mipsle",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = if architecture == "arm" {
            Some(if cfg!(target_feature = "v7") {
                "v7"
            } else if cfg!(target_feature = "v6") {
                "v6"
            } else {
                "v5"
            })
        } else {
            None
        };
        Platform::new(std::env::consts::OS, architecture, variant)
    }

    /// Whether an index entry for `offered` is one for this platform: same
    /// OS and architecture, and the same variant, or no variant on either
    /// side (containerd's matcher: an entry without a variant runs on every
    /// variant; a wanted platform without one takes any).
    pub fn matches(&self, offered: &Platform) -> bool {
        self.os == offered.os
            && self.architecture == offered.architecture
            && match (&self.variant, &offered.variant) {
                (Some(wanted), Some(offered)) => wanted == offered,
                _ => true,
            }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    /// Parses `os/arch[/variant]` (`linux/arm/v7`); parts must be non-empty
    /// and made of ASCII letters, digits, `_`, `-` and `.`.
    fn from_str(s: &str) -> Result<Platform> {
        let invalid = |reason: &str| Error::InvalidInput {
            what: format!("platform {s:?}"),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(invalid("expected os/arch or os/arch/variant"));
        }
        let good = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        };
        if !parts.iter().all(|p| good(p)) {
            return Err(invalid(
                "each part must be non-empty ASCII letters, digits, '_', '-' or '.'",
            ));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
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

/// Whether an entry is a build attestation (buildx's `unknown/unknown`).
fn is_attestation(platform: &Platform) -> bool {
    platform.os == "unknown" && platform.architecture == "unknown"
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
                Some(p) if is_attestation(p) => {}
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
        let exact = candidates
            .iter()
            .find(|(_, p)| wanted.matches(p) && p.variant == wanted.variant);
        match exact.or_else(|| candidates.iter().find(|(_, p)| wanted.matches(p))) {
            Some((i, _)) => {
                chosen.push(*i);
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
            let temp = TempFile::create(self.root(), "import").map_err(|source| Error::Io {
                operation: "create a temporary file for",
                path: path.to_path_buf(),
                source,
            })?;
            let file = File::open(path).map_err(|e| io_error("open", e))?;
            // A gzip bomb must not fill the disk: the temporary tar may grow
            // to MAX_GZIP_RATIO times the file (at least MIN_GZIP_LIMIT).
            let limit = meta
                .len()
                .saturating_mul(MAX_GZIP_RATIO)
                .max(MIN_GZIP_LIMIT);
            let copied = decompress_into(path, file, temp.file(), limit)?;
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
            // Errors name the user's file, not the temporary copy.
            let tar = TarIndex::open_as(temp.path(), path)?;
            return self.import_tar(&tar, options);
        }
        self.import_archive_with(path, options)
    }
}

#[cfg(test)]
mod tests {
    use super::Platform;

    #[test]
    fn platforms_parse_and_normalise() {
        let p: Platform = "linux/arm/v7".parse().expect("parse");
        assert_eq!(p, Platform::new("linux", "arm", Some("v7")));
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert_eq!(
            "linux/x86_64"
                .parse::<Platform>()
                .expect("parse")
                .to_string(),
            "linux/amd64"
        );
        assert_eq!(
            "linux/arm64/v8"
                .parse::<Platform>()
                .expect("parse")
                .to_string(),
            "linux/arm64"
        );
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn variants_match_when_equal_or_absent() {
        let v7 = Platform::new("linux", "arm", Some("v7"));
        let v6 = Platform::new("linux", "arm", Some("v6"));
        let any_arm = Platform::new("linux", "arm", None);
        assert!(v7.matches(&v7));
        assert!(!v7.matches(&v6));
        assert!(v7.matches(&any_arm));
        assert!(any_arm.matches(&v6));
        assert!(!v7.matches(&Platform::new("linux", "arm64", None)));
        assert!(!v7.matches(&Platform::new("freebsd", "arm", Some("v7"))));
    }

    #[test]
    fn the_host_is_named_as_go_names_it() {
        let host = Platform::host();
        assert_eq!(host.os, std::env::consts::OS);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(host.to_string(), format!("{}/amd64", std::env::consts::OS));
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(host.to_string(), format!("{}/arm64", std::env::consts::OS));
        }
    }
}
