//! Export of the image corpus (`examples/images`) to an OCI layout, an
//! oci-archive and a docker save tar, re-imported into fresh stores; and the
//! refusals (unknown image, existing destination, corrupt content), on both
//! backends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use imgstore::backend::ErrorKind;
use imgstore::digest::Digest;
use imgstore::image::ImageStore;
use imgstore::layer::ChainId;
use imgstore::{Backend, Error, ExportFormat, Store};
use serde_json::Value;

mod common;

use common::{BACKENDS, corpus, expected_image, json, open, strings};

const FORMATS: [ExportFormat; 3] = [
    ExportFormat::OciLayout,
    ExportFormat::OciArchive,
    ExportFormat::DockerSave,
];

const CORPUS_IMAGES: [&str; 5] = ["base", "sibling", "child", "withenv", "quirk"];

/// Imports every good input of the corpus.
fn load_corpus(store: &Store, corpus: &Path) {
    for dir in ["oci/main", "oci/quirk-unterminated"] {
        store
            .import_oci_layout(corpus.join(dir))
            .unwrap_or_else(|e| panic!("import {dir}: {e}"));
    }
    for tar in [
        "docker/base.docker.tar",
        "docker/child.docker.tar",
        "oci-archive/sibling.oci.tar",
        "docker/docker-save-multi.docker.tar",
    ] {
        store
            .import_archive(corpus.join(tar))
            .unwrap_or_else(|e| panic!("import {tar}: {e}"));
    }
}

/// Per image: names, diff IDs, chain IDs (bottom first, each stored).
type View = BTreeMap<String, (Vec<String>, Vec<String>, Vec<String>)>;

fn view(store: &Store) -> View {
    store
        .images()
        .expect("list images")
        .into_iter()
        .map(|summary| {
            let image = store.image_store().get(&summary.id).expect("image");
            let diff_ids: Vec<_> = image.diff_ids().to_vec();
            let mut chains = Vec::new();
            for i in 1..=diff_ids.len() {
                let chain = ChainId::of(&diff_ids[..i]).expect("chain");
                assert!(
                    store
                        .layers()
                        .layer(&chain)
                        .expect("layer records")
                        .is_some(),
                    "{}: layer {chain} not stored",
                    summary.id
                );
                chains.push(chain.to_string());
            }
            assert_eq!(
                image.top_chain_id().map(ToString::to_string),
                chains.last().cloned()
            );
            let mut names = summary.references.clone();
            names.sort();
            (
                summary.id.to_string(),
                (
                    names,
                    diff_ids.iter().map(ToString::to_string).collect(),
                    chains,
                ),
            )
        })
        .collect()
}

fn import_export(store: &Store, path: &Path, format: ExportFormat) {
    let result = match format {
        ExportFormat::OciLayout => store.import_oci_layout(path),
        ExportFormat::OciArchive | ExportFormat::DockerSave => store.import_archive(path),
    };
    result.unwrap_or_else(|e| panic!("re-import {format:?} {}: {e}", path.display()));
}

fn dest_name(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::OciLayout => "layout",
        ExportFormat::OciArchive => "images.oci.tar",
        ExportFormat::DockerSave => "images.docker.tar",
    }
}

/// Names of the directory's entries, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn every_corpus_image_round_trips_through_every_format() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("store"), backend);
        load_corpus(&store, &corpus);
        let original = view(&store);
        // Every expected image is there, with its names.
        for name in CORPUS_IMAGES {
            let expected = expected_image(&corpus, name);
            let id = expected["image_id"].as_str().expect("image_id");
            let (names, diff_ids, chains) = &original[id];
            assert_eq!(names, &strings(&expected["ref_names"]), "{name}");
            assert_eq!(diff_ids, &strings(&expected["diff_ids"]), "{name}");
            assert_eq!(chains, &strings(&expected["chain_ids"]), "{name}");
        }
        assert_eq!(original.len(), 5, "{backend:?}");
        let names = store.names().expect("names");
        let inputs: Vec<&str> = names.iter().map(String::as_str).collect();

        for format in FORMATS {
            let out = dir.path().join(dest_name(format));
            let report = store
                .export(&inputs, &out, format)
                .unwrap_or_else(|e| panic!("{backend:?} {format:?}: export: {e}"));
            assert_eq!(report.images.len(), names.len());
            assert_eq!(report.format, format);
            assert_eq!(report.path, out);
            for (exported, name) in report.images.iter().zip(&names) {
                assert_eq!(exported.name.as_deref(), Some(name.as_str()));
                assert_eq!(exported.id, store.resolve(name).expect("resolve"));
            }
            // Nothing but the output beside it.
            assert_eq!(
                listing(dir.path())
                    .iter()
                    .filter(|n| n.starts_with('.'))
                    .count(),
                0,
                "{backend:?} {format:?}: temporary files left"
            );

            for reimport_backend in BACKENDS {
                let again_dir = tempfile::tempdir().expect("tempdir");
                let again = open(again_dir.path(), reimport_backend);
                import_export(&again, &out, format);
                assert_eq!(
                    view(&again),
                    original,
                    "{backend:?} -> {format:?} -> {reimport_backend:?}"
                );
            }
        }
    }
}

#[test]
fn oci_layout_names_every_image_like_skopeo_and_containerd() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("store"), Backend::Sqlite);
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    let out = dir.path().join("layout");
    let report = store
        .export(
            &["registry.demo.test/demo/base:v1"],
            &out,
            ExportFormat::OciLayout,
        )
        .expect("export");
    let base = expected_image(&corpus, "base");
    // The manifest as imported, byte for byte.
    assert_eq!(
        report.images[0].target.to_string(),
        base["manifest_digest"].as_str().expect("manifest")
    );
    assert_eq!(report.blobs, 5, "manifest, config, 3 layers");
    assert_eq!(
        std::fs::read_to_string(out.join("oci-layout")).expect("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = json(out.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(
        index["manifests"],
        serde_json::json!([{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": base["manifest_digest"],
            "size": base["manifest_size"],
            "annotations": {
                "org.opencontainers.image.ref.name": "registry.demo.test/demo/base:v1",
                "io.containerd.image.name": "registry.demo.test/demo/base:v1",
            },
        }])
    );
    // Every blob is the corpus's blob, byte for byte.
    let mut blobs = listing(&out.join("blobs/sha256"));
    blobs.sort();
    let mut expected: Vec<String> = std::iter::once(&base["manifest_digest"])
        .chain(std::iter::once(&base["config_digest"]))
        .chain(
            base["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|l| &l["digest"]),
        )
        .map(|d| d.as_str().expect("digest")["sha256:".len()..].to_owned())
        .collect();
    expected.sort();
    assert_eq!(blobs, expected);
    for blob in blobs {
        assert_eq!(
            std::fs::read(out.join("blobs/sha256").join(&blob)).expect("ours"),
            std::fs::read(corpus.join("oci/main/blobs/sha256").join(&blob)).expect("corpus"),
            "{blob}"
        );
    }
}

#[test]
fn docker_save_holds_uncompressed_layers_named_by_diff_id() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("store"), Backend::Fs);
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    let out = dir.path().join("save.tar");
    // A name (familiar form in RepoTags), the same image again by short ID,
    // and an image by ID only.
    let child = expected_image(&corpus, "child");
    let base = expected_image(&corpus, "base");
    let child_short = child["image_id_short"].as_str().expect("short");
    let base_id = base["image_id"].as_str().expect("id");
    let report = store
        .export(
            &["registry.demo.test/demo/child:v1", child_short, base_id],
            &out,
            ExportFormat::DockerSave,
        )
        .expect("export");
    assert_eq!(report.images.len(), 3);
    assert_eq!(report.images[1].name, None);
    // child's 4 layers (base's 3 among them) and two configs.
    assert_eq!(report.blobs, 6);

    let mut archive = tar::Archive::new(std::fs::File::open(&out).expect("open"));
    let mut members: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        assert_eq!(entry.header().mtime().expect("mtime"), 0);
        assert_eq!(entry.header().uid().expect("uid"), 0);
        let name = entry.path().expect("path").to_string_lossy().into_owned();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read");
        members.insert(name, bytes);
    }
    let manifest: Value = serde_json::from_slice(&members["manifest.json"]).expect("manifest");
    let child_layers: Vec<String> = strings(&child["diff_ids"])
        .iter()
        .map(|d| format!("{}.tar", &d["sha256:".len()..]))
        .collect();
    let base_layers: Vec<String> = child_layers[..3].to_vec();
    assert_eq!(
        manifest,
        serde_json::json!([
            {
                "Config": format!("{}.json", &child["image_id"].as_str().expect("id")[7..]),
                "RepoTags": ["registry.demo.test/demo/child:v1"],
                "Layers": child_layers,
            },
            {
                "Config": format!("{}.json", &base_id[7..]),
                "RepoTags": null,
                "Layers": base_layers,
            },
        ])
    );
    let repositories: Value =
        serde_json::from_slice(&members["repositories"]).expect("repositories");
    assert_eq!(
        repositories,
        serde_json::json!({"registry.demo.test/demo/child": {"v1": &child_layers[3][..64]}})
    );
    for (layer, diff_id) in child_layers.iter().zip(strings(&child["diff_ids"])) {
        let bytes = &members[layer];
        assert_eq!(
            imgstore::digest::Algorithm::Sha256
                .from_bytes(bytes)
                .to_string(),
            diff_id
        );
    }
    // Layer tars are uncompressed: their sizes are the corpus's.
    let sizes: Vec<u64> = child["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["uncompressed_size"].as_u64().expect("size"))
        .collect();
    let ours: Vec<u64> = child_layers
        .iter()
        .map(|l| members[l].len() as u64)
        .collect();
    assert_eq!(ours, sizes);
}

#[test]
fn exports_are_byte_for_byte_reproducible() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("store"), Backend::Sqlite);
    load_corpus(&store, &corpus);
    let names = store.names().expect("names");
    let inputs: Vec<&str> = names.iter().map(String::as_str).collect();
    for format in [ExportFormat::OciArchive, ExportFormat::DockerSave] {
        let a = dir.path().join("a.tar");
        let b = dir.path().join("b.tar");
        store.export(&inputs, &a, format).expect("export a");
        store.export(&inputs, &b, format).expect("export b");
        assert_eq!(
            std::fs::read(&a).expect("a"),
            std::fs::read(&b).expect("b"),
            "{format:?}"
        );
        std::fs::remove_file(&a).expect("rm a");
        std::fs::remove_file(&b).expect("rm b");
    }
}

#[test]
fn an_image_given_by_id_is_exported_without_a_name() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("store"), backend);
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("import");
        let sibling = expected_image(&corpus, "sibling");
        let id = sibling["image_id"].as_str().expect("id");
        for format in FORMATS {
            let out = dir.path().join(dest_name(format));
            let report = store
                .export(&[&id[7..19]], &out, format)
                .unwrap_or_else(|e| panic!("{backend:?} {format:?}: {e}"));
            assert_eq!(report.images[0].id.to_string(), id);
            assert_eq!(report.images[0].name, None);
            let again_dir = tempfile::tempdir().expect("tempdir");
            let again = open(again_dir.path(), backend);
            import_export(&again, &out, format);
            let images = again.images().expect("list images");
            assert_eq!(images.len(), 1, "{backend:?} {format:?}");
            assert_eq!(images[0].id.to_string(), id);
            assert!(images[0].references.is_empty(), "{format:?}");
            assert_eq!(
                view(&again)[id].2,
                strings(&sibling["chain_ids"]),
                "{backend:?} {format:?}"
            );
        }
    }
}

#[test]
fn an_image_no_name_reaches_gets_a_manifest_written_for_it() {
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("store"), backend);
        store
            .import_oci_layout(corpus.join("oci/main"))
            .expect("import");
        let withenv = expected_image(&corpus, "withenv");
        let id = withenv["image_id"].as_str().expect("id");
        store
            .untag("registry.demo.test/demo/withenv:v1")
            .expect("untag");
        let out = dir.path().join("layout");
        let report = store
            .export(&[id], &out, ExportFormat::OciLayout)
            .expect("export");
        // Not the imported manifest (no name leads to it): one of ours.
        assert_ne!(
            report.images[0].target.to_string(),
            withenv["manifest_digest"].as_str().expect("manifest")
        );
        let again_dir = tempfile::tempdir().expect("tempdir");
        let again = open(again_dir.path(), backend);
        again.import_oci_layout(&out).expect("re-import");
        assert_eq!(view(&again)[id].2, strings(&withenv["chain_ids"]));
    }
}

#[test]
fn unknown_images_are_not_found_and_nothing_is_written() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("store"), Backend::Sqlite);
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    for format in FORMATS {
        let out = dir.path().join(dest_name(format));
        for unknown in [
            "registry.demo.test/demo/nothere:v1",
            "nothere",
            "0123456789ab",
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let err = store
                .export(&["registry.demo.test/demo/base:v1", unknown], &out, format)
                .expect_err("unknown image");
            assert_eq!(err.kind(), ErrorKind::NotFound, "{unknown}: {err}");
            assert!(!out.exists(), "{format:?}: {unknown}: output left");
        }
    }
    assert_eq!(listing(dir.path()), ["store"]);
}

const BASE: &str = "registry.demo.test/demo/base:v1";

/// A store at `<dir>/store` holding the corpus's `oci/main`.
fn store_with_main(backend: Backend) -> Option<(tempfile::TempDir, Store)> {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("store"), backend);
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    Some((dir, store))
}

#[test]
fn an_existing_destination_is_refused_and_left_alone() {
    let Some((dir, store)) = store_with_main(Backend::Fs) else {
        return;
    };
    let base = [BASE];

    // A file, for every format.
    let file = dir.path().join("taken");
    std::fs::write(&file, b"precious").expect("write");
    for format in FORMATS {
        let err = store.export(&base, &file, format).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{format:?}: {err}");
        assert!(matches!(err, Error::DestinationExists { ref path } if path == &file));
        assert_eq!(std::fs::read(&file).expect("read"), b"precious");
    }

    // A non-empty directory, for every format.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).expect("mkdir");
    std::fs::write(full.join("keep"), b"x").expect("write");
    for format in FORMATS {
        let err = store.export(&base, &full, format).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{format:?}: {err}");
        assert_eq!(listing(&full), ["keep"]);
    }

    // An empty directory: a layout goes in; a tar does not.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    for format in [ExportFormat::OciArchive, ExportFormat::DockerSave] {
        let err = store.export(&base, &empty, format).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{format:?}: {err}");
    }
    store
        .export(&base, &empty, ExportFormat::OciLayout)
        .expect("into an empty directory");
    assert_eq!(listing(&empty), ["blobs", "index.json", "oci-layout"]);
    assert_eq!(listing(dir.path()), ["empty", "full", "store", "taken"]);
}

#[test]
fn export_replacing_replaces_a_file_with_a_tar_and_nothing_else() {
    let Some((dir, store)) = store_with_main(Backend::Sqlite) else {
        return;
    };
    let base = [BASE];
    for format in [ExportFormat::OciArchive, ExportFormat::DockerSave] {
        let file = dir.path().join(format!("taken-{format:?}"));
        std::fs::write(&file, b"precious").expect("write");
        let fresh = dir.path().join(format!("fresh-{format:?}"));
        store.export(&base, &fresh, format).expect("export");
        store
            .export_replacing(&base, &file, format)
            .expect("replaces the file");
        assert_eq!(
            std::fs::read(&file).expect("read"),
            std::fs::read(&fresh).expect("read"),
            "{format:?}: the same bytes as an export to a new path"
        );
        // A failed export leaves the file as it was.
        std::fs::write(&file, b"precious").expect("write");
        let err = store
            .export_replacing(&["no-such-image"], &file, format)
            .expect_err("unknown");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(std::fs::read(&file).expect("read"), b"precious");
    }
    // Directories are never replaced; a layout goes only where export puts it.
    let full = dir.path().join("full");
    std::fs::create_dir(&full).expect("mkdir");
    std::fs::write(full.join("keep"), b"x").expect("write");
    for format in FORMATS {
        let err = store
            .export_replacing(&base, &full, format)
            .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{format:?}: {err}");
        assert_eq!(listing(&full), ["keep"]);
    }
    let file = dir.path().join("taken-layout");
    std::fs::write(&file, b"precious").expect("write");
    let err = store
        .export_replacing(&base, &file, ExportFormat::OciLayout)
        .expect_err("a layout does not replace a file");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&file).expect("read"), b"precious");
}

/// The stored file of a content blob on the fs backend.
fn fs_blob(root: &Path, hex: &str) -> PathBuf {
    let mut stack = vec![root.join("content")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n == hex) {
                return path;
            }
        }
    }
    panic!("blob {hex} not found under {}", root.display());
}

#[test]
fn corrupt_content_fails_the_export_and_leaves_no_output() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let store = open(&root, Backend::Fs);
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    let base = expected_image(&corpus, "base");
    let layer = base["layers"][2]["digest"].as_str().expect("digest");
    let path = fs_blob(&root, &layer[7..]);
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 10;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("write");

    for format in FORMATS {
        let out = dir.path().join(dest_name(format));
        let err = store
            .export(&["registry.demo.test/demo/base:v1"], &out, format)
            .expect_err("corrupt layer");
        assert_eq!(err.kind(), ErrorKind::DataCorruption, "{format:?}: {err}");
        assert!(!out.exists(), "{format:?}: output left");
    }
    assert_eq!(listing(dir.path()), ["store"]);
}

/// A copy of oci/main whose only name points at an index: base for this
/// host, sibling for Windows (not imported, so not stored).
/// A layout's `index.json` naming one descriptor as `name`.
fn write_index_json(dir: &Path, media_type: &str, digest: &Digest, size: usize, name: &str) {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest.to_string(),
            "size": size,
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
}

fn index_layout(corpus: &Path, dir: &Path) -> (String, u64) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    for entry in std::fs::read_dir(corpus.join("oci/main/blobs/sha256")).expect("blobs") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), blobs.join(entry.file_name())).expect("copy");
    }
    std::fs::copy(corpus.join("oci/main/oci-layout"), dir.join("oci-layout")).expect("copy");
    let entry = |image: &str, os: &str| {
        let expected = expected_image(corpus, image);
        serde_json::json!({
            "mediaType": expected["manifest_media_type"],
            "digest": expected["manifest_digest"],
            "size": expected["manifest_size"],
            "platform": {"architecture": "amd64", "os": os},
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry("base", std::env::consts::OS), entry("sibling", "windows")],
    }))
    .expect("index");
    let digest = imgstore::digest::Algorithm::Sha256.from_bytes(&index);
    std::fs::write(blobs.join(digest.encoded()), &index).expect("write");
    write_index_json(
        dir,
        "application/vnd.oci.image.index.v1+json",
        &digest,
        index.len(),
        "registry.demo.test/demo/multi:v1",
    );
    (digest.to_string(), index.len() as u64)
}

#[test]
fn a_name_on_an_index_exports_the_index_and_its_stored_manifests() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let (index_digest, index_size) = index_layout(&corpus, &dir.path().join("in"));
    let base = expected_image(&corpus, "base");
    let base_id = base["image_id"].as_str().expect("id");
    let name = "registry.demo.test/demo/multi:v1";
    for backend in BACKENDS {
        let store = open(&dir.path().join(format!("store-{backend:?}")), backend);
        store
            .import_oci_layout(dir.path().join("in"))
            .expect("import");
        assert_eq!(
            store.images().expect("list images").len(),
            1,
            "{backend:?}: sibling is for Windows"
        );

        let out = dir.path().join(format!("out-{backend:?}"));
        let report = store
            .export(&[name], &out, ExportFormat::OciLayout)
            .expect("export");
        assert_eq!(report.images[0].target.to_string(), index_digest);
        assert_eq!(report.images[0].id.to_string(), base_id);
        let index = json(out.join("index.json"));
        assert_eq!(index["manifests"][0]["digest"], index_digest.as_str());
        assert_eq!(index["manifests"][0]["size"], index_size);
        assert_eq!(
            index["manifests"][0]["mediaType"],
            "application/vnd.oci.image.index.v1+json"
        );
        // The index, and base's manifest, config and 3 layers; not sibling's.
        let mut expected: Vec<String> = [&base["manifest_digest"], &base["config_digest"]]
            .into_iter()
            .chain(
                base["layers"]
                    .as_array()
                    .expect("layers")
                    .iter()
                    .map(|l| &l["digest"]),
            )
            .map(|d| d.as_str().expect("digest").to_owned())
            .chain([index_digest.clone()])
            .map(|d| d["sha256:".len()..].to_owned())
            .collect();
        expected.sort();
        assert_eq!(listing(&out.join("blobs/sha256")), expected, "{backend:?}");

        let again_dir = tempfile::tempdir().expect("tempdir");
        let again = open(again_dir.path(), backend);
        again.import_oci_layout(&out).expect("re-import");
        assert_eq!(again.resolve(name).expect("name").to_string(), base_id);
        assert_eq!(
            again
                .refs()
                .get(again.namespace(), name)
                .expect("record")
                .target
                .digest
                .to_string(),
            index_digest
        );

        // docker save: the image this host uses, under the name.
        let save = dir.path().join(format!("save-{backend:?}.tar"));
        store
            .export(&[name], &save, ExportFormat::DockerSave)
            .expect("docker save");
        let again_dir = tempfile::tempdir().expect("tempdir");
        let again = open(again_dir.path(), backend);
        let imported = again.import_archive(&save).expect("re-import save");
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].id.to_string(), base_id);
        assert_eq!(imported[0].names, [name]);
    }
}

/// An OCI layout of base with its layers recompressed with zstd (same
/// config, so the same image ID and diff IDs).
fn zstd_layout(corpus: &Path, dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    let base = expected_image(corpus, "base");
    let source = corpus.join("oci/main/blobs/sha256");
    let write = |bytes: &[u8]| {
        let digest = imgstore::digest::Algorithm::Sha256.from_bytes(bytes);
        std::fs::write(blobs.join(digest.encoded()), bytes).expect("write");
        digest
    };
    let mut layers = Vec::new();
    for layer in base["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().expect("digest");
        let gz = std::fs::read(source.join(&digest[7..])).expect("layer");
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut plain)
            .expect("gunzip");
        let zst = zstd::encode_all(&plain[..], 3).expect("zstd");
        layers.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
            "digest": write(&zst).to_string(),
            "size": zst.len(),
        }));
    }
    let config_digest = base["config_digest"].as_str().expect("config");
    let config = std::fs::read(source.join(&config_digest[7..])).expect("config");
    write(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layers,
    }))
    .expect("manifest");
    let digest = write(&manifest);
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("write");
    write_index_json(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        &digest,
        manifest.len(),
        "registry.demo.test/demo/zstd:v1",
    );
}

#[test]
fn zstd_layers_are_decompressed_for_docker_save_and_kept_for_oci() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    zstd_layout(&corpus, &dir.path().join("in"));
    let base = expected_image(&corpus, "base");
    let base_id = base["image_id"].as_str().expect("id");
    let name = "registry.demo.test/demo/zstd:v1";
    for backend in BACKENDS {
        let store = open(&dir.path().join(format!("store-{backend:?}")), backend);
        store
            .import_oci_layout(dir.path().join("in"))
            .expect("import");
        for format in FORMATS {
            let out = dir
                .path()
                .join(format!("{backend:?}-{}", dest_name(format)));
            store.export(&[name], &out, format).expect("export");
            let again_dir = tempfile::tempdir().expect("tempdir");
            let again = open(again_dir.path(), backend);
            import_export(&again, &out, format);
            assert_eq!(again.resolve(name).expect("name").to_string(), base_id);
            let (_, diff_ids, chains) = &view(&again)[base_id];
            assert_eq!(
                diff_ids,
                &strings(&base["diff_ids"]),
                "{backend:?} {format:?}"
            );
            assert_eq!(
                chains,
                &strings(&base["chain_ids"]),
                "{backend:?} {format:?}"
            );
        }
        // Docker's layer tars are the uncompressed diffs, as in the corpus.
        let save = dir.path().join(format!(
            "{backend:?}-{}",
            dest_name(ExportFormat::DockerSave)
        ));
        let mut archive = tar::Archive::new(std::fs::File::open(&save).expect("open"));
        let mut sizes = BTreeMap::new();
        for entry in archive.entries().expect("entries") {
            let entry = entry.expect("entry");
            let path = entry.path().expect("path").to_string_lossy().into_owned();
            sizes.insert(path, entry.size());
        }
        for layer in base["layers"].as_array().expect("layers") {
            let diff_id = layer["diff_id"].as_str().expect("diff id");
            assert_eq!(
                sizes.get(&format!("{}.tar", &diff_id[7..])).copied(),
                layer["uncompressed_size"].as_u64(),
                "{backend:?}: {diff_id}"
            );
        }
    }
}
