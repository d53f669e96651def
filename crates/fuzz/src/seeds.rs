//! Valid inputs to start mutating from, and dictionaries of tokens the
//! parsers care about. Everything is generated: no binary is committed.

use std::path::Path;

use imgstore::digest::{Algorithm, Digest};

use crate::tarball::{self, Entry};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI uncompressed layer media type.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// The name the seed layouts give their image.
pub const SEED_NAME: &str = "fuzz.test/seed:v1";

/// The sha256 digest of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Algorithm::Sha256.from_bytes(bytes)
}

/// A descriptor as JSON.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({
        "mediaType": media_type,
        "digest": sha256(bytes).to_string(),
        "size": bytes.len(),
    })
}

/// A small image: its layer (a tar with one file, gzip), config, manifest and
/// index, valid together.
#[derive(Debug, Clone)]
pub struct SeedImage {
    /// The uncompressed layer (the diff).
    pub layer_tar: Vec<u8>,
    /// The layer blob (gzip of `layer_tar`).
    pub layer_gz: Vec<u8>,
    /// The config.
    pub config: Vec<u8>,
    /// The manifest.
    pub manifest: Vec<u8>,
    /// The layout's `index.json`.
    pub index: Vec<u8>,
}

/// The `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A config over the given diff IDs.
pub fn config(diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(Digest::to_string).collect();
    serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Labels": {"fuzz": "seed"}},
        "rootfs": {"type": "layers", "diff_ids": ids},
        "history": [{"created_by": "fuzz seed"}],
    })
    .to_string()
    .into_bytes()
}

/// A manifest over `config` and layer descriptors.
pub fn manifest(config: &[u8], layers: &[serde_json::Value]) -> Vec<u8> {
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": layers,
    })
    .to_string()
    .into_bytes()
}

/// An index naming `manifest` as `name`.
pub fn index(manifest: &[u8], name: &str) -> Vec<u8> {
    let mut desc = descriptor(OCI_MANIFEST, manifest);
    desc["annotations"] = serde_json::json!({"org.opencontainers.image.ref.name": name});
    serde_json::json!({"schemaVersion": 2, "manifests": [desc]})
        .to_string()
        .into_bytes()
}

impl SeedImage {
    /// The seed image with file `etc/seed` holding `content`.
    pub fn new(content: &[u8]) -> SeedImage {
        let layer_tar = tarball::archive(&[
            Entry::dir("etc/"),
            Entry::file("etc/seed", content.to_vec()),
        ]);
        let layer_gz = tarball::gzip(&layer_tar);
        let config = config(&[sha256(&layer_tar)]);
        let manifest = manifest(&config, &[descriptor(OCI_LAYER_GZIP, &layer_gz)]);
        let index = index(&manifest, SEED_NAME);
        SeedImage {
            layer_tar,
            layer_gz,
            config,
            manifest,
            index,
        }
    }

    /// Writes the image as an OCI layout in `dir` (created if needed).
    pub fn write_layout(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("blobs/sha256"))?;
        std::fs::write(dir.join("oci-layout"), OCI_LAYOUT)?;
        std::fs::write(dir.join("index.json"), &self.index)?;
        for blob in [&self.layer_gz, &self.config, &self.manifest] {
            write_blob(dir, blob)?;
        }
        Ok(())
    }

    /// The image as an oci-archive's members.
    pub fn oci_archive(&self) -> Vec<Entry> {
        let blob = |bytes: &[u8]| {
            Entry::file(
                format!("blobs/sha256/{}", sha256(bytes).encoded()),
                bytes.to_vec(),
            )
        };
        vec![
            Entry::file("oci-layout", OCI_LAYOUT.to_vec()),
            Entry::file("index.json", self.index.clone()),
            Entry::dir("blobs/"),
            Entry::dir("blobs/sha256/"),
            blob(&self.layer_gz),
            blob(&self.config),
            blob(&self.manifest),
        ]
    }

    /// The image as a `docker save` archive's members (legacy layout: the
    /// layer in `<id>/layer.tar`, plus a symlink as Docker writes for
    /// shared layers).
    pub fn docker_archive(&self) -> Vec<Entry> {
        let config_name = format!("{}.json", sha256(&self.config).encoded());
        let manifest = serde_json::json!([{
            "Config": config_name,
            "RepoTags": [SEED_NAME],
            "Layers": ["layer1/layer.tar"],
        }])
        .to_string();
        vec![
            Entry::file("manifest.json", manifest.into_bytes()),
            Entry::file(&config_name, self.config.clone()),
            Entry::dir("layer0/"),
            Entry::file("layer0/layer.tar", self.layer_tar.clone()),
            Entry::dir("layer1/"),
            Entry::symlink("layer1/layer.tar", "../layer0/layer.tar"),
            Entry::file("repositories", b"{}".to_vec()),
        ]
    }
}

/// Writes `bytes` as a blob of the layout `dir`; returns its digest.
pub fn write_blob(dir: &Path, bytes: &[u8]) -> std::io::Result<Digest> {
    let digest = sha256(bytes);
    std::fs::write(dir.join("blobs/sha256").join(digest.encoded()), bytes)?;
    Ok(digest)
}

/// Tokens of image JSON: keys, media types, odd numbers and digests.
pub fn json_dict(image: &SeedImage) -> Vec<Vec<u8>> {
    let mut dict: Vec<Vec<u8>> = [
        "\"manifests\"",
        "\"mediaType\"",
        "\"digest\"",
        "\"size\"",
        "\"annotations\"",
        "\"platform\"",
        "\"os\"",
        "\"config\"",
        "\"layers\"",
        "\"rootfs\"",
        "\"diff_ids\"",
        "\"schemaVersion\"",
        "\"imageLayoutVersion\"",
        "\"1.0.0\"",
        "\"org.opencontainers.image.ref.name\"",
        "\"linux\"",
        "\"windows\"",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "-1",
        "0",
        "9223372036854775807",
        "9223372036854775808",
        "18446744073709551616",
        "1e309",
        "-0",
        "null",
        "true",
        "[]",
        "{}",
        "[[[[[[[[",
        "\\u0000",
        "\\ud800",
        "sha256:",
        "sha512:",
        "busybox",
        "UPPER/case",
        "../x",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    for blob in [
        &image.layer_gz,
        &image.layer_tar,
        &image.config,
        &image.manifest,
    ] {
        dict.push(sha256(blob).to_string().into_bytes());
    }
    dict
}

/// Member names and link targets a hostile archive uses.
pub const NASTY_NAMES: &[&[u8]] = &[
    b"../x",
    b"/etc/passwd",
    b"a/../../x",
    b"./",
    b"",
    b".",
    b"..",
    b"//",
    b"manifest.json",
    b"oci-layout",
    b"index.json",
    b"blobs/sha256/",
    b"layer0/layer.tar",
    b"layer1/layer.tar",
    b"layer1",
    b"layer0",
    b"\xff\xfe",
    b"a\0b",
    b"layer1/layer.tar/x",
];

/// Seeds for the digest target.
pub fn digests() -> Vec<Vec<u8>> {
    let hex = "a".repeat(64);
    [
        format!("sha256:{hex}"),
        format!("sha384:{}", "b".repeat(96)),
        format!("sha512:{}", "c".repeat(128)),
        "sha256:abc".to_owned(),
        "foo+bar.baz_q-x:ABC=_-".to_owned(),
        "sha256:".to_owned(),
        format!("SHA256:{hex}"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// Seeds for the reference target.
pub fn references() -> Vec<Vec<u8>> {
    let hex = "0123456789abcdef".repeat(4);
    [
        "busybox".to_owned(),
        "busybox:latest".to_owned(),
        "library/busybox:1.36".to_owned(),
        "docker.io/library/busybox:latest".to_owned(),
        "localhost:5000/a/b_c-d.e:tag".to_owned(),
        format!("quay.io/x/y@sha256:{hex}"),
        format!("registry.test/app:v1@sha256:{hex}"),
        hex.clone(),
        format!("sha256:{hex}"),
        "[::1]:5000/app".to_owned(),
        "Upper/Case".to_owned(),
        "a".repeat(300),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

/// Seeds for the filter target (several filters on lines).
pub fn filters() -> Vec<Vec<u8>> {
    [
        "name==busybox",
        "name~=^alp,labels.os==linux",
        "labels.\"a.b\"!=x\nname",
        "target.digest~=/sha256:[0-9a-f]+/",
        "labels.|x|~=|a.*b|",
        "annotations.k,name!=\"q\\\"uote\"",
        "name~=(a+)+$",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Seeds for the time target: what configs, history entries and
/// `lastUpdated` hold, and the multibyte offset that once panicked.
pub fn times() -> Vec<Vec<u8>> {
    [
        "2024-01-01T00:00:00Z",
        "2023-11-14T22:13:20.123456789Z",
        "2023-11-14T23:13:20.5+01:00",
        "2000-02-29T00:00:00-10:30",
        "0001-01-01T00:00:00Z",
        "2024-01-01T00:00:00+0\u{e9}00",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}
