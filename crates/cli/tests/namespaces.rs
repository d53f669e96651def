//! Issue 12 through the binary: namespaces share images, and an image is in
//! use while any name in any namespace reaches it (`--namespace other prune`
//! and `rmi` leave `default`'s images alone); names differing only in case
//! are two names. Both backends.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod common;
use common::{corpus, expected_image as image, text};

const BACKENDS: [&str; 2] = ["sqlite", "fs"];

/// Runs `imgstore --root ROOT --backend BACKEND ARGS...`.
fn imgstore(root: &Path, backend: &str, args: &[&str]) -> Output {
    let mut all = vec!["--backend", backend];
    all.extend(args);
    common::imgstore(root, &all)
}

/// Runs and checks exit code 0; returns stdout.
fn ok(root: &Path, backend: &str, args: &[&str]) -> String {
    let output = imgstore(root, backend, args);
    common::succeeded(output, args)
}

fn loaded_main(backend: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let main = corpus().join("oci/main");
    ok(
        root.path(),
        backend,
        &["load", "-i", main.to_str().expect("UTF-8 path")],
    );
    root
}

/// The short IDs `images -q` prints, sorted.
fn short_ids(root: &Path, backend: &str, namespace: &str) -> Vec<String> {
    let mut ids: Vec<String> = ok(root, backend, &["--namespace", namespace, "images", "-q"])
        .lines()
        .map(str::to_owned)
        .collect();
    ids.sort();
    ids
}

fn main_short_ids() -> Vec<String> {
    let mut ids: Vec<String> = ["base", "sibling", "child", "withenv"]
        .iter()
        .map(|name| {
            image(name)["image_id_short"]
                .as_str()
                .expect("short")
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[test]
fn prune_in_another_namespace_leaves_default_alone() {
    for backend in BACKENDS {
        let root = loaded_main(backend);
        let root = root.path();
        assert_eq!(short_ids(root, backend, "other"), Vec::<String>::new());
        ok(root, backend, &["--namespace", "other", "prune", "-f"]);
        ok(
            root,
            backend,
            &["--namespace", "other", "prune", "-a", "-f"],
        );
        assert_eq!(short_ids(root, backend, "default"), main_short_ids());
        let fsck = ok(root, backend, &["fsck"]);
        assert!(fsck.contains(": clean"), "{backend}: {fsck}");
        assert!(fsck.contains("4 name(s)"), "{backend}: {fsck}");
    }
}

#[test]
fn rmi_by_id_in_another_namespace_is_refused_naming_the_namespace() {
    for backend in BACKENDS {
        let root = loaded_main(backend);
        let root = root.path();
        let base = image("base");
        let short = base["image_id_short"].as_str().expect("short");
        for args in [
            vec!["--namespace", "other", "rmi", short],
            vec!["--namespace", "other", "rmi", "-f", short],
        ] {
            let output = imgstore(root, backend, &args);
            assert_eq!(output.status.code(), Some(1), "{backend}: {args:?}");
            let stderr = text(&output.stderr);
            assert!(
                stderr.contains(&format!(
                    "unable to delete {short} (cannot be forced) - image is in use by names in namespace(s) default"
                )),
                "{backend}: {stderr}"
            );
        }
        // Not visible in `other`: inspect by ID does not find it.
        let output = imgstore(root, backend, &["--namespace", "other", "inspect", short]);
        assert_eq!(output.status.code(), Some(1), "{backend}");
        assert_eq!(short_ids(root, backend, "default"), main_short_ids());
        let fsck = ok(root, backend, &["fsck"]);
        assert!(fsck.contains(": clean"), "{backend}: {fsck}");
    }
}

#[test]
fn rmi_of_a_name_differing_only_in_case_keeps_the_other() {
    for backend in BACKENDS {
        let root = loaded_main(backend);
        let root = root.path();
        let base = image("base");
        let name = base["ref_names"][0].as_str().expect("name");
        ok(root, backend, &["tag", name, "app:v1"]);
        ok(root, backend, &["tag", name, "app:V1"]);
        let removed = ok(root, backend, &["rmi", "app:V1"]);
        assert_eq!(removed, "Untagged: app:V1\n", "{backend}");
        let listed = ok(root, backend, &["images", "--format", "json"]);
        let base_line: Value = listed
            .lines()
            .map(|line| serde_json::from_str::<Value>(line).expect("json"))
            .find(|line| line["Id"] == base["image_id"])
            .expect("base listed");
        assert_eq!(
            base_line["References"],
            serde_json::json!(["docker.io/library/app:v1", name]),
            "{backend}"
        );
        let fsck = ok(root, backend, &["fsck"]);
        assert!(fsck.contains(": clean"), "{backend}: {fsck}");
        assert_eq!(
            ok(root, backend, &["rmi", "app:v1"]),
            "Untagged: app:v1\n",
            "{backend}"
        );
    }
}
