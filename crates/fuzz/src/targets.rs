//! The fuzz targets: each takes arbitrary bytes and must return normally.
//!
//! Stateless targets are plain functions. The import targets need a store
//! and a scratch directory, so they run through a [`Runner`], which keeps
//! one store open across inputs (recreated every [`STORE_RESET`] successful
//! imports so it stays small) and checks after every refused input that the
//! store is unchanged.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use imgstore::digest::Digest;
use imgstore::digestset::DigestSet;
use imgstore::refs::filters::Filter;
use imgstore::refs::reference::{self, AnyReference, Reference};
use imgstore::refs::{Descriptor, ImageRecord};
use imgstore::{Backend, Options, Store};

use crate::mutate::{self, Rng};
use crate::seeds::{self, SeedImage};
use crate::tarball;

/// Successful imports after which a runner starts over with an empty store.
pub const STORE_RESET: usize = 64;

/// Parses `data` as a digest (go-digest rules); a digest that parses must
/// print back as its input and parse again to itself. Also looks the input
/// up as a short ID in a small digest set.
pub fn digest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Digest::parse(&text) {
        Ok(digest) => {
            assert_eq!(digest.as_str(), text, "a parsed digest prints as its input");
            let again = Digest::parse(digest.as_str());
            assert_eq!(again.as_ref().ok(), Some(&digest), "reparse");
            assert_eq!(
                format!("{}:{}", digest.algorithm(), digest.encoded()),
                digest.as_str()
            );
            let _ = digest.hash_bytes();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    static SEEDS: OnceLock<DigestSet> = OnceLock::new();
    let set = SEEDS.get_or_init(|| {
        let mut set = DigestSet::new();
        for seed in seeds::digests() {
            let _ = set.add_str(&String::from_utf8_lossy(&seed));
        }
        set
    });
    if let Ok(found) = set.lookup(&text) {
        assert!(
            found.as_str().contains(text.trim_start_matches("sha256:"))
                || found
                    .encoded()
                    .starts_with(text.split(':').next_back().unwrap_or("")),
            "lookup {text:?} found {found}"
        );
    }
}

/// Parses `data` as an image reference every way the store does; a name
/// that parses must print in full form and parse back to itself, and
/// normalising must be idempotent.
pub fn reference(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(parsed) = Reference::parse_normalized(&text) {
        let full = parsed.to_string();
        let reparsed = Reference::parse_normalized(&full);
        assert_eq!(reparsed.as_ref().ok(), Some(&parsed), "full form {full:?}");
        // The familiar form reads back as the same reference, except where
        // distribution's is ambiguous too: a docker.io path whose first
        // component looks like a domain (`docker.io/a.b/c` -> `a.b/c`).
        let first = parsed.path().split('/').next().unwrap_or("");
        let looks_like_domain = first.contains(['.', ':'])
            || first == "localhost"
            || first.bytes().any(|b| b.is_ascii_uppercase());
        let familiar = parsed.familiar_string();
        // Nor is `library/<64 hex>`, whose familiar form reads as an image ID.
        let is_id = familiar.len() == 64 && familiar.bytes().all(|b| b.is_ascii_hexdigit());
        let ambiguous = (parsed.domain() == "docker.io" && looks_like_domain) || is_id;
        if !ambiguous {
            let from_familiar = Reference::parse_normalized(&familiar);
            assert_eq!(
                from_familiar.as_ref().ok(),
                Some(&parsed),
                "familiar form {familiar:?}"
            );
        }
        let _ = (parsed.name(), parsed.familiar_name(), parsed.is_name_only());
        let _ = parsed.with_default_tag();
    }
    if let Ok(normal) = reference::normalize(&text) {
        assert_eq!(
            reference::normalize(&normal).ok().as_deref(),
            Some(normal.as_str()),
            "normalize is idempotent"
        );
    }
    if let Ok(any) = AnyReference::parse(&text) {
        let _ = any.rank();
    }
    let _ = reference::familiar(&text);
    let _ = reference::rank(&text);
    let _ = reference::sort_references(text.lines().map(str::to_owned));
}

/// Parses `data` as an RFC 3339 timestamp, as configs' `created`, history
/// entries and `lastUpdated` metadata are read: a bad value is `None`, never
/// a panic; a time that parses formats to a string that parses back to it.
pub fn time(data: &[u8]) {
    use imgstore::image::time::{format_rfc3339_nanos, parse_rfc3339};
    let text = String::from_utf8_lossy(data);
    if let Some(parsed) = parse_rfc3339(&text) {
        let formatted = format_rfc3339_nanos(parsed);
        assert_eq!(
            parse_rfc3339(&formatted),
            Some(parsed),
            "{text:?} formats as {formatted:?}"
        );
    }
}

/// Records the filter target matches against.
fn filter_records() -> Vec<ImageRecord> {
    let target = Descriptor::new(seeds::OCI_MANIFEST, seeds::sha256(b"x"), 1);
    vec![
        ImageRecord::new("docker.io/library/busybox:latest", target.clone())
            .with_label("os", "linux")
            .with_label("a.b", "x"),
        ImageRecord::new("registry.test/app:v1", target).with_label("", ""),
    ]
}

/// Parses each line of `data` as a filter, and all lines as one filter (OR);
/// an error names a position inside its input. A filter that parses is
/// matched against two records.
pub fn filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for line in text.split('\n') {
        if let Err(e) = Filter::parse(line) {
            assert!(e.position() <= line.len(), "{e}");
            let _ = e.to_string();
        }
    }
    static RECORDS: OnceLock<Vec<ImageRecord>> = OnceLock::new();
    if let Ok(filter) = Filter::parse_all(text.split('\n')) {
        for record in RECORDS.get_or_init(filter_records) {
            let _ = filter.matches(record);
        }
        for selectors in filter.alternatives() {
            for s in selectors {
                let _ = (s.fieldpath(), s.operator(), s.value());
            }
        }
    }
}

/// Everything a refused import must leave as it was.
#[derive(Debug, PartialEq, Eq)]
pub struct StoreState {
    /// Image IDs with their references.
    pub images: Vec<(String, Vec<String>)>,
    /// Names of the namespace.
    pub names: Vec<String>,
    /// Layer chain IDs with their reference counts.
    pub layers: Vec<(String, Option<usize>)>,
}

/// The state of `store` (see [`StoreState`]).
pub fn store_state(store: &Store) -> StoreState {
    let mut images: Vec<(String, Vec<String>)> = store
        .images()
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.id.to_string(), s.references))
        .collect();
    images.sort();
    let mut layers: Vec<(String, Option<usize>)> = store
        .layers()
        .map()
        .unwrap_or_default()
        .keys()
        .map(|chain| {
            let references = store.layers().references(chain).ok().flatten();
            (chain.to_string(), references)
        })
        .collect();
    layers.sort();
    StoreState {
        images,
        names: store.names().unwrap_or_default(),
        layers,
    }
}

/// A fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// [`digest()`].
    Digest,
    /// [`reference()`].
    Reference,
    /// [`filter()`].
    Filter,
    /// [`time()`].
    Time,
    /// An OCI layout whose `index.json`, a manifest, a config or the
    /// `oci-layout` file are the input (first byte chooses which; blobs are
    /// named by the input's digest so parsing is reached).
    OciJson,
    /// A tar archive imported with `import_archive`: the raw input (first
    /// byte even) or a tar whose header checksums are set (odd).
    Archive,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 6] = [
        Target::Digest,
        Target::Reference,
        Target::Filter,
        Target::Time,
        Target::OciJson,
        Target::Archive,
    ];

    /// The target's name on command lines.
    pub fn name(self) -> &'static str {
        match self {
            Target::Digest => "digest",
            Target::Reference => "reference",
            Target::Filter => "filter",
            Target::Time => "time",
            Target::OciJson => "oci_json",
            Target::Archive => "archive",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The largest input the loop generates.
    pub fn max_len(self) -> usize {
        match self {
            Target::Digest | Target::Reference | Target::Filter | Target::Time => 4096,
            Target::OciJson => 64 << 10,
            Target::Archive => 256 << 10,
        }
    }

    /// The seed corpus.
    pub fn seeds(self) -> Vec<Vec<u8>> {
        match self {
            Target::Digest => seeds::digests(),
            Target::Reference => seeds::references(),
            Target::Filter => seeds::filters(),
            Target::Time => seeds::times(),
            Target::OciJson => {
                let image = SeedImage::new(b"seed");
                let nested = serde_json::json!({
                    "manifests": [{
                        "mediaType": seeds::OCI_INDEX,
                        "digest": seeds::sha256(&image.index).to_string(),
                        "size": image.index.len(),
                    }]
                })
                .to_string();
                let with = |mode: u8, bytes: &[u8]| {
                    let mut v = vec![mode];
                    v.extend_from_slice(bytes);
                    v
                };
                vec![
                    with(0, &image.index),
                    with(0, nested.as_bytes()),
                    with(1, &image.manifest),
                    with(2, &image.config),
                    with(3, seeds::OCI_LAYOUT),
                ]
            }
            Target::Archive => {
                let image = SeedImage::new(b"seed");
                let mut out = Vec::new();
                for entries in [image.docker_archive(), image.oci_archive()] {
                    let bytes = tarball::archive(&entries);
                    for mode in [0u8, 1] {
                        let mut v = vec![mode];
                        v.extend_from_slice(&bytes);
                        out.push(v);
                    }
                }
                out
            }
        }
    }

    /// Tokens the mutations insert.
    pub fn dict(self) -> Vec<Vec<u8>> {
        let words: &[&str] = match self {
            Target::Digest => &[
                "sha256:",
                "sha384:",
                "sha512:",
                "sha256+b64:",
                "0123456789abcdef",
                "=",
                "_",
                "-",
                ".",
                "+",
                ":",
            ],
            Target::Reference => &[
                "docker.io/",
                "library/",
                "localhost",
                ":5000",
                "@sha256:",
                ":latest",
                "[::1]",
                "/",
                "__",
                "--",
                "..",
                "index.docker.io/",
                "0123456789abcdef",
            ],
            Target::Filter => &[
                "==",
                "!=",
                "~=",
                ",",
                ".",
                "\"",
                "\\\"",
                "/",
                "|",
                "labels.",
                "name",
                "target.digest",
                "annotations.",
                "(a+)+",
                "[",
                "\\x",
                "\\u1234",
                "\\",
            ],
            Target::Time => &[
                "2024",
                "-",
                ":",
                "T",
                "t",
                "Z",
                "z",
                "+",
                ".",
                "00",
                "59",
                "60",
                "29",
                "02",
                "+01:00",
                "-23:59",
                ".123456789",
                "\u{e9}",
                "\u{1f600}",
            ],
            Target::OciJson | Target::Archive => &[],
        };
        let mut dict: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        if matches!(self, Target::OciJson | Target::Archive) {
            dict.extend(seeds::json_dict(&SeedImage::new(b"seed")));
        }
        if self == Target::Archive {
            dict.extend(seeds::NASTY_NAMES.iter().map(|n| n.to_vec()));
        }
        dict
    }

    /// Mutates `data` (a copy of a corpus entry): byte-level mutations, and
    /// for structured archives also header-level ones (names, types, links,
    /// sizes, duplicated and dropped members).
    pub fn mutate(self, rng: &mut Rng, data: &mut Vec<u8>, dict: &[Vec<u8>], corpus: &[Vec<u8>]) {
        if self == Target::Archive && data.first().is_some_and(|m| m % 2 == 1) && rng.one_in(2) {
            mutate_tar_headers(rng, data);
            data.truncate(self.max_len());
            return;
        }
        let dict: Vec<&[u8]> = dict.iter().map(Vec::as_slice).collect();
        mutate::mutate(rng, data, &dict, corpus, self.max_len());
    }

    /// A runner for this target (creates the scratch directory and store
    /// of the import targets).
    pub fn runner(self) -> std::io::Result<Runner> {
        let state = match self {
            Target::OciJson => Some(Scratch::new(Backend::Sqlite)?),
            Target::Archive => Some(Scratch::new(Backend::Fs)?),
            _ => None,
        };
        Ok(Runner {
            target: self,
            scratch: state,
        })
    }
}

/// Header-level mutation of `data` = mode byte + tar.
fn mutate_tar_headers(rng: &mut Rng, data: &mut Vec<u8>) {
    let body = 1usize;
    let offsets: Vec<usize> = tarball::header_offsets(&data[body..])
        .into_iter()
        .map(|o| o + body)
        .collect();
    let Some(&at) = rng.pick(&offsets) else {
        return;
    };
    let nasty = |rng: &mut Rng| -> Vec<u8> {
        let mut name = rng
            .pick(seeds::NASTY_NAMES)
            .copied()
            .unwrap_or(b"x")
            .to_vec();
        if rng.one_in(3) {
            let other = rng.pick(seeds::NASTY_NAMES).copied().unwrap_or(b"y");
            name.push(b'/');
            name.extend_from_slice(other);
        }
        name.truncate(100);
        name
    };
    match rng.below(7) {
        0 => {
            let name = nasty(rng);
            data[at..at + 100].fill(0);
            data[at..at + name.len()].copy_from_slice(&name);
        }
        1 => {
            let kinds = b"0123456LKxgS7\0";
            data[at + 156] = *rng.pick(kinds).unwrap_or(&b'0');
        }
        2 => {
            let link = nasty(rng);
            data[at + 157..at + 257].fill(0);
            data[at + 157..at + 157 + link.len()].copy_from_slice(&link);
        }
        3 => {
            // Copy another member's name over this one (duplicates).
            if let Some(&other) = rng.pick(&offsets) {
                let name = data[other..other + 100].to_vec();
                data[at..at + 100].copy_from_slice(&name);
            }
        }
        4 => {
            let sizes = [0u64, 1, 511, 512, 513, 1 << 20, 1 << 33, u64::MAX >> 1];
            let size = *rng.pick(&sizes).unwrap_or(&0);
            let mut header = [0u8; 512];
            header.copy_from_slice(&data[at..at + 512]);
            let fresh = tarball::header(b"", 0, b"", size);
            header[124..136].copy_from_slice(&fresh[124..136]);
            data[at..at + 512].copy_from_slice(&header);
        }
        5 => {
            // Duplicate the member (header and data) at the end.
            let next = offsets
                .iter()
                .copied()
                .find(|&o| o > at)
                .unwrap_or(data.len());
            let member = data[at..next].to_vec();
            let end = offsets.last().map_or(data.len(), |_| next.max(at));
            let insert = end.min(data.len());
            data.splice(insert..insert, member);
        }
        _ => {
            // Drop the member.
            if let Some(next) = offsets.iter().copied().find(|&o| o > at) {
                data.drain(at..next);
            }
        }
    }
}

/// A scratch directory with a store, for the import targets.
struct Scratch {
    dir: tempfile::TempDir,
    backend: Backend,
    store: Option<Store>,
    generation: usize,
    successes: usize,
    state: Option<StoreState>,
    seed: SeedImage,
    refused: u64,
}

impl Scratch {
    fn new(backend: Backend) -> std::io::Result<Scratch> {
        // Memory-backed when the machine has it: the loop writes files per input.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("imgstore-fuzz")
                .tempdir_in(shm)?
        } else {
            tempfile::tempdir()?
        };
        let seed = SeedImage::new(b"seed");
        seed.write_layout(&dir.path().join("layout"))?;
        Ok(Scratch {
            dir,
            backend,
            store: None,
            generation: 0,
            successes: 0,
            state: None,
            seed,
            refused: 0,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Opens a fresh store when there is none; false when it cannot.
    fn open_store(&mut self) -> bool {
        if self.store.is_none() {
            let root = self.path(&format!("store{}", self.generation));
            let options = Options {
                backend: Some(self.backend),
                ..Options::default()
            };
            let Ok(store) = Store::open_with(&root, options) else {
                return false;
            };
            self.state = Some(store_state(&store));
            self.store = Some(store);
        }
        true
    }

    /// Imports with `import`, then checks the store: unchanged after a
    /// refusal; recreated after [`STORE_RESET`] successes.
    fn check<T>(&mut self, import: impl FnOnce(&Store) -> imgstore::Result<T>) {
        if !self.open_store() {
            return;
        }
        let Some(store) = self.store.as_ref() else {
            return;
        };
        match import(store) {
            Ok(_) => {
                let after = store_state(store);
                self.state = Some(after);
                self.successes += 1;
                if self.successes.is_multiple_of(STORE_RESET) {
                    self.store = None;
                    let old = self.path(&format!("store{}", self.generation));
                    let _ = std::fs::remove_dir_all(old);
                    self.generation += 1;
                }
            }
            Err(e) => {
                self.refused += 1;
                let _ = (e.to_string(), e.kind());
                let after = store_state(store);
                assert_eq!(
                    self.state.as_ref(),
                    Some(&after),
                    "a refused import changed the store: {e}"
                );
            }
        }
    }

    fn run_oci_json(&mut self, data: &[u8]) {
        let Some((&mode, body)) = data.split_first() else {
            return;
        };
        let layout = self.path("layout");
        let mut extra = Vec::new();
        let (oci_layout, index): (&[u8], Vec<u8>) = match mode % 4 {
            0 => (seeds::OCI_LAYOUT, body.to_vec()),
            1 => {
                extra.push(body.to_vec());
                (seeds::OCI_LAYOUT, seeds::index(body, seeds::SEED_NAME))
            }
            2 => {
                let manifest = seeds::manifest(
                    body,
                    &[seeds::descriptor(
                        seeds::OCI_LAYER_GZIP,
                        &self.seed.layer_gz,
                    )],
                );
                let index = seeds::index(&manifest, seeds::SEED_NAME);
                extra.push(body.to_vec());
                extra.push(manifest);
                (seeds::OCI_LAYOUT, index)
            }
            _ => (body, self.seed.index.clone()),
        };
        let mut written = Vec::new();
        for blob in &extra {
            if let Ok(digest) = seeds::write_blob(&layout, blob) {
                written.push(digest);
            }
        }
        if std::fs::write(layout.join("oci-layout"), oci_layout).is_err()
            || std::fs::write(layout.join("index.json"), &index).is_err()
        {
            return;
        }
        self.check(|store| store.import_oci_layout(&layout));
        let keep =
            [&self.seed.layer_gz, &self.seed.config, &self.seed.manifest].map(|b| seeds::sha256(b));
        for digest in written {
            if !keep.contains(&digest) {
                let _ = std::fs::remove_file(layout.join("blobs/sha256").join(digest.encoded()));
            }
        }
    }

    fn run_archive(&mut self, data: &[u8]) {
        let Some((&mode, body)) = data.split_first() else {
            return;
        };
        let mut bytes = body.to_vec();
        if mode % 2 == 1 {
            tarball::fix_checksums(&mut bytes);
        }
        let path = self.path("input.tar");
        if std::fs::write(&path, &bytes).is_err() {
            return;
        }
        self.check(|store| store.import_archive(&path));
    }
}

/// Runs one target on inputs, keeping the state the import targets need.
pub struct Runner {
    target: Target,
    scratch: Option<Scratch>,
}

impl Runner {
    /// The target.
    pub fn target(&self) -> Target {
        self.target
    }

    /// For the import targets: inputs imported and inputs refused so far.
    pub fn outcomes(&self) -> Option<(u64, u64)> {
        self.scratch
            .as_ref()
            .map(|s| (s.successes as u64, s.refused))
    }

    /// Runs the target on `data`. Returns normally unless a finding
    /// (panic, or a refused import that changed the store).
    pub fn run(&mut self, data: &[u8]) {
        match (self.target, self.scratch.as_mut()) {
            (Target::Digest, _) => digest(data),
            (Target::Reference, _) => reference(data),
            (Target::Filter, _) => filter(data),
            (Target::Time, _) => time(data),
            (Target::OciJson, Some(scratch)) => scratch.run_oci_json(data),
            (Target::Archive, Some(scratch)) => scratch.run_archive(data),
            _ => {}
        }
    }
}
