//! moby's image store tests (PEER_SEMANTICS §5) and the issue's extra cases,
//! run against every backend with a real layer store.

use std::path::Path;
use std::sync::Arc;

use imgstore_backend::{ErrorKind, RecordStore, StoreBackend};
use imgstore_digest::Digest;
use imgstore_image::{ImageError, ImageId, ImageProblem, ImageStore, Store};
use imgstore_layer::{ChainId, LayerGetReleaser, LayerStore, NewLayer};

fn open_sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).unwrap())
}

fn open_fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).unwrap())
}

imgstore_backend::backend_matrix!(
    [
        create_refuses_a_config_without_rootfs,
        rebuild_indexes_valid_configs_and_check_reports_invalid_ones,
        add_then_delete_parent_orphans_child_across_reopen,
        search_after_delete_is_not_found,
        delete_of_a_missing_image_is_not_found,
        set_parent_moves_the_child,
        set_parent_refuses_self_and_cycles,
        rebuild_ignores_and_check_reports_parent_cycles_on_disk,
        garbage_last_updated_is_data_corruption,
        last_updated_is_none_until_set_and_survives_reopen,
        built_locally_is_a_flag,
        len_counts_every_image,
        create_from_eight_threads_gives_one_image_and_one_layer_reference,
        failed_create_leaves_no_trace,
        delete_releases_the_top_layer_in_cascade,
        check_reports_missing_layer_and_foreign_os_and_create_refuses_it,
        ambiguous_search_is_not_not_found,
        raw_config_is_kept_byte_for_byte,
        state_is_identical_after_reopen,
    ]
    sqlite => open_sqlite,
    fs => open_fs,
);

const C_ABC: &str = r#"{"comment": "abc", "rootfs": {"type": "layers"}}"#;
const C_DEF_FOO: &str = r#"{"comment": "def", "rootfs": {"type": "layers", "diff_ids": ["2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}}"#;
const C_ABC_FOO: &str = r#"{"comment": "abc", "rootfs": {"type": "layers", "diff_ids": ["2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}}"#;
const ID_ABC: &str = "sha256:f40b4ddcd4289be71c5f8f305c5b8babb4266ef2c39bc599ac968dfc6c8b720e";
const ID_DEF_FOO: &str = "sha256:ad40fbe735a82429cce766e07cd50d72d02356dd56aa4167309e1d0015a8f551";
const ID_ABC_FOO: &str = "sha256:8d25a9c45df515f9d0fe8e4a6b1c64dd3b965a84790ddbcc7954bb9bc89eb993";

type Images<B> = Store<B, LayerStore<B>>;

/// A backend, a layer store holding the `foo` layer (as moby's configs name
/// it) and an image store over both.
fn open_store<B: StoreBackend + RecordStore>(backend: Arc<B>) -> Images<B> {
    let layers = Arc::new(LayerStore::open(backend.clone()).unwrap());
    layers.register(NewLayer::new(foo(), 3), None).unwrap();
    Store::open(backend, layers).unwrap()
}

fn foo() -> Digest {
    Digest::from_bytes(b"foo")
}

fn id(s: &str) -> ImageId {
    s.parse().unwrap()
}

fn abc(i: usize) -> String {
    format!(r#"{{"comment": "abc{i}", "rootfs": {{"type": "layers"}}}}"#)
}

fn create_refuses_a_config_without_rootfs<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let err = store.create(b"{}").unwrap_err();
    assert_eq!(err.to_string(), "invalid image JSON, no RootFS key");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(store.is_empty().unwrap());
    let mut walked = 0;
    backend
        .walk(&mut |_| {
            walked += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(walked, 0);
}

fn rebuild_indexes_valid_configs_and_check_reports_invalid_ones<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let id1 = backend.set(C_ABC.as_bytes()).unwrap();
    let invalid = backend.set(b"invalid").unwrap();
    let id2 = backend.set(C_DEF_FOO.as_bytes()).unwrap();
    assert_eq!(id1.as_str(), ID_ABC);
    assert_eq!(
        invalid.as_str(),
        "sha256:f1234d75178d892a133a410355a5a990cf75d2f33eba25d575943d4df632f3a4"
    );
    assert_eq!(id2.as_str(), ID_DEF_FOO);
    backend
        .set_metadata(&id2, "parent", id1.as_str().as_bytes())
        .unwrap();

    let store = open_store(backend);
    assert!(store.is_empty().unwrap(), "not indexed yet");
    assert_eq!(
        store.rebuild_index().unwrap(),
        4,
        "two summaries, a link and the hold on foo"
    );
    assert_eq!(store.rebuild_index().unwrap(), 0, "idempotent");
    assert_eq!(store.map().unwrap().len(), 2);
    let problems = store.check().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        matches!(&problems[0], ImageProblem::UnusableConfig { id, reason }
            if id.digest() == &invalid && reason.starts_with("invalid image JSON")),
        "{problems:?}"
    );
    assert!(!problems[0].is_repairable());
    let (id1, id2) = (ImageId::from(id1), ImageId::from(id2));
    let image1 = store.get(&id1).unwrap();
    assert_eq!(image1.id(), &id1);
    assert_eq!(image1.id().to_string(), ID_ABC);
    assert_eq!(image1.comment(), Some("abc"));
    assert_eq!(store.get(&id2).unwrap().comment(), Some("def"));
    let err = store.get_parent(&id1).unwrap_err();
    assert!(matches!(err, ImageError::NoParent { .. }), "{err}");
    assert!(err.is_not_found());
    assert_eq!(store.get_parent(&id2).unwrap(), id1);
    assert_eq!(store.children(&id1).unwrap(), std::slice::from_ref(&id2));
    assert_eq!(store.heads().unwrap().keys().collect::<Vec<_>>(), [&id2]);
    assert_eq!(store.search(&ID_ABC[..10]).unwrap(), id1);
    assert_eq!(store.search(&ID_ABC[7..13]).unwrap(), id1);
    let err = store.search(&ID_ABC[8..13]).unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(err.to_string(), "No such image: 40b4d");
}

fn add_then_delete_parent_orphans_child_across_reopen<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let id1 = store.create(C_ABC_FOO.as_bytes()).unwrap();
    assert_eq!(id1.as_str(), ID_ABC_FOO);
    assert_eq!(store.get(&id1).unwrap().comment(), Some("abc"));
    let id2 = store.create(C_DEF_FOO.as_bytes()).unwrap();
    store.set_parent(&id2, &id1).unwrap();
    assert_eq!(store.get_parent(&id2).unwrap(), id1);
    store.delete(&id1).unwrap();
    assert!(store.get(&id1).unwrap_err().is_not_found());
    assert!(store.get(&id2).is_ok());
    assert!(matches!(
        store.get_parent(&id2),
        Err(ImageError::NoParent { .. })
    ));
    drop((store, backend));
    let store = open_store(open(dir.path()));
    assert_eq!(store.len().unwrap(), 1);
    assert!(matches!(
        store.get_parent(&id2),
        Err(ImageError::NoParent { .. })
    ));
    assert!(store.get(&id1).unwrap_err().is_not_found());
}

fn search_after_delete_is_not_found<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(open(dir.path()));
    let id = store.create(C_ABC.as_bytes()).unwrap();
    assert_eq!(store.search(&ID_ABC[..15]).unwrap(), id);
    store.delete(&id).unwrap();
    let err = store.search(&ID_ABC[..15]).unwrap_err();
    assert!(err.is_not_found());
    assert!(err.to_string().contains("No such image"));
}

fn delete_of_a_missing_image_is_not_found<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(open(dir.path()));
    assert!(store.search("i_dont_exists").unwrap_err().is_not_found());
    assert!(store.delete(&id(ID_ABC)).unwrap_err().is_not_found());
}

fn set_parent_moves_the_child<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(open(dir.path()));
    let id1 = store.create(abc(1).as_bytes()).unwrap();
    let id2 = store.create(abc(2).as_bytes()).unwrap();
    let id3 = store.create(abc(3).as_bytes()).unwrap();
    assert_eq!(
        id1.as_str(),
        "sha256:e73205f339f4d72652de984df0b0375a932a6eec096c5af302ad3ad51adf85c9"
    );
    assert_eq!(
        id2.as_str(),
        "sha256:ad4ac594c2295e0b4ee6fc18dcb1b191dbbb6a2ff18820f824323e41532497bf"
    );
    assert_eq!(
        id3.as_str(),
        "sha256:6ac6b5508154e9d239b1597ab6e756d30a1ec893381461c94992eb8eaf885259"
    );
    store.set_parent(&id1, &id2).unwrap();
    assert_eq!(store.children(&id2).unwrap().len(), 1);
    store.set_parent(&id1, &id3).unwrap();
    assert_eq!(store.children(&id2).unwrap().len(), 0);
    assert_eq!(store.children(&id3).unwrap().len(), 1);
    let ghost = id(ID_DEF_FOO);
    let err = store.set_parent(&id1, &ghost).unwrap_err();
    assert!(
        matches!(err, ImageError::UnknownParent { .. }) && err.is_not_found(),
        "{err}"
    );
}

fn set_parent_refuses_self_and_cycles<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(open(dir.path()));
    let a = store.create(abc(1).as_bytes()).unwrap();
    let b = store.create(abc(2).as_bytes()).unwrap();
    let c = store.create(abc(3).as_bytes()).unwrap();
    assert!(matches!(
        store.set_parent(&a, &a),
        Err(ImageError::ParentCycle { .. })
    ));
    store.set_parent(&b, &a).unwrap();
    store.set_parent(&c, &b).unwrap();
    assert!(matches!(
        store.set_parent(&a, &c),
        Err(ImageError::ParentCycle { .. })
    ));
    assert!(
        matches!(store.get_parent(&a), Err(ImageError::NoParent { .. })),
        "refused change left nothing behind"
    );
}

/// Runs `call` on another thread; panics if it does not return within ten
/// seconds (a hang would otherwise stall the whole test run).
fn within_ten_seconds<T: Send + 'static>(call: impl FnOnce() -> T + Send + 'static) -> T {
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = send.send(call());
    });
    receive
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the call returned within ten seconds")
}

fn rebuild_ignores_and_check_reports_parent_cycles_on_disk<
    B: StoreBackend + RecordStore + 'static,
>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let mut ids: Vec<ImageId> = (1..=4)
        .map(|i| store.create(abc(i).as_bytes()).unwrap())
        .collect();
    ids.sort();
    let [a, b, c, d] = <[ImageId; 4]>::try_from(ids).unwrap();
    // What a moby imagedb can hold: a <-> b, c -> c; d -> a is fine.
    for (child, parent) in [(&a, &b), (&b, &a), (&c, &c), (&d, &a)] {
        backend
            .set_metadata(child.digest(), "parent", parent.as_str().as_bytes())
            .unwrap();
    }
    drop(store);
    let store = Arc::new(open_store(backend.clone()));
    store.rebuild_index().unwrap();
    assert_eq!(store.len().unwrap(), 4, "every image is listed");
    // Links are taken in ID order: a -> b holds, b -> a would close the cycle.
    assert_eq!(
        store.check().unwrap(),
        vec![
            ImageProblem::ParentCycle {
                id: b.clone(),
                parent: a.clone()
            },
            ImageProblem::ParentCycle {
                id: c.clone(),
                parent: c.clone()
            },
        ]
    );
    assert_eq!(store.get_parent(&a).unwrap(), b);
    assert_eq!(store.get_parent(&d).unwrap(), a);
    assert!(matches!(
        store.get_parent(&b),
        Err(ImageError::NoParent { .. })
    ));
    assert!(matches!(
        store.get_parent(&c),
        Err(ImageError::NoParent { .. })
    ));
    assert_eq!(store.children(&b).unwrap(), vec![a.clone()]);
    // Nothing was deleted: the stored links are still there.
    for (child, parent) in [(&b, &a), (&c, &c)] {
        assert_eq!(
            backend.get_metadata(child.digest(), "parent").unwrap(),
            parent.as_str().as_bytes()
        );
    }
    // set_parent returns (it used to loop forever holding the writer lock)
    // and refuses what would close a cycle with a typed error.
    let writer = Arc::clone(&store);
    let (c2, d2, b2) = (c.clone(), d.clone(), b.clone());
    let (moved, cycle) =
        within_ten_seconds(move || (writer.set_parent(&c2, &d2), writer.set_parent(&b2, &d2)));
    moved.unwrap();
    let cycle = cycle.unwrap_err();
    assert!(
        matches!(&cycle, ImageError::ParentCycle { id, parent } if id == &b && parent == &d),
        "{cycle}"
    );
    assert_eq!(cycle.kind(), ErrorKind::InvalidArgument);
    assert_eq!(store.get_parent(&c).unwrap(), d);
    // c's link is whole now; b's stays ignored, in a rebuild too.
    drop(store);
    let store = open_store(backend);
    let cycle = vec![ImageProblem::ParentCycle {
        id: b.clone(),
        parent: a.clone(),
    }];
    assert_eq!(store.check().unwrap(), cycle);
    assert_eq!(store.rebuild_index().unwrap(), 0);
    assert_eq!(store.check().unwrap(), cycle);
}

fn garbage_last_updated_is_data_corruption<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let id = store.create(abc(1).as_bytes()).unwrap();
    for garbage in [
        &b"yesterday"[..],
        b"2024-01-01T00:00:00+0\xc3\xa900",
        b"\xff\xfe",
    ] {
        backend
            .set_metadata(id.digest(), "lastUpdated", garbage)
            .unwrap();
        let err = store.get_last_updated(&id).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
        assert!(
            matches!(&err, ImageError::CorruptMetadata { id: of, key: "lastUpdated", .. } if of == &id),
            "{err}"
        );
    }
    // An empty value is "never set", as in moby.
    backend
        .set_metadata(id.digest(), "lastUpdated", b"")
        .unwrap();
    assert_eq!(store.get_last_updated(&id).unwrap(), None);
}

fn last_updated_is_none_until_set_and_survives_reopen<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let id = store.create(abc(1).as_bytes()).unwrap();
    assert_eq!(store.get_last_updated(&id).unwrap(), None);
    let before = std::time::SystemTime::now();
    store.set_last_updated(&id).unwrap();
    let stored = store.get_last_updated(&id).unwrap().unwrap();
    assert!(stored >= before - std::time::Duration::from_secs(1));
    let raw = String::from_utf8(backend.get_metadata(id.digest(), "lastUpdated").unwrap()).unwrap();
    assert!(
        raw.ends_with('Z') && raw.len() == 30,
        "RFC 3339 with nanoseconds: {raw}"
    );
    drop((store, backend));
    assert_eq!(
        open_store(open(dir.path())).get_last_updated(&id).unwrap(),
        Some(stored)
    );
}

fn built_locally_is_a_flag<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let id = store.create(abc(1).as_bytes()).unwrap();
    assert!(!store.is_built_locally(&id).unwrap());
    store.set_built_locally(&id).unwrap();
    assert!(store.is_built_locally(&id).unwrap());
    assert_eq!(
        backend.get_metadata(id.digest(), "builtLocally").unwrap(),
        [1]
    );
}

fn len_counts_every_image<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(open(dir.path()));
    for i in 0..10 {
        store.create(abc(i).as_bytes()).unwrap();
    }
    assert_eq!(store.len().unwrap(), 10);
    assert_eq!(store.map().unwrap().len(), 10);
    assert_eq!(store.summaries().unwrap().len(), 10);
}

fn create_from_eight_threads_gives_one_image_and_one_layer_reference<
    B: StoreBackend + RecordStore + 'static,
>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open_store(open(dir.path())));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || store.create(C_DEF_FOO.as_bytes()))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().unwrap().as_str(), ID_DEF_FOO);
    }
    assert_eq!(store.len().unwrap(), 1);
    let foo_layer = ChainId::base(foo());
    assert_eq!(
        store.layers().references(&foo_layer).unwrap(),
        Some(2),
        "fixture + one image reference"
    );
    assert_eq!(
        store.layers().holders(&foo_layer).unwrap(),
        [format!("image:{}", &ID_DEF_FOO[7..])]
    );
}

fn failed_create_leaves_no_trace<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let config = format!(
        r#"{{"rootfs": {{"type": "layers", "diff_ids": ["{}"]}}}}"#,
        Digest::from_bytes(b"unregistered")
    );
    let err = store.create(config.as_bytes()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(store.is_empty().unwrap());
    assert!(
        !backend
            .contains(&Digest::from_bytes(config.as_bytes()))
            .unwrap()
    );
    let bad_history = r#"{"rootfs": {"type": "layers"}, "history": [{"created_by": "RUN x"}]}"#;
    let err = store.create(bad_history.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .contains("too many non-empty layers in History section"),
        "{err}"
    );
    assert!(
        !backend
            .contains(&Digest::from_bytes(bad_history.as_bytes()))
            .unwrap()
    );
}

fn delete_releases_the_top_layer_in_cascade<B: StoreBackend + RecordStore>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let layers = Arc::new(LayerStore::open(backend.clone()).unwrap());
    let (a, b) = (Digest::from_bytes(b"a"), Digest::from_bytes(b"b"));
    let base = layers.register(NewLayer::new(a.clone(), 1), None).unwrap();
    let top = layers
        .register(NewLayer::new(b.clone(), 2), Some(base.chain_id()))
        .unwrap();
    let store = Store::open(backend, layers.clone()).unwrap();
    let config = format!(r#"{{"rootfs": {{"type": "layers", "diff_ids": ["{a}", "{b}"]}}}}"#);
    let id = store.create(config.as_bytes()).unwrap();
    layers.release(top.chain_id()).unwrap();
    layers.release(base.chain_id()).unwrap();
    assert_eq!(layers.len().unwrap(), 2, "held by the image");
    let holder = format!("image:{}", id.digest().encoded());
    assert_eq!(layers.holders(top.chain_id()).unwrap(), [holder]);
    let released = store.delete(&id).unwrap();
    assert_eq!(
        released
            .iter()
            .map(|m| m.diff_id.clone())
            .collect::<Vec<_>>(),
        [b, a]
    );
    assert!(layers.is_empty().unwrap());
}

fn check_reports_missing_layer_and_foreign_os_and_create_refuses_it<
    B: StoreBackend + RecordStore,
>(
    open: fn(&Path) -> Arc<B>,
) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let missing = backend
        .set(
            format!(
                r#"{{"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
                Digest::from_bytes(b"gone")
            )
            .as_bytes(),
        )
        .unwrap();
    let windows = backend
        .set(br#"{"os":"windows","rootfs":{"type":"layers"}}"#)
        .unwrap();
    let fine = backend
        .set(br#"{"os":"linux","rootfs":{"type":"layers"}}"#)
        .unwrap();
    let store = open_store(backend.clone());
    store.rebuild_index().unwrap();
    assert_eq!(
        store
            .map()
            .unwrap()
            .keys()
            .map(ImageId::digest)
            .collect::<Vec<_>>(),
        [&fine]
    );
    let mut unusable: Vec<(String, String)> = store
        .check()
        .unwrap()
        .into_iter()
        .map(|problem| match problem {
            ImageProblem::UnusableConfig { id, reason } => (id.to_string(), reason),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    unusable.sort();
    assert_eq!(unusable.len(), 2);
    for (id, reason) in &unusable {
        if id == missing.as_str() {
            assert_eq!(
                reason,
                &format!(
                    "layer {} does not exist",
                    ChainId::base(Digest::from_bytes(b"gone"))
                )
            );
        } else {
            assert_eq!(id, windows.as_str());
            assert_eq!(
                reason,
                "image operating system \"windows\" cannot be used on this platform"
            );
        }
    }
    assert!(
        backend.contains(&missing).unwrap() && backend.contains(&windows).unwrap(),
        "reported, never deleted"
    );
    let err = store
        .create(br#"{"os":"windows","rootfs":{"type":"layers"}}"#)
        .unwrap_err();
    assert!(matches!(err, ImageError::UnsupportedOs { .. }), "{err}");
}

fn ambiguous_search_is_not_not_found<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(open(dir.path()));
    let ids: Vec<ImageId> = (0..20)
        .map(|i| store.create(abc(i).as_bytes()).unwrap())
        .collect();
    // 20 IDs over 16 hex digits: some first digit is shared.
    let shared = (0..ids.len())
        .find_map(|i| {
            ids[i + 1..]
                .iter()
                .find(|o| o.short()[..1] == ids[i].short()[..1])
                .map(|_| &ids[i].short()[..1])
        })
        .unwrap();
    let err = store.search(shared).unwrap_err();
    assert!(matches!(err, ImageError::Ambiguous { .. }), "{err}");
    assert!(!err.is_not_found());
}

fn raw_config_is_kept_byte_for_byte<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(open(dir.path()));
    let config = br#"{"comment":"c","author":"a","architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]},"x-extra":{"kept":true}}"#;
    let id = store.create(config).unwrap();
    let image = store.get(&id).unwrap();
    assert_eq!(image.raw(), config);
    assert_eq!(image.field("x-extra").unwrap()["kept"], true);
    let sorted = String::from_utf8(image.to_sorted_json().unwrap()).unwrap();
    let (arch, author, comment) = (
        sorted.find("architecture").unwrap(),
        sorted.find("author").unwrap(),
        sorted.find("comment").unwrap(),
    );
    assert!(arch < author && author < comment, "{sorted}");
}

fn state_is_identical_after_reopen<B: StoreBackend + RecordStore>(open: fn(&Path) -> Arc<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let store = open_store(backend.clone());
    let ids: Vec<ImageId> = (0..6)
        .map(|i| store.create(abc(i).as_bytes()).unwrap())
        .collect();
    store.set_parent(&ids[1], &ids[0]).unwrap();
    store.set_parent(&ids[2], &ids[0]).unwrap();
    store.set_parent(&ids[3], &ids[2]).unwrap();
    store.set_last_updated(&ids[4]).unwrap();
    let snapshot = |s: &Images<B>| {
        (
            s.len().unwrap(),
            s.heads().unwrap().keys().cloned().collect::<Vec<_>>(),
            ids.iter()
                .map(|i| s.children(i).unwrap())
                .collect::<Vec<_>>(),
            s.summaries().unwrap(),
            ids.iter()
                .map(|i| s.search(&i.short()[..8]).ok())
                .collect::<Vec<_>>(),
            ids.iter()
                .map(|i| s.get_last_updated(i).unwrap())
                .collect::<Vec<_>>(),
        )
    };
    let before = snapshot(&store);
    drop((store, backend));
    assert_eq!(snapshot(&open_store(open(dir.path()))), before);
}

#[test]
fn a_corrupt_config_is_reported_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let good = {
        let store = open_store(open_fs(dir.path()));
        store.create(C_ABC.as_bytes()).unwrap();
        store.create(abc(1).as_bytes()).unwrap()
    };
    let path = dir.path().join("fs/content/sha256").join(&ID_ABC[7..]);
    std::fs::write(
        &path,
        br#"{"comment": "tampered", "rootfs": {"type": "layers"}}"#,
    )
    .unwrap();
    let store = open_store(open_fs(dir.path()));
    assert_eq!(store.map().unwrap().keys().collect::<Vec<_>>(), [&good]);
    let err = store.get(&id(ID_ABC)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    let problems = store.check().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        matches!(&problems[0], ImageProblem::BrokenConfig { id, reason }
            if id.as_str() == ID_ABC && reason.contains("failed to verify")),
        "{problems:?}"
    );
    assert!(!problems[0].is_repairable());
    // Repair unlists it and keeps the config for gc.
    store.rebuild_index().unwrap();
    assert!(store.summary(&id(ID_ABC)).unwrap().is_none());
    assert!(path.exists(), "reported, never deleted");
}

#[test]
fn created_is_read_with_the_essentials_and_a_non_string_reads_as_absent() {
    let image = imgstore_image::Image::from_config(
        br#"{"created":"2024-01-01T00:00:07Z","author":5,"rootfs":{"type":"layers","diff_ids":[]}}"#,
    )
    .unwrap();
    assert_eq!(image.created(), Some("2024-01-01T00:00:07Z"));
    // `author` of the wrong type leaves the lazily parsed fields absent.
    assert_eq!(image.author(), None);
    let odd = imgstore_image::Image::from_config(
        br#"{"created":{"at":1},"rootfs":{"type":"layers","diff_ids":[]}}"#,
    )
    .unwrap();
    assert_eq!(odd.created(), None);
}
