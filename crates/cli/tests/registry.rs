//! `imgstore pull` and `imgstore push` against a real registry (Debian's
//! `docker-registry`, started by each test): Docker's lines, exactly.

mod common;
#[path = "../../imgstore/tests/common/registry.rs"]
mod registry;

use common::{corpus, expected_image, imgstore, ok, path_str, text};
use registry::RealRegistry;

/// The short (12 hex digits) form of a digest string.
fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    &hex[..12]
}

fn strings(value: &serde_json::Value, field: &str) -> Vec<String> {
    value[field]
        .as_array()
        .expect("array")
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

fn layer_digests(image: &serde_json::Value) -> Vec<String> {
    image["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["digest"].as_str().expect("digest").to_owned())
        .collect()
}

/// What `push` prints for an image whose layers (diff IDs, bottom first)
/// the registry lacks or has.
fn push_lines(repository: &str, tag: &str, image: &serde_json::Value, status: &str) -> String {
    let mut diff_ids = strings(image, "diff_ids");
    diff_ids.reverse();
    let mut out = format!("The push refers to repository [{repository}]\n");
    for diff_id in &diff_ids {
        out.push_str(&format!("{}: Preparing\n", short(diff_id)));
    }
    for diff_id in &diff_ids {
        out.push_str(&format!("{}: {status}\n", short(diff_id)));
    }
    out.push_str(&format!(
        "{tag}: digest: {} size: {}\n",
        image["manifest_digest"].as_str().expect("digest"),
        image["manifest_size"]
    ));
    out
}

#[test]
fn push_prints_dockers_lines_and_finds_layers_already_there() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    let main = corpus().join("oci/main");
    ok(&root, &["load", "-q", "-i", path_str(&main)]);
    let base = expected_image("base");
    let repository = format!("{}/demo/base", registry.host);

    let out = ok(
        &root,
        &[
            "push",
            "registry.demo.test/demo/base:v1",
            &format!("{repository}:v1"),
        ],
    );
    assert_eq!(out, push_lines(&repository, "v1", &base, "Pushed"));

    // Docker 20.10 pushes the latest tag when none is given.
    ok(
        &root,
        &["tag", "registry.demo.test/demo/base:v1", &repository],
    );
    let out = ok(&root, &["push", &repository]);
    assert_eq!(
        out,
        format!(
            "Using default tag: latest\n{}",
            push_lines(&repository, "latest", &base, "Layer already exists")
        )
    );

    let out = ok(&root, &["push", "-q", &repository]);
    assert_eq!(out, format!("{repository}:latest\n"));
}

#[test]
fn pull_prints_dockers_lines_then_up_to_date_and_quiet() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("source");
    ok(
        &source,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let base = expected_image("base");
    let child = expected_image("child");
    let remote_base = format!("{}/demo/base:v1", registry.host);
    let remote_child = format!("{}/demo/child", registry.host);
    ok(
        &source,
        &[
            "push",
            "-q",
            "registry.demo.test/demo/base:v1",
            &remote_base,
        ],
    );
    ok(
        &source,
        &[
            "push",
            "-q",
            "registry.demo.test/demo/child:v1",
            &remote_child,
        ],
    );

    let root = dir.path().join("target");
    let out = ok(&root, &["pull", &remote_base]);
    let layers = layer_digests(&base);
    let mut expected = "v1: Pulling from demo/base\n".to_owned();
    for layer in &layers {
        expected.push_str(&format!("{}: Pulling fs layer\n", short(layer)));
    }
    for layer in &layers {
        for status in ["Verifying Checksum", "Download complete", "Pull complete"] {
            expected.push_str(&format!("{}: {status}\n", short(layer)));
        }
    }
    expected.push_str(&format!(
        "Digest: {}\nStatus: Downloaded newer image for {remote_base}\n{remote_base}\n",
        base["manifest_digest"].as_str().expect("digest")
    ));
    assert_eq!(out, expected);

    // child shares base's three layers.
    let out = ok(&root, &["image", "pull", &remote_child]);
    let child_layers = layer_digests(&child);
    let own = child_layers.last().expect("a layer");
    let mut expected = "Using default tag: latest\nlatest: Pulling from demo/child\n".to_owned();
    for layer in &layers {
        expected.push_str(&format!("{}: Already exists\n", short(layer)));
    }
    expected.push_str(&format!("{}: Pulling fs layer\n", short(own)));
    for status in ["Verifying Checksum", "Download complete", "Pull complete"] {
        expected.push_str(&format!("{}: {status}\n", short(own)));
    }
    let child_digest = child["manifest_digest"].as_str().expect("digest");
    expected.push_str(&format!(
        "Digest: {child_digest}\nStatus: Downloaded newer image for {remote_child}:latest\n{remote_child}:latest\n"
    ));
    assert_eq!(out, expected);

    let out = ok(&root, &["pull", &remote_child]);
    assert_eq!(
        out,
        format!(
            "Using default tag: latest\nlatest: Pulling from demo/child\nDigest: {child_digest}\n\
             Status: Image is up to date for {remote_child}:latest\n{remote_child}:latest\n"
        )
    );
    let out = ok(&root, &["pull", "-q", &remote_child]);
    assert_eq!(out, format!("{remote_child}:latest\n"));

    let images = ok(&root, &["images", "--format", "json"]);
    assert!(
        images.contains(base["image_id"].as_str().expect("id")),
        "{images}"
    );
    assert!(
        images.contains(child["image_id"].as_str().expect("id")),
        "{images}"
    );
}

#[test]
fn pull_of_a_missing_tag_fails_with_the_registrys_message() {
    let registry = RealRegistry::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let reference = format!("{}/demo/absent:v1", registry.host);
    let output = imgstore(dir.path(), &["pull", &reference]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr),
        format!(
            "Error: GET http://{}/v2/demo/absent/manifests/v1: 404: MANIFEST_UNKNOWN: manifest unknown\n",
            registry.host
        )
    );
    assert_eq!(text(&output.stdout), "v1: Pulling from demo/absent\n");
}

#[test]
fn push_of_an_unknown_image_fails_before_any_request() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("store");
    ok(
        &root,
        &["load", "-q", "-i", path_str(&corpus().join("oci/main"))],
    );
    let output = imgstore(&root, &["push", "127.0.0.1:1/nothing:here"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.contains("127.0.0.1:1/nothing:here"), "{stderr}");
}
