//! `cargo xtask fixtures`: `docker save` archives of many small, distinct
//! images, generated (never committed) for the CLI timings of `cargo xtask
//! bench cli`.
//!
//! Image `i` has a distinct config and one or two tiny layers: every image
//! has its own layer (one file holding `i`), and four images out of five sit
//! on one of [`BASES`] shared base layers. It is named `fixture/img<i>:latest`,
//! and every image with `i % 10 == 3` also `fixture/img<i>:alias` (so a
//! store holds images with two names: `rmi` of one is an untag only).
//! Archives are written in the classic `docker save` layout (`manifest.json`,
//! `<hex>.json` configs, `<hex>/layer.tar` layers), which every docker and
//! our importer read.
//!
//! ```text
//! cargo xtask fixtures [--out DIR] [--start S] [N...]
//! ```
//! writes `DIR/images-v2-<start>-<N>.tar` for each N (default DIR
//! `target/fixtures`, default counts 1000 9000 10000, start 0).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use imgstore_digest::Digest;

/// How many shared base layers the images are spread over.
pub const BASES: usize = 10;

/// One tar member.
fn append(builder: &mut tar::Builder<impl Write>, name: &str, data: &[u8]) -> Result<(), String> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| format!("write {name}: {e}"))
}

/// A layer tar holding one file `name` with `content`.
fn layer_tar(name: &str, content: &[u8]) -> Result<Vec<u8>, String> {
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, name, content)?;
    builder
        .into_inner()
        .map_err(|e| format!("finish layer tar: {e}"))
}

/// The second name some images carry (see the module doc).
pub fn alias_of(index: usize) -> Option<String> {
    (index % 10 == 3).then(|| format!("fixture/img{index}:alias"))
}

/// The names of image `index`, as its `RepoTags`.
pub fn names_of(index: usize) -> Vec<String> {
    std::iter::once(format!("fixture/img{index}:latest"))
        .chain(alias_of(index))
        .collect()
}

/// The config of image `index` over `diff_ids`.
fn config(index: usize, diff_ids: &[&Digest]) -> Vec<u8> {
    let history: Vec<_> = diff_ids
        .iter()
        .map(|_| serde_json::json!({"created": "2024-01-01T00:00:00Z", "created_by": "xtask fixtures"}))
        .collect();
    let value = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": format!("2024-01-01T00:00:{:02}Z", index % 60),
        "config": {"Env": [format!("FIXTURE={index}")], "Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>()},
        "history": history,
    });
    value.to_string().into_bytes()
}

/// A layer: its diff ID and its tar.
type Layer = (Digest, Vec<u8>);

/// The shared base layers.
fn base_layers() -> Result<Vec<Layer>, String> {
    (0..BASES)
        .map(|b| {
            let tar = layer_tar(&format!("base-{b}"), format!("base {b}\n").as_bytes())?;
            Ok((Digest::from_bytes(&tar), tar))
        })
        .collect()
}

/// Image `index`: its config and its layers, bottom up.
fn image(index: usize, bases: &[Layer]) -> Result<(Vec<u8>, Vec<Layer>), String> {
    let own = layer_tar(&format!("img-{index}"), format!("{index}\n").as_bytes())?;
    let mut layers = Vec::with_capacity(2);
    if let Some(base) = bases
        .get(index % BASES)
        .filter(|_| !index.is_multiple_of(5))
    {
        layers.push(base.clone());
    }
    layers.push((Digest::from_bytes(&own), own));
    let diff_ids: Vec<&Digest> = layers.iter().map(|(d, _)| d).collect();
    Ok((config(index, &diff_ids), layers))
}

/// The image ID (config digest) of image `index`, as a store that loaded it
/// reports it.
pub fn image_id(index: usize) -> Result<Digest, String> {
    let (config, _) = image(index, &base_layers()?)?;
    Ok(Digest::from_bytes(&config))
}

/// Writes a docker-save archive of images `start .. start + count` to `path`.
pub fn write_archive(path: &Path, start: usize, count: usize) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let file = File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut builder = tar::Builder::new(BufWriter::new(file));
    let bases = base_layers()?;
    let mut written = BTreeSet::new();
    let mut manifest = Vec::with_capacity(count);
    for index in start..start + count {
        let (config, layers) = image(index, &bases)?;
        let config_name = format!("{}.json", Digest::from_bytes(&config).encoded());
        append(&mut builder, &config_name, &config)?;
        let mut members = Vec::new();
        for (id, tar) in &layers {
            let member = format!("{}/layer.tar", id.encoded());
            if written.insert(member.clone()) {
                append(&mut builder, &member, tar)?;
            }
            members.push(member);
        }
        manifest.push(serde_json::json!({
            "Config": config_name,
            "RepoTags": names_of(index),
            "Layers": members,
        }));
    }
    let manifest = serde_json::Value::Array(manifest).to_string();
    append(&mut builder, "manifest.json", manifest.as_bytes())?;
    builder
        .into_inner()
        .and_then(|mut w| w.flush())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The archive name for images `start .. start + count` (`v2`: the archives
/// with aliases; older cached ones under another name are not reused).
pub fn archive_name(start: usize, count: usize) -> String {
    format!("images-v2-{start}-{count}.tar")
}

/// The archive of images `start .. start + count` in `dir`, written unless
/// it is there already (archives are deterministic, so a cached one is the
/// same bytes).
pub fn cached_archive(dir: &Path, start: usize, count: usize) -> Result<PathBuf, String> {
    let path = dir.join(archive_name(start, count));
    if !path.exists() {
        // Written aside and renamed: an interrupted run leaves no half archive.
        let partial = dir.join(format!("{}.partial", archive_name(start, count)));
        write_archive(&partial, start, count)?;
        std::fs::rename(&partial, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(path)
}

/// `cargo xtask fixtures [--out DIR] [--start S] [N...]`.
pub fn run(args: &[String], default_out: PathBuf) -> Result<(), String> {
    let mut out = default_out;
    let mut start = 0;
    let mut counts = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a directory")?),
            "--start" => {
                start = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--start needs a number")?;
            }
            n => counts.push(n.parse().map_err(|_| format!("not a count: {n:?}"))?),
        }
    }
    if counts.is_empty() {
        counts = vec![1000, 9000, 10000];
    }
    for count in counts {
        let path = out.join(archive_name(start, count));
        let began = std::time::Instant::now();
        write_archive(&path, start, count)?;
        eprintln!(
            "fixtures: {} ({count} images) in {:.2?}",
            path.display(),
            began.elapsed()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The archive loads into a store with the names and IDs the bench
    /// probes with: `image_id` is the ID the store reports, every tenth
    /// image (3 mod 10) has its alias, and a 12-digit short ID resolves.
    #[test]
    fn archive_loads_with_the_ids_and_names_the_bench_probes() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let archive = cached_archive(dir.path(), 20, 20)?;
        assert_eq!(
            archive.file_name().and_then(|n| n.to_str()),
            Some("images-v2-20-20.tar")
        );
        let store = imgstore::Store::open_with(
            dir.path().join("store"),
            imgstore::Options {
                create: true,
                ..imgstore::Options::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let imported = store.import(&archive).map_err(|e| e.to_string())?;
        assert_eq!(imported.len(), 20);
        for index in 20..40 {
            let id = image_id(index)?;
            let latest = store
                .resolve(&format!("fixture/img{index}:latest"))
                .map_err(|e| e.to_string())?;
            assert_eq!(latest.as_str(), id.as_str(), "image {index}");
            let short: String = id.encoded().chars().take(12).collect();
            let by_short = store.resolve(&short).map_err(|e| e.to_string())?;
            assert_eq!(by_short.as_str(), id.as_str(), "short ID of image {index}");
            let alias = store.resolve(&format!("fixture/img{index}:alias"));
            if index % 10 == 3 {
                assert_eq!(alias.map_err(|e| e.to_string())?.as_str(), id.as_str());
            } else {
                assert!(alias.is_err(), "image {index} has no alias");
            }
        }
        // The IDs are distinct: every image is its own.
        let ids: BTreeSet<String> = (20..40)
            .map(|i| image_id(i).map(|d| d.as_str().to_owned()))
            .collect::<Result<_, _>>()?;
        assert_eq!(ids.len(), 20);
        Ok(())
    }

    #[test]
    fn names_of_gives_the_alias_to_images_3_mod_10_only() {
        assert_eq!(names_of(12), vec!["fixture/img12:latest".to_owned()]);
        assert_eq!(
            names_of(13),
            vec![
                "fixture/img13:latest".to_owned(),
                "fixture/img13:alias".to_owned()
            ]
        );
    }
}
