//! `imgstore load --platform` of a multi-platform OCI layout: the name it
//! prints is listed, saved and kept by a dangling-only prune.

use std::path::Path;

use imgstore::digest::Digest;
use serde_json::{Value, json};

mod common;
use common::ok;

const NAME: &str = "example.test/multi:1";

fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = Digest::from_bytes(bytes);
    std::fs::write(dir.join("blobs/sha256").join(digest.encoded()), bytes).expect("write blob");
    json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
}

/// An OCI layout naming [`NAME`] at an index of linux/amd64, linux/arm/v7
/// and linux/arm64/v8 images (each with its own config); their image IDs.
fn multi_platform_layout(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
    let mut manifests = Vec::new();
    let mut ids = Vec::new();
    for (os, architecture, variant) in [
        ("linux", "amd64", None),
        ("linux", "arm", Some("v7")),
        ("linux", "arm64", Some("v8")),
    ] {
        let layer = format!("layer of {architecture}").into_bytes();
        let config = json!({
            "architecture": architecture,
            "os": os,
            "rootfs": {"type": "layers", "diff_ids": [Digest::from_bytes(&layer).to_string()]},
        });
        let config = blob(
            dir,
            "application/vnd.oci.image.config.v1+json",
            &serde_json::to_vec(&config).expect("json"),
        );
        ids.push(config["digest"].as_str().expect("digest").to_owned());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": [blob(dir, "application/vnd.oci.image.layer.v1.tar", &layer)],
        });
        let mut descriptor = blob(
            dir,
            "application/vnd.oci.image.manifest.v1+json",
            &serde_json::to_vec(&manifest).expect("json"),
        );
        descriptor["platform"] = json!({"os": os, "architecture": architecture});
        if let Some(variant) = variant {
            descriptor["platform"]["variant"] = json!(variant);
        }
        manifests.push(descriptor);
    }
    let index_type = "application/vnd.oci.image.index.v1+json";
    let index = json!({"schemaVersion": 2, "mediaType": index_type, "manifests": manifests});
    let mut index = blob(dir, index_type, &serde_json::to_vec(&index).expect("json"));
    index["annotations"] = json!({"org.opencontainers.image.ref.name": NAME});
    let top = json!({"schemaVersion": 2, "mediaType": index_type, "manifests": [index]});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&top).expect("json"),
    )
    .expect("index.json");
    ids
}

#[test]
fn load_for_another_platform_lists_saves_and_keeps_the_name() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let layout = tmp.path().join("layout");
    let ids = multi_platform_layout(&layout);
    let arm_v7 = &ids[1];
    let root = tmp.path().join("store");
    let layout = layout.to_str().expect("UTF-8");
    assert_eq!(
        ok(&root, &["load", "--platform", "linux/arm/v7", "-i", layout]),
        format!("Loaded image: {NAME}\n")
    );

    let listed = ok(&root, &["images", "--format", "json"]);
    let listed: Vec<Value> = listed
        .lines()
        .map(|line| serde_json::from_str(line).expect("json line"))
        .collect();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["Id"], json!(arm_v7));
    assert_eq!(listed[0]["References"], json!([NAME]));
    let table = ok(&root, &["images"]);
    let row = table.lines().nth(1).expect("one row");
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[..2], ["example.test/multi", "1"], "{table}");
    assert_eq!(columns[2], &arm_v7["sha256:".len().."sha256:".len() + 12]);

    let saved = tmp.path().join("x.tar");
    let saved_arg = saved.to_str().expect("UTF-8");
    assert_eq!(ok(&root, &["save", "-o", saved_arg, NAME]), "");
    assert!(std::fs::metadata(&saved).expect("saved tar").len() > 0);

    assert_eq!(
        ok(&root, &["prune", "-f"]),
        "Total reclaimed space: 0B\n",
        "a dangling-only prune deletes nothing"
    );
    let listed = ok(&root, &["images", "--format", "json"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");

    // The save holds that image under that name.
    let other = tmp.path().join("other");
    assert_eq!(
        ok(&other, &["load", "-i", saved_arg]),
        format!("Loaded image: {NAME}\n")
    );
    let reloaded: Value =
        serde_json::from_str(ok(&other, &["images", "--format", "json"]).trim()).expect("json");
    assert_eq!(reloaded["Id"], json!(arm_v7));
}
