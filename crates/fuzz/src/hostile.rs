//! Builders of the large hostile inputs, shared by the corpus tests and
//! `imgstore-fuzz hostile <case>` (which imports one into a fresh store so
//! its time and peak memory can be measured, e.g. under `/usr/bin/time -v`).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::seeds::{self, SeedImage};
use crate::tarball;

/// A gzip stream of `gib` GiB of zeros, about 1 MiB per GiB: 64 MiB of
/// zeros compressed once, repeated as concatenated gzip members.
pub fn gzip_bomb(gib: usize) -> Vec<u8> {
    let member = tarball::gzip(&vec![0u8; 64 << 20]);
    member.repeat(16 * gib)
}

/// Writes an OCI layout in `dir` whose one image has a `gib` GiB gzip bomb
/// as its layer and a config claiming another diff ID.
pub fn bomb_layout(dir: &Path, gib: usize) -> std::io::Result<PathBuf> {
    let bomb = gzip_bomb(gib);
    let fake = seeds::sha256(b"not the bomb");
    let config = seeds::config(std::slice::from_ref(&fake));
    let manifest = seeds::manifest(&config, &[seeds::descriptor(seeds::OCI_LAYER_GZIP, &bomb)]);
    let layout = dir.join("layout");
    SeedImage::new(b"evil").write_layout(&layout)?;
    for blob in [&bomb, &config, &manifest] {
        seeds::write_blob(&layout, blob)?;
    }
    std::fs::write(
        layout.join("index.json"),
        seeds::index(&manifest, "evil.test/bomb:1"),
    )?;
    Ok(layout)
}

/// Writes an archive of `n` empty members (and nothing else) to `path`,
/// streaming (512 bytes a member).
pub fn write_many_entries(path: &Path, n: usize) -> std::io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        let name = format!("f{i}");
        out.write_all(&tarball::header(name.as_bytes(), tarball::REGULAR, b"", 0))?;
    }
    out.write_all(&[0u8; 1024])?;
    out.flush()
}

/// A manifest and config naming `n` layers (all the seed's one blob), and
/// the seed image.
pub fn many_layers(n: usize) -> (Vec<u8>, Vec<u8>, SeedImage) {
    let image = SeedImage::new(b"evil");
    let diff_id = seeds::sha256(&image.layer_tar);
    let config = seeds::config(&vec![diff_id; n]);
    let layer = seeds::descriptor(seeds::OCI_LAYER_GZIP, &image.layer_gz);
    let manifest = seeds::manifest(&config, &vec![layer; n]);
    (manifest, config, image)
}

/// Writes an OCI layout in `dir` whose one image has `n` layers.
pub fn many_layers_layout(dir: &Path, n: usize) -> std::io::Result<PathBuf> {
    let (manifest, config, image) = many_layers(n);
    let layout = dir.join("layout");
    image.write_layout(&layout)?;
    seeds::write_blob(&layout, &manifest)?;
    seeds::write_blob(&layout, &config)?;
    std::fs::write(
        layout.join("index.json"),
        seeds::index(&manifest, "evil.test/layers:1"),
    )?;
    Ok(layout)
}
