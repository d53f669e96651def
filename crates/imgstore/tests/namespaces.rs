//! Issue 12: namespaces share images, and an image is in use while any name
//! in any namespace reaches it (prune, rmi, gc and fsck count every
//! namespace); a namespace lists the images its names reach plus those no
//! name reaches. Also the names that differ only in case (item 6) and
//! `fsck`'s comparison of every derived structure with the records. Both
//! backends, on the corpus's `oci/main`.

use std::path::Path;

use imgstore::backend::ErrorKind;
use imgstore::{Backend, Error, FsckProblem, ImageQuery, ImageSummary, Options, Store};
use serde_json::Value;

mod common;

use common::{BACKENDS, corpus, expected_image};

const MAIN_IMAGES: [&str; 4] = ["base", "sibling", "child", "withenv"];

/// The options for `backend` in `namespace`. Written to compile against
/// main's `Options` too (`backend: Option<Backend>`, more fields), hence
/// the conversion and the update clippy finds needless on this branch.
#[allow(clippy::useless_conversion, clippy::needless_update)]
fn options(backend: Backend, namespace: &str) -> Options {
    Options {
        backend: backend.into(),
        namespace: namespace.to_owned(),
        ..Options::default()
    }
}

fn open_in(root: &Path, backend: Backend, namespace: &str) -> Store {
    Store::open_with(root, options(backend, namespace))
        .unwrap_or_else(|e| panic!("open {backend:?} {namespace}: {e}"))
}

/// (image ID, short ID, name) of each image of `oci/main`.
fn main_images() -> Vec<(String, String, String)> {
    let corpus = corpus();
    MAIN_IMAGES
        .iter()
        .map(|image| {
            let v: Value = expected_image(&corpus, image);
            (
                v["image_id"].as_str().expect("id").to_owned(),
                v["image_id_short"].as_str().expect("short").to_owned(),
                v["ref_names"][0].as_str().expect("name").to_owned(),
            )
        })
        .collect()
}

fn load_main(root: &Path, backend: Backend, namespace: &str) {
    let store = open_in(root, backend, namespace);
    store
        .import_oci_layout(corpus().join("oci/main"))
        .expect("import oci/main");
}

/// (ID, names) of every image listed, sorted by ID.
fn listed(images: &[ImageSummary]) -> Vec<(String, Vec<String>)> {
    let mut listed: Vec<(String, Vec<String>)> = images
        .iter()
        .map(|s| (s.id.to_string(), s.references.clone()))
        .collect();
    listed.sort();
    listed
}

fn all_named_in_default() -> Vec<(String, Vec<String>)> {
    let mut all: Vec<(String, Vec<String>)> = main_images()
        .into_iter()
        .map(|(id, _, name)| (id, vec![name]))
        .collect();
    all.sort();
    all
}

#[test]
fn prune_in_another_namespace_deletes_nothing_named_in_default() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        load_main(dir.path(), backend, "default");
        {
            let other = open_in(dir.path(), backend, "other");
            assert_eq!(
                other.images().expect("list images"),
                [],
                "{backend:?}: other sees none"
            );
            let pruned = other.prune(false).expect("prune");
            assert_eq!(pruned.deleted, [], "{backend:?}");
            let pruned = other.prune(true).expect("prune -a");
            assert_eq!(pruned.deleted, [], "{backend:?}");
            assert_eq!(pruned.untagged, Vec::<String>::new());
            other.gc().expect("gc");
        }
        let default = open_in(dir.path(), backend, "default");
        assert_eq!(
            listed(&default.images().expect("list images")),
            all_named_in_default()
        );
        let report = default.fsck(false).expect("fsck");
        assert!(report.is_clean(), "{backend:?}: {:?}", report.problems);
        for (id, _, name) in main_images() {
            assert_eq!(default.resolve(&name).expect("resolve").to_string(), id);
        }
    }
}

#[test]
fn rmi_by_id_from_another_namespace_is_refused_naming_the_namespace() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        load_main(dir.path(), backend, "default");
        let (base_id, base_short, _) = main_images().remove(0);
        {
            let other = open_in(dir.path(), backend, "other");
            for term in [base_short.as_str(), base_id.as_str()] {
                for force in [false, true] {
                    let err = other.remove(term, force).expect_err("refused");
                    assert_eq!(err.kind(), ErrorKind::Conflict, "{backend:?}: {err}");
                    match &err {
                        Error::InUseInOtherNamespaces {
                            short_id,
                            namespaces,
                        } => {
                            assert_eq!(short_id, &base_short);
                            assert_eq!(namespaces, &["default"]);
                        }
                        other => panic!("{backend:?}: {other:?}"),
                    }
                    assert!(err.to_string().contains("namespace(s) default"), "{err}");
                }
            }
            // Not visible there: inspect, history, tag and pin by ID do not
            // find it either.
            for result in [
                other.inspect(&base_short).map(drop),
                other.history(&base_short).map(drop),
                other.tag(&base_short, "mine:v1").map(drop),
                other.pin(&base_short).map(drop),
                other.resolve(&base_short).map(drop),
            ] {
                let err = result.expect_err("not visible");
                assert_eq!(err.kind(), ErrorKind::NotFound, "{backend:?}: {err}");
            }
        }
        let default = open_in(dir.path(), backend, "default");
        assert_eq!(
            listed(&default.images().expect("list images")),
            all_named_in_default()
        );
    }
}

#[test]
fn a_namespace_lists_its_own_images_and_the_dangling_ones() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        load_main(dir.path(), backend, "default");
        let images = main_images();
        let (withenv_id, withenv_short, withenv_name) = images[3].clone();
        {
            // withenv loses its only name: dangling, so every namespace sees it.
            let default = open_in(dir.path(), backend, "default");
            default.untag(&withenv_name).expect("untag");
        }
        {
            let other = open_in(dir.path(), backend, "other");
            let seen = listed(&other.images().expect("list images"));
            assert_eq!(seen, [(withenv_id.clone(), vec![])], "{backend:?}");
            assert_eq!(
                listed(&other.list_images(&ImageQuery::default()).expect("list")),
                seen
            );
            assert_eq!(
                other.inspect(&withenv_short).expect("inspect").id,
                withenv_id
            );
            // Named in `other` too now: other sees base with its own name only.
            other
                .import_oci_layout(corpus().join("oci/main"))
                .expect("import in other");
            let base = &images[0];
            other.untag(&base.2).expect("untag base in other");
            // base is still named in default: not dangling, not visible here.
            assert!(
                !other
                    .images()
                    .expect("list images")
                    .iter()
                    .any(|s| s.id.to_string() == base.0),
                "{backend:?}"
            );
        }
        let default = open_in(dir.path(), backend, "default");
        // withenv is named in other now (and not in default): no longer
        // dangling, so default does not see it.
        let mut expected = all_named_in_default();
        expected.retain(|(id, _)| id != &withenv_id);
        assert_eq!(
            listed(&default.images().expect("list images")),
            expected,
            "{backend:?}"
        );
        assert_eq!(
            default.inspect(&withenv_short).expect_err("hidden").kind(),
            ErrorKind::NotFound
        );
        let report = default.fsck(false).expect("fsck");
        assert!(report.is_clean(), "{backend:?}: {:?}", report.problems);
    }
}

#[test]
fn an_image_goes_with_its_last_name_in_any_namespace() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        load_main(dir.path(), backend, "default");
        load_main(dir.path(), backend, "other");
        let (sibling_id, sibling_short, sibling_name) = main_images()[1].clone();
        {
            let other = open_in(dir.path(), backend, "other");
            // By ID: in use in default, refused even though other names it too.
            let err = other.remove(&sibling_short, true).expect_err("refused");
            assert!(
                matches!(&err, Error::InUseInOtherNamespaces { namespaces, .. } if namespaces == &["default"]),
                "{backend:?}: {err:?}"
            );
            // By name: the name goes, the image stays for default.
            let report = other.remove(&sibling_name, false).expect("rmi name");
            assert_eq!(report.untagged, std::slice::from_ref(&sibling_name));
            assert_eq!(report.deleted, []);
            assert_eq!(other.images().expect("list images").len(), 3, "{backend:?}");
        }
        {
            let default = open_in(dir.path(), backend, "default");
            assert_eq!(
                default
                    .resolve(&sibling_name)
                    .expect("still named")
                    .to_string(),
                sibling_id
            );
            // The last name anywhere: now the image goes.
            let report = default.remove(&sibling_name, false).expect("rmi name");
            assert_eq!(report.deleted.len(), 1, "{backend:?}");
            assert_eq!(report.deleted[0].to_string(), sibling_id);
            let report = default.fsck(false).expect("fsck");
            assert!(report.is_clean(), "{backend:?}: {:?}", report.problems);
        }
        let other = open_in(dir.path(), backend, "other");
        assert_eq!(other.images().expect("list images").len(), 3, "{backend:?}");
        let report = other.fsck(false).expect("fsck");
        assert!(report.is_clean(), "{backend:?}: {:?}", report.problems);
    }
}

/// Item 6: Docker tags are case-sensitive; removing `app:V1` leaves
/// `app:v1` listed, resolvable and removable.
#[test]
fn names_differing_only_in_case_are_two_names() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        load_main(dir.path(), backend, "default");
        let (base_id, _, base_name) = main_images()[0].clone();
        let store = open_in(dir.path(), backend, "default");
        store.tag(&base_name, "app:v1").expect("tag v1");
        store.tag(&base_name, "app:V1").expect("tag V1");
        let report = store.remove("app:V1", false).expect("rmi V1");
        assert_eq!(report.untagged, ["docker.io/library/app:V1"]);
        assert_eq!(report.deleted, []);
        let base = store
            .images()
            .expect("list images")
            .into_iter()
            .find(|s| s.id.to_string() == base_id)
            .expect("base listed");
        assert_eq!(
            base.references,
            ["docker.io/library/app:v1", base_name.as_str()],
            "{backend:?}"
        );
        assert_eq!(store.resolve("app:v1").expect("v1").to_string(), base_id);
        assert_eq!(store.inspect("app:v1").expect("inspect").repo_tags.len(), 2);
        let report = store.fsck(false).expect("fsck");
        assert!(report.is_clean(), "{backend:?}: {:?}", report.problems);
        store.remove("app:v1", false).expect("rmi v1");
        let base = store
            .images()
            .expect("list images")
            .into_iter()
            .find(|s| s.id.to_string() == base_id)
            .expect("base listed");
        assert_eq!(base.references, [base_name.as_str()]);
    }
}

/// fsck compares the derived name records with a fresh derivation from
/// the records. A name deleted behind the facade's back (through the
/// sub-store accessor) leaves them stale: reported, then repaired.
#[test]
fn fsck_reports_and_repairs_drift_of_the_derived_names() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().expect("tempdir");
        load_main(dir.path(), backend, "default");
        let (base_id, _, base_name) = main_images()[0].clone();
        let store = open_in(dir.path(), backend, "default");
        store
            .refs()
            .delete("default", &base_name, None)
            .expect("delete behind the facade");
        store
            .tag(&main_images()[1].2, "touch:v1")
            .expect("a change");
        let report = store.fsck(false).expect("fsck");
        let drifted: Vec<(&str, &str)> = report
            .problems
            .iter()
            .filter_map(|p| match p {
                FsckProblem::Drift {
                    namespace,
                    structure,
                    detail,
                } => {
                    assert!(detail.contains(&base_name), "{detail}");
                    Some((namespace.as_str(), *structure))
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            drifted,
            [("default", "name index")],
            "{backend:?}: {:?}",
            report.problems
        );
        let repaired = store.fsck(true).expect("repair");
        assert_eq!(
            repaired.repairs,
            [format!(
                "re-derived the name index entry of default/{base_name}"
            )],
            "{backend:?}"
        );
        let clean = store.fsck(false).expect("fsck");
        assert!(clean.is_clean(), "{backend:?}: {:?}", clean.problems);
        let base = store
            .images()
            .expect("list images")
            .into_iter()
            .find(|s| s.id.to_string() == base_id)
            .expect("base listed, dangling");
        assert_eq!(base.references, Vec::<String>::new());
        assert!(store.resolve(&base_name).is_err());
    }
}
