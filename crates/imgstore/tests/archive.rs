//! Importing image tarballs (docker save, oci-archive) of the image corpus
//! (`examples/images`, the repository's copy of the shared corpus) and
//! crafted unsafe tars, on both backends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;

use imgstore::backend::{ErrorKind, StoreBackend};
use imgstore::image::ImageStore;
use imgstore::layer::ChainId;
use imgstore::{Backend, Store};
use serde_json::Value;

mod common;

use common::{BACKENDS, corpus, expected_image, json, open, snapshot, strings};

/// Checks the stored image of expected image `name`: ID, diff IDs, top
/// chain, layers present, names resolving to it.
fn assert_image(store: &Store, corpus: &Path, name: &str, backend: Backend) {
    let expected = expected_image(corpus, name);
    let id = expected["image_id"].as_str().expect("image_id");
    let image = store
        .image_store()
        .get(&id.parse().expect("id"))
        .unwrap_or_else(|e| panic!("{backend:?}: {name} not stored: {e}"));
    let diff_ids: Vec<String> = image.diff_ids().iter().map(|d| d.to_string()).collect();
    assert_eq!(
        diff_ids,
        strings(&expected["diff_ids"]),
        "{backend:?}: {name}"
    );
    assert_eq!(
        image.top_chain_id().map(|c| c.to_string()).as_deref(),
        expected["top_chain_id"].as_str(),
        "{backend:?}: {name}"
    );
    for chain in strings(&expected["chain_ids"]) {
        let chain: ChainId = chain.parse().expect("chain id");
        assert!(
            store
                .layers()
                .layer(&chain)
                .expect("layer records")
                .is_some(),
            "{name}: {chain}"
        );
    }
    for ref_name in strings(&expected["ref_names"]) {
        assert_eq!(
            store.resolve(&ref_name).expect("resolve name").to_string(),
            id,
            "{backend:?}: {ref_name}"
        );
    }
}

#[test]
fn docker_archives_give_the_oci_ids_and_share_layers() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        let imported = store
            .import_archive(corpus.join("docker/base.docker.tar"))
            .unwrap_or_else(|e| panic!("{backend:?}: import base: {e}"));
        assert_eq!(imported.len(), 1);
        assert!(imported[0].created);
        assert_eq!(imported[0].names, ["registry.demo.test/demo/base:v1"]);
        assert_image(&store, &corpus, "base", backend);
        assert_eq!(
            store.layers().len().expect("layer records"),
            3,
            "{backend:?}"
        );

        store
            .import_archive(corpus.join("docker/child.docker.tar"))
            .unwrap_or_else(|e| panic!("{backend:?}: import child: {e}"));
        assert_image(&store, &corpus, "child", backend);
        assert_image(&store, &corpus, "base", backend);
        // child's 4 layers: 3 shared with base, one more record.
        assert_eq!(
            store.layers().len().expect("layer records"),
            4,
            "{backend:?}"
        );
        assert_eq!(store.images().expect("list images").len(), 2, "{backend:?}");

        // Every image is reachable through a name -> an OCI manifest.
        let record = store
            .refs()
            .get(store.namespace(), "registry.demo.test/demo/child:v1")
            .expect("name");
        assert_eq!(
            record.target.media_type,
            "application/vnd.oci.image.manifest.v1+json"
        );
        let manifest = store
            .content()
            .get(&record.target.digest)
            .expect("manifest stored");
        let manifest: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
        assert_eq!(
            manifest["config"]["digest"].as_str(),
            expected_image(&corpus, "child")["image_id"].as_str()
        );
        assert_eq!(manifest["layers"].as_array().map(Vec::len), Some(4));

        // Again: nothing changes.
        let before = snapshot(&store);
        let again = store
            .import_archive(corpus.join("docker/child.docker.tar"))
            .expect("import again");
        assert!(!again[0].created);
        assert_eq!(snapshot(&store), before, "{backend:?}");
    }
}

#[test]
fn oci_archive_gives_siblings_id_and_name() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        let imported = store
            .import_archive(corpus.join("oci-archive/sibling.oci.tar"))
            .unwrap_or_else(|e| panic!("{backend:?}: import sibling: {e}"));
        assert_eq!(imported.len(), 1);
        assert_eq!(
            Some(imported[0].id.to_string().as_str()),
            expected_image(&corpus, "sibling")["image_id"].as_str()
        );
        assert_image(&store, &corpus, "sibling", backend);
    }
}

#[test]
fn real_docker_save_of_several_images_imports_every_image_and_name() {
    let corpus = corpus();
    let view = json(corpus.join("expected/docker-view.json"));
    let saved = strings(&view["saved_images"]);
    assert!(!saved.is_empty());
    // Expected image (by file name) of each saved name.
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(corpus.join("expected/images")).expect("read_dir") {
        let path = entry.expect("entry").path();
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("stem")
            .to_owned();
        for name in strings(&json(path)["ref_names"]) {
            by_name.insert(name, stem.clone());
        }
    }
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        let imported = store
            .import_archive(corpus.join("docker/docker-save-multi.docker.tar"))
            .unwrap_or_else(|e| panic!("{backend:?}: import multi: {e}"));
        let mut chains = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for name in &saved {
            let image = by_name.get(name).expect("an expected image of that name");
            let expected = expected_image(&corpus, image);
            assert_eq!(
                store.resolve(name).expect("resolve").to_string().as_str(),
                expected["image_id"].as_str().expect("id"),
                "{backend:?}: {name}"
            );
            assert_image(&store, &corpus, image, backend);
            chains.extend(strings(&expected["chain_ids"]));
            ids.insert(expected["image_id"].as_str().expect("id").to_owned());
        }
        let names: BTreeSet<String> = imported.iter().flat_map(|i| i.names.clone()).collect();
        assert_eq!(names, saved.iter().cloned().collect(), "{backend:?}");
        assert_eq!(
            store.images().expect("list images").len(),
            ids.len(),
            "{backend:?}"
        );
        assert_eq!(
            store.layers().len().expect("layer records"),
            chains.len(),
            "{backend:?}"
        );
    }
}

#[test]
fn truncated_docker_archive_is_refused_and_leaves_the_store_unchanged() {
    let corpus = corpus();
    let bad = json(corpus.join("expected/bad.json"));
    let case = bad["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["path"] == "bad/truncated.docker.tar")
        .expect("truncated case");
    let should_name = case["error_should_name"].as_str().unwrap_or_default();
    let kind = case["suggested_error_kind"].as_str().expect("kind");
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        store
            .import_archive(corpus.join("docker/base.docker.tar"))
            .expect("import base");
        let before = snapshot(&store);
        let err = store
            .import_archive(corpus.join("bad/truncated.docker.tar"))
            .expect_err("truncated archive refused");
        assert_eq!(format!("{:?}", err.kind()), kind, "{backend:?}: {err}");
        let message = err.to_string();
        assert!(message.contains(should_name), "{message}");
        assert!(message.contains("truncated.docker.tar"), "{message}");
        assert_eq!(snapshot(&store), before, "{backend:?}");
    }
}

/// A header for `name` written byte for byte (the `tar` crate's setters
/// refuse `..`), with an optional link target.
fn raw_header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    {
        let gnu = header.as_gnu_mut().expect("gnu header");
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
    }
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// An entry: name, type, data, link target.
type Extra<'a> = (&'a str, tar::EntryType, &'a [u8], Option<&'a str>);

/// A docker-save archive of one image, with one entry added before its
/// members.
fn crafted(path: &Path, extra: Extra<'_>) {
    let file = std::fs::File::create(path).expect("create");
    let mut builder = tar::Builder::new(file);
    let layer = b"not really a tar, but a layer nonetheless".to_vec();
    let diff_id = imgstore::digest::Algorithm::Sha256.from_bytes(&layer);
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] },
    }))
    .expect("config");
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["crafted:v1"],
        "Layers": ["abc/layer.tar"],
    }]))
    .expect("manifest");
    let (name, kind, data, link) = extra;
    builder
        .append(&raw_header(name, kind, data.len() as u64, link), data)
        .expect("append extra");
    let members: [(&str, &[u8]); 3] = [
        ("layer.tar", &layer),
        ("config.json", &config),
        ("manifest.json", &manifest),
    ];
    for (name, data) in members {
        builder
            .append(
                &raw_header(name, tar::EntryType::Regular, data.len() as u64, None),
                data,
            )
            .expect("append");
    }
    if name != "abc/layer.tar" {
        builder
            .append(
                &raw_header(
                    "abc/layer.tar",
                    tar::EntryType::Symlink,
                    0,
                    Some("../layer.tar"),
                ),
                &[][..],
            )
            .expect("append link");
    }
    builder.finish().expect("finish");
}

#[test]
fn crafted_archives_import_only_when_they_stay_inside() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("store"), backend);

        let good = dir.path().join("good.tar");
        crafted(&good, ("VERSION", tar::EntryType::Regular, b"1.0", None));
        let imported = store.import_archive(&good).expect("good crafted archive");
        assert_eq!(imported[0].names, ["docker.io/library/crafted:v1"]);
        let before = snapshot(&store);

        let cases: [(&str, Extra<'_>); 5] = [
            (
                "dotdot",
                ("../escape", tar::EntryType::Regular, b"out", None),
            ),
            (
                "absolute",
                ("/etc/escape", tar::EntryType::Regular, b"out", None),
            ),
            (
                "symlink",
                (
                    "abc/layer.tar",
                    tar::EntryType::Symlink,
                    b"",
                    Some("../../etc/passwd"),
                ),
            ),
            (
                "absolute-symlink",
                (
                    "abc/layer.tar",
                    tar::EntryType::Symlink,
                    b"",
                    Some("/etc/passwd"),
                ),
            ),
            ("device", ("dev", tar::EntryType::Char, b"", None)),
        ];
        for (case, extra) in cases {
            let path = dir.path().join(format!("{case}.tar"));
            crafted(&path, extra);
            let err = store
                .import_archive(&path)
                .expect_err("unsafe archive refused");
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{case}: {err}");
            assert!(
                err.to_string().contains(&format!("{case}.tar")),
                "{case}: {err}"
            );
            assert_eq!(snapshot(&store), before, "{backend:?}: {case}");
        }

        // A compressed tarball is refused, saying so.
        let path = dir.path().join("good.tar.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&std::fs::read(&good).expect("read"))
            .expect("gzip");
        std::fs::write(&path, gz.finish().expect("gzip")).expect("write");
        let err = store.import_archive(&path).expect_err("gzip refused");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains("gzip"), "{err}");

        // A duplicate member name is refused too.
        let path = dir.path().join("duplicate.tar");
        crafted(
            &path,
            ("manifest.json", tar::EntryType::Regular, b"[]", None),
        );
        let err = store.import_archive(&path).expect_err("duplicate refused");
        assert!(err.to_string().contains("twice"), "{err}");
        assert_eq!(snapshot(&store), before, "{backend:?}");
    }
}

/// base.docker.tar rewritten into `path` with `RepoTags` replaced by `tags`,
/// its layers compressed with `compress` ("gzip", "zstd") or kept as they are.
fn rebuilt_base(corpus: &Path, path: &Path, tags: Value, compress: Option<&str>) {
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut archive = tar::Archive::new(
        std::fs::File::open(corpus.join("docker/base.docker.tar")).expect("open"),
    );
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("read");
        members.insert(name, data);
    }
    let mut manifest: Value =
        serde_json::from_slice(&members["manifest.json"]).expect("manifest.json");
    manifest[0]["RepoTags"] = tags;
    members.insert(
        "manifest.json".to_owned(),
        serde_json::to_vec(&manifest).expect("json"),
    );
    for layer in strings(&manifest[0]["Layers"]) {
        let plain = members[&layer].clone();
        let compressed = match compress {
            None => continue,
            Some("gzip") => {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&plain).expect("gzip");
                gz.finish().expect("gzip")
            }
            Some("zstd") => zstd::encode_all(&plain[..], 3).expect("zstd"),
            Some(other) => panic!("no compression {other}"),
        };
        members.insert(layer, compressed);
    }
    let mut builder = tar::Builder::new(std::fs::File::create(path).expect("create"));
    for (name, data) in &members {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, name, &data[..])
            .expect("append");
    }
    builder.finish().expect("finish");
}

#[test]
fn untagged_gzip_docker_image_imports_without_names() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("gzip.tar");
    rebuilt_base(&corpus, &path, Value::Null, Some("gzip"));
    for backend in BACKENDS {
        let root = dir.path().join(format!("{backend:?}"));
        let store = open(&root, backend);
        let imported = store.import_archive(&path).expect("import gzip archive");
        assert_eq!(imported.len(), 1);
        assert!(imported[0].names.is_empty());
        assert!(store.names().expect("names").is_empty());
        let expected = expected_image(&corpus, "base");
        assert_eq!(
            Some(imported[0].id.to_string().as_str()),
            expected["image_id"].as_str()
        );
        let image = store
            .image_store()
            .get(&imported[0].id)
            .expect("image stored");
        assert_eq!(
            image.top_chain_id().map(|c| c.to_string()).as_deref(),
            expected["top_chain_id"].as_str()
        );
    }
}

#[test]
fn zstd_docker_layers_import_with_the_oci_ids() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("zstd.tar");
    rebuilt_base(
        &corpus,
        &path,
        serde_json::json!(["registry.demo.test/demo/base:v1"]),
        Some("zstd"),
    );
    let expected = expected_image(&corpus, "base");
    for backend in BACKENDS {
        let store = open(&dir.path().join(format!("{backend:?}")), backend);
        let imported = store.import_archive(&path).expect("import zstd archive");
        assert_eq!(imported.len(), 1);
        assert_eq!(
            Some(imported[0].id.to_string().as_str()),
            expected["image_id"].as_str()
        );
        let mut chain = imported[0].top_chain_id.clone();
        assert_eq!(
            chain.as_ref().map(|c| c.to_string()).as_deref(),
            expected["top_chain_id"].as_str()
        );
        // Docker's SIZE for base (docker-view.json), from zstd layers.
        let mut files_size = 0;
        while let Some(id) = chain {
            let layer = store
                .layers()
                .layer(&id)
                .expect("layer records")
                .expect("layer");
            assert_eq!(
                layer.blob().expect("blob").media_type,
                "application/vnd.oci.image.layer.v1.tar+zstd"
            );
            files_size += layer.files_size().expect("files size");
            chain = layer.parent().cloned();
        }
        assert_eq!(files_size, 82);
    }
}

#[test]
fn docker_image_with_two_tags_gets_both_names() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("two-tags.tar");
    rebuilt_base(
        &corpus,
        &path,
        serde_json::json!(["registry.demo.test/demo/base:v1", "base:latest"]),
        None,
    );
    let id = expected_image(&corpus, "base")["image_id"]
        .as_str()
        .expect("id")
        .to_owned();
    for backend in BACKENDS {
        let store = open(&dir.path().join(format!("{backend:?}")), backend);
        let imported = store.import_archive(&path).expect("import");
        assert_eq!(
            imported[0].names,
            [
                "registry.demo.test/demo/base:v1",
                "docker.io/library/base:latest"
            ]
        );
        for name in ["registry.demo.test/demo/base:v1", "base:latest"] {
            assert_eq!(store.resolve(name).expect("resolve").to_string(), id);
        }
        assert_eq!(store.images().expect("list images").len(), 1);
        assert_eq!(store.images().expect("list images")[0].references.len(), 2);
    }
}

#[test]
fn corrupt_docker_layer_is_refused_and_undone() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    // child.docker.tar with one byte of its last layer (the fourth member,
    // after three layers of base) flipped: that layer no longer hashes to
    // its diff ID, found only once the first three layers are stored.
    let mut bytes = std::fs::read(corpus.join("docker/child.docker.tar")).expect("read");
    let child = expected_image(&corpus, "child");
    let last = strings(&child["diff_ids"]).pop().expect("a layer");
    let member = format!("{}.tar", last.trim_start_matches("sha256:"));
    let mut archive = tar::Archive::new(std::io::Cursor::new(bytes.clone()));
    let offset = archive
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry"))
        .find(|e| e.path_bytes().as_ref() == member.as_bytes())
        .map(|e| e.raw_file_position())
        .expect("last layer member");
    let at = usize::try_from(offset).expect("offset") + 100;
    bytes[at] ^= 0xff;
    let path = dir.path().join("corrupt.docker.tar");
    std::fs::write(&path, bytes).expect("write");
    for backend in BACKENDS {
        let store = open(&dir.path().join(format!("{backend:?}")), backend);
        let before = snapshot(&store);
        let err = store
            .import_archive(&path)
            .expect_err("corrupt layer refused");
        assert_eq!(err.kind(), ErrorKind::DataCorruption, "{backend:?}: {err}");
        assert!(err.to_string().contains(&last), "{err}");
        assert_eq!(snapshot(&store), before, "{backend:?}");
        assert!(
            store.layers().is_empty().expect("layer records"),
            "{backend:?}"
        );
    }
}
