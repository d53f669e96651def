//! What a name of a multi-platform index means: the stored manifest this
//! host prefers (the host's when stored, else the first stored in index
//! order), the same for listing, resolve, export, prune, remove, gc, fsck
//! and a reopened store.

use std::io::Read;
use std::path::Path;

use imgstore::digest::Digest;
use imgstore::{
    Backend, ExportFormat, ImageQuery, ImportOptions, Options, Platform, PlatformChoice, Store,
};
use serde_json::{Value, json};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const NAME: &str = "example.test/multi:1";

/// The platforms of the index, in its order.
const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm/v7", "linux/arm64/v8"];

/// Writes `bytes` as a blob of the layout; its descriptor.
fn blob(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = Digest::from_bytes(bytes);
    std::fs::write(dir.join("blobs/sha256").join(digest.encoded()), bytes).expect("write blob");
    json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
}

/// One platform's image (a config of its own, one plain layer): its
/// manifest's descriptor with the platform, and the image ID.
fn platform_image(dir: &Path, platform: &str) -> (Value, String) {
    let parts: Vec<&str> = platform.split('/').collect();
    let layer = format!("layer of {platform}").into_bytes();
    let config = json!({
        "architecture": parts[1],
        "os": parts[0],
        "rootfs": {"type": "layers", "diff_ids": [Digest::from_bytes(&layer).to_string()]},
    });
    let config = blob(dir, CONFIG, &serde_json::to_vec(&config).expect("json"));
    let id = config["digest"].as_str().expect("digest").to_owned();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config,
        "layers": [blob(dir, TAR, &layer)],
    });
    let mut descriptor = blob(dir, MANIFEST, &serde_json::to_vec(&manifest).expect("json"));
    descriptor["platform"] = json!({"os": parts[0], "architecture": parts[1]});
    if let Some(variant) = parts.get(2) {
        descriptor["platform"]["variant"] = json!(variant);
    }
    (descriptor, id)
}

fn write_index_json(dir: &Path, manifests: Vec<Value>) {
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&index).expect("json"),
    )
    .expect("index.json");
}

fn new_layout(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("oci-layout");
}

/// An OCI layout whose `index.json` names [`NAME`] at an index of the
/// [`PLATFORMS`]' images; the image IDs in that order, and the manifests'
/// descriptors.
fn multi_platform_layout(dir: &Path) -> (Vec<String>, Vec<Value>) {
    new_layout(dir);
    let (manifests, ids): (Vec<Value>, Vec<String>) =
        PLATFORMS.iter().map(|p| platform_image(dir, p)).unzip();
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
    let mut index = blob(dir, INDEX, &serde_json::to_vec(&index).expect("json"));
    index["annotations"] = json!({"org.opencontainers.image.ref.name": NAME});
    write_index_json(dir, vec![index]);
    (ids, manifests)
}

/// The position in [`PLATFORMS`] of this host's entry, if it has one.
fn host_entry() -> Option<usize> {
    let offered: Vec<Platform> = PLATFORMS
        .iter()
        .map(|p| p.parse().expect("platform"))
        .collect();
    Platform::host().best_match(&offered)
}

fn exact(platform: &str) -> ImportOptions {
    ImportOptions::with_platform(PlatformChoice::Exact(platform.parse().expect("platform")))
}

fn open(root: &Path, backend: Backend) -> Store {
    Store::open_with(
        root,
        Options {
            backend: Some(backend),
            ..Options::default()
        },
    )
    .unwrap_or_else(|e| panic!("open {backend:?}: {e}"))
}

fn each_backend(test: impl Fn(Backend, &Path)) {
    for backend in [Backend::Sqlite, Backend::Fs] {
        let dir = tempfile::tempdir().expect("tempdir");
        test(backend, dir.path());
    }
}

/// `(ID, references)` of every image `docker images` lists.
fn listed(store: &Store) -> Vec<(String, Vec<String>)> {
    store
        .list_images(&ImageQuery::default())
        .expect("list")
        .into_iter()
        .map(|s| (s.id.to_string(), s.references))
        .collect()
}

/// The `manifest.json` of a `docker save` tar.
fn docker_manifest(tar_path: &Path) -> Value {
    let mut archive = tar::Archive::new(std::fs::File::open(tar_path).expect("open tar"));
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path") == Path::new("manifest.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("read");
            return serde_json::from_str(&text).expect("manifest.json");
        }
    }
    panic!("no manifest.json in {}", tar_path.display())
}

#[test]
fn a_name_loaded_for_another_platform_is_listed_resolved_saved_and_kept() {
    each_backend(|backend, tmp| {
        let layout = tmp.join("layout");
        let (ids, _) = multi_platform_layout(&layout);
        let root = tmp.join("store");
        let store = open(&root, backend);
        let imported = store
            .import_with(&layout, &exact("linux/arm/v7"))
            .expect("import arm/v7");
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].id.to_string(), ids[1]);
        assert_eq!(imported[0].names, [NAME]);

        let v7 = vec![(ids[1].clone(), vec![NAME.to_owned()])];
        assert_eq!(listed(&store), v7, "listed under its name");
        assert_eq!(store.resolve(NAME).expect("resolve").to_string(), ids[1]);
        assert_eq!(
            store.resolve("example.test/multi:1").expect("resolve"),
            store.cache().expect("cache").resolve(NAME).expect("cache")
        );
        let inspect = store.inspect(NAME).expect("inspect");
        assert_eq!(inspect.id, ids[1]);

        // docker save of the name: its image, under its name.
        let saved = tmp.join("saved.tar");
        let report = store
            .export(&[NAME], &saved, ExportFormat::DockerSave)
            .expect("save");
        assert_eq!(report.images.len(), 1);
        assert_eq!(report.images[0].id.to_string(), ids[1]);
        let manifest = docker_manifest(&saved);
        let hex = ids[1].trim_start_matches("sha256:");
        assert_eq!(manifest[0]["Config"], format!("{hex}.json"));
        assert_eq!(manifest[0]["RepoTags"], json!([NAME]));
        // An OCI layout of the name: the index and the stored manifest.
        let oci = tmp.join("saved-oci");
        store
            .export(&[NAME], &oci, ExportFormat::OciLayout)
            .expect("OCI export");

        // Dangling-only prune keeps it; gc keeps its blobs; fsck is clean.
        let pruned = store.prune(false).expect("prune");
        assert!(pruned.deleted.is_empty(), "{pruned:?}");
        assert!(pruned.untagged.is_empty(), "{pruned:?}");
        store.gc().expect("gc");
        let fsck = store.fsck(false).expect("fsck");
        assert!(fsck.problems.is_empty(), "{:?}", fsck.problems);
        assert_eq!(listed(&store), v7);
        store
            .export(&[NAME], tmp.join("after-gc.tar"), ExportFormat::DockerSave)
            .expect("save after gc");

        // The save loads back into another store as the same image.
        let other = open(&tmp.join("other"), backend);
        let loaded = other.import(&saved).expect("load the save");
        assert_eq!(loaded[0].id.to_string(), ids[1]);
        assert_eq!(listed(&other), v7);
        // So does the OCI layout, for the platform it holds.
        let again = open(&tmp.join("again"), backend);
        again
            .import_with(&oci, &exact("linux/arm/v7"))
            .expect("load the OCI export");
        assert_eq!(listed(&again), v7);

        // A reopened store says the same.
        drop(store);
        let store = open(&root, backend);
        assert_eq!(listed(&store), v7);

        // rmi by name untags it and deletes the image.
        let removed = store.remove(NAME, false).expect("rmi");
        assert_eq!(removed.untagged, [NAME]);
        assert_eq!(
            removed
                .deleted
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [ids[1].clone()]
        );
        assert!(listed(&store).is_empty());
        assert!(store.images().expect("list images").is_empty());
    });
}

#[test]
fn every_platform_imported_the_name_means_the_hosts() {
    each_backend(|backend, tmp| {
        let layout = tmp.join("layout");
        let (ids, _) = multi_platform_layout(&layout);
        let store = open(&tmp.join("store"), backend);
        let imported = store
            .import_with(&layout, &ImportOptions::with_platform(PlatformChoice::All))
            .expect("import all");
        let imported: Vec<String> = imported.iter().map(|i| i.id.to_string()).collect();
        assert_eq!(imported, ids);
        // Without a host entry, the first in index order.
        let meant = host_entry().unwrap_or(0);
        assert_eq!(
            store.resolve(NAME).expect("resolve").to_string(),
            ids[meant]
        );
        let mut named: Vec<(String, Vec<String>)> = listed(&store)
            .into_iter()
            .filter(|(_, names)| !names.is_empty())
            .collect();
        named.sort();
        assert_eq!(named, [(ids[meant].clone(), vec![NAME.to_owned()])]);
        assert_eq!(store.images().expect("list images").len(), 3);
        // gc keeps every stored platform's blobs.
        let gc = store.gc().expect("gc");
        assert_eq!(gc.blobs_removed, 0, "{gc:?}");
        for (i, id) in ids.iter().enumerate() {
            store
                .export(
                    &[id.as_str()],
                    tmp.join(format!("{i}.tar")),
                    ExportFormat::DockerSave,
                )
                .unwrap_or_else(|e| panic!("export {id}: {e}"));
        }
    });
}

#[test]
fn the_host_platform_loaded_later_takes_the_name() {
    let Some(host) = host_entry() else {
        return; // this host has no entry in the index: nothing to take
    };
    each_backend(|backend, tmp| {
        let layout = tmp.join("layout");
        let (ids, _) = multi_platform_layout(&layout);
        let store = open(&tmp.join("store"), backend);
        let other = if host == 1 { 2 } else { 1 };
        store
            .import_with(&layout, &exact(PLATFORMS[other]))
            .expect("import another platform");
        assert_eq!(
            store.resolve(NAME).expect("resolve").to_string(),
            ids[other]
        );
        store.import(&layout).expect("import the host's");
        assert_eq!(store.resolve(NAME).expect("resolve").to_string(), ids[host]);
        // The other platform's image is no longer named: dangling.
        let mut all = listed(&store);
        all.sort();
        let mut expected = vec![
            (ids[host].clone(), vec![NAME.to_owned()]),
            (ids[other].clone(), Vec::new()),
        ];
        expected.sort();
        assert_eq!(all, expected);
    });
}

#[test]
fn storing_the_hosts_manifest_under_another_name_moves_what_the_index_name_means() {
    let Some(host) = host_entry() else {
        return;
    };
    each_backend(|backend, tmp| {
        let layout = tmp.join("layout");
        let (ids, manifests) = multi_platform_layout(&layout);
        let root = tmp.join("store");
        let store = open(&root, backend);
        let other = if host == 1 { 2 } else { 1 };
        store
            .import_with(&layout, &exact(PLATFORMS[other]))
            .expect("import another platform");
        // A second layout names the host's manifest itself.
        let single = tmp.join("single");
        new_layout(&single);
        for entry in std::fs::read_dir(layout.join("blobs/sha256")).expect("blobs") {
            let entry = entry.expect("entry");
            std::fs::copy(
                entry.path(),
                single.join("blobs/sha256").join(entry.file_name()),
            )
            .expect("copy blob");
        }
        let mut descriptor = manifests[host].clone();
        descriptor
            .as_object_mut()
            .expect("object")
            .remove("platform");
        descriptor["annotations"] =
            json!({"org.opencontainers.image.ref.name": "example.test/host:1"});
        write_index_json(&single, vec![descriptor]);
        store.import(&single).expect("import the host's manifest");

        // Now stored, the host's manifest is what the index name means,
        // in this store as in a reopened one.
        assert_eq!(store.resolve(NAME).expect("resolve").to_string(), ids[host]);
        let expected = {
            let mut e = vec![
                (
                    ids[host].clone(),
                    vec!["example.test/host:1".to_owned(), NAME.to_owned()],
                ),
                (ids[other].clone(), Vec::new()),
            ];
            e.sort();
            e
        };
        let sorted = |store: &Store| {
            let mut all: Vec<(String, Vec<String>)> = listed(store)
                .into_iter()
                .map(|(id, mut names)| {
                    names.sort();
                    (id, names)
                })
                .collect();
            all.sort();
            all
        };
        assert_eq!(sorted(&store), expected);
        drop(store);
        assert_eq!(sorted(&open(&root, backend)), expected);
    });
}

/// Flips the last byte of the content blob `digest` of the store at `root`.
fn corrupt_content(root: &Path, backend: Backend, digest: &Digest) {
    match backend {
        Backend::Sqlite => {
            let db = rusqlite::Connection::open(root.join("content.db")).expect("open db");
            let mut data: Vec<u8> = db
                .query_row(
                    "SELECT data FROM content WHERE digest = ?1",
                    [digest.as_str()],
                    |row| row.get(0),
                )
                .expect("an inline blob");
            let last = data.len() - 1;
            data[last] ^= 0xff;
            db.execute(
                "UPDATE content SET data = ?1 WHERE digest = ?2",
                rusqlite::params![data, digest.as_str()],
            )
            .expect("update");
        }
        Backend::Fs => {
            // The content backend's own root is `<root>/content`.
            let path = root.join("content/content/sha256").join(digest.encoded());
            let mut bytes = std::fs::read(&path).expect("read blob");
            let last = bytes.len() - 1;
            bytes[last] ^= 0xff;
            std::fs::write(&path, bytes).expect("write blob");
        }
        Backend::Postgres => panic!("these tests damage local stores only"),
    }
}

#[test]
fn a_corrupt_manifest_is_found_by_fsck_and_the_name_then_means_the_next_platform() {
    each_backend(|backend, tmp| {
        let layout = tmp.join("layout");
        let (ids, manifests) = multi_platform_layout(&layout);
        let root = tmp.join("store");
        let store = open(&root, backend);
        store
            .import_with(&layout, &ImportOptions::with_platform(PlatformChoice::All))
            .expect("import all");
        let meant = host_entry().unwrap_or(0);
        drop(store);
        let manifest: Digest = manifests[meant]["digest"]
            .as_str()
            .expect("digest")
            .parse()
            .expect("digest");
        corrupt_content(&root, backend, &manifest);

        // The store opens. What the name means is a derived record: it
        // still says the host's image until fsck finds the damage, deletes
        // the corrupt manifest and re-derives the name, which then means
        // the next stored platform in index order.
        let next = if meant == 0 { 1 } else { 0 };
        let store = open(&root, backend);
        assert_eq!(
            store.resolve(NAME).expect("resolve").to_string(),
            ids[meant]
        );
        let fsck = store.fsck(true).expect("fsck");
        let problems: Vec<String> = fsck.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            matches!(&fsck.problems[0], imgstore::FsckProblem::CorruptBlob { digest, .. } if digest == &manifest),
            "{problems:?}"
        );
        assert!(
            matches!(
                &fsck.problems[1],
                imgstore::FsckProblem::Drift {
                    structure: "name index",
                    ..
                }
            ),
            "{problems:?}"
        );
        assert_eq!(store.resolve(NAME).expect("resolve").to_string(), ids[next]);
        assert!(store.fsck(false).expect("fsck").problems.is_empty());
    });
}

#[test]
fn one_name_on_several_platforms_of_index_json_goes_to_the_hosts() {
    each_backend(|backend, tmp| {
        // index.json itself lists the platforms' manifests, each with the
        // name (as buildx and skopeo write an OCI layout); the host's last.
        let layout = tmp.join("layout");
        new_layout(&layout);
        let order = [1, 2, 0];
        let images: Vec<(Value, String)> = PLATFORMS
            .iter()
            .map(|p| platform_image(&layout, p))
            .collect();
        let entries: Vec<Value> = order
            .iter()
            .map(|&i| {
                let mut entry = images[i].0.clone();
                entry["annotations"] = json!({"org.opencontainers.image.ref.name": NAME});
                entry
            })
            .collect();
        write_index_json(&layout, entries);
        let store = open(&tmp.join("store"), backend);
        let imported = store
            .import_with(&layout, &ImportOptions::with_platform(PlatformChoice::All))
            .expect("import all");
        assert_eq!(imported.len(), 3);
        // Without a host entry, the first in index order.
        let meant = host_entry().unwrap_or(order[0]);
        let id = &images[meant].1;
        assert_eq!(&store.resolve(NAME).expect("resolve").to_string(), id);
        let named: Vec<&imgstore::Imported> =
            imported.iter().filter(|i| !i.names.is_empty()).collect();
        assert_eq!(named.len(), 1);
        assert_eq!(&named[0].id.to_string(), id);
        assert_eq!(named[0].names, [NAME]);
    });
}
