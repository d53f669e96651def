//! Export memory does not grow with layer size: an image with one large gzip
//! layer of incompressible bytes (64 MiB uncompressed; `IMGSTORE_EXPORT_MIB` sets another size) is
//! exported in every format while the process's peak RSS (`VmHWM`, reset
//! through `/proc/self/clear_refs`) is watched. Its own test binary, so no
//! other test shares the process.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use flate2::write::GzEncoder;
use imgstore::digest::{Algorithm, Digest, Digester};
use imgstore::{Backend, ExportFormat, Options, Store};

/// Passes writes through while hashing and counting them.
struct Tee<W> {
    inner: W,
    digester: Digester,
    count: u64,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn tee<W: Write>(inner: W) -> Tee<W> {
    Tee {
        inner,
        digester: Digester::new(Algorithm::Sha256),
        count: 0,
    }
}

/// Streams pseudo-random (incompressible) bytes, so the stored blob is as
/// large as the layer.
struct Filler {
    left: u64,
    state: u64,
}

impl io::Read for Filler {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(64 << 10).min(self.left as usize) / 8 * 8;
        let n = if n == 0 {
            self.left.min(buf.len() as u64) as usize
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            // xorshift64
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let bytes = self.state.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn write_blob(layout: &Path, bytes: &[u8]) -> Digest {
    let digest = Algorithm::Sha256.from_bytes(bytes);
    std::fs::write(layout.join("blobs/sha256").join(digest.encoded()), bytes).expect("blob");
    digest
}

/// An OCI layout with one image (`big:v1`) of one gzip layer.
fn big_layout(layout: &Path, mib: u64) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    let tmp = layout.join("layer.tmp");
    let file = BufWriter::new(File::create(&tmp).expect("create"));
    let blob = tee(file);
    let gz = GzEncoder::new(blob, flate2::Compression::fast());
    let diff = tee(gz);
    let mut builder = tar::Builder::new(diff);
    let mut header = tar::Header::new_gnu();
    header.set_size(mib << 20);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_path("big.bin").expect("path");
    header.set_cksum();
    builder
        .append(
            &header,
            Filler {
                left: mib << 20,
                state: 0x9e37_79b9_7f4a_7c15,
            },
        )
        .expect("append");
    let diff = builder.into_inner().expect("tar");
    let diff_id = diff.digester.finish();
    let diff_size = diff.count;
    let mut blob = diff.inner.finish().expect("gzip");
    blob.flush().expect("flush");
    let layer_digest = blob.digester.finish();
    let layer_size = blob.count;
    drop(blob.inner);
    std::fs::rename(
        &tmp,
        layout.join("blobs/sha256").join(layer_digest.encoded()),
    )
    .expect("rename");
    assert!(diff_size > mib << 20);

    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
    }))
    .expect("config");
    let config_digest = write_blob(layout, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": layer_digest.to_string(),
            "size": layer_size,
        }],
    }))
    .expect("manifest");
    let manifest_digest = write_blob(layout, &manifest);
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "big:v1"},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).expect("index.json");
}

/// The peak RSS in KiB (`VmHWM`).
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Resets the peak RSS to the current RSS.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

#[test]
fn export_memory_does_not_grow_with_layer_size() {
    let mib: u64 = std::env::var("IMGSTORE_EXPORT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    // Linux's /proc is part of what this test needs, as the store needs Linux.
    assert!(
        reset_peak() && peak_kib().is_some(),
        "no /proc/self/clear_refs or VmHWM here"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("layout");
    big_layout(&layout, mib);
    for backend in [Backend::Sqlite, Backend::Fs] {
        let root = dir.path().join(format!("store-{backend:?}"));
        let store = Store::open_with(
            &root,
            Options {
                backend: Some(backend),
                ..Options::default()
            },
        )
        .expect("open");
        store.import_oci_layout(&layout).expect("import");
        for format in [
            ExportFormat::DockerSave,
            ExportFormat::OciArchive,
            ExportFormat::OciLayout,
        ] {
            let out = dir.path().join(format!("out-{backend:?}-{format:?}"));
            assert!(reset_peak());
            let before = peak_kib().expect("VmHWM");
            let started = std::time::Instant::now();
            let report = store.export(&["big:v1"], &out, format).expect("export");
            let elapsed = started.elapsed();
            let grew = peak_kib().expect("VmHWM").saturating_sub(before);
            eprintln!(
                "{backend:?} {format:?}: {} MiB layer ({} bytes written) in {:.2} s, peak RSS grew {grew} KiB",
                mib,
                report.bytes,
                elapsed.as_secs_f64()
            );
            assert!(
                grew < 24 << 10,
                "{backend:?} {format:?}: peak RSS grew {grew} KiB exporting a {mib} MiB layer"
            );
            if out.is_dir() {
                std::fs::remove_dir_all(&out).expect("rm");
            } else {
                std::fs::remove_file(&out).expect("rm");
            }
        }
        drop(store);
        std::fs::remove_dir_all(&root).expect("rm store");
    }
}
