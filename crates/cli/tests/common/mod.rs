//! What the CLI tests share: the image corpus kept in the repository, and
//! running the `imgstore` binary with no configuration but the test's.

#![allow(dead_code)] // each test file uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use serde_json::Value;

/// The image corpus (`examples/images`, a copy of the shared corpus); a
/// checkout without it fails, never skips.
pub fn corpus() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/images");
    assert!(
        dir.join("expected").is_dir(),
        "the image corpus is missing at {}: it is part of the repository",
        dir.display()
    );
    dir
}

/// A corpus file that must exist.
pub fn fixture(relative: &str) -> PathBuf {
    let path = corpus().join(relative);
    assert!(path.exists(), "missing fixture {}", path.display());
    path
}

/// A JSON file of the corpus's `expected/` folder.
pub fn expected(file: &str) -> Value {
    let path = corpus().join("expected").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The expected values of one corpus image (`expected/images/NAME.json`).
pub fn expected_image(name: &str) -> Value {
    expected(&format!("images/{name}.json"))
}

/// `imgstore --root ROOT ARGS...` with none of the `IMGSTORE_*` variables
/// of the environment the tests run in, stdin empty (not a terminal).
///
/// With `IMGSTORE_TEST_BACKEND=postgres` in the tests' environment, every
/// root whose command names no `--backend` is a postgres store, in a
/// database of its own on the test binary's PostgreSQL server: how the
/// CLI tests run unchanged against PostgreSQL.
pub fn command(root: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_imgstore"));
    command.arg("--root").arg(root);
    if std::env::var("IMGSTORE_TEST_BACKEND").as_deref() == Ok("postgres")
        && !args.contains(&"--backend")
    {
        command.args(["--backend", "postgres", "--database-url"]);
        command.arg(database_of(root));
    }
    command
        .args(args)
        .env_remove("IMGSTORE_ROOT")
        .env_remove("IMGSTORE_BACKEND")
        .env_remove("IMGSTORE_NAMESPACE")
        .env_remove("IMGSTORE_DATABASE_URL")
        .stdin(Stdio::null());
    command
}

/// The database of the postgres store at `root`: a fresh one the first
/// time a root is named.
pub fn database_of(root: &Path) -> String {
    static DATABASES: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut databases = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, url)) = databases.iter().find(|(known, _)| known == root) {
        return url.clone();
    }
    let url = imgstore_postgres::testserver::TestServer::shared().create_database();
    databases.push((root.to_path_buf(), url.clone()));
    url
}

/// Runs [`command`].
pub fn imgstore(root: &Path, args: &[&str]) -> Output {
    command(root, args).output().expect("run imgstore")
}

/// Output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// Checks exit code 0 (showing stderr otherwise); returns stdout.
pub fn succeeded(output: Output, args: &[&str]) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "imgstore {args:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Runs and checks exit code 0; returns stdout.
pub fn ok(root: &Path, args: &[&str]) -> String {
    succeeded(imgstore(root, args), args)
}

/// A path as the `&str` an argument list takes.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Docker's CREATED column for a corpus time (`3 years ago`).
pub fn years_ago(created: &str) -> String {
    let created = imgstore::image::time::parse_rfc3339(created).expect("corpus time parses");
    let seconds = SystemTime::now()
        .duration_since(created)
        .expect("corpus images are in the past")
        .as_secs();
    format!("{} years ago", seconds / 3600 / 24 / 365)
}
