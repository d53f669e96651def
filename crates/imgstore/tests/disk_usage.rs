//! disk_usage and the images' SIZE against what real Docker reported for the
//! corpus (expected/docker-view.json), on both backends and from each kind
//! of input.

use std::path::Path;

use imgstore::ImageUsage;
use serde_json::Value;

mod common;

use common::{BACKENDS, corpus, import_corpus, json, open, strings};

/// (id, repo tags, size, shared size, unique size)
type Row = (String, Vec<String>, u64, u64, u64);

fn docker_rows(corpus: &Path) -> Vec<Row> {
    let view = json(corpus.join("expected/docker-view.json"));
    let mut rows: Vec<Row> = view["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|image: &Value| {
            (
                image["id"].as_str().expect("id").to_owned(),
                strings(&image["repo_tags"]),
                image["size"].as_u64().expect("size"),
                image["shared_size"].as_u64().expect("shared_size"),
                image["unique_size"].as_u64().expect("unique_size"),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn rows(usage: &[ImageUsage]) -> Vec<Row> {
    usage
        .iter()
        .map(|u| {
            (
                u.id.to_string(),
                u.references.clone(),
                u.size,
                u.shared_size,
                u.unique_size,
            )
        })
        .collect()
}

#[test]
fn disk_usage_matches_real_docker_for_the_corpus() {
    let corpus = corpus();
    let want = docker_rows(&corpus);
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        import_corpus(&store, &corpus);
        let usage = store.disk_usage().expect("disk usage");
        assert_eq!(rows(&usage.images), want, "{backend:?}");
        // Docker's images SIZE is the same figure.
        for summary in store.images().expect("list images") {
            let row = want
                .iter()
                .find(|row| row.0 == summary.id.as_str())
                .expect("image in docker's view");
            assert_eq!(summary.size, row.2, "{}", summary.id);
        }
        // Every distinct layer once: base's three layers plus sibling's,
        // child's, withenv's and quirk's own one each.
        let distinct: u64 = want.iter().map(|row| row.4).sum::<u64>() + 82;
        assert_eq!(usage.layers_size, distinct);
        assert_eq!(usage.reclaimable, 0, "every image is named");
        assert!(usage.content_size > 0);
    }
}

#[test]
fn sizes_are_the_same_from_a_docker_save_archive_alone() {
    let corpus = corpus();
    let want = docker_rows(&corpus);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), BACKENDS[0]);
    store
        .import_archive(corpus.join("docker/docker-save-multi.docker.tar"))
        .expect("import docker save");
    let usage = store.disk_usage().expect("disk usage");
    assert_eq!(usage.images.len(), 3);
    for image in &usage.images {
        let row = want
            .iter()
            .find(|row| row.0 == image.id.as_str())
            .expect("image in docker's view");
        // Sizes are per image; sharing depends on which images are stored.
        assert_eq!(image.size, row.2, "{}", image.id);
        assert_eq!(image.size, image.shared_size + image.unique_size);
    }
}

#[test]
fn an_unnamed_image_is_reclaimable_except_for_layers_named_images_use() {
    let corpus = corpus();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path(), BACKENDS[0]);
    import_corpus(&store, &corpus);
    let before = store.disk_usage().expect("disk usage");
    let child = before
        .images
        .iter()
        .find(|u| u.references == ["registry.demo.test/demo/child:v1"])
        .expect("child")
        .clone();
    store
        .untag("registry.demo.test/demo/child:v1")
        .expect("untag child");
    let after = store.disk_usage().expect("disk usage");
    // child's only own layer is reclaimable; the layers it shares with
    // base stay in use.
    assert_eq!(after.reclaimable, child.unique_size);
    assert_eq!(after.layers_size, before.layers_size);
}

#[test]
fn layer_records_made_their_own_parents_end_the_walk() {
    use imgstore::backend::{Batch, RecordStore};
    let corpus = corpus();
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path(), backend);
        store
            .import_archive(corpus.join("docker/docker-save-multi.docker.tar"))
            .expect("import docker save");
        let before = store.disk_usage().expect("disk usage");
        // Corrupt records: every layer its own parent (their keys no longer
        // follow from their fields, which fsck reports), so every image's
        // walk down its chain would loop.
        let mut batch = Batch::new();
        for chain_id in store.layers().map().expect("layers").keys() {
            let key = chain_id.to_string();
            let raw = store
                .content()
                .get_record("layers", &key)
                .expect("read")
                .expect("the record");
            let mut record: Value = serde_json::from_slice(&raw).expect("json");
            record["parent"] = Value::String(key.clone());
            batch.put("layers", &key, serde_json::to_vec(&record).expect("json"));
        }
        store.content().apply(&batch).expect("write");

        let after = store.disk_usage().expect("disk usage ends");
        assert_eq!(after.images.len(), before.images.len(), "{backend:?}");
        assert_eq!(after.layers_size, before.layers_size, "{backend:?}");
    }
}
