//! Import from any `Read` and export to any `Write` (`docker load < x.tar`,
//! `docker save IMAGE > x.tar`), `remove_with` and its parent pruning, on
//! both backends.

use std::io::{Read, Write};

use imgstore::backend::ErrorKind;
use imgstore::{Error, ExportFormat, ImportOptions, RemoveOptions};

mod common;

use common::{BACKENDS, corpus, expected_image, open};

const MULTI: &str = "docker/docker-save-multi.docker.tar";
const REPO: &str = "registry.demo.test/demo";

/// A reader that hands out at most 7 bytes a call, as a slow pipe.
struct Trickle<R>(R);

impl<R: Read> Read for Trickle<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(7);
        self.0.read(&mut buf[..n])
    }
}

fn names(imported: &[imgstore::Imported]) -> Vec<String> {
    let mut names: Vec<String> = imported
        .iter()
        .flat_map(|image| image.names.iter().cloned())
        .collect();
    names.sort();
    names
}

#[test]
fn import_reader_takes_plain_and_gzip_tars_and_leaves_no_temporary_file() {
    let corpus = corpus();
    let bytes = std::fs::read(corpus.join(MULTI)).expect("read fixture");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(&bytes).expect("compress");
    let gzipped = gzip.finish().expect("compress");
    for backend in BACKENDS {
        for input in [&bytes, &gzipped] {
            let root = tempfile::tempdir().expect("temp dir");
            let store = open(root.path(), backend);
            let imported = store
                .import_reader(
                    Trickle(input.as_slice()),
                    "stdin",
                    &ImportOptions::default(),
                )
                .expect("import from a reader");
            assert_eq!(
                names(&imported),
                [
                    format!("{REPO}/base:v1"),
                    format!("{REPO}/child:v1"),
                    format!("{REPO}/sibling:v1"),
                ]
            );
            let leftovers = std::fs::read_dir(root.path().join("tmp"))
                .map(|entries| entries.count())
                .unwrap_or(0);
            assert_eq!(leftovers, 0, "{backend:?}");
        }
    }
}

#[test]
fn import_reader_names_the_stream_in_errors_and_changes_nothing() {
    let root = tempfile::tempdir().expect("temp dir");
    let store = open(root.path(), BACKENDS[0]);
    let err = store
        .import_reader(&b"not a tar"[..], "stdin", &ImportOptions::default())
        .expect_err("not a tar");
    assert!(
        matches!(&err, Error::InvalidArchive { path, .. } if path.as_os_str() == "stdin"),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(store.images().expect("list images").is_empty());

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("the pipe broke"))
        }
    }
    let err = store
        .import_reader(Failing, "stdin", &ImportOptions::default())
        .expect_err("read fails");
    assert_eq!(err.to_string(), "read stdin: the pipe broke");
}

#[test]
fn export_to_writer_writes_the_bytes_export_writes_to_a_file() {
    let corpus = corpus();
    for backend in BACKENDS {
        let root = tempfile::tempdir().expect("temp dir");
        let store = open(root.path(), backend);
        store.import(corpus.join(MULTI)).expect("import");
        let images = [format!("{REPO}/child:v1"), format!("{REPO}/base:v1")];
        let images: Vec<&str> = images.iter().map(String::as_str).collect();
        for format in [ExportFormat::DockerSave, ExportFormat::OciArchive] {
            let dir = tempfile::tempdir().expect("temp dir");
            let file = dir.path().join("out.tar");
            let to_file = store.export(&images, &file, format).expect("export");
            let mut streamed = Vec::new();
            let to_stream = store
                .export_to_writer(&images, &mut streamed, "stdout", format)
                .expect("export to a writer");
            assert!(streamed == std::fs::read(&file).expect("read export"));
            assert_eq!(to_stream.path.as_os_str(), "stdout");
            assert_eq!(to_stream.images, to_file.images);
            assert_eq!(
                (to_stream.blobs, to_stream.bytes),
                (to_file.blobs, to_file.bytes)
            );
        }
    }
}

#[test]
fn export_to_writer_refuses_a_layout_and_unknown_images_before_writing() {
    let root = tempfile::tempdir().expect("temp dir");
    let store = open(root.path(), BACKENDS[0]);
    store.import(corpus().join(MULTI)).expect("import");
    let mut out = Vec::new();
    let err = store
        .export_to_writer(
            &[&format!("{REPO}/base:v1")],
            &mut out,
            "stdout",
            ExportFormat::OciLayout,
        )
        .expect_err("a layout is a directory");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = store
        .export_to_writer(
            &[&format!("{REPO}/base:v1"), "nope:v1"],
            &mut out,
            "stdout",
            ExportFormat::DockerSave,
        )
        .expect_err("unknown image");
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(out.is_empty());
}

#[test]
fn remove_prunes_dangling_parents_unless_told_not_to() {
    let corpus = corpus();
    let base = expected_image(&corpus, "base")["image_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let child = expected_image(&corpus, "child")["image_id"]
        .as_str()
        .expect("id")
        .to_owned();
    for backend in BACKENDS {
        for prune in [true, false] {
            let root = tempfile::tempdir().expect("temp dir");
            let store = open(root.path(), backend);
            store.import(corpus.join(MULTI)).expect("import");
            store.set_parent(&child, &base).expect("set parent");
            // Its name gone, base stays: child still needs it.
            let report = store
                .remove(&format!("{REPO}/base:v1"), false)
                .expect("untag base");
            assert!(report.deleted.is_empty());
            let report = store
                .remove_with(
                    &format!("{REPO}/child:v1"),
                    &RemoveOptions {
                        force: false,
                        prune,
                    },
                )
                .expect("remove child");
            let deleted: Vec<String> = report.deleted.iter().map(ToString::to_string).collect();
            if prune {
                assert_eq!(deleted, [child.clone(), base.clone()], "{backend:?}");
            } else {
                assert_eq!(deleted, std::slice::from_ref(&child), "{backend:?}");
            }
            let left: Vec<String> = store
                .images()
                .expect("list images")
                .iter()
                .map(|s| s.id.to_string())
                .collect();
            assert_eq!(left.contains(&base), !prune, "{backend:?}");
        }
    }
}

#[test]
fn remove_keeps_a_parent_with_a_name_or_another_child() {
    let corpus = corpus();
    let id = |name: &str| {
        expected_image(&corpus, name)["image_id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let (base, child, sibling) = (id("base"), id("child"), id("sibling"));
    let root = tempfile::tempdir().expect("temp dir");
    let store = open(root.path(), BACKENDS[0]);
    store.import(corpus.join(MULTI)).expect("import");
    store.set_parent(&child, &base).expect("set parent");
    store.set_parent(&sibling, &base).expect("set parent");
    // Named: kept.
    let report = store
        .remove(&format!("{REPO}/child:v1"), false)
        .expect("remove child");
    assert_eq!(report.deleted.len(), 1);
    assert!(
        store
            .images()
            .expect("list images")
            .iter()
            .any(|s| s.id.to_string() == base)
    );
    store
        .remove(&format!("{REPO}/base:v1"), false)
        .expect("untag base");
    // Nameless, but sibling is its child still: kept, then pruned with it.
    let report = store
        .remove(&format!("{REPO}/sibling:v1"), false)
        .expect("remove sibling");
    let deleted: Vec<String> = report.deleted.iter().map(ToString::to_string).collect();
    assert_eq!(deleted, [sibling, base]);
    assert!(store.images().expect("list images").is_empty());
}
