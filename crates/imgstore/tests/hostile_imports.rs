//! Hostile inputs to the import path (issue 12): names whose digest lies,
//! fan-out that would multiply the work, members hashed once per reference,
//! oversized tar header records, leftovers of interrupted gzip loads, and
//! errors that must name the right thing. Every refused import leaves the
//! store as it was; work is asserted by counts
//! ([`imgstore::blob_verifications_on_this_thread`]), never by timings.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use imgstore::digest::Digest;
use imgstore::refs::{Descriptor, ImageRecord};
use imgstore::{Error, FsckProblem, Store, blob_verifications_on_this_thread};
use serde_json::{Value, json};

mod common;
use common::{BACKENDS, open, snapshot};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A real layer tar holding one file.
fn layer_tar(file: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, file, content)
        .expect("tar");
    builder.into_inner().expect("tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn config_json(diff_ids: &[Digest]) -> Vec<u8> {
    let diff_ids: Vec<String> = diff_ids.iter().map(Digest::to_string).collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("json")
}

/// An OCI layout being written.
struct Layout {
    dir: PathBuf,
}

impl Layout {
    fn new(dir: PathBuf) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        Layout { dir }
    }

    fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = Digest::from_bytes(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(digest.encoded()), bytes)
            .expect("write blob");
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    /// A one-layer image (plain tar layer): its manifest descriptor.
    fn image(&self, file: &str) -> Value {
        let layer = layer_tar(file, b"content");
        let config = self.blob(CONFIG, &config_json(&[Digest::from_bytes(&layer)]));
        let layer = self.blob(TAR, &layer);
        self.manifest(config, vec![layer])
    }

    fn manifest(&self, config: Value, layers: Vec<Value>) -> Value {
        let manifest = json!({
            "schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers,
        });
        self.blob(MANIFEST, &serde_json::to_vec(&manifest).expect("json"))
    }

    fn index_blob(&self, manifests: Vec<Value>) -> Value {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        self.blob(INDEX, &serde_json::to_vec(&index).expect("json"))
    }

    fn index(&self, manifests: Vec<Value>) {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).expect("json"),
        )
        .expect("index.json");
    }
}

fn named(mut descriptor: Value, name: &str) -> Value {
    descriptor["annotations"] = json!({ REF_NAME: name });
    descriptor
}

fn digest_of(descriptor: &Value) -> Digest {
    descriptor["digest"]
        .as_str()
        .expect("digest")
        .parse()
        .expect("parse")
}

/// Appends a regular member (GNU headers: long names get `L` records).
fn append<W: Write>(builder: &mut tar::Builder<W>, name: &str, data: &[u8]) {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data).expect("tar");
}

/// A `docker save` archive: `manifest.json` then `members`.
fn docker_archive(path: &Path, manifest: &Value, members: &[(&str, &[u8])]) {
    let mut builder = tar::Builder::new(File::create(path).expect("create"));
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(manifest).expect("json"),
    );
    for (name, data) in members {
        append(&mut builder, name, data);
    }
    builder.finish().expect("tar");
}

/// The members of a one-image docker archive with one plain layer:
/// (config member name, config bytes, layer member name, layer bytes).
fn docker_image(file: &str) -> (String, Vec<u8>, String, Vec<u8>) {
    let layer = layer_tar(file, b"content");
    let diff_id = Digest::from_bytes(&layer);
    let config = config_json(std::slice::from_ref(&diff_id));
    let config_name = format!("{}.json", Digest::from_bytes(&config).encoded());
    (
        config_name,
        config,
        format!("{}/layer.tar", diff_id.encoded()),
        layer,
    )
}

/// Runs `test` on a fresh store of each backend, with a scratch directory.
fn each_backend(test: impl Fn(&Store, &Path)) {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(&dir.path().join("store"), backend);
        test(&store, dir.path());
    }
}

/// Imports `input` expecting a refusal; the store must be unchanged.
fn refused(store: &Store, input: &Path) -> Error {
    let before = snapshot(store);
    let err = store.import(input).expect_err("refused");
    assert_eq!(
        snapshot(store),
        before,
        "a refused import changed the store"
    );
    err
}

// Item 4: names with a digest.

#[test]
fn oci_digest_name_that_is_not_its_targets_digest_is_refused() {
    each_backend(|store, tmp| {
        let layout = Layout::new(tmp.join("layout"));
        let manifest = layout.image("a");
        let other = Digest::from_bytes(b"something else");
        layout.index(vec![named(manifest.clone(), &format!("nginx@{other}"))]);
        let err = refused(store, &layout.dir);
        match err {
            Error::NameDigestMismatch { name, target } => {
                assert_eq!(name, format!("docker.io/library/nginx@{other}"));
                assert_eq!(target, digest_of(&manifest));
            }
            other => panic!("expected NameDigestMismatch, got {other:?}"),
        }
        // A tag with a digest too.
        layout.index(vec![named(manifest, &format!("nginx:1@{other}"))]);
        assert!(matches!(
            refused(store, &layout.dir),
            Error::NameDigestMismatch { .. }
        ));
        assert!(store.resolve(&format!("nginx@{other}")).is_err());
    });
}

#[test]
fn oci_digest_name_of_its_own_target_and_bare_tags_import() {
    each_backend(|store, tmp| {
        let layout = Layout::new(tmp.join("layout"));
        let manifest = layout.image("a");
        let digest = digest_of(&manifest);
        layout.index(vec![
            named(manifest.clone(), &format!("nginx@{digest}")),
            named(manifest, "v1"),
        ]);
        let imported = store.import(&layout.dir).expect("import");
        assert_eq!(imported.len(), 1);
        let id = imported[0].id.clone();
        assert_eq!(
            store.resolve(&format!("nginx@{digest}")).expect("digest"),
            id
        );
        // A bare ref.name is a repository name, as before.
        assert_eq!(store.resolve("v1:latest").expect("v1"), id);
    });
}

#[test]
fn docker_repo_tags_with_a_digest_are_refused_as_docker_load_does() {
    each_backend(|store, tmp| {
        let (config_name, config, layer_name, layer) = docker_image("a");
        let any = Digest::from_bytes(b"any");
        for tag in [format!("nginx@{any}"), format!("nginx:1@{any}")] {
            let archive = tmp.join("digest.tar");
            docker_archive(
                &archive,
                &json!([{"Config": config_name, "RepoTags": [tag], "Layers": [layer_name]}]),
                &[(&config_name, &config), (&layer_name, &layer)],
            );
            match refused(store, &archive) {
                Error::InvalidName { name, reason } => {
                    assert_eq!(name, tag);
                    assert!(reason.contains("digest reference"), "{reason}");
                }
                other => panic!("expected InvalidName, got {other:?}"),
            }
        }
    });
}

#[test]
fn fsck_reports_and_repair_deletes_a_digest_name_that_is_not_its_targets() {
    each_backend(|store, tmp| {
        let layout = Layout::new(tmp.join("layout"));
        let manifest = layout.image("a");
        layout.index(vec![named(manifest.clone(), "example.test/app:1")]);
        store.import(&layout.dir).expect("import");
        assert!(store.fsck(false).expect("fsck").is_clean());
        // As an older import stored it, unchecked.
        let other = Digest::from_bytes(b"other");
        let name = format!("example.test/app@{other}");
        let target = Descriptor::new(
            MANIFEST,
            digest_of(&manifest),
            manifest["size"].as_i64().expect("size"),
        );
        store
            .refs()
            .create(store.namespace(), ImageRecord::new(name.clone(), target))
            .expect("create");
        let report = store.fsck(false).expect("fsck");
        // The name went in past the facade, so the CRI cache has drifted
        // from the records too, and fsck says so.
        let (mismatches, others): (Vec<_>, Vec<_>) = report
            .problems
            .into_iter()
            .partition(|p| matches!(p, FsckProblem::NameDigestMismatch { .. }));
        assert_eq!(
            mismatches,
            vec![FsckProblem::NameDigestMismatch {
                namespace: store.namespace().to_owned(),
                name: name.clone(),
                target: digest_of(&manifest),
            }]
        );
        assert!(
            others.iter().all(|p| matches!(
                p,
                FsckProblem::Drift {
                    structure: "CRI cache",
                    ..
                }
            )),
            "{others:?}"
        );
        store.fsck(true).expect("repair");
        assert!(store.refs().get(store.namespace(), &name).is_err());
        assert!(store.fsck(false).expect("fsck").is_clean());
    });
}

// Item 8: fan-out.

#[test]
fn an_index_listing_one_manifest_a_thousand_times_reads_it_once() {
    each_backend(|store, tmp| {
        let layout = Layout::new(tmp.join("layout"));
        let manifest = layout.image("a");
        layout.index(vec![manifest; 1000]);
        let before = blob_verifications_on_this_thread();
        let imported = store.import(&layout.dir).expect("import");
        // The manifest and its config, once each.
        assert_eq!(blob_verifications_on_this_thread() - before, 2);
        assert_eq!(imported.len(), 1);
        assert_eq!(store.images().expect("list images").len(), 1);
    });
}

#[test]
fn nested_indexes_fanning_out_a_hundred_to_the_fourth_read_each_blob_once() {
    each_backend(|store, tmp| {
        let layout = Layout::new(tmp.join("layout"));
        let mut child = named(layout.image("a"), "example.test/fan:1");
        for _ in 0..3 {
            child = layout.index_blob(vec![child; 100]);
        }
        layout.index(vec![named(child, "example.test/fan:1"); 100]);
        let before = blob_verifications_on_this_thread();
        let imported = store.import(&layout.dir).expect("import");
        // Three indexes, the manifest and its config.
        assert_eq!(blob_verifications_on_this_thread() - before, 5);
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].names, vec!["example.test/fan:1".to_owned()]);
        assert_eq!(store.images().expect("list images").len(), 1);
    });
}

#[test]
fn an_import_listing_more_descriptors_than_the_limit_is_refused_unread() {
    each_backend(|store, tmp| {
        let layout = Layout::new(tmp.join("layout"));
        let manifest = layout.image("a");
        layout.index(vec![manifest; 100_001]);
        let before = blob_verifications_on_this_thread();
        match refused(store, &layout.dir) {
            Error::ImportTooLarge { input, limit, max } => {
                assert_eq!(input, layout.dir);
                assert_eq!(limit, "descriptors and names");
                assert_eq!(max, 100_000);
            }
            other => panic!("expected ImportTooLarge, got {other:?}"),
        }
        assert_eq!(blob_verifications_on_this_thread() - before, 0);
    });
}

#[test]
fn repeated_manifest_json_entries_plan_one_image_reading_each_member_once() {
    each_backend(|store, tmp| {
        let (config_name, config, _, layer) = docker_image("a");
        let gz = gzip(&layer);
        let entry = json!({"Config": config_name, "RepoTags": ["example.test/rep:1"], "Layers": ["layer.tar.gz"]});
        let archive = tmp.join("repeated.tar");
        docker_archive(
            &archive,
            &Value::Array(vec![entry; 500]),
            &[(&config_name, &config), ("layer.tar.gz", &gz)],
        );
        let before = blob_verifications_on_this_thread();
        let imported = store.import(&archive).expect("import");
        // The config and the compressed layer member, once each.
        assert_eq!(blob_verifications_on_this_thread() - before, 2);
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].names, vec!["example.test/rep:1".to_owned()]);
        assert_eq!(store.images().expect("list images").len(), 1);
    });
}

#[test]
fn a_manifest_json_listing_more_than_the_limit_is_refused_unread() {
    each_backend(|store, tmp| {
        let (config_name, config, layer_name, layer) = docker_image("a");
        // 33 334 entries of a config, a layer and a tag: 100 002 listed.
        let entry = json!({"Config": config_name, "RepoTags": ["example.test/rep:1"], "Layers": [layer_name]});
        let archive = tmp.join("huge.tar");
        docker_archive(
            &archive,
            &Value::Array(vec![entry; 33_334]),
            &[(&config_name, &config), (&layer_name, &layer)],
        );
        let before = blob_verifications_on_this_thread();
        assert!(matches!(
            refused(store, &archive),
            Error::ImportTooLarge { max: 100_000, .. }
        ));
        assert_eq!(blob_verifications_on_this_thread() - before, 0);
    });
}

// Item 9: one member named by many layers.

#[test]
fn docker_layers_naming_one_compressed_member_hash_it_once() {
    each_backend(|store, tmp| {
        let layer = layer_tar("a", b"content");
        let diff_id = Digest::from_bytes(&layer);
        let gz = gzip(&layer);
        let config = config_json(&vec![diff_id; 300]);
        let config_name = format!("{}.json", Digest::from_bytes(&config).encoded());
        let archive = tmp.join("same-layer.tar");
        docker_archive(
            &archive,
            &json!([{"Config": config_name, "RepoTags": ["example.test/same:1"], "Layers": vec!["layer.tar.gz"; 300]}]),
            &[(&config_name, &config), ("layer.tar.gz", &gz)],
        );
        let before = blob_verifications_on_this_thread();
        let imported = store.import(&archive).expect("import");
        assert_eq!(blob_verifications_on_this_thread() - before, 2);
        assert_eq!(imported.len(), 1);
        assert_eq!(store.layers().map().expect("layer records").len(), 300);
    });
}

// Item 11: long tar header records.

/// A raw extension record (`L`, `K`, `x`) of `size` bytes, then a member.
fn archive_with_record(path: &Path, kind: tar::EntryType, size: usize) {
    let (config_name, config, layer_name, layer) = docker_image("a");
    let manifest = json!([{"Config": config_name, "RepoTags": ["example.test/long:1"], "Layers": [layer_name]}]);
    let mut builder = tar::Builder::new(File::create(path).expect("create"));
    append(
        &mut builder,
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("json"),
    );
    append(&mut builder, &config_name, &config);
    append(&mut builder, &layer_name, &layer);
    let mut header = tar::Header::new_gnu();
    header.set_path("././@LongLink").expect("path");
    header.set_entry_type(kind);
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_cksum();
    let data = if kind == tar::EntryType::XHeader {
        // One pax record `<len> path=aaa…\n` of exactly `size` bytes.
        let len = size.to_string();
        let value = "a".repeat(size - len.len() - " path=\n".len());
        format!("{len} path={value}\n").into_bytes()
    } else {
        vec![b'a'; size]
    };
    assert_eq!(data.len(), size);
    builder.append(&header, &data[..]).expect("record");
    append(&mut builder, "extra", b"x");
    builder.finish().expect("tar");
}

#[test]
fn tar_header_records_over_one_mib_are_refused() {
    each_backend(|store, tmp| {
        for kind in [
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
            tar::EntryType::XHeader,
        ] {
            let archive = tmp.join("long.tar");
            archive_with_record(&archive, kind, (1 << 20) + 1);
            match refused(store, &archive) {
                Error::InvalidArchive { path, reason } => {
                    assert_eq!(path, archive);
                    assert!(
                        reason.contains("1048577 bytes, more than the 1048576 allowed"),
                        "{kind:?}: {reason}"
                    );
                }
                other => panic!("{kind:?}: expected InvalidArchive, got {other:?}"),
            }
        }
    });
}

#[test]
fn tar_header_records_up_to_one_mib_apply_to_the_next_member() {
    each_backend(|store, tmp| {
        // The 1 MiB long name names the "extra" member: imported fine.
        let archive = tmp.join("long.tar");
        archive_with_record(&archive, tar::EntryType::GNULongName, 1 << 20);
        store.import(&archive).expect("1 MiB long name");
        archive_with_record(&archive, tar::EntryType::XHeader, 1 << 20);
        store.import(&archive).expect("1 MiB pax header");
        // Long member names through GNU long names and pax paths resolve.
        let long_dir = "d".repeat(150);
        let (config_name, config, _, layer) = docker_image("b");
        let gnu_name = format!("{long_dir}/gnu/layer.tar");
        let pax_name = format!("{long_dir}/pax/{config_name}");
        let manifest = json!([{"Config": pax_name, "RepoTags": ["example.test/names:1"], "Layers": [gnu_name]}]);
        let mut builder = tar::Builder::new(File::create(&archive).expect("create"));
        append(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest).expect("json"),
        );
        append(&mut builder, &gnu_name, &layer);
        builder
            .append_pax_extensions([("path", pax_name.as_bytes())])
            .expect("pax");
        let mut header = tar::Header::new_ustar();
        header.set_path("short-config.json").expect("path");
        header.set_size(config.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, &config[..]).expect("config");
        builder.finish().expect("tar");
        drop(builder);
        let imported = store.import(&archive).expect("long names");
        assert_eq!(imported[0].names, vec!["example.test/names:1".to_owned()]);
    });
}

// Item 7: temporary files of gzip loads.

fn tmp_files(root: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(root.join("tmp")) {
        Ok(entries) => entries.map(|e| e.expect("entry").path()).collect(),
        Err(_) => Vec::new(),
    }
}

fn flock(file: &File) {
    // SAFETY: flock on a valid, open descriptor.
    assert_eq!(
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
}

#[test]
fn a_gzip_load_decompresses_into_root_tmp_and_leaves_nothing() {
    each_backend(|store, tmp| {
        let (config_name, config, layer_name, layer) = docker_image("a");
        let archive = tmp.join("image.tar");
        docker_archive(
            &archive,
            &json!([{"Config": config_name, "RepoTags": ["example.test/gz:1"], "Layers": [layer_name]}]),
            &[(&config_name, &config), (&layer_name, &layer)],
        );
        let gz = tmp.join("image.tar.gz");
        std::fs::write(&gz, gzip(&std::fs::read(&archive).expect("read"))).expect("write");
        store.import(&gz).expect("import");
        let tmp_dir = store.root().join("tmp");
        let mode = std::fs::metadata(&tmp_dir)
            .expect("tmp")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(tmp_files(store.root()), Vec::<PathBuf>::new());
    });
}

#[test]
fn leftover_gzip_copies_are_reported_by_fsck_and_removed_by_gc_and_open() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let store = open(&root, backend);
        // What a load killed mid-way leaves: an unlocked file in tmp/.
        std::fs::create_dir_all(root.join("tmp")).expect("mkdir");
        let leftover = root.join("tmp/import-4242-1.tmp");
        std::fs::write(&leftover, vec![0u8; 1000]).expect("write");
        let report = store.fsck(false).expect("fsck");
        assert_eq!(
            report.problems,
            vec![FsckProblem::LeftoverTempFile {
                path: leftover.clone(),
                size: 1000,
            }]
        );
        let gc = store.gc().expect("gc");
        assert_eq!(gc.orphan_files_removed, 1);
        assert_eq!(gc.bytes_freed, 1000);
        assert!(!leftover.exists());
        assert!(store.fsck(false).expect("fsck").is_clean());
        // The next open removes them too.
        std::fs::write(&leftover, vec![0u8; 10]).expect("write");
        drop(store);
        let store = open(&root, backend);
        assert!(!leftover.exists());
        assert!(store.fsck(false).expect("fsck").is_clean());
    }
}

#[test]
fn a_temporary_file_held_by_a_live_import_is_kept() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let store = open(&root, backend);
        std::fs::create_dir_all(root.join("tmp")).expect("mkdir");
        let live = root.join("tmp/import-1-1.tmp");
        std::fs::write(&live, b"in use").expect("write");
        let held = File::open(&live).expect("open");
        flock(&held);
        assert!(store.fsck(false).expect("fsck").is_clean());
        assert_eq!(store.gc().expect("gc").orphan_files_removed, 0);
        drop(store);
        let _store = open(&root, backend);
        assert!(live.exists());
        drop(held);
    }
}

// Item 17: errors name the right thing.

#[test]
fn gzip_archive_errors_name_the_users_file() {
    each_backend(|store, tmp| {
        // Decompresses, but is neither kind of archive.
        let mut builder = tar::Builder::new(Vec::new());
        append(&mut builder, "hello.txt", b"hi");
        let gz = tmp.join("not-an-image.tar.gz");
        std::fs::write(&gz, gzip(&builder.into_inner().expect("tar"))).expect("write");
        match refused(store, &gz) {
            Error::InvalidArchive { path, reason } => {
                assert_eq!(path, gz);
                assert!(reason.contains("neither an oci-archive"), "{reason}");
            }
            other => panic!("expected InvalidArchive, got {other:?}"),
        }
        // Does not decompress (cut short).
        let bytes = gzip(&layer_tar("a", &[7u8; 4096]));
        let cut = tmp.join("cut.tar.gz");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        match refused(store, &cut) {
            Error::InvalidArchive { path, reason } => {
                assert_eq!(path, cut);
                assert!(reason.contains("does not decompress"), "{reason}");
            }
            other => panic!("expected InvalidArchive, got {other:?}"),
        }
        assert_eq!(tmp_files(store.root()), Vec::<PathBuf>::new());
    });
}

#[test]
fn an_empty_oci_layer_is_refused_naming_it() {
    each_backend(|store, tmp| {
        let layout = Layout::new(tmp.join("layout"));
        let empty = Digest::from_bytes(b"");
        let config = layout.blob(CONFIG, &config_json(std::slice::from_ref(&empty)));
        let layer = layout.blob(TAR, b"");
        let manifest = layout.manifest(config, vec![layer]);
        layout.index(vec![named(manifest, "example.test/empty:1")]);
        match refused(store, &layout.dir) {
            Error::EmptyLayer { layer } => assert_eq!(layer, empty),
            other => panic!("expected EmptyLayer, got {other:?}"),
        }
    });
}

#[test]
fn an_empty_docker_layer_member_is_refused_naming_it() {
    each_backend(|store, tmp| {
        let empty = Digest::from_bytes(b"");
        let config = config_json(std::slice::from_ref(&empty));
        let config_name = format!("{}.json", Digest::from_bytes(&config).encoded());
        let archive = tmp.join("empty.tar");
        docker_archive(
            &archive,
            &json!([{"Config": config_name, "RepoTags": ["example.test/empty:1"], "Layers": ["empty/layer.tar"]}]),
            &[(&config_name, &config), ("empty/layer.tar", b"")],
        );
        match refused(store, &archive) {
            Error::EmptyLayer { layer } => assert_eq!(layer, empty),
            other => panic!("expected EmptyLayer, got {other:?}"),
        }
    });
}

/// Set in the child process of the kill test: the store root to load into.
const KILL_CHILD_ROOT: &str = "IMGSTORE_TEST_KILLED_LOAD_ROOT";
/// Set with it: the `.tar.gz` to load.
const KILL_CHILD_INPUT: &str = "IMGSTORE_TEST_KILLED_LOAD_INPUT";
/// Set with it: the backend (`sqlite` or `fs`).
const KILL_CHILD_BACKEND: &str = "IMGSTORE_TEST_KILLED_LOAD_BACKEND";

/// The child of the kill test: loads a gzip tarball (a no-op when the test
/// binary runs normally).
#[test]
fn killed_load_child() {
    let (Some(root), Some(input), Some(backend)) = (
        std::env::var_os(KILL_CHILD_ROOT),
        std::env::var_os(KILL_CHILD_INPUT),
        std::env::var_os(KILL_CHILD_BACKEND),
    ) else {
        return;
    };
    let backend = if backend == "fs" {
        imgstore::Backend::Fs
    } else {
        imgstore::Backend::Sqlite
    };
    let store = open(Path::new(&root), backend);
    let _ = store.import(Path::new(&input));
}

#[test]
fn a_gzip_load_killed_midway_leaves_a_temp_file_the_next_open_removes() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 64 MiB of tar, a few hundred KiB gzip-compressed: decompressing it
    // takes long enough to be killed at it.
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, "zeros", &vec![0u8; 64 << 20]);
    let gz = dir.path().join("big.tar.gz");
    std::fs::write(&gz, gzip(&builder.into_inner().expect("tar"))).expect("write");
    for (backend, name) in [
        (imgstore::Backend::Sqlite, "sqlite"),
        (imgstore::Backend::Fs, "fs"),
    ] {
        let root = dir.path().join(name);
        drop(open(&root, backend));
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args(["killed_load_child", "--exact", "--test-threads=1"])
            .env(KILL_CHILD_ROOT, &root)
            .env(KILL_CHILD_INPUT, &gz)
            .env(KILL_CHILD_BACKEND, name)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        // Kill it as soon as its temporary copy exists.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while tmp_files(&root).is_empty() {
            assert!(
                child.try_wait().expect("wait").is_none(),
                "{name}: the load ended without a temporary file in <root>/tmp"
            );
            assert!(std::time::Instant::now() < deadline, "{name}: no temp file");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        child.kill().expect("kill");
        child.wait().expect("wait");
        let left = tmp_files(&root);
        assert_eq!(left.len(), 1, "{name}: {left:?}");
        // Nothing else of the load is in the root itself.
        let stray: Vec<_> = std::fs::read_dir(&root)
            .expect("root")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert_eq!(stray, Vec::<String>::new(), "{name}");
        let store = open(&root, backend);
        assert_eq!(tmp_files(&root), Vec::<PathBuf>::new(), "{name}");
        assert!(store.fsck(false).expect("fsck").is_clean(), "{name}");
    }
}

#[test]
fn copies_older_versions_left_in_the_root_are_removed_once_their_process_is_gone() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("store");
        let store = open(&root, backend);
        // A pid no process has (above the kernel's maximum), and ours.
        let gone = root.join("import-2147483647-123.tar.tmp");
        let ours = root.join(format!("import-{}-123.tar.tmp", std::process::id()));
        std::fs::write(&gone, vec![0u8; 100]).expect("write");
        std::fs::write(&ours, vec![0u8; 7]).expect("write");
        let report = store.fsck(false).expect("fsck");
        assert_eq!(
            report.problems,
            vec![FsckProblem::LeftoverTempFile {
                path: gone.clone(),
                size: 100,
            }]
        );
        let gc = store.gc().expect("gc");
        assert_eq!(gc.orphan_files_removed, 1);
        assert!(!gone.exists());
        assert!(ours.exists());
    }
}
