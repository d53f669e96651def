//! Inputs for the `import` benches, generated at run time into a directory
//! (never committed): a `docker save` tar of uncompressed layers, an OCI
//! layout of gzip layers, and a `docker save` tar of many small images.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use imgstore_digest::{Algorithm, Digest, Digester};

/// Fills `buf` with pseudo-random bytes that compress about 4:3 with gzip
/// (6 bits of entropy a byte), like binaries and libraries in real layers.
fn fill(seed: &mut u64, buf: &mut [u8]) {
    for chunk in buf.chunks_mut(8) {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = b'0' + ((*seed >> (i * 8)) as u8 & 63);
        }
    }
}

/// A writer that hashes and counts what goes through it.
struct Hashing<W> {
    inner: W,
    digester: Digester,
    len: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Streams a layer tar of `files` files of `file_size` bytes into `out`;
/// returns its diff ID and length. Memory: one file's worth of buffer.
fn write_layer_tar<W: Write>(out: W, seed: u64, files: usize, file_size: usize) -> (Digest, u64) {
    let hashing = Hashing {
        inner: out,
        digester: Digester::new(Algorithm::Sha256),
        len: 0,
    };
    let mut builder = tar::Builder::new(hashing);
    let mut seed = (seed << 1) | 1;
    let mut data = vec![0u8; file_size];
    for f in 0..files {
        fill(&mut seed, &mut data);
        let mut header = tar::Header::new_ustar();
        header.set_size(file_size as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, format!("usr/lib/file-{f}.so"), &data[..])
            .expect("write layer tar");
    }
    let mut hashing = builder.into_inner().expect("finish layer tar");
    hashing.flush().expect("flush");
    (hashing.digester.finish(), hashing.len)
}

fn config(diff_ids: &[Digest], n: usize) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": [format!("N={n}")]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .expect("config json")
}

fn append_bytes<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) {
    let mut header = tar::Header::new_ustar();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, bytes).expect("append");
}

/// Writes `dir/docker.tar`: a `docker save` archive of one image whose
/// `layers` uncompressed layers hold `mib` MiB of file data in all (16 MiB
/// files). Returns the archive path; the layer tars are written to `dir`
/// first, then moved into the archive (removed after).
pub fn docker_save_archive(dir: &Path, mib: usize, layers: usize) -> PathBuf {
    let file_size = 1 << 20;
    let files_per_layer = (mib / layers).max(1);
    let mut members = Vec::new();
    let mut diff_ids = Vec::new();
    for l in 0..layers {
        let path = dir.join(format!("layer-{l}.tar"));
        let out = BufWriter::new(File::create(&path).expect("create layer"));
        let (diff_id, _) = write_layer_tar(out, 0x9e37_79b9 + l as u64, files_per_layer, file_size);
        members.push(path);
        diff_ids.push(diff_id);
    }
    let config = config(&diff_ids, 0);
    let config_name = format!("{}.json", Digest::from_bytes(&config).encoded());
    let layer_names: Vec<String> = diff_ids
        .iter()
        .map(|d| format!("{}/layer.tar", d.encoded()))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": ["bench.test/big:latest"],
        "Layers": layer_names,
    }]))
    .expect("manifest json");
    let archive = dir.join("docker.tar");
    let mut tar = tar::Builder::new(BufWriter::new(File::create(&archive).expect("create")));
    append_bytes(&mut tar, &config_name, &config);
    for (path, name) in members.iter().zip(&layer_names) {
        tar.append_path_with_name(path, name).expect("append layer");
        std::fs::remove_file(path).expect("remove layer");
    }
    append_bytes(&mut tar, "manifest.json", &manifest);
    tar.into_inner().expect("finish").flush().expect("flush");
    archive
}

/// Writes `dir/gzip-layout/`: an OCI layout of one image with `layers`
/// gzip layers holding `mib` MiB of file data in all. Returns the layout
/// directory and the paths of its layer blobs.
pub fn gzip_layout(dir: &Path, mib: usize, layers: usize) -> (PathBuf, Vec<PathBuf>) {
    let layout = dir.join("gzip-layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir");
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let mut paths = Vec::new();
    for l in 0..layers {
        let tmp = blobs.join("tmp");
        let gz = flate2::write::GzEncoder::new(
            Hashing {
                inner: BufWriter::new(File::create(&tmp).expect("create")),
                digester: Digester::new(Algorithm::Sha256),
                len: 0,
            },
            flate2::Compression::fast(),
        );
        let mut gz = gz;
        let (diff_id, _) = write_layer_tar(
            &mut gz,
            0x51_7cc1 + l as u64,
            (mib / layers).max(1),
            1 << 20,
        );
        let mut hashing = gz.finish().expect("gzip");
        hashing.flush().expect("flush");
        let digest = hashing.digester.finish();
        let path = blobs.join(digest.encoded());
        std::fs::rename(&tmp, &path).expect("rename");
        descriptors.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest.to_string(),
            "size": hashing.len,
        }));
        diff_ids.push(diff_id);
        paths.push(path);
    }
    let blob = |bytes: Vec<u8>, media_type: &str| {
        let digest = Digest::from_bytes(&bytes);
        std::fs::write(blobs.join(digest.encoded()), &bytes).expect("blob");
        serde_json::json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    };
    let config = blob(
        config(&diff_ids, 0),
        "application/vnd.oci.image.config.v1+json",
    );
    let mut manifest = blob(
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config,
            "layers": descriptors,
        }))
        .expect("json"),
        "application/vnd.oci.image.manifest.v1+json",
    );
    manifest["annotations"] =
        serde_json::json!({"org.opencontainers.image.ref.name": "bench.test/gzip:latest"});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [manifest]}))
            .expect("json"),
    )
    .expect("index.json");
    (layout, paths)
}

/// Writes `dir/<name>`: a `docker save` archive of `images` small images
/// (one shared 16 KiB base layer, one 4 KiB layer of their own each, own
/// tag each); `offset` makes the images of different archives distinct.
pub fn many_images_archive(dir: &Path, name: &str, images: usize, offset: usize) -> PathBuf {
    let archive = dir.join(name);
    let mut tar = tar::Builder::new(BufWriter::new(File::create(&archive).expect("create")));
    let mut base = Vec::new();
    let (base_id, _) = write_layer_tar(&mut base, 7, 4, 4096);
    append_bytes(&mut tar, "base/layer.tar", &base);
    let mut manifest = Vec::with_capacity(images);
    for i in offset..offset + images {
        let mut own = Vec::new();
        let (own_id, _) = write_layer_tar(&mut own, 1000 + i as u64, 1, 4096);
        let layer_name = format!("{}/layer.tar", own_id.encoded());
        append_bytes(&mut tar, &layer_name, &own);
        let config = config(&[base_id.clone(), own_id], i);
        let config_name = format!("{}.json", Digest::from_bytes(&config).encoded());
        append_bytes(&mut tar, &config_name, &config);
        manifest.push(serde_json::json!({
            "Config": config_name,
            "RepoTags": [format!("bench.test/small-{i}:latest")],
            "Layers": ["base/layer.tar", layer_name],
        }));
    }
    append_bytes(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    tar.into_inner().expect("finish").flush().expect("flush");
    archive
}
