//! A store written by an earlier format opens, is upgraded once, and says
//! exactly what the earlier code said of it:
//!
//! - `v1-*`: before the records became the index (no derived records, no
//!   `meta/schema`, a catalog directory), written by the `imgstore` command
//!   of commit 4eabcea;
//! - `v2-*`: format 2 (summaries and `image-names` values in JSON), written
//!   by the command of commit 328d712.
//!
//! Both with the same commands (see the fixtures' README): `load` of
//! `examples/images/oci/main`, `child.docker.tar` and `sibling.oci.tar`,
//! `base.docker.tar` in namespace `other`, a `tag` and a `pin`. The
//! `expected-*` files are the 4eabcea command's own output; the 328d712
//! one printed the same of its roots.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::ok;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../imgstore/tests/fixtures")
}

/// Copies the fixture root `name` into `to`, as the previous code left it
/// (git keeps no empty directories and no modes: both are put back).
fn copy_root(name: &str, to: &Path) {
    let from = fixtures().join(name);
    assert!(from.is_dir(), "missing fixture {}", from.display());
    copy_dir(&from, to);
    if name.ends_with("sqlite") {
        for dir in [
            "content.db.blobs/sha256",
            "content.db.blobs/tmp",
            "images.db.blobs/sha256",
            "images.db.blobs/tmp",
        ] {
            fs::create_dir_all(to.join(dir)).expect("blob directories");
        }
    }
    fs::set_permissions(to, fs::Permissions::from_mode(0o700)).expect("chmod root");
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create dir");
    for entry in fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
            fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).expect("chmod");
        } else {
            fs::copy(entry.path(), &target).expect("copy");
            fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
        }
    }
}

fn expected(backend: &str, file: &str) -> String {
    let path = fixtures().join(format!("expected-{backend}")).join(file);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const IMAGES: &[&str] = &[
    "images",
    "-a",
    "--digests",
    "--no-trunc",
    "--format",
    "{{.Repository}} {{.Tag}} {{.Digest}} {{.ID}} {{.Size}}",
];

#[test]
fn a_store_of_the_first_format_is_upgraded_and_reads_the_same() {
    upgrades_and_reads_the_same("v1");
}

#[test]
fn a_store_of_format_2_is_upgraded_and_reads_the_same() {
    upgrades_and_reads_the_same("v2");
}

fn upgrades_and_reads_the_same(format: &str) {
    for backend in ["sqlite", "fs"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        copy_root(&format!("{format}-{backend}"), &root);

        assert_eq!(
            ok(&root, IMAGES),
            expected(backend, "images.txt"),
            "{backend}"
        );
        // The catalog earlier versions kept is gone with the upgrade.
        assert!(!root.join("catalog").exists(), "{backend}");
        let other = [
            "--namespace",
            "other",
            "images",
            "-a",
            "--no-trunc",
            "--format",
            "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}",
        ];
        assert_eq!(
            ok(&root, &other),
            expected(backend, "images-other.txt"),
            "{backend}"
        );
        assert_eq!(
            ok(&root, &["layers"]),
            expected(backend, "layers.txt"),
            "{backend}"
        );
        let inspect = [
            "inspect",
            "--format",
            "{{json .RepoTags}} {{json .RepoDigests}} {{.Size}}",
            "registry.demo.test/demo/base:v1",
        ];
        assert_eq!(
            ok(&root, &inspect),
            expected(backend, "inspect-base.txt"),
            "{backend}"
        );
        // Every derived record is in place: nothing for fsck to find.
        let fsck = ok(&root, &["fsck"]);
        assert!(fsck.ends_with(": clean\n"), "{backend}: {fsck}");

        // The upgraded store keeps working: the pinned name is refused,
        // removing the other names frees exactly what the previous code
        // would have, and the image other names it stays.
        let pinned = common::imgstore(&root, &["rmi", "registry.demo.test/demo/sibling:v1"]);
        assert!(!pinned.status.success(), "{backend}: a pinned name");
        ok(&root, &["rmi", "registry.demo.test/demo/withenv:v1"]);
        ok(
            &root,
            &[
                "rmi",
                "fixture.test/extra:v1",
                "registry.demo.test/demo/base:v1",
            ],
        );
        let left = ok(
            &root,
            &["images", "-a", "--no-trunc", "--format", "{{.ID}}"],
        );
        assert_eq!(
            left,
            "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4\n\
             sha256:96b3153568050bdad231ae42f40e0b55fbd56ecae781413ed62dd426909ba408\n",
            "{backend}"
        );
        // base is named in namespace `other`: it stays, with its layers.
        assert_eq!(
            ok(&root, &other),
            expected(backend, "images-other.txt"),
            "{backend}"
        );
        let fsck = ok(&root, &["fsck"]);
        assert!(fsck.ends_with(": clean\n"), "{backend}: {fsck}");
    }
}
