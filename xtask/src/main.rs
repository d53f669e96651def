//! Maintenance tasks for the imgstore workspace, run as `cargo xtask <task>`.
//!
//! - `ci`: everything CI checks: rustfmt, clippy with warnings denied on all
//!   targets, the tests, the docs with warnings denied, `tidy` and `package`.
//! - `bench [filter]`: the criterion suite in `benches/`; with a filter that
//!   selects the digest group, also OpenSSL's SHA-256 rate for comparison.
//! - `bench cli [--backend sqlite|fs|sqlite,fs] [--sizes 1000,10000,100000]
//!   [--runs N] [--docker] [--dir DIR]`: whole-process timings of the
//!   `imgstore` commands on generated stores of each size (cached under
//!   `target/bench-cli`), against the goals of issue 13; `--docker` (as
//!   root) times a private dockerd on the same fixtures beside them.
//! - `tidy`: checks of the tree itself (crate docs, lints, no `unwrap()` in
//!   library code).
//! - `package`: `cargo package` of every publishable crate (offline) and
//!   checks of its crates.io metadata and shipped licence files.
//! - `stress`: the long reliability campaigns (see `stress.rs`): crash,
//!   concurrency and fault campaigns, many more runs than CI's.
//! - `interop`: our exports and imports against a real Docker daemon (as
//!   root; not part of CI).
//! - `fuzz [target] [--execs N | --seconds S]`: the hostile-input fuzz loop.
//! - `dist [--out DIR]`: man pages and shell completions of the `imgstore`
//!   command, in `target/dist` (see `dist.rs`).
//! - `fixtures [--out DIR] [--start S] [N...]`: `docker save` archives of N
//!   small distinct images for the CLI timings (generated, never committed).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod cli_bench;
mod dist;
mod fixtures;
mod fuzz;
mod interop;
mod package;
mod stress;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("tidy") => tidy(),
        Some("package") => package::run(),
        Some("stress") => stress::run(&args[1..]),
        Some("interop") => interop::run(),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
        Some("dist") => dist::run(&args[1..], workspace_root().join("target/dist")),
        Some("fixtures") => fixtures::run(&args[1..], workspace_root().join("target/fixtures")),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | bench [filter] | bench cli [--backend sqlite|fs|sqlite,fs] [--sizes 1000,10000,100000] [--runs N] [--docker] [--dir DIR] | tidy | package | stress [kills | crash [kills] | concurrency [minutes] | faults] | interop | fuzz [target] [--execs N | --seconds S] | dist [--out DIR] | fixtures [N...]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cargo(args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn ci() -> Result<(), String> {
    tidy()?;
    cargo(&["fmt", "--all", "--check"], &[])?;
    cargo(
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--all-features",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    cargo(&["test", "--workspace", "--all-features"], &[])?;
    // The CLI suite once more with every store in PostgreSQL (a server the
    // tests start; crates/cli/tests/common): the binaries are built already.
    cargo(
        &[
            "test",
            "-p",
            "imgstore-cli",
            "--all-features",
            "--test",
            "cli",
        ],
        &[("IMGSTORE_TEST_BACKEND", "postgres")],
    )?;
    cargo(
        &["doc", "--workspace", "--no-deps", "--all-features"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    package::run()?;
    eprintln!("xtask ci: all checks passed");
    Ok(())
}

fn bench(filter: &[String]) -> Result<(), String> {
    if filter.first().map(String::as_str) == Some("cli") {
        return cli_bench::run(&filter[1..]);
    }
    let mut args = vec!["bench", "--package", "imgstore-benches", "--"];
    args.extend(filter.iter().map(String::as_str));
    cargo(&args, &[])?;
    let wants_digest = filter.is_empty()
        || filter
            .iter()
            .any(|f| "digest".contains(f.as_str()) || f.contains("digest"));
    if wants_digest {
        openssl_reference();
    }
    Ok(())
}

/// OpenSSL's SHA-256 rate on 16 KiB blocks, printed beside our `digest/from_bytes`.
fn openssl_reference() {
    let output = Command::new("openssl")
        .args([
            "speed", "-evp", "sha256", "-bytes", "16384", "-seconds", "3",
        ])
        .output();
    match output {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(line) = text
                .lines()
                .rev()
                .find(|l| l.starts_with("sha256") || l.starts_with("SHA256"))
            {
                println!(
                    "reference: openssl speed -evp sha256 -bytes 16384 (in 1000s of bytes per second):"
                );
                println!("  {line}");
            }
        }
        _ => eprintln!("reference: openssl not available, no SHA-256 reference printed"),
    }
}

/// Checks of the tree itself: every crate opens with a `//!` doc and inherits
/// the workspace lints (which deny missing docs on public items), and library
/// code has no `unwrap()` outside tests.
fn tidy() -> Result<(), String> {
    let root = workspace_root();
    let mut problems = Vec::new();
    let crates = std::fs::read_dir(root.join("crates")).map_err(|e| format!("crates/: {e}"))?;
    let mut crate_dirs: Vec<PathBuf> = crates
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    crate_dirs.push(root.join("xtask"));
    crate_dirs.push(root.join("benches"));
    crate_dirs.sort();
    for dir in &crate_dirs {
        let name = dir.strip_prefix(&root).unwrap_or(dir).display().to_string();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
        if !manifest.contains("[lints]") || !manifest.contains("workspace = true") {
            problems.push(format!("{name}/Cargo.toml: add `[lints] workspace = true`"));
        }
        let entry = ["src/lib.rs", "src/main.rs"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.exists());
        match entry.map(std::fs::read_to_string) {
            Some(Ok(text)) if text.trim_start().starts_with("//!") => {}
            Some(_) => problems.push(format!(
                "{name}: the crate root does not open with a //! doc"
            )),
            None => problems.push(format!("{name}: no src/lib.rs or src/main.rs")),
        }
        if dir.starts_with(root.join("crates")) {
            let mut files = Vec::new();
            rust_files(&dir.join("src"), &mut files);
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                let shown = file
                    .strip_prefix(&root)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                for (number, line) in library_lines(&text) {
                    if line.contains(".unwrap()") {
                        problems.push(format!("{shown}:{number}: unwrap() in library code"));
                    }
                }
            }
        }
    }
    problems.extend(msrv_problems()?);
    if problems.is_empty() {
        eprintln!("xtask tidy: {} crates checked, clean", crate_dirs.len());
        Ok(())
    } else {
        for p in &problems {
            eprintln!("tidy: {p}");
        }
        Err(format!("tidy found {} problems", problems.len()))
    }
}

/// The workspace's `rust-version` must be true for the committed lock: no
/// package the lock selects may need a newer Rust (`cargo install --locked`
/// and every build from the lock would fail on the promised toolchain).
fn msrv_problems() -> Result<Vec<String>, String> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata --locked failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let version = |v: &str| -> Vec<u64> { v.split('.').filter_map(|p| p.parse().ok()).collect() };
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let promised = packages
        .iter()
        .find(|p| p["name"] == "imgstore")
        .and_then(|p| p["rust_version"].as_str())
        .ok_or("the imgstore package has no rust-version")?
        .to_owned();
    Ok(packages
        .iter()
        .filter_map(|p| {
            let needed = p["rust_version"].as_str()?;
            (version(needed) > version(&promised)).then(|| {
                format!(
                    "Cargo.lock: {} {} needs Rust {needed}, above the workspace's rust-version {promised}",
                    p["name"].as_str().unwrap_or("?"),
                    p["version"].as_str().unwrap_or("?")
                )
            })
        })
        .collect())
}

/// Lines of a source file above its first `#[cfg(test)]`, skipping comments
/// (doc examples may unwrap) and the test-support modules.
fn library_lines(text: &str) -> Vec<(usize, &str)> {
    text.lines()
        .enumerate()
        .take_while(|(_, l)| !l.trim_start().starts_with("#[cfg(test)]"))
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            // The conformance kit and binaries are test support / thin shells.
            if !path.ends_with("testkit") && !path.ends_with("bin") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("testkit.rs") {
            out.push(path);
        }
    }
}
