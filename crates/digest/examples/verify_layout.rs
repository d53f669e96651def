//! Verifies every blob of an OCI image layout and lists its images with their
//! IDs and chain IDs: `cargo run -p imgstore-digest --example verify_layout -- DIR`.
//!
//! Until the `imgstore` command exists this is the README's main job over the
//! example images; it uses only this crate (plus serde_json to read the JSON).

use std::fs::File;
use std::path::Path;
use std::process::ExitCode;

use imgstore_digest::{Digest, chain_id};
use serde_json::Value;

fn main() -> ExitCode {
    let dirs: Vec<String> = std::env::args().skip(1).collect();
    if dirs.is_empty() {
        eprintln!("usage: verify_layout OCI_LAYOUT_DIR...");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for dir in &dirs {
        if let Err(message) = verify_layout(Path::new(dir)) {
            eprintln!("{dir}: {message}");
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn verify_layout(dir: &Path) -> Result<(), String> {
    let blobs = dir.join("blobs/sha256");
    let mut count = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&blobs)
        .map_err(|e| format!("{}: {e}", blobs.display()))?
        .flatten()
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let expected =
            Digest::parse(&format!("sha256:{name}")).map_err(|e| format!("blob {name}: {e}"))?;
        let file = File::open(entry.path()).map_err(|e| format!("blob {name}: {e}"))?;
        let actual = expected
            .algorithm()
            .from_reader(file)
            .map_err(|e| format!("blob {name}: {e}"))?;
        if actual != expected {
            return Err(format!("blob {expected} hashes to {actual}"));
        }
        count += 1;
    }
    println!("{}: {count} blobs verified", dir.display());
    println!(
        "{:<14} {:<40} {:<8} TOP CHAIN ID",
        "IMAGE ID", "NAME", "LAYERS"
    );
    let index = read_json(&dir.join("index.json"))?;
    for manifest in index["manifests"].as_array().into_iter().flatten() {
        let name = manifest["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or("<none>");
        let manifest_digest = blob_digest(&manifest["digest"])?;
        let manifest = read_json(&blobs.join(manifest_digest.encoded()))?;
        let config_digest = blob_digest(&manifest["config"]["digest"])?;
        let config = read_json(&blobs.join(config_digest.encoded()))?;
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .map(blob_digest)
            .collect::<Result<Vec<_>, _>>()?;
        let top = chain_id(&diff_ids)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<14} {name:<40} {:<8} {top}",
            &config_digest.encoded()[..12],
            diff_ids.len()
        );
    }
    Ok(())
}

fn blob_digest(value: &Value) -> Result<Digest, String> {
    Digest::parse(value.as_str().unwrap_or_default()).map_err(|e| e.to_string())
}

fn read_json(path: &Path) -> Result<Value, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_reader(file).map_err(|e| format!("{}: {e}", path.display()))
}
