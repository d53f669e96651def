//! The store root on the command line: the backend a root was created with
//! is used without `--backend` (and a different one refused), commands other
//! than `load` create nothing, and `IMGSTORE_BACKEND` / `IMGSTORE_NAMESPACE`
//! stand for the flags.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::text;

const QUIRK_SHORT_ID: &str = "00d2746c8cfa";

fn quirk() -> PathBuf {
    common::fixture("oci/quirk-unterminated")
}

/// Runs `imgstore --root ROOT ARGS...` with `env` and no other configuration.
fn imgstore(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    common::command(root, args)
        .envs(env.iter().copied())
        .output()
        .expect("run imgstore")
}

/// Runs and checks exit code 0; returns stdout.
fn ok(root: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    common::succeeded(imgstore(root, args, env), args)
}

fn load_quirk(root: &Path, args: &[&str], env: &[(&str, &str)]) {
    let quirk = quirk();
    let mut all = args.to_vec();
    all.extend(["load", "-i", quirk.to_str().expect("UTF-8 path")]);
    ok(root, &all, env);
}

#[test]
fn a_root_created_with_fs_is_listed_without_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    load_quirk(dir.path(), &["--backend", "fs"], &[]);
    for args in [&["images", "-q"][..], &["--backend", "fs", "images", "-q"]] {
        assert_eq!(
            ok(dir.path(), args, &[]),
            format!("{QUIRK_SHORT_ID}\n"),
            "{args:?}"
        );
    }
    // A later load fills the same store, not a second one beside it.
    load_quirk(dir.path(), &[], &[]);
    assert!(!dir.path().join("content.db").exists());
    assert!(!dir.path().join("images.db").exists());
}

#[test]
fn an_explicit_other_backend_fails_naming_the_recorded_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    load_quirk(dir.path(), &["--backend", "fs"], &[]);
    for args in [
        &["--backend", "sqlite", "images"][..],
        &["--backend", "sqlite", "inspect", QUIRK_SHORT_ID],
        &["--backend", "sqlite", "load", "-i", "/nonexistent"],
    ] {
        let output = imgstore(dir.path(), args, &[]);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains("the store there uses the fs backend, not sqlite"),
            "{args:?}: {stderr}"
        );
    }
    let output = imgstore(
        dir.path(),
        &["images", "-q"],
        &[("IMGSTORE_BACKEND", "sqlite")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!dir.path().join("content.db").exists());
}

#[test]
fn commands_other_than_load_create_no_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nonexistent/deep");
    for args in [
        &["images"][..],
        &["images", "-q", "--filter", "label=a"],
        &["inspect", "abc"],
        &["history", "abc"],
        &["layers"],
        &["tag", "abc", "x:1"],
        &["rmi", "abc"],
        &["df"],
        &["prune", "-f"],
        &["gc"],
        &["fsck"],
    ] {
        let output = imgstore(&missing, args, &[]);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert_eq!(
            stderr,
            format!("Error: no store at {}\n", missing.display()),
            "{args:?}"
        );
    }
    assert!(!dir.path().join("nonexistent").exists());
    // load creates it.
    load_quirk(&missing, &[], &[]);
    assert!(missing.join("store.json").is_file());
}

#[test]
fn the_environment_chooses_the_backend_and_the_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("IMGSTORE_BACKEND", "fs"), ("IMGSTORE_NAMESPACE", "team")];
    load_quirk(dir.path(), &[], &env);
    assert!(dir.path().join("imagedb").is_dir());
    let listed = ok(dir.path(), &["images", "--format", "json"], &env);
    assert!(
        listed.contains("registry.demo.test/demo/quirk:v1"),
        "the name is in team: {listed}"
    );
    // The flag wins over the variable.
    let listed = ok(
        dir.path(),
        &["--namespace", "other", "images", "--format", "json"],
        &env,
    );
    assert!(
        !listed.contains("registry.demo.test/demo/quirk:v1"),
        "no name in other: {listed}"
    );
}
