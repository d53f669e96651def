//! What the facade reports for Docker's messages, on both backends: the
//! layers `remove` and `prune` free and the space as Docker counts it, the
//! blobs left for `gc`, the names an import moves, and which names have a
//! digest to show (a manifest that came with the image).

use imgstore::refs::Descriptor;
use imgstore::{SYNTHESIZED_MANIFEST, Store, digest_shown};

mod common;

use common::{BACKENDS, corpus, open};

const REPO: &str = "registry.demo.test/demo";
const CHILD_ID: &str = "sha256:d96e5dc192657458171bcdd281fbf5983337235e9e6a0a63c3082fcb8b19def4";
const BASE_ID: &str = "sha256:ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb";

fn loaded(root: &std::path::Path, backend: imgstore::Backend) -> Store {
    let store = open(root, backend);
    store
        .import(corpus().join("docker/docker-save-multi.docker.tar"))
        .expect("import");
    store
}

#[test]
fn remove_reports_the_layers_it_frees_and_dockers_size() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = loaded(dir.path(), backend);
        let report = store
            .remove(&format!("{REPO}/child:v1"), false)
            .expect("rmi");
        assert_eq!(report.untagged, [format!("{REPO}/child:v1")]);
        assert_eq!(report.deleted.len(), 1);
        assert_eq!(report.deleted[0].as_str(), CHILD_ID);
        // Docker printed exactly this chain ID (fixtures/docker/rmi-child.txt).
        let layers: Vec<String> = report
            .deleted_layers
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            layers,
            ["sha256:381c7400999e9fee7aab180750d5eb8a243d6898400009c7b1b121f7e4734f95"],
            "{backend:?}"
        );
        assert_eq!(report.released_layers, 1);
        // The 8 bytes of files in that layer, not its tar's size.
        assert_eq!(report.space_reclaimed, 8, "{backend:?}");
        // Its config and its (written) manifest stay for gc.
        assert_eq!(report.blobs_left_for_gc.len(), 2, "{backend:?}");
        assert!(
            report
                .blobs_left_for_gc
                .iter()
                .any(|digest| digest.as_str() == CHILD_ID)
        );

        // Untagging a name of an image with another name frees nothing.
        store
            .tag(&format!("{REPO}/base:v1"), "again:v1")
            .expect("tag");
        let report = store.remove("again:v1", false).expect("untag");
        assert!(report.deleted.is_empty());
        assert!(report.deleted_layers.is_empty());
        assert_eq!(report.space_reclaimed, 0);
        assert!(report.blobs_left_for_gc.is_empty());
    }
}

#[test]
fn prune_groups_what_each_image_freed_and_sums_dockers_sizes() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = loaded(dir.path(), backend);
        store
            .remove(&format!("{REPO}/child:v1"), false)
            .expect("rmi");
        let report = store.prune(true).expect("prune");
        assert_eq!(report.images.len(), 2, "{backend:?}");
        // Docker: "Total reclaimed space: 117B" (fixtures/docker/prune-a.txt).
        assert_eq!(report.space_reclaimed, 117, "{backend:?}");
        let sum: u64 = report.images.iter().map(|i| i.space_reclaimed).sum();
        assert_eq!(sum, 117);
        let mut layers: Vec<String> = report
            .images
            .iter()
            .flat_map(|image| image.deleted_layers.iter().map(ToString::to_string))
            .collect();
        layers.sort();
        assert_eq!(
            layers,
            [
                "sha256:47e3838922fc249f2965ad71c1f14baaba2d2b031acc51cfd5ea7baa6570f88a",
                "sha256:569cf944096d7893709fc5350ea142fb57efdb54d299cbd7eb3f9d29e1f0a3a0",
                "sha256:8016075873266f5250310088b59f29b5cc73261e2707b06198527df87ff09f9f",
                "sha256:98b7f2d6800408905b3151f01df2bee4aa74844561f27fa4c0cdf8696b9013e7",
            ]
        );
        // The flat lists agree with the groups.
        assert_eq!(report.released_layers, 4);
        assert_eq!(report.untagged.len(), 2);
        assert_eq!(report.deleted.len(), 2);
        for image in &report.images {
            assert_eq!(image.deleted.len(), 1);
            assert_eq!(image.untagged.len(), 1);
        }
        assert_eq!(report.blobs_left_for_gc.len(), 4, "{backend:?}");
        let gc = store.gc().expect("gc");
        // Those four and the child's two, left by the rmi before.
        assert_eq!(gc.blobs_removed, 6, "{backend:?}");
    }
}

#[test]
fn an_import_says_which_names_it_took_from_another_image() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = loaded(dir.path(), backend);
        let base = format!("{REPO}/base:v1");
        store.tag(&format!("{REPO}/child:v1"), &base).expect("tag");
        let imported = store
            .import(corpus().join("docker/base.docker.tar"))
            .expect("import");
        assert_eq!(imported.len(), 1);
        assert_eq!(imported[0].id.as_str(), BASE_ID);
        let renamed: Vec<(String, String)> = imported[0]
            .renamed
            .iter()
            .map(|(name, id)| (name.clone(), id.to_string()))
            .collect();
        assert_eq!(
            renamed,
            [(base.clone(), CHILD_ID.to_owned())],
            "{backend:?}"
        );
        // Again: the name is where it was, nothing moves.
        let again = store
            .import(corpus().join("docker/base.docker.tar"))
            .expect("import");
        assert!(again[0].renamed.is_empty());
    }
}

#[test]
fn only_a_manifest_that_came_with_the_image_has_a_digest_to_show() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = loaded(dir.path(), backend);
        store
            .tag(&format!("{REPO}/base:v1"), "again:v1")
            .expect("tag");
        // docker save: the facade wrote the manifest; the mark stays
        // through tag.
        for name in [
            format!("{REPO}/base:v1"),
            "docker.io/library/again:v1".into(),
        ] {
            let record = store.refs().get(store.namespace(), &name).expect("name");
            assert_eq!(
                record
                    .target
                    .annotations
                    .get(SYNTHESIZED_MANIFEST)
                    .map(String::as_str),
                Some("docker-save"),
                "{name}"
            );
            assert_eq!(digest_shown(&record.target), None);
        }
        assert!(store.name_digests().expect("digests").is_empty());
        assert!(
            store
                .inspect("again:v1")
                .expect("inspect")
                .repo_digests
                .is_empty()
        );

        // An OCI layout brought its manifests: their digests show.
        let other = tempfile::tempdir().expect("tempdir");
        let store = open(other.path(), backend);
        store.import(corpus().join("oci/main")).expect("import");
        let digests = store.name_digests().expect("digests");
        assert!(!digests.is_empty());
        let view = store.inspect(&format!("{REPO}/base:v1")).expect("inspect");
        let digest = &digests[&format!("{REPO}/base:v1")];
        assert_eq!(view.repo_digests, [format!("{REPO}/base@{digest}")]);
    }
    let plain = Descriptor::new(
        "application/vnd.oci.image.manifest.v1+json",
        BASE_ID.parse().expect("digest"),
        10,
    );
    assert_eq!(digest_shown(&plain), Some(&plain.digest));
}
