//! Platforms as OCI image indexes name them, and the one rule that says
//! which platform this host is and which index entries suit it.
//!
//! Everything that picks among an index's manifests asks this module: the
//! facade's import (which manifests to take), and the name resolution of
//! [`read_names`](crate::read_names) (which stored manifest a name means),
//! which the CRI cache, `images`, export, prune, rmi and inspect share.
//! The rules are containerd's (`platforms.Normalize`, `platforms.Default`),
//! with one simplification: a variant absent on either side matches any.

use std::fmt;
use std::str::FromStr;

/// A platform as OCI image indexes name it: `os/architecture[/variant]`
/// with Go's names (`linux/amd64`, `linux/arm64`, `linux/arm/v7`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// The operating system (`linux`, `windows`), lower case.
    pub os: String,
    /// The CPU architecture, normalised (`amd64`, `arm64`, `arm`, `386`).
    pub architecture: String,
    /// The CPU variant (`v7` for `arm`), `None` when not given.
    pub variant: Option<String>,
}

/// A string that is not `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("platform {input:?}: {reason}")]
pub struct PlatformError {
    /// The string given.
    pub input: String,
    /// Why it is refused.
    pub reason: &'static str,
}

impl Platform {
    /// A platform from its parts, normalised as containerd's
    /// `platforms.Normalize` does: lower case; `x86_64` -> `amd64` (variant
    /// `v1` dropped), `i386` -> `386`, `aarch64` -> `arm64` (variant `v8`
    /// dropped: arm64 and arm64/v8 are one platform), `armhf` -> `arm/v7`,
    /// `armel` -> `arm/v6`, `arm/7` -> `arm/v7`, `macos` -> `darwin`.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = match os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_owned(),
            other => other.to_owned(),
        };
        let architecture = architecture.to_ascii_lowercase();
        let variant = variant
            .filter(|v| !v.is_empty())
            .map(str::to_ascii_lowercase);
        let (architecture, variant) = match (architecture.as_str(), variant) {
            ("x86_64" | "x86-64" | "amd64", variant) => {
                ("amd64".to_owned(), variant.filter(|v| v != "v1"))
            }
            ("i386" | "i686" | "x86", _) => ("386".to_owned(), None),
            ("aarch64" | "arm64", variant) => (
                "arm64".to_owned(),
                variant.filter(|v| v != "v8" && v != "8"),
            ),
            ("armhf", _) => ("arm".to_owned(), Some("v7".to_owned())),
            ("armel", _) => ("arm".to_owned(), Some("v6".to_owned())),
            ("arm", Some(v)) if matches!(v.as_str(), "5" | "6" | "7" | "8") => {
                ("arm".to_owned(), Some(format!("v{v}")))
            }
            (_, variant) => (architecture, variant),
        };
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// This host's platform, the one rule for it: the OS and architecture
    /// this program was built for, in Go's names (`linux/amd64` on x86_64
    /// Linux, `linux/arm64` on aarch64), as containerd's default platform;
    /// on 32-bit ARM the variant the build targets (`v7`, `v6`, else `v5`).
    pub fn host() -> Platform {
        let architecture = go_architecture(std::env::consts::ARCH, cfg!(target_endian = "little"));
        let variant = (architecture == "arm").then_some(if cfg!(target_feature = "v7") {
            "v7"
        } else if cfg!(target_feature = "v6") {
            "v6"
        } else {
            "v5"
        });
        Platform::new(std::env::consts::OS, architecture, variant)
    }

    /// Whether an index entry for `offered` runs on this platform: same OS
    /// and architecture, and the same variant or none on either side
    /// (an entry without a variant runs on every variant; a wanted
    /// platform without one takes any).
    pub fn matches(&self, offered: &Platform) -> bool {
        self.closeness(offered).is_some()
    }

    /// How well `offered` suits this platform: `Some(0)` the same
    /// platform, `Some(1)` a match through an absent variant, `None` none.
    fn closeness(&self, offered: &Platform) -> Option<u8> {
        if self.os != offered.os || self.architecture != offered.architecture {
            return None;
        }
        match (&self.variant, &offered.variant) {
            (wanted, offered) if wanted == offered => Some(0),
            (Some(_), Some(_)) => None,
            _ => Some(1),
        }
    }

    /// Of `offered` (index entries' platforms, in index order), the
    /// position of the one this platform takes: the same platform before a
    /// match through an absent variant, the first in index order among
    /// equals; `None` when none matches.
    pub fn best_match<'a>(&self, offered: impl IntoIterator<Item = &'a Platform>) -> Option<usize> {
        offered
            .into_iter()
            .enumerate()
            .filter_map(|(i, p)| Some((self.closeness(p)?, i)))
            .min()
            .map(|(_, i)| i)
    }

    /// Whether this is buildx's `unknown/unknown`: an index entry that
    /// carries build attestations, never an image.
    pub fn is_attestation(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }

    /// The positions of an index's entries (their platforms, in index
    /// order; `None` for an entry without one) in the order this platform
    /// prefers them: entries for it (the same variant first), then entries
    /// without a platform (as containerd sorts them), then every other
    /// platform in index order. Attestations are left out.
    pub fn preference_order(&self, entries: &[Option<&Platform>]) -> Vec<usize> {
        let mut order: Vec<(u8, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| match entry {
                Some(p) if p.is_attestation() => None,
                Some(p) => Some((self.closeness(p).unwrap_or(3), i)),
                None => Some((2, i)),
            })
            .collect();
        order.sort_unstable();
        order.into_iter().map(|(_, i)| i).collect()
    }
}

/// Go's name (`GOARCH`) of a Rust target architecture
/// (`std::env::consts::ARCH`), which differs for most of them.
fn go_architecture(rust_arch: &str, little_endian: bool) -> &str {
    match (rust_arch, little_endian) {
        ("x86_64", _) => "amd64",
        ("x86", _) => "386",
        ("aarch64", true) => "arm64",
        ("aarch64", false) => "arm64be",
        ("arm", false) => "armbe",
        ("powerpc64", true) => "ppc64le",
        ("powerpc64", false) => "ppc64",
        ("powerpc", _) => "ppc",
        ("mips64" | "mips64r6", true) => "mips64le",
        ("mips64" | "mips64r6", false) => "mips64",
        ("mips" | "mips32r6", true) => "mipsle",
        ("mips" | "mips32r6", false) => "mips",
        ("loongarch64", _) => "loong64",
        ("wasm32", _) => "wasm",
        (other, _) => other,
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
    type Err = PlatformError;

    /// Parses `os/arch[/variant]` (`linux/arm/v7`), normalised as
    /// [`Platform::new`]; parts must be non-empty and made of ASCII
    /// letters, digits, `_`, `-` and `.`.
    fn from_str(s: &str) -> Result<Platform, PlatformError> {
        let invalid = |reason| PlatformError {
            input: s.to_owned(),
            reason,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().expect("platform")
    }

    #[test]
    fn platforms_parse_and_normalise_as_containerd() {
        assert_eq!(p("linux/arm/v7"), Platform::new("linux", "arm", Some("v7")));
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        for (given, normal) in [
            ("linux/x86_64", "linux/amd64"),
            ("linux/amd64/v1", "linux/amd64"),
            ("linux/amd64/v3", "linux/amd64/v3"),
            ("linux/i386", "linux/386"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64/8", "linux/arm64"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/armel", "linux/arm/v6"),
            ("linux/arm/7", "linux/arm/v7"),
            ("Linux/AMD64", "linux/amd64"),
            ("macos/arm64", "darwin/arm64"),
        ] {
            assert_eq!(p(given).to_string(), normal, "{given}");
        }
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d", "linux/am d64", ""] {
            let err = bad.parse::<Platform>().expect_err(bad);
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn variants_match_when_equal_or_absent() {
        let v7 = p("linux/arm/v7");
        let any_arm = Platform::new("linux", "arm", None);
        assert!(v7.matches(&v7));
        assert!(!v7.matches(&p("linux/arm/v6")));
        assert!(v7.matches(&any_arm));
        assert!(any_arm.matches(&p("linux/arm/v6")));
        assert!(!v7.matches(&p("linux/arm64")));
        assert!(!v7.matches(&p("freebsd/arm/v7")));
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
    }

    #[test]
    fn the_best_match_prefers_the_same_variant_then_index_order() {
        let offered = [
            Platform::new("linux", "arm", None),
            p("linux/arm/v7"),
            p("linux/arm/v7"),
        ];
        assert_eq!(p("linux/arm/v7").best_match(&offered), Some(1));
        assert_eq!(p("linux/arm/v6").best_match(&offered), Some(0));
        assert_eq!(p("linux/amd64").best_match(&offered), None);
    }

    #[test]
    fn preference_puts_the_wanted_platform_first_then_index_order() {
        let (amd64, v7, arm64, attest) = (
            p("linux/amd64"),
            p("linux/arm/v7"),
            p("linux/arm64"),
            p("unknown/unknown"),
        );
        let entries = [Some(&amd64), Some(&attest), None, Some(&v7), Some(&arm64)];
        assert_eq!(p("linux/arm64").preference_order(&entries), [4, 2, 0, 3]);
        assert_eq!(p("linux/amd64").preference_order(&entries), [0, 2, 3, 4]);
        assert_eq!(p("windows/amd64").preference_order(&entries), [2, 0, 3, 4]);
    }

    #[test]
    fn the_host_rule_names_architectures_as_go() {
        for (rust, little_endian, go) in [
            ("x86_64", true, "amd64"),
            ("x86", true, "386"),
            ("aarch64", true, "arm64"),
            ("arm", true, "arm"),
            ("powerpc64", true, "ppc64le"),
            ("powerpc64", false, "ppc64"),
            ("mips64", true, "mips64le"),
            ("loongarch64", true, "loong64"),
            ("riscv64", true, "riscv64"),
            ("s390x", false, "s390x"),
        ] {
            assert_eq!(go_architecture(rust, little_endian), go, "{rust}");
        }
        let host = Platform::host();
        assert_eq!(host.os, std::env::consts::OS.replace("macos", "darwin"));
        assert_eq!(
            host.architecture,
            go_architecture(std::env::consts::ARCH, cfg!(target_endian = "little"))
        );
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            assert_eq!(host.to_string(), "linux/amd64");
        }
        if cfg!(all(target_os = "linux", target_arch = "aarch64")) {
            assert_eq!(host.to_string(), "linux/arm64");
        }
    }
}
