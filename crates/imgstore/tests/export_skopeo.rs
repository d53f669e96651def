//! Our exports read by skopeo (`.ci/run` installs it; without it the test
//! fails): `skopeo inspect` of our OCI layout, `skopeo
//! copy` of it to oci-archive and docker-archive, of our oci-archive to an
//! OCI layout and of our docker save to docker-archive: every output imports
//! back with the same image IDs and names. skopeo's copy of our docker save
//! to an OCI layout re-serialises the config (as it does for its own docker
//! archives): same config content and diff IDs.

use std::path::Path;
use std::process::Command;

use imgstore::image::ImageStore;
use imgstore::{Backend, ExportFormat, Store};
use serde_json::Value;

mod common;

use common::{corpus, expected_image, open, strings};

const NAMES: [(&str, &str); 4] = [
    ("base", "registry.demo.test/demo/base:v1"),
    ("sibling", "registry.demo.test/demo/sibling:v1"),
    ("child", "registry.demo.test/demo/child:v1"),
    ("withenv", "registry.demo.test/demo/withenv:v1"),
];

/// Runs skopeo; its stdout, or a panic with its stderr.
fn skopeo(args: &[&str]) -> Vec<u8> {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run skopeo {args:?}: {e}"));
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// skopeo is a test dependency (`.ci/run` installs it): its absence fails
/// the test rather than skipping it.
fn require_skopeo() {
    let installed = Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(installed, "skopeo is not installed (.ci/run installs it)");
}

/// Imports `path` (a layout directory or a tar) into a fresh store and
/// returns the image the name resolves to and its diff IDs.
fn reimport(path: &Path, name: &str) -> (String, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Store = open(dir.path(), Backend::Sqlite);
    let result = if path.is_dir() {
        store.import_oci_layout(path)
    } else {
        store.import_archive(path)
    };
    result.unwrap_or_else(|e| panic!("import {}: {e}", path.display()));
    let id = store
        .resolve(name)
        .unwrap_or_else(|e| panic!("{}: {name}: {e}", path.display()));
    let image = store.image_store().get(&id).expect("image");
    let diff_ids = image.diff_ids().iter().map(ToString::to_string).collect();
    (id.to_string(), diff_ids)
}

#[test]
fn skopeo_reads_and_copies_our_exports() {
    let corpus = corpus();
    require_skopeo();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir.path().join("store"), Backend::Fs);
    store
        .import_oci_layout(corpus.join("oci/main"))
        .expect("import");
    let names: Vec<&str> = NAMES.iter().map(|(_, name)| *name).collect();
    let layout = dir.path().join("layout");
    let report = store
        .export(&names, &layout, ExportFormat::OciLayout)
        .expect("export layout");
    let save = dir.path().join("save.docker.tar");
    store
        .export(&names, &save, ExportFormat::DockerSave)
        .expect("export docker save");
    let archive = dir.path().join("images.oci.tar");
    store
        .export(&names, &archive, ExportFormat::OciArchive)
        .expect("export oci-archive");

    for ((image, name), exported) in NAMES.iter().zip(&report.images) {
        let expected = expected_image(&corpus, image);
        let id = expected["image_id"].as_str().expect("id");
        let diff_ids = strings(&expected["diff_ids"]);
        let layout_ref = format!("oci:{}:{name}", layout.display());

        let inspect: Value =
            serde_json::from_slice(&skopeo(&["inspect", &layout_ref])).expect("inspect json");
        assert_eq!(inspect["Digest"], exported.target.to_string(), "{name}");
        assert_eq!(
            strings(&inspect["Layers"]),
            expected["layers"]
                .as_array()
                .expect("layers")
                .iter()
                .map(|l| l["digest"].as_str().expect("digest").to_owned())
                .collect::<Vec<_>>(),
            "{name}"
        );
        let config: Value = serde_json::from_slice(&skopeo(&["inspect", "--config", &layout_ref]))
            .expect("config json");
        assert_eq!(strings(&config["rootfs"]["diff_ids"]), diff_ids, "{name}");

        // Our layout -> skopeo's oci-archive and docker-archive -> us.
        let oci_out = dir.path().join(format!("{image}.skopeo.oci.tar"));
        skopeo(&[
            "copy",
            "--insecure-policy",
            &layout_ref,
            &format!("oci-archive:{}:{name}", oci_out.display()),
        ]);
        assert_eq!(reimport(&oci_out, name), (id.to_owned(), diff_ids.clone()));
        let docker_out = dir.path().join(format!("{image}.skopeo.docker.tar"));
        skopeo(&[
            "copy",
            "--insecure-policy",
            &layout_ref,
            &format!("docker-archive:{}:{name}", docker_out.display()),
        ]);
        assert_eq!(
            reimport(&docker_out, name),
            (id.to_owned(), diff_ids.clone())
        );

        // Our oci-archive (several images) -> skopeo's OCI layout -> us.
        let out = dir.path().join(format!("{image}-from-archive"));
        skopeo(&[
            "copy",
            "--insecure-policy",
            &format!("oci-archive:{}:{name}", archive.display()),
            &format!("oci:{}:{name}", out.display()),
        ]);
        assert_eq!(reimport(&out, name), (id.to_owned(), diff_ids.clone()));

        // Our docker save (several images) -> skopeo's docker-archive -> us:
        // the config goes through byte for byte.
        let save_ref = format!("docker-archive:{}:{name}", save.display());
        let out = dir.path().join(format!("{image}-from-save.docker.tar"));
        skopeo(&[
            "copy",
            "--insecure-policy",
            &save_ref,
            &format!("docker-archive:{}:{name}", out.display()),
        ]);
        assert_eq!(reimport(&out, name), (id.to_owned(), diff_ids.clone()));
        // -> skopeo's OCI layout: skopeo converts Docker's manifest and
        // re-serialises the config (a new ID; it does so for its own docker
        // archives too), keeping its content and the layers.
        let out = dir.path().join(format!("{image}-from-save"));
        skopeo(&[
            "copy",
            "--insecure-policy",
            &save_ref,
            &format!("oci:{}:{name}", out.display()),
        ]);
        let (_, converted_diff_ids) = reimport(&out, name);
        assert_eq!(converted_diff_ids, diff_ids, "{save_ref}");
        let converted: Value = serde_json::from_slice(&skopeo(&[
            "inspect",
            "--config",
            &format!("oci:{}:{name}", out.display()),
        ]))
        .expect("config json");
        assert_eq!(converted, config, "{save_ref}");
    }

    // A docker save of one image needs no reference.
    let single = dir.path().join("single.docker.tar");
    store
        .export(&[NAMES[0].1], &single, ExportFormat::DockerSave)
        .expect("export one");
    let out = dir.path().join("single-copy.docker.tar");
    skopeo(&[
        "copy",
        "--insecure-policy",
        &format!("docker-archive:{}", single.display()),
        &format!("docker-archive:{}:{}", out.display(), NAMES[0].1),
    ]);
    let base = expected_image(&corpus, "base");
    assert_eq!(
        reimport(&out, NAMES[0].1).0,
        base["image_id"].as_str().expect("id")
    );
}
