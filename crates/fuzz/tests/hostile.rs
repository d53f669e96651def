//! The crafted-input corpus: archives and layouts an attacker would write,
//! generated here (no committed binaries). Each is refused with a typed
//! error naming the problem, or bounded, and leaves the store as it was
//! (images, names and layers compared before and after) on both backends.
//! Limits and measured costs: docs/RELIABILITY.md, "Bounded resources on
//! hostile input".

use std::path::{Path, PathBuf};

use imgstore::backend::ErrorKind;
use imgstore::digest::Digest;
use imgstore::{Backend, Error, Options, Store};
use imgstore_fuzz::hostile::{gzip_bomb, many_layers, write_many_entries};
use imgstore_fuzz::seeds::{self, SeedImage};
use imgstore_fuzz::tarball::{self, Entry};
use imgstore_fuzz::targets::store_state;

const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Fs];

/// A store holding one image (so "unchanged" means something).
fn seeded(dir: &Path, backend: Backend) -> Store {
    let store = Store::open_with(
        dir.join("store"),
        Options {
            backend: Some(backend),
            ..Options::default()
        },
    )
    .expect("open");
    let base = dir.join("base");
    SeedImage::new(b"base").write_layout(&base).expect("layout");
    store.import_oci_layout(&base).expect("import base");
    store
}

/// Imports with `import` on a seeded store of each backend: must fail;
/// the store must be unchanged. Returns the errors.
fn refused_on_both(
    setup: impl Fn(&Path) -> PathBuf,
    import: impl Fn(&Store, &Path) -> imgstore::Result<Vec<imgstore::Imported>>,
) -> Vec<Error> {
    BACKENDS
        .iter()
        .map(|&backend| {
            let dir = tempfile::tempdir().expect("tempdir");
            let store = seeded(dir.path(), backend);
            let input = setup(dir.path());
            let before = store_state(&store);
            let err = match import(&store, &input) {
                Err(e) => e,
                Ok(imported) => panic!("{backend:?}: imported {imported:?}"),
            };
            assert_eq!(store_state(&store), before, "{backend:?}: {err}");
            assert_eq!(before.images.len(), 1);
            assert_eq!(before.names, [seeds::SEED_NAME]);
            err
        })
        .collect()
}

/// A docker-save archive of a seed image with `extra` members added.
fn archive_with(extra: Vec<Entry>) -> Vec<u8> {
    let mut entries = SeedImage::new(b"evil").docker_archive();
    entries.extend(extra);
    tarball::archive(&entries)
}

/// The archive is refused as `InvalidArchive` with exactly `reason`.
fn assert_archive_refused(bytes: Vec<u8>, reason: &str) {
    let errors = refused_on_both(
        |dir| {
            let path = dir.join("in.tar");
            std::fs::write(&path, &bytes).expect("write archive");
            path
        },
        |store, path| store.import_archive(path),
    );
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        match &err {
            Error::InvalidArchive { reason: got, .. } => assert_eq!(got, reason),
            other => panic!("expected InvalidArchive({reason}), got {other:?}"),
        }
    }
}

#[test]
fn path_traversal_is_refused() {
    for name in [
        "../x",
        "/etc/passwd",
        "a/../../x",
        "./../x",
        "a/b/../../../x",
    ] {
        assert_archive_refused(
            archive_with(vec![Entry::file(name, b"pwned".to_vec())]),
            &format!("member {name:?} is outside the archive"),
        );
    }
}

#[test]
fn symlink_escapes_are_refused() {
    for target in ["../../etc/passwd", "/etc/passwd", "a/../../../x"] {
        assert_archive_refused(
            archive_with(vec![Entry::symlink("evil", target)]),
            &format!("symlink \"evil\" -> {target:?} leaves the archive"),
        );
    }
    // A symlink to a directory outside, then a file through it.
    assert_archive_refused(
        archive_with(vec![
            Entry::symlink("d", "/etc"),
            Entry::file("d/passwd", b"x".to_vec()),
        ]),
        "symlink \"d\" -> \"/etc\" leaves the archive",
    );
}

#[test]
fn a_symlinked_directory_is_never_walked_through() {
    // `l -> layer0` stays inside, but members are looked up by their own
    // name: `l/layer.tar` is not `layer0/layer.tar`, and nothing is ever
    // unpacked, so no path through a link is opened.
    let image = SeedImage::new(b"evil");
    let config_name = format!("{}.json", seeds::sha256(&image.config).encoded());
    let manifest = serde_json::json!([{
        "Config": config_name, "RepoTags": ["evil.test/x:1"], "Layers": ["l/layer.tar"],
    }]);
    let bytes = tarball::archive(&[
        Entry::file("manifest.json", manifest.to_string().into_bytes()),
        Entry::file(&config_name, image.config.clone()),
        Entry::dir("layer0/"),
        Entry::file("layer0/layer.tar", image.layer_tar.clone()),
        Entry::symlink("l", "layer0"),
    ]);
    assert_archive_refused(bytes, "no layer member \"l/layer.tar\"");
}

#[test]
fn hardlink_escapes_are_refused() {
    for target in ["../../etc/shadow", "/etc/shadow", "x/../../y"] {
        assert_archive_refused(
            archive_with(vec![Entry::hardlink("h", target)]),
            &format!("hard link \"h\" -> {target:?} leaves the archive"),
        );
    }
}

#[test]
fn link_loops_are_bounded() {
    assert_archive_refused(
        {
            let image = SeedImage::new(b"evil");
            let config_name = format!("{}.json", seeds::sha256(&image.config).encoded());
            let manifest = serde_json::json!([{"Config": config_name, "Layers": ["a"]}]);
            tarball::archive(&[
                Entry::file("manifest.json", manifest.to_string().into_bytes()),
                Entry::file(&config_name, image.config.clone()),
                Entry::symlink("a", "b"),
                Entry::symlink("b", "a"),
            ])
        },
        "\"a\": more than 40 links",
    );
}

#[test]
fn device_files_and_fifos_are_refused() {
    for (kind, shown) in [
        (tarball::CHAR_DEVICE, "Char"),
        (tarball::BLOCK_DEVICE, "Block"),
        (tarball::FIFO, "Fifo"),
    ] {
        assert_archive_refused(
            archive_with(vec![Entry::special("dev/x", kind)]),
            &format!("member \"dev/x\" is a {shown} entry, not a file, directory or link"),
        );
    }
}

#[test]
fn duplicate_names_are_refused() {
    // Which copy would win differs between tools (GNU tar: the last); the
    // store refuses rather than pick one. Also after normalisation.
    assert_archive_refused(
        archive_with(vec![Entry::file("manifest.json", b"[]".to_vec())]),
        "member \"manifest.json\" appears twice",
    );
    assert_archive_refused(
        archive_with(vec![Entry::file("./layer0//layer.tar", b"x".to_vec())]),
        "member \"./layer0//layer.tar\" appears twice",
    );
}

#[test]
fn non_utf8_names_are_refused() {
    assert_archive_refused(
        archive_with(vec![Entry::file(b"caf\xe9", b"x".to_vec())]),
        "a member name is not UTF-8",
    );
    assert_archive_refused(
        archive_with(vec![Entry::symlink("s", b"\xff\xfe")]),
        "link \"s\": target not UTF-8",
    );
}

#[test]
fn lying_sizes_are_refused() {
    let mut entry = Entry::file("big", b"x".to_vec());
    entry.declared_size = Some(1 << 40);
    let mut bytes = archive_with(vec![]);
    // The lying member last, its data cut short by the end of the file.
    bytes.truncate(bytes.len() - 1024);
    tarball::append(&mut bytes, &entry);
    let errors = refused_on_both(
        |dir| {
            let path = dir.join("in.tar");
            std::fs::write(&path, &bytes).expect("write");
            path
        },
        |store, path| store.import_archive(path),
    );
    for err in errors {
        assert!(matches!(err, Error::InvalidArchive { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("truncated: member \"big\" needs 1099511627776 bytes"),
            "{err}"
        );
    }
}

/// Writes a layout of the seed image with `index.json` replaced.
fn layout_with_index(dir: &Path, index: &[u8]) -> PathBuf {
    let layout = dir.join("layout");
    SeedImage::new(b"evil")
        .write_layout(&layout)
        .expect("layout");
    std::fs::write(layout.join("index.json"), index).expect("index");
    layout
}

fn refuse_layout(setup: impl Fn(&Path) -> PathBuf) -> Vec<Error> {
    refused_on_both(setup, |store, path| store.import_oci_layout(path))
}

#[test]
fn huge_index_json_is_refused_unread() {
    for err in refuse_layout(|dir| {
        let layout = layout_with_index(dir, b"");
        // 100 MB, sparse: refused by its size before any byte is read.
        let file = std::fs::File::create(layout.join("index.json")).expect("create");
        file.set_len(100_000_000).expect("set_len");
        layout
    }) {
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        match &err {
            Error::InvalidInput { what, reason } => {
                assert!(what.ends_with("layout/index.json"), "{what}");
                assert_eq!(reason, "100000000 bytes is more than the 16777216 allowed");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn deeply_nested_json_is_refused() {
    // serde_json skips unknown keys without recursion, and typed fields stop
    // at the first value of the wrong type, so depth costs time linear in
    // the input (at most 16 MiB) and no stack. Unbalanced: refused at EOF.
    let deep = "{\"a\":".repeat(100_000);
    for err in refuse_layout(|dir| layout_with_index(dir, deep.as_bytes())) {
        match &err {
            Error::InvalidJson { file, source } => {
                assert_eq!(file, "index.json");
                assert_eq!(
                    source.to_string(),
                    "EOF while parsing a value at line 1 column 500000"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    // Balanced, as a manifest blob: parsed through, then refused.
    let balanced = format!("{}1{}", deep, "}".repeat(100_000));
    for err in refuse_layout(|dir| {
        let layout = layout_with_index(dir, b"{}");
        seeds::write_blob(&layout, balanced.as_bytes()).expect("blob");
        std::fs::write(
            layout.join("index.json"),
            seeds::index(balanced.as_bytes(), "evil.test/x:1"),
        )
        .expect("index");
        layout
    }) {
        assert!(
            matches!(&err, Error::InvalidJson { source, .. }
                if source.to_string().starts_with("missing field `config`")),
            "{err:?}"
        );
    }
    // oci-layout is read as a generic value: serde_json's depth limit (128).
    for err in refuse_layout(|dir| {
        let layout = layout_with_index(dir, b"{}");
        std::fs::write(layout.join("oci-layout"), "[".repeat(100_000)).expect("oci-layout");
        layout
    }) {
        assert!(
            matches!(&err, Error::NotOciLayout { reason, .. }
                if reason == "oci-layout must hold imageLayoutVersion \"1.0.0\", found none"),
            "{err:?}"
        );
    }
}

/// An index.json with one manifest descriptor of `size` (raw JSON number).
fn index_with_size(manifest: &[u8], size: &str) -> Vec<u8> {
    format!(
        r#"{{"manifests":[{{"mediaType":"{}","digest":"{}","size":{size}}}]}}"#,
        seeds::OCI_MANIFEST,
        seeds::sha256(manifest)
    )
    .into_bytes()
}

#[test]
fn negative_and_huge_sizes_are_refused() {
    let image = SeedImage::new(b"evil");
    let digest = seeds::sha256(&image.manifest);
    for err in refuse_layout(|dir| layout_with_index(dir, &index_with_size(&image.manifest, "-1")))
    {
        match &err {
            Error::InvalidInput { what, reason } => {
                assert_eq!(what, &format!("index.json descriptor {digest}"));
                assert_eq!(reason, "negative size -1");
            }
            other => panic!("{other:?}"),
        }
    }
    for err in refuse_layout(|dir| {
        layout_with_index(
            dir,
            &index_with_size(&image.manifest, "9223372036854775807"),
        )
    }) {
        match &err {
            Error::InvalidInput { what, reason } => {
                assert_eq!(what, &format!("blob {digest}"));
                assert_eq!(
                    reason,
                    "9223372036854775807 bytes is more than the 16777216 allowed"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    for size in [
        "18446744073709551616",
        "1e309",
        "-9223372036854775809",
        "1.5",
    ] {
        for err in
            refuse_layout(|dir| layout_with_index(dir, &index_with_size(&image.manifest, size)))
        {
            assert!(matches!(err, Error::InvalidJson { .. }), "{size}: {err:?}");
        }
    }
    // A layer descriptor claiming more than its blob holds.
    let mut layer = seeds::descriptor(seeds::OCI_LAYER_GZIP, &image.layer_gz);
    layer["size"] = serde_json::json!(i64::MAX);
    let manifest = seeds::manifest(&image.config, &[layer]);
    for err in refuse_layout(|dir| {
        let layout = layout_with_index(dir, &seeds::index(&manifest, "evil.test/x:1"));
        seeds::write_blob(&layout, &manifest).expect("manifest");
        layout
    }) {
        match err {
            Error::SizeMismatch {
                digest,
                expected,
                actual,
            } => {
                assert_eq!(digest, seeds::sha256(&image.layer_gz));
                assert_eq!(expected, i64::MAX as u64);
                assert_eq!(actual, image.layer_gz.len() as u64);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_manifest_of_100000_layers_is_refused() {
    let (manifest, config, _) = many_layers(100_000);
    assert!(
        manifest.len() < 16 << 20,
        "under the JSON limit: {}",
        manifest.len()
    );
    let digest = seeds::sha256(&manifest);
    for err in refuse_layout(|dir| {
        let layout = layout_with_index(dir, &seeds::index(&manifest, "evil.test/x:1"));
        seeds::write_blob(&layout, &manifest).expect("manifest");
        seeds::write_blob(&layout, &config).expect("config");
        layout
    }) {
        match &err {
            Error::InvalidInput { what, reason } => {
                assert_eq!(what, &format!("manifest {digest}"));
                assert_eq!(reason, "100000 layers is more than the 1000 allowed");
            }
            other => panic!("{other:?}"),
        }
    }
    // docker save: the same limit on a manifest.json entry.
    let image = SeedImage::new(b"evil");
    let entry = serde_json::json!([{
        "Config": "c.json", "Layers": vec!["layer0/layer.tar"; 100_000],
    }]);
    assert_archive_refused(
        tarball::archive(&[
            Entry::file("manifest.json", entry.to_string().into_bytes()),
            Entry::file("c.json", image.config.clone()),
            Entry::file("layer0/layer.tar", image.layer_tar.clone()),
        ]),
        "manifest.json entry c.json: 100000 layers is more than the 1000 allowed",
    );
}

#[test]
fn fifos_and_devices_in_a_layout_are_refused_without_blocking() {
    let image = SeedImage::new(b"evil");
    let mkfifo = |path: &Path| {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .expect("mkfifo");
        assert!(status.success());
    };
    // index.json a FIFO nobody writes: reading it would block forever.
    for err in refuse_layout(|dir| {
        let layout = layout_with_index(dir, b"");
        std::fs::remove_file(layout.join("index.json")).expect("rm");
        mkfifo(&layout.join("index.json"));
        layout
    }) {
        assert!(
            matches!(&err, Error::InvalidInput { what, reason }
                if what.ends_with("index.json") && reason == "not a regular file"),
            "{err:?}"
        );
    }
    // The manifest blob a FIFO; the config blob a link to /dev/zero.
    for (blob, make) in [(&image.manifest, 0), (&image.config, 1)] {
        let digest = seeds::sha256(blob);
        for err in refuse_layout(|dir| {
            let layout = layout_with_index(dir, &image.index);
            let path = layout.join("blobs/sha256").join(digest.encoded());
            std::fs::remove_file(&path).expect("rm");
            if make == 0 {
                mkfifo(&path);
            } else {
                std::os::unix::fs::symlink("/dev/zero", &path).expect("symlink");
            }
            layout
        }) {
            assert!(
                matches!(&err, Error::InvalidInput { what, reason }
                    if what.ends_with(digest.encoded()) && reason == "not a regular file"),
                "{err:?}"
            );
        }
    }
}

#[test]
fn a_gzip_bomb_streams_in_constant_memory_and_is_refused() {
    let bomb = gzip_bomb(1);
    assert!(bomb.len() < 2 << 20, "{}", bomb.len());
    let bomb_digest = seeds::sha256(&bomb);
    // The config claims some other diff ID: the import decompresses the
    // whole GiB (streamed into the hash, never held), then refuses it.
    let fake: Digest = seeds::sha256(b"not the bomb");
    let config = seeds::config(std::slice::from_ref(&fake));
    let manifest = seeds::manifest(&config, &[seeds::descriptor(seeds::OCI_LAYER_GZIP, &bomb)]);
    let errors = refuse_layout(|dir| {
        let layout = layout_with_index(dir, &seeds::index(&manifest, "evil.test/bomb:1"));
        for blob in [&bomb, &config, &manifest] {
            seeds::write_blob(&layout, blob).expect("blob");
        }
        layout
    });
    for err in errors {
        match err {
            Error::DiffIdMismatch {
                layer,
                expected,
                actual,
            } => {
                assert_eq!(layer, bomb_digest);
                assert_eq!(expected, fake);
                assert_ne!(actual, fake);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_million_and_one_members_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = seeded(dir.path(), Backend::Sqlite);
    let before = store_state(&store);
    let path = dir.path().join("many.tar");
    write_many_entries(&path, 1_000_001).expect("write archive");
    let err = store.import_archive(&path).expect_err("refused");
    match &err {
        Error::InvalidArchive { reason, .. } => assert_eq!(reason, "more than 1000000 members"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store_state(&store), before);
}

#[test]
fn a_gzip_bomb_tarball_is_refused_before_it_fills_the_disk() {
    // `import` decompresses a gzipped tarball to a temporary file first:
    // 1 GiB from 1 MiB is over 100 times its size (and over 256 MiB).
    let bomb = gzip_bomb(1);
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = seeded(dir.path(), backend);
        let before = store_state(&store);
        let path = dir.path().join("bomb.tar.gz");
        std::fs::write(&path, &bomb).expect("write");
        let err = store.import(&path).expect_err("refused");
        match &err {
            Error::InvalidArchive { reason, .. } => assert_eq!(
                reason,
                &format!(
                    "gzip-compressed, and it expands to more than {} bytes (100 times its size): \
                     refused as a decompression bomb; decompress it first (gunzip) to import it",
                    256u64 << 20
                )
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(store_state(&store), before);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("store"))
            .expect("store dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
