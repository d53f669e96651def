//! Import of small OCI layouts built by the test: the paths the corpus does
//! not take (plain tar layers, nested indexes, moved names, failures after
//! something was stored).

use std::io::Write;
use std::path::{Path, PathBuf};

use imgstore::backend::{ErrorKind, StoreBackend};
use imgstore::digest::Digest;
use imgstore::{Backend, Error, ImportOptions, Options, Platform, PlatformChoice, Store};
use serde_json::{Value, json};

mod common;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const TAR_ZSTD_NONDIST: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// Writes an OCI layout: blobs as they are added, `index.json` at the end.
struct LayoutBuilder {
    dir: PathBuf,
}

impl LayoutBuilder {
    fn new(dir: PathBuf) -> LayoutBuilder {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("oci-layout");
        LayoutBuilder { dir }
    }

    fn blob(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = Digest::from_bytes(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(digest.encoded()), bytes)
            .expect("write blob");
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    /// An image whose layers are `(media type, stored bytes, diff ID)`.
    fn image(&self, layers: &[(&str, Vec<u8>, Digest)]) -> Value {
        let diff_ids: Vec<String> = layers.iter().map(|(_, _, d)| d.to_string()).collect();
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.blob(CONFIG, &serde_json::to_vec(&config).expect("json"));
        let layers: Vec<Value> = layers
            .iter()
            .map(|(media_type, bytes, _)| self.blob(media_type, bytes))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": layers,
        });
        self.blob(MANIFEST, &serde_json::to_vec(&manifest).expect("json"))
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
    descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": name});
    descriptor
}

/// A plain "layer": any bytes will do, nothing parses them.
fn plain(content: &str) -> (&'static str, Vec<u8>, Digest) {
    let bytes = content.as_bytes().to_vec();
    let diff_id = Digest::from_bytes(&bytes);
    (TAR, bytes, diff_id)
}

fn gzipped(content: &str) -> (&'static str, Vec<u8>, Digest) {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(content.as_bytes()).expect("gzip");
    let bytes = encoder.finish().expect("gzip");
    (TAR_GZIP, bytes, Digest::from_bytes(content.as_bytes()))
}

/// A real tar of regular files `(name, length)`, and the sum of the lengths.
fn tar_of(files: &[(&str, usize)]) -> (Vec<u8>, u64) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut total = 0;
    for (name, len) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(*len as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, name, &vec![b'z'; *len][..])
            .expect("tar");
        total += *len as u64;
    }
    (builder.into_inner().expect("tar"), total)
}

/// `tar` zstd-compressed, in two frames (a decoder must read both).
fn zstd_of(tar: &[u8]) -> Vec<u8> {
    let half = tar.len() / 2;
    let mut bytes = zstd::encode_all(&tar[..half], 3).expect("zstd");
    bytes.extend(zstd::encode_all(&tar[half..], 19).expect("zstd"));
    bytes
}

fn each_backend(test: impl Fn(&Store, &Path)) {
    for backend in [Backend::Sqlite, Backend::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_with(
            dir.path().join("store"),
            Options {
                backend: Some(backend),
                ..Options::default()
            },
        )
        .expect("open");
        test(&store, dir.path());
    }
}

#[test]
fn plain_and_gzip_layers_import_with_their_diff_ids() {
    each_backend(|store, tmp| {
        let layout = LayoutBuilder::new(tmp.join("layout"));
        let manifest = layout.image(&[plain("bottom"), gzipped("top")]);
        layout.index(vec![named(manifest, "example.test/app:1")]);
        let imported = store.import_oci_layout(&layout.dir).expect("import");
        assert_eq!(imported.len(), 1);
        assert_eq!(
            store.resolve("example.test/app:1").expect("resolve"),
            imported[0].id
        );
        assert_eq!(store.layers().len().expect("layer records"), 2);
        let top = imported[0].top_chain_id.clone().expect("top layer");
        assert_eq!(
            store.layers().references(&top).expect("layer records"),
            Some(1)
        );
    });
}

#[test]
fn a_diff_id_mismatch_in_a_later_image_undoes_the_earlier_ones() {
    each_backend(|store, tmp| {
        let layout = LayoutBuilder::new(tmp.join("layout"));
        let good = layout.image(&[plain("good")]);
        let (media_type, bytes, _) = plain("bad");
        let wrong = Digest::from_bytes(b"something else");
        let bad = layout.image(&[plain("good"), (media_type, bytes.clone(), wrong)]);
        layout.index(vec![
            named(good, "example.test/good:1"),
            named(bad, "example.test/bad:1"),
        ]);
        let err = store
            .import_oci_layout(&layout.dir)
            .expect_err("diff ID mismatch");
        assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
        assert!(
            err.to_string()
                .contains(Digest::from_bytes(&bytes).as_str()),
            "{err}"
        );
        assert!(store.images().expect("list images").is_empty());
        assert!(store.names().expect("names").is_empty());
        assert_eq!(store.layers().len().expect("layer records"), 0);
        assert!(store.resolve("example.test/good:1").is_err());
    });
}

#[test]
fn an_unknown_layer_media_type_is_refused_naming_it() {
    each_backend(|store, tmp| {
        let layout = LayoutBuilder::new(tmp.join("layout"));
        let (_, bytes, diff_id) = plain("lz4?");
        let lz4 = "application/vnd.oci.image.layer.v1.tar+lz4";
        let manifest = layout.image(&[(lz4, bytes, diff_id)]);
        layout.index(vec![manifest]);
        let err = store
            .import_oci_layout(&layout.dir)
            .expect_err("unknown layer type");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.to_string().contains(lz4), "{err}");
        assert!(store.images().expect("list images").is_empty());
    });
}

#[test]
fn importing_a_name_again_moves_it_to_the_new_image() {
    each_backend(|store, tmp| {
        let first = LayoutBuilder::new(tmp.join("first"));
        let manifest = first.image(&[plain("v1")]);
        first.index(vec![named(manifest, "example.test/app:latest")]);
        let old = store.import_oci_layout(&first.dir).expect("first")[0]
            .id
            .clone();

        let second = LayoutBuilder::new(tmp.join("second"));
        let manifest = second.image(&[plain("v2")]);
        second.index(vec![named(manifest, "example.test/app:latest")]);
        let new = store.import_oci_layout(&second.dir).expect("second")[0]
            .id
            .clone();

        assert_ne!(old, new);
        assert_eq!(store.resolve("example.test/app").expect("resolve"), new);
        let images = store.images().expect("list images");
        assert_eq!(images.len(), 2);
        let dangling = images.iter().find(|i| i.id == old).expect("old image kept");
        assert!(dangling.references.is_empty());
        assert_eq!(store.resolve(&old.short()[..8]).expect("by short ID"), old);
    });
}

#[test]
fn a_name_on_a_nested_index_resolves_to_its_image() {
    each_backend(|store, tmp| {
        let layout = LayoutBuilder::new(tmp.join("layout"));
        let mut manifest = layout.image(&[gzipped("only")]);
        manifest["platform"] = json!({"os": "linux", "architecture": "amd64"});
        // Another OS's entry is not followed, so its absent blob is no error.
        let windows = json!({
            "mediaType": MANIFEST,
            "digest": Digest::from_bytes(b"not in the layout").to_string(),
            "size": 1234,
            "platform": {"os": "windows", "architecture": "amd64"},
        });
        let nested =
            json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [windows, manifest]});
        let nested = layout.blob(INDEX, &serde_json::to_vec(&nested).expect("json"));
        layout.index(vec![named(nested, "example.test/multi:1")]);
        let imported = store.import_oci_layout(&layout.dir).expect("import");
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].names, ["example.test/multi:1"]);
        assert_eq!(
            store.resolve("example.test/multi:1").expect("resolve"),
            imported[0].id
        );
    });
}

#[test]
fn an_index_without_a_manifest_for_this_os_is_refused() {
    each_backend(|store, tmp| {
        let layout = LayoutBuilder::new(tmp.join("layout"));
        let mut manifest = layout.image(&[plain("elsewhere")]);
        manifest["platform"] = json!({"os": "plan9", "architecture": "amd64"});
        let nested = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": [manifest]});
        let nested = layout.blob(INDEX, &serde_json::to_vec(&nested).expect("json"));
        let digest = nested["digest"].as_str().expect("digest").to_owned();
        layout.index(vec![named(nested, "example.test/foreign:1")]);
        let err = store
            .import_oci_layout(&layout.dir)
            .expect_err("no manifest for this OS");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains(&digest), "{err}");
        assert!(err.to_string().contains("plan9/amd64"), "{err}");
        assert!(store.names().expect("names").is_empty());
    });
}

#[test]
fn a_store_is_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
}

#[test]
fn zstd_layers_import_with_their_diff_ids_and_files_size() {
    each_backend(|store, tmp| {
        let layout = LayoutBuilder::new(tmp.join("layout"));
        let (bottom, bottom_files) = tar_of(&[("etc/a", 100_000), ("etc/b", 3)]);
        let (top, top_files) = tar_of(&[("usr/c", 513)]);
        let manifest = layout.image(&[
            (TAR_ZSTD, zstd_of(&bottom), Digest::from_bytes(&bottom)),
            (TAR_ZSTD_NONDIST, zstd_of(&top), Digest::from_bytes(&top)),
        ]);
        layout.index(vec![named(manifest, "example.test/zstd:1")]);
        let imported = store.import_oci_layout(&layout.dir).expect("import");
        assert_eq!(imported.len(), 1);
        let top_chain = imported[0].top_chain_id.clone().expect("top");
        let top_layer = store
            .layers()
            .layer(&top_chain)
            .expect("layer records")
            .expect("top layer");
        assert_eq!(top_layer.diff_id(), &Digest::from_bytes(&top));
        assert_eq!(top_layer.size(), top.len() as u64);
        assert_eq!(top_layer.files_size(), Some(top_files));
        assert_eq!(top_layer.blob().expect("blob").media_type, TAR_ZSTD_NONDIST);
        let bottom_layer = store
            .layers()
            .layer(top_layer.parent().expect("parent"))
            .expect("layer records")
            .expect("bottom layer");
        assert_eq!(bottom_layer.diff_id(), &Digest::from_bytes(&bottom));
        assert_eq!(bottom_layer.files_size(), Some(bottom_files));
        assert_eq!(
            store.resolve("example.test/zstd:1").expect("resolve"),
            imported[0].id
        );
    });
}

#[test]
fn a_corrupt_zstd_layer_is_refused_and_leaves_the_store_unchanged() {
    each_backend(|store, tmp| {
        // Something in the store first, to see it stays as it was.
        let good = LayoutBuilder::new(tmp.join("good"));
        let manifest = good.image(&[gzipped("kept")]);
        good.index(vec![named(manifest, "example.test/kept:1")]);
        store.import_oci_layout(&good.dir).expect("good import");
        let before = common::snapshot(store);

        let (tar, _) = tar_of(&[("f", 4000)]);
        let whole = zstd::encode_all(&tar[..], 3).expect("zstd");
        let cut = whole[..whole.len() - 8].to_vec();
        let mut not_zstd = whole.clone();
        not_zstd[..4].copy_from_slice(b"\0\0\0\0");
        for (case, bytes) in [("truncated", cut), ("bad magic", not_zstd)] {
            let layout = LayoutBuilder::new(tmp.join(case.replace(' ', "-")));
            let blob = Digest::from_bytes(&bytes);
            let manifest =
                layout.image(&[gzipped("kept"), (TAR_ZSTD, bytes, Digest::from_bytes(&tar))]);
            layout.index(vec![named(manifest, "example.test/broken:1")]);
            let err = store
                .import_oci_layout(&layout.dir)
                .expect_err("corrupt zstd");
            match &err {
                Error::Decompress { layer, .. } => assert_eq!(layer, &blob, "{case}"),
                other => panic!("{case}: {other}"),
            }
            assert_eq!(err.kind(), ErrorKind::DataCorruption);
            assert!(err.to_string().contains(blob.as_str()), "{case}: {err}");
            assert_eq!(common::snapshot(store), before, "{case}");
            store.gc().expect("gc");
            assert!(
                !store.content().contains(&blob).expect("contains"),
                "{case}: no orphan blob after gc"
            );
            assert_eq!(common::snapshot(store), before, "{case}: after gc");
        }
    });
}

/// The platforms of the synthetic multi-platform index, in its order.
const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

/// A layout whose index.json names one nested index of three platforms'
/// images; returns the image ID of each platform's image, in order.
fn multi_platform_layout(dir: PathBuf) -> (LayoutBuilder, Vec<String>) {
    let layout = LayoutBuilder::new(dir);
    let mut entries = Vec::new();
    let mut ids = Vec::new();
    for platform in PLATFORMS {
        let mut manifest = layout.image(&[plain(&format!("layer of {platform}"))]);
        let parts: Vec<&str> = platform.split('/').collect();
        manifest["platform"] = json!({"os": parts[0], "architecture": parts[1]});
        if let Some(variant) = parts.get(2) {
            manifest["platform"]["variant"] = json!(variant);
        }
        let digest: Digest = manifest["digest"]
            .as_str()
            .expect("digest")
            .parse()
            .expect("digest");
        let bytes = std::fs::read(layout.dir.join("blobs/sha256").join(digest.encoded()))
            .expect("manifest blob");
        let parsed: Value = serde_json::from_slice(&bytes).expect("manifest json");
        ids.push(
            parsed["config"]["digest"]
                .as_str()
                .expect("config")
                .to_owned(),
        );
        entries.push(manifest);
    }
    let nested = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
    let nested = layout.blob(INDEX, &serde_json::to_vec(&nested).expect("json"));
    layout.index(vec![named(nested, "example.test/multi:1")]);
    (layout, ids)
}

fn imported_ids(imported: &[imgstore::Imported]) -> Vec<String> {
    imported.iter().map(|i| i.id.to_string()).collect()
}

fn exact(platform: &str) -> ImportOptions {
    ImportOptions::with_platform(PlatformChoice::Exact(platform.parse().expect("platform")))
}

#[test]
fn the_host_platform_is_taken_from_a_multi_platform_index_by_default() {
    each_backend(|store, tmp| {
        let (layout, ids) = multi_platform_layout(tmp.join("layout"));
        let host = Platform::host();
        let offered: Vec<Platform> = PLATFORMS
            .iter()
            .map(|p| p.parse().expect("parse"))
            .collect();
        match offered.iter().position(|p| host.matches(p)) {
            Some(i) => {
                let imported = store.import(&layout.dir).expect("import");
                assert_eq!(imported_ids(&imported), [ids[i].clone()], "host {host}");
                assert_eq!(store.images().expect("list images").len(), 1);
                assert_eq!(
                    store
                        .resolve("example.test/multi:1")
                        .expect("resolve")
                        .to_string(),
                    ids[i]
                );
                if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
                    assert_eq!(i, 0, "linux/amd64");
                }
            }
            None => {
                let err = store.import(&layout.dir).expect_err("no host entry");
                assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err}");
            }
        }
    });
}

#[test]
fn all_or_one_chosen_platform_is_imported() {
    each_backend(|store, tmp| {
        let (layout, ids) = multi_platform_layout(tmp.join("layout"));
        let imported = store
            .import_with(&layout.dir, &exact("linux/arm/v7"))
            .expect("arm/v7");
        assert_eq!(imported_ids(&imported), [ids[2].clone()]);
        assert_eq!(imported[0].names, ["example.test/multi:1"]);
        assert_eq!(store.images().expect("list images").len(), 1);
        let imported = store
            .import_with(
                &layout.dir,
                &ImportOptions::with_platform(PlatformChoice::All),
            )
            .expect("all");
        assert_eq!(imported_ids(&imported), ids);
        assert_eq!(store.images().expect("list images").len(), 3);
        assert_eq!(store.layers().len().expect("layer records"), 3);
    });
}

#[test]
fn a_platform_the_index_lacks_is_refused_naming_what_it_offers() {
    each_backend(|store, tmp| {
        let (layout, _) = multi_platform_layout(tmp.join("layout"));
        let before = common::snapshot(store);
        let err = store
            .import_with(&layout.dir, &exact("windows/amd64"))
            .expect_err("no windows entry");
        match &err {
            Error::NoMatchingPlatform {
                wanted, available, ..
            } => {
                assert_eq!(wanted, "windows/amd64");
                assert_eq!(available, &PLATFORMS);
            }
            other => panic!("{other}"),
        }
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(
            err.to_string()
                .contains("linux/amd64, linux/arm64, linux/arm/v7"),
            "{err}"
        );
        assert_eq!(common::snapshot(store), before);
        let mut blobs = 0;
        store
            .content()
            .walk(&mut |_| {
                blobs += 1;
                Ok(())
            })
            .expect("walk");
        assert_eq!(blobs, 0, "nothing written");
    });
}

/// `tar` of the files under `dir`, as an oci-archive.
fn tar_dir(dir: &Path) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_dir_all(".", dir).expect("tar");
    builder.into_inner().expect("tar")
}

#[test]
fn import_detects_layouts_archives_and_gzip_wrapped_archives() {
    each_backend(|store, tmp| {
        let (layout, ids) = multi_platform_layout(tmp.join("layout"));
        let tar = tar_dir(&layout.dir);
        let tar_path = tmp.join("multi.oci.tar");
        std::fs::write(&tar_path, &tar).expect("write tar");
        let imported = store
            .import_with(&tar_path, &exact("linux/arm64"))
            .expect("tar");
        assert_eq!(imported_ids(&imported), [ids[1].clone()]);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).expect("gzip");
        let gz_path = tmp.join("multi.oci.tar.gz");
        std::fs::write(&gz_path, gz.finish().expect("gzip")).expect("write gz");
        let imported = store
            .import_with(&gz_path, &ImportOptions::with_platform(PlatformChoice::All))
            .expect("tar.gz");
        assert_eq!(imported_ids(&imported), ids);
        // The temporary decompressed copy is gone.
        let leftovers: Vec<_> = std::fs::read_dir(store.root())
            .expect("root")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tar.tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let err = store.import(tmp.join("absent")).expect_err("absent");
        assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    });
}
