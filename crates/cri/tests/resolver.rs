//! `StoreResolver` over real stores: names -> manifest (or index) -> config -> image.

use std::sync::Arc;

use imgstore_backend::StoreBackend;
use imgstore_cri::{PINNED_LABEL, RefCache, StoreResolver};
use imgstore_digest::Digest;
use imgstore_image::{ImageStore, Store};
use imgstore_layer::{LayerStore, NewLayer};
use imgstore_refs::{Descriptor, ImageRecord, RefStore};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// This host's architecture, by the one rule (`imgstore_cri::platform`).
fn arch() -> String {
    imgstore_cri::Platform::host().architecture
}

#[test]
fn resolves_names_through_manifests_and_indexes_and_rebuilds_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let backend =
        Arc::new(imgstore_sqlite::SqliteBackend::open(dir.path().join("store.db")).unwrap());
    let layers = Arc::new(LayerStore::open(backend.clone()).unwrap());
    let diff = Digest::from_bytes(b"layer tar");
    layers
        .register(NewLayer::new(diff.clone(), 9), None)
        .unwrap();
    let images = Store::open(backend.clone(), layers).unwrap();
    let config = format!(r#"{{"os":"linux","rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#);
    let id = images.create(config.as_bytes()).unwrap();

    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{id}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":123}}]}}"#,
        config.len(),
        Digest::from_bytes(b"gz")
    );
    let manifest_digest = backend.set(manifest.as_bytes()).unwrap();
    let other = r#"{"schemaVersion":2,"config":{"digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1}}"#;
    let other_digest = backend.set(other.as_bytes()).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{MANIFEST}","digest":"{other_digest}","size":{},"platform":{{"os":"windows","architecture":"{}"}}}},{{"mediaType":"{MANIFEST}","digest":"{manifest_digest}","size":{},"platform":{{"os":"linux","architecture":"{}"}}}}]}}"#,
        other.len(),
        arch(),
        manifest.len(),
        arch()
    );
    let index_digest = backend.set(index.as_bytes()).unwrap();

    let refs = RefStore::open(backend.clone()).unwrap();
    let single = ImageRecord::new(
        "docker.io/library/app:v1",
        Descriptor::new(MANIFEST, manifest_digest, manifest.len() as i64),
    )
    .with_label(PINNED_LABEL, "pinned");
    refs.create("default", single).unwrap();
    let multi = ImageRecord::new(
        "docker.io/library/app:multi",
        Descriptor::new(INDEX, index_digest, index.len() as i64),
    );
    refs.create("default", multi).unwrap();
    let dangling = ImageRecord::new(
        "docker.io/library/gone:v1",
        Descriptor::new(MANIFEST, Digest::from_bytes(b"no such manifest"), 10),
    );
    refs.create("default", dangling).unwrap();

    let resolver = StoreResolver {
        namespace: "default",
        refs: &refs,
        content: backend.as_ref(),
        images: &images,
    };
    use imgstore_cri::ImageResolver;
    let one = resolver
        .resolve("docker.io/library/app:v1")
        .unwrap()
        .unwrap();
    assert_eq!(one.id.as_ref(), Some(&id));
    assert_eq!(one.chain_id, diff.to_string());
    assert_eq!(one.size, (manifest.len() + config.len() + 123) as u64);
    assert!(one.pinned);
    assert_eq!(one.spec.as_ref().unwrap().id(), &id);
    let from_index = resolver
        .resolve("docker.io/library/app:multi")
        .unwrap()
        .unwrap();
    assert_eq!(
        from_index.id.as_ref(),
        Some(&id),
        "the host platform's manifest"
    );
    assert!(!from_index.pinned);
    assert!(
        resolver
            .resolve("docker.io/library/gone:v1")
            .unwrap()
            .is_none()
    );
    assert!(
        resolver
            .resolve("docker.io/library/never:v1")
            .unwrap()
            .is_none()
    );

    // In one batch: the same answers, in order, duplicates included (300
    // asks take SQLite's bulk read).
    let mut asked = vec!["docker.io/library/gone:v1", "docker.io/library/never:v1"];
    asked.extend(std::iter::repeat_n("docker.io/library/app:v1", 150));
    asked.extend(std::iter::repeat_n("docker.io/library/app:multi", 150));
    let many = resolver.resolve_many(&asked).unwrap();
    assert_eq!(many.len(), 302);
    assert!(many[0].is_none() && many[1].is_none());
    for (i, image) in many.iter().enumerate().skip(2) {
        let image = image.as_ref().unwrap();
        assert_eq!(image.id.as_ref(), Some(&id));
        assert_eq!(image.references, [asked[i]]);
        assert_eq!(image.pinned, i < 152);
        assert_eq!(image.size, one.size);
    }

    // A manifest of an unusual shape (a layer that is not an object) is read
    // as any JSON: what is not a size counts for nothing.
    let odd = format!(r#"{{"config":{{"digest":"{id}","size":"7"}},"layers":[1,{{"size":5}}]}}"#);
    let odd_digest = backend.set(odd.as_bytes()).unwrap();
    refs.create(
        "default",
        ImageRecord::new(
            "docker.io/library/odd:v1",
            Descriptor::new(MANIFEST, odd_digest, odd.len() as i64),
        ),
    )
    .unwrap();
    let odd_image = resolver
        .resolve("docker.io/library/odd:v1")
        .unwrap()
        .unwrap();
    assert_eq!(odd_image.size, (odd.len() + 5) as u64);
    refs.delete("default", "docker.io/library/odd:v1", None)
        .unwrap();

    let names: Vec<String> = refs
        .list("default", &[])
        .unwrap()
        .into_iter()
        .map(|r| r.name.clone())
        .collect();
    let cache = RefCache::rebuild(&resolver, &names).unwrap();
    assert_eq!(cache.len(), 1);
    let cached = cache.get(&id.digest().encoded()[..12]).unwrap();
    assert_eq!(
        cached.references,
        ["docker.io/library/app:multi", "docker.io/library/app:v1"]
    );
    assert!(cached.pinned);
    assert_eq!(cache.resolve("docker.io/library/app:v1").unwrap(), id);
}

#[test]
fn a_name_of_an_index_means_the_hosts_stored_manifest_else_the_first_stored() {
    let dir = tempfile::tempdir().unwrap();
    let backend =
        Arc::new(imgstore_sqlite::SqliteBackend::open(dir.path().join("store.db")).unwrap());
    let layers = Arc::new(LayerStore::open(backend.clone()).unwrap());
    let images = Store::open(backend.clone(), layers).unwrap();
    // Images without layers, told apart by their config; manifests stored
    // (or not) beside them.
    let manifest_of = |label: &str, store: bool| {
        let config = format!(
            r#"{{"os":"linux","config":{{"Labels":{{"which":"{label}"}}}},"rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let id = images.create(config.as_bytes()).unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"digest":"{id}","size":{}}},"layers":[]}}"#,
            config.len()
        );
        let digest = if store {
            backend.set(manifest.as_bytes()).unwrap()
        } else {
            Digest::from_bytes(manifest.as_bytes())
        };
        (id, digest, manifest.len())
    };
    let entry = |(_, digest, size): &(_, Digest, usize), platform: Option<(&str, &str)>| {
        let platform = platform.map_or(String::new(), |(os, arch)| {
            format!(r#","platform":{{"os":"{os}","architecture":"{arch}"}}"#)
        });
        format!(r#"{{"mediaType":"{MANIFEST}","digest":"{digest}","size":{size}{platform}}}"#)
    };
    let store_index = |entries: &[String]| {
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            entries.join(",")
        );
        let digest = backend.set(index.as_bytes()).unwrap();
        Descriptor::new(INDEX, digest, index.len() as i64)
    };
    let host = arch();
    let elsewhere = manifest_of("elsewhere", true);
    let host_missing = manifest_of("host, not stored", false);
    let host_nested = manifest_of("host, nested", true);
    let other = manifest_of("other, not stored", false);

    // The host's own entry is missing; the host's manifest under a nested
    // index (no platform) ranks before another platform's.
    let nested = store_index(&[entry(&host_nested, Some(("linux", &host)))]);
    let nested_entry = format!(
        r#"{{"mediaType":"{INDEX}","digest":"{}","size":{}}}"#,
        nested.digest, nested.size
    );
    let first = store_index(&[
        entry(&elsewhere, Some(("plan9", "nowhere"))),
        entry(&host_missing, Some(("linux", &host))),
        nested_entry,
    ]);
    // No host entry: the first stored in index order.
    let second = store_index(&[
        entry(&other, Some(("plan9", "other"))),
        entry(&elsewhere, Some(("plan9", "nowhere"))),
    ]);
    let refs = RefStore::open(backend.clone()).unwrap();
    refs.create("default", ImageRecord::new("example.test/first:1", first))
        .unwrap();
    refs.create("default", ImageRecord::new("example.test/second:1", second))
        .unwrap();

    let resolver = StoreResolver {
        namespace: "default",
        refs: &refs,
        content: backend.as_ref(),
        images: &images,
    };
    use imgstore_cri::ImageResolver;
    let resolved = resolver
        .resolve_many(&["example.test/first:1", "example.test/second:1"])
        .unwrap();
    let ids: Vec<_> = resolved
        .iter()
        .map(|image| image.as_ref().and_then(|i| i.id.clone()))
        .collect();
    assert_eq!(ids, [Some(host_nested.0), Some(elsewhere.0.clone())]);

    // A manifest whose image is gone is not what the name means either.
    images.delete(&elsewhere.0).unwrap();
    assert!(resolver.resolve("example.test/second:1").unwrap().is_none());
}
