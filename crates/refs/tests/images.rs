//! containerd's `core/metadata/images_test.go` (PEER_SEMANTICS §6.1–6.3) and
//! the store's own guarantees, run against every backend.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use imgstore_backend::{Batch, ErrorKind, RecordStore};
use imgstore_digest::Digest;
use imgstore_refs::{
    BUCKET, Descriptor, ImageRecord, RefProblem, RefStore, RefsError, TargetChange,
};

const NS: &str = "testing";

fn open_sqlite(dir: &Path) -> Arc<imgstore_sqlite::SqliteBackend> {
    Arc::new(imgstore_sqlite::SqliteBackend::open(dir.join("store.db")).unwrap())
}

fn open_fs(dir: &Path) -> Arc<imgstore_fs::FsBackend> {
    Arc::new(imgstore_fs::FsBackend::open(dir.join("fs")).unwrap())
}

imgstore_backend::backend_matrix!(
    [
        images_list,
        subcase_touch,
        subcase_no_target,
        subcase_replace_labels,
        subcase_replace_labels_field_path,
        subcase_replace_labels_annotations_field_path,
        subcase_replace_label,
        subcase_replace_annotation,
        subcase_replace_target_type_and_annotations,
        subcase_replace_target_fieldpath,
        subcase_replace_target,
        subcase_empty_size,
        subcase_empty_size_on_create,
        subcase_empty_media_type,
        subcase_empty_media_type_on_create_after_a_failed_create,
        subcase_try_update_name_fail,
        update_with_empty_name_is_invalid_argument_before_lookup,
        update_with_unknown_field_path_is_invalid_argument,
        label_path_for_a_key_the_input_lacks_removes_the_label,
        annotation_path_for_a_key_the_input_lacks_removes_the_annotation,
        create_ignores_caller_timestamps,
        create_of_a_taken_name_is_already_exists_and_changes_nothing,
        empty_label_and_annotation_values_are_not_stored,
        missing_namespace_is_failed_precondition,
        invalid_namespace_is_invalid_argument,
        namespaces_isolate_names_completely,
        delete_with_another_target_is_not_found_and_keeps_the_record,
        delete_without_condition_removes_the_record,
        records_survive_reopen_with_nanoseconds,
        updated_at_strictly_increases_on_rapid_updates,
        concurrent_updates_from_8_threads_leave_one_consistent_record,
        check_reports_unusable_records_and_reads_skip_them,
        labels_of_4096_bytes_pass_and_4097_fail_on_create_and_update,
        list_with_a_bad_filter_is_invalid_argument,
        name_too_long_for_a_record_key_is_invalid_argument,
        set_targets_and_delete_many_change_many_names_at_once,
    ]
    sqlite => open_sqlite,
    fs => open_fs,
);

type Open<B> = fn(&Path) -> Arc<B>;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn target(digest: Digest, size: i64, media_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
    Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size,
        annotations: map(annotations),
    }
}

fn record(name: &str, labels: &[(&str, &str)], target: Descriptor) -> ImageRecord {
    ImageRecord {
        labels: map(labels),
        ..ImageRecord::new(name, target)
    }
}

fn simple(name: &str) -> ImageRecord {
    record(
        name,
        &[("foo", "bar")],
        target(
            Digest::from_bytes(name.as_bytes()),
            10,
            "application/vnd.oci.blab",
            &[],
        ),
    )
}

/// The create contract of §6.1: both timestamps set, non-zero, equal, not
/// before `start`; otherwise the input unchanged.
fn check_created(created: &ImageRecord, input: &ImageRecord, start: SystemTime) {
    assert_ne!(created.created_at, SystemTime::UNIX_EPOCH);
    assert_eq!(created.created_at, created.updated_at);
    assert!(
        created.created_at >= start,
        "created before the call started"
    );
    let mut without_times = created.clone();
    without_times.created_at = input.created_at;
    without_times.updated_at = input.updated_at;
    assert_eq!(&without_times, input);
}

fn images_list<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let mut created = BTreeMap::new();
    for i in 0..4 {
        let name = format!("image-{i}");
        let input = record(
            &name,
            &[
                ("namelabel", &name),
                ("even", if i % 2 == 0 { "true" } else { "false" }),
                ("odd", if i % 2 == 1 { "true" } else { "false" }),
            ],
            target(
                Digest::from_bytes(name.as_bytes()),
                10,
                "application/vnd.containerd.test",
                &[("foo", "bar")],
            ),
        );
        let start = SystemTime::now();
        let record = refs.create(NS, input.clone()).unwrap();
        check_created(&record, &input, start);
        created.insert(name, record);
    }
    let digests: Vec<&str> = created.values().map(|r| r.target.digest.as_str()).collect();
    assert_eq!(
        digests,
        [
            "sha256:3dd3f8d1db39a536c4f48318eda8e4a804f53fbc2b25b94e3aa98b201be050da",
            "sha256:0cf457e24a479f02fd4d34540389f720f0807dcff92a7562108165b2637ea82f",
            "sha256:5a0717cb6596468ea1dffa86011f9b0f497348d80421835b51799f9aeb455642",
            "sha256:d9f313aef2d97e58def0511fdc17512d53e6b30d578860ae04b5288c6a239010",
        ]
    );

    let all = ["image-0", "image-1", "image-2", "image-3"];
    let cases: [(&[&str], &[&str]); 7] = [
        (&[], &all),
        (&["labels.even==true", "labels.odd==true"], &all),
        (&["labels.even==true"], &["image-0", "image-2"]),
        (&["labels.odd==true"], &["image-1", "image-3"]),
        (&["name==image-0"], &["image-0"]),
        (
            &["labels.namelabel==image-0,labels.even==true"],
            &["image-0"],
        ),
        (&["target.mediatype~=application/vnd.*"], &all),
    ];
    for (filters, expected) in cases {
        let listed = refs.list(NS, filters).unwrap();
        let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, expected, "filters {filters:?}");
        for record in &listed {
            assert_eq!(
                **record, created[&record.name],
                "listed records keep every field"
            );
        }
    }

    for name in all {
        refs.delete(NS, name, None).unwrap();
    }
    for name in all {
        let err = refs.delete(NS, name, None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    }
}

// ---------------------------------------------------------------------------
// TestImagesCreateUpdateDelete: the 15 subcases of containerd main.

/// What a subcase expects of its update.
enum Outcome {
    CreateFails(ErrorKind),
    UpdateFails(ErrorKind),
    Updated {
        expected: Box<ImageRecord>,
        /// Result of deleting with the original target digest as condition.
        delete: Result<(), ErrorKind>,
    },
}

struct Subcase {
    original: ImageRecord,
    input: ImageRecord,
    fieldpaths: &'static [&'static str],
    outcome: Outcome,
}

const BLAB: &str = "application/vnd.oci.blab";
const IGNORED: &str = "application/vnd.oci.blab+ignored";
const REPLACED: &str = "application/vnd.oci.blab+replaced";
const BASE_LABELS: &[(&str, &str)] = &[("foo", "bar"), ("baz", "boo")];

/// Digests of §6.2: sha256 of `<name>-<size>`.
fn sized(name: &str, size: i64, media_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
    target(
        Digest::from_bytes(format!("{name}-{size}").as_bytes()),
        size,
        media_type,
        annotations,
    )
}

fn base(name: &str) -> ImageRecord {
    record(name, BASE_LABELS, sized(name, 10, BLAB, BASE_LABELS))
}

fn subcase(name: &'static str) -> Subcase {
    let updated = |labels: &[(&str, &str)], target: Descriptor| Outcome::Updated {
        expected: Box::new(record(name, labels, target)),
        delete: Ok(()),
    };
    let for_boo: &[(&str, &str)] = &[("for", "bar"), ("boo", "boo")];
    let foo_baz: &[(&str, &str)] = &[("foo", "baz"), ("baz", "bunk")];
    match name {
        "Touch" => Subcase {
            original: base(name),
            input: record(name, BASE_LABELS, sized(name, 10, BLAB, &[("foo", "bar")])),
            fieldpaths: &[],
            outcome: updated(BASE_LABELS, sized(name, 10, BLAB, &[("foo", "bar")])),
        },
        "NoTarget" => Subcase {
            original: record(name, BASE_LABELS, sized(name, 0, "", &[])),
            input: base(name),
            fieldpaths: &[],
            outcome: Outcome::CreateFails(ErrorKind::InvalidArgument),
        },
        "ReplaceLabels" => Subcase {
            original: base(name),
            input: record(name, for_boo, sized(name, 10, BLAB, &[("foo", "bar")])),
            fieldpaths: &[],
            outcome: updated(for_boo, sized(name, 10, BLAB, &[("foo", "bar")])),
        },
        "ReplaceLabelsFieldPath" => Subcase {
            original: base(name),
            input: record(
                name,
                for_boo,
                sized(name, 10, IGNORED, &[("not", "bar"), ("new", "boo")]),
            ),
            fieldpaths: &["labels"],
            outcome: updated(for_boo, sized(name, 10, BLAB, BASE_LABELS)),
        },
        "ReplaceLabelsAnnotationsFieldPath" => Subcase {
            original: base(name),
            input: record(name, for_boo, sized(name, 10, IGNORED, &[("foo", "boo")])),
            fieldpaths: &["annotations", "labels"],
            outcome: updated(for_boo, sized(name, 10, BLAB, &[("foo", "boo")])),
        },
        "ReplaceLabel" => Subcase {
            original: base(name),
            input: record(name, foo_baz, sized(name, 10, IGNORED, &[("foo", "bar")])),
            fieldpaths: &["labels.foo"],
            outcome: updated(
                &[("foo", "baz"), ("baz", "boo")],
                sized(name, 10, BLAB, BASE_LABELS),
            ),
        },
        "ReplaceAnnotation" => Subcase {
            original: base(name),
            input: record(name, foo_baz, sized(name, 10, IGNORED, foo_baz)),
            fieldpaths: &["annotations.foo"],
            outcome: updated(
                BASE_LABELS,
                sized(name, 10, BLAB, &[("foo", "baz"), ("baz", "boo")]),
            ),
        },
        "ReplaceTargetTypeAndAnnotations" => Subcase {
            original: base(name),
            input: record(name, &[], sized(name, 10, REPLACED, &[("fox", "dog")])),
            fieldpaths: &["target"],
            outcome: updated(BASE_LABELS, sized(name, 10, REPLACED, &[("fox", "dog")])),
        },
        "ReplaceTargetFieldpath" => Subcase {
            original: base(name),
            input: record(name, &[], sized(name, 20, REPLACED, &[("fox", "dog")])),
            fieldpaths: &["target"],
            outcome: Outcome::Updated {
                expected: Box::new(record(
                    name,
                    BASE_LABELS,
                    sized(name, 20, REPLACED, &[("fox", "dog")]),
                )),
                delete: Err(ErrorKind::NotFound),
            },
        },
        "ReplaceTarget" => Subcase {
            original: base(name),
            input: record(name, &[], sized(name, 20, REPLACED, &[("fox", "dog")])),
            fieldpaths: &[],
            outcome: Outcome::Updated {
                expected: Box::new(record(
                    name,
                    &[],
                    sized(name, 20, REPLACED, &[("fox", "dog")]),
                )),
                delete: Err(ErrorKind::NotFound),
            },
        },
        "EmptySize" => Subcase {
            original: base(name),
            input: record(name, BASE_LABELS, sized(name, 0, BLAB, &[("foo", "bar")])),
            fieldpaths: &[],
            outcome: Outcome::UpdateFails(ErrorKind::InvalidArgument),
        },
        "EmptySizeOnCreate" => Subcase {
            original: record(name, BASE_LABELS, sized(name, 0, BLAB, &[("foo", "bar")])),
            input: base(name),
            fieldpaths: &[],
            outcome: Outcome::CreateFails(ErrorKind::InvalidArgument),
        },
        "EmptyMediaType" => Subcase {
            original: base(name),
            input: record(name, BASE_LABELS, sized(name, 10, "", &[])),
            fieldpaths: &[],
            outcome: Outcome::UpdateFails(ErrorKind::InvalidArgument),
        },
        "TryUpdateNameFail" => Subcase {
            original: record(name, BASE_LABELS, sized(name, 10, BLAB, &[("foo", "bar")])),
            input: record(
                "test should fail",
                BASE_LABELS,
                sized(name, 10, BLAB, &[("foo", "bar")]),
            ),
            fieldpaths: &[],
            outcome: Outcome::UpdateFails(ErrorKind::NotFound),
        },
        other => panic!("no subcase {other}"),
    }
}

/// containerd's subcase runner, plus: a failed call leaves the record as it was.
fn run_subcase<B: RecordStore>(refs: &RefStore<B>, case: Subcase) {
    let name = case.original.name.clone();
    let start = SystemTime::now();
    let created = match (refs.create(NS, case.original.clone()), &case.outcome) {
        (Err(e), Outcome::CreateFails(kind)) => {
            assert_eq!(e.kind(), *kind, "{e}");
            assert_eq!(refs.get(NS, &name).unwrap_err().kind(), ErrorKind::NotFound);
            return;
        }
        (Ok(created), Outcome::CreateFails(_)) => panic!("create succeeded: {created:?}"),
        (Err(e), _) => panic!("create failed: {e}"),
        (Ok(created), _) => created,
    };
    check_created(&created, &case.original, start);

    while SystemTime::now() <= created.updated_at {
        std::thread::sleep(Duration::from_millis(1));
    }
    let before_update = SystemTime::now();
    let result = refs.update(NS, case.input.clone(), case.fieldpaths);
    let (expected, delete) = match (result, case.outcome) {
        (Err(e), Outcome::UpdateFails(kind)) => {
            assert_eq!(e.kind(), kind, "{e}");
            assert_eq!(
                *refs.get(NS, &name).unwrap(),
                created,
                "a failed update changes nothing"
            );
            return;
        }
        (Ok(updated), Outcome::UpdateFails(_)) => panic!("update succeeded: {updated:?}"),
        (Err(e), _) => panic!("update failed: {e}"),
        (Ok(updated), Outcome::Updated { expected, delete }) => {
            assert!(
                updated.updated_at > updated.created_at,
                "updated_at moves forward"
            );
            assert!(updated.updated_at >= before_update);
            assert_eq!(updated.created_at, created.created_at, "created_at is kept");
            let expected = ImageRecord {
                created_at: updated.created_at,
                updated_at: updated.updated_at,
                ..*expected
            };
            assert_eq!(updated, expected);
            (expected, delete)
        }
        (Ok(_), Outcome::CreateFails(_)) => unreachable!("create succeeded above"),
    };
    assert_eq!(*refs.get(NS, &name).unwrap(), expected);

    let deleted = refs.delete(NS, &name, Some(&case.original.target.digest));
    assert_eq!(
        deleted.as_ref().map_err(RefsError::kind).err(),
        delete.err()
    );
    if delete.is_err() {
        let message = deleted.unwrap_err().to_string();
        assert!(message.contains("has target"), "{message}");
        assert_eq!(
            *refs.get(NS, &name).unwrap(),
            expected,
            "a refused delete keeps the record"
        );
    } else {
        assert_eq!(refs.get(NS, &name).unwrap_err().kind(), ErrorKind::NotFound);
    }
}

macro_rules! subcases {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            fn $test<B: RecordStore>(open: Open<B>) {
                let dir = tempfile::tempdir().unwrap();
                let refs = RefStore::open(open(dir.path())).unwrap();
                run_subcase(&refs, subcase($name));
            }
        )*
    };
}

subcases!(
    subcase_touch => "Touch",
    subcase_no_target => "NoTarget",
    subcase_replace_labels => "ReplaceLabels",
    subcase_replace_labels_field_path => "ReplaceLabelsFieldPath",
    subcase_replace_labels_annotations_field_path => "ReplaceLabelsAnnotationsFieldPath",
    subcase_replace_label => "ReplaceLabel",
    subcase_replace_annotation => "ReplaceAnnotation",
    subcase_replace_target_type_and_annotations => "ReplaceTargetTypeAndAnnotations",
    subcase_replace_target_fieldpath => "ReplaceTargetFieldpath",
    subcase_replace_target => "ReplaceTarget",
    subcase_empty_size => "EmptySize",
    subcase_empty_size_on_create => "EmptySizeOnCreate",
    subcase_empty_media_type => "EmptyMediaType",
    subcase_try_update_name_fail => "TryUpdateNameFail",
);

/// containerd's second "EmptySizeOnCreate" (no media type) runs after the
/// first in the same store: that create failed, so the name is free.
fn subcase_empty_media_type_on_create_after_a_failed_create<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    run_subcase(&refs, subcase("EmptySizeOnCreate"));
    let name = "EmptySizeOnCreate";
    run_subcase(
        &refs,
        Subcase {
            original: record(name, BASE_LABELS, sized(name, 10, "", &[])),
            input: base(name),
            fieldpaths: &[],
            outcome: Outcome::CreateFails(ErrorKind::InvalidArgument),
        },
    );
}

// ---------------------------------------------------------------------------
// §6.3 semantics and the store's own guarantees.

fn update_with_empty_name_is_invalid_argument_before_lookup<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let err = refs.update(NS, simple(""), &[]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(
        err.to_string()
            .contains("image name is required for update"),
        "{err}"
    );
}

fn update_with_unknown_field_path_is_invalid_argument<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let created = refs.create(NS, simple("a")).unwrap();
    let err = refs.update(NS, simple("a"), &["size"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.to_string(),
        r#"cannot update "size" field on image "a""#
    );
    assert_eq!(*refs.get(NS, "a").unwrap(), created);
    let err = refs.update(NS, simple("missing"), &["size"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "the lookup comes first");
}

fn label_path_for_a_key_the_input_lacks_removes_the_label<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    refs.create(NS, simple("a").with_label("gone", "soon"))
        .unwrap();
    let updated = refs.update(NS, simple("a"), &["labels.gone"]).unwrap();
    assert_eq!(updated.labels, map(&[("foo", "bar")]));
    assert_eq!(refs.get(NS, "a").unwrap().labels, map(&[("foo", "bar")]));
    let updated = refs
        .update(NS, simple("a").with_label("new", "yes"), &["labels.new"])
        .unwrap();
    assert_eq!(updated.labels, map(&[("foo", "bar"), ("new", "yes")]));
}

fn annotation_path_for_a_key_the_input_lacks_removes_the_annotation<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let mut original = simple("a");
    original.target.annotations = map(&[("keep", "1"), ("drop", "2")]);
    refs.create(NS, original).unwrap();
    let updated = refs.update(NS, simple("a"), &["annotations.drop"]).unwrap();
    assert_eq!(updated.target.annotations, map(&[("keep", "1")]));
    assert_eq!(
        refs.get(NS, "a").unwrap().target.annotations,
        map(&[("keep", "1")])
    );
}

fn create_ignores_caller_timestamps<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let mut input = simple("a");
    input.created_at = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
    input.updated_at = SystemTime::UNIX_EPOCH + Duration::from_secs(7);
    let start = SystemTime::now();
    let created = refs.create(NS, input).unwrap();
    assert!(created.created_at >= start);
    assert_eq!(created.created_at, created.updated_at);
}

fn create_of_a_taken_name_is_already_exists_and_changes_nothing<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let created = refs.create(NS, simple("a")).unwrap();
    let mut other = simple("a");
    other.target.size = 99;
    let err = refs.create(NS, other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(*refs.get(NS, "a").unwrap(), created);
}

fn empty_label_and_annotation_values_are_not_stored<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let refs = RefStore::open(backend.clone()).unwrap();
    let mut input = simple("a").with_label("empty", "");
    input.target.annotations = map(&[("blank", ""), ("set", "x")]);
    let created = refs.create(NS, input).unwrap();
    assert_eq!(created.labels, map(&[("foo", "bar")]));
    assert_eq!(created.target.annotations, map(&[("set", "x")]));
    drop(refs);
    let reopened = RefStore::open(backend).unwrap();
    assert_eq!(*reopened.get(NS, "a").unwrap(), created);
}

fn missing_namespace_is_failed_precondition<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let errors = [
        refs.create("", simple("a")).unwrap_err(),
        refs.get("", "a").unwrap_err(),
        refs.list("", &[]).unwrap_err(),
        refs.update("", simple("a"), &[]).unwrap_err(),
        refs.delete("", "a", None).unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(err.to_string(), "namespace is required");
    }
}

fn invalid_namespace_is_invalid_argument<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let too_long = "a".repeat(77);
    for namespace in ["a/b", "-x", "x-", "a..b", "ü", " ", too_long.as_str()] {
        let err = refs.create(namespace, simple("a")).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidArgument,
            "{namespace:?}: {err}"
        );
        assert_eq!(
            refs.get(namespace, "a").unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    assert!(refs.namespaces().unwrap().is_empty());
    refs.create(&"a".repeat(76), simple("a")).unwrap();
    refs.create("k8s.io", simple("a")).unwrap();
    refs.create("moby_1-2.x", simple("a")).unwrap();
}

fn namespaces_isolate_names_completely<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let refs = RefStore::open(backend.clone()).unwrap();
    let mut in_k8s = simple("shared");
    in_k8s.target.size = 1;
    let mut in_moby = simple("shared").with_label("only", "moby");
    in_moby.target.size = 2;
    let k8s = refs.create("k8s.io", in_k8s).unwrap();
    let moby = refs.create("moby", in_moby).unwrap();
    refs.create("moby", simple("moby-only")).unwrap();

    assert_eq!(*refs.get("k8s.io", "shared").unwrap(), k8s);
    assert_eq!(*refs.get("moby", "shared").unwrap(), moby);
    assert_eq!(
        refs.get("k8s.io", "moby-only").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let listed = refs.list("k8s.io", &[]).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(*listed[0], k8s);
    assert_eq!(refs.list("k8s.io", &["labels.only==moby"]).unwrap(), []);
    assert_eq!(refs.list("default", &[]).unwrap(), []);
    assert_eq!(refs.namespaces().unwrap(), ["k8s.io", "moby"]);

    let updated = refs
        .update("moby", simple("shared").with_label("x", "y"), &["labels.x"])
        .unwrap();
    assert_eq!(
        *refs.get("k8s.io", "shared").unwrap(),
        k8s,
        "update stays in its namespace"
    );
    refs.delete("moby", "shared", None).unwrap();
    assert_eq!(
        *refs.get("k8s.io", "shared").unwrap(),
        k8s,
        "delete stays in its namespace"
    );
    assert_eq!(
        refs.get("moby", "shared").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(refs.len("moby").unwrap(), 1);
    let _ = updated;

    drop(refs);
    let reopened = RefStore::open(backend).unwrap();
    assert_eq!(*reopened.get("k8s.io", "shared").unwrap(), k8s);
    assert_eq!(reopened.len("moby").unwrap(), 1);
}

fn delete_with_another_target_is_not_found_and_keeps_the_record<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let created = refs.create(NS, simple("a")).unwrap();
    let other = Digest::from_bytes(b"other");
    let err = refs.delete(NS, "a", Some(&other)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(
        err.to_string(),
        format!(
            "image \"a\" has target {}, not {other}: not found",
            created.target.digest
        )
    );
    assert_eq!(*refs.get(NS, "a").unwrap(), created);
    refs.delete(NS, "a", Some(&created.target.digest)).unwrap();
    assert_eq!(refs.get(NS, "a").unwrap_err().kind(), ErrorKind::NotFound);
}

fn delete_without_condition_removes_the_record<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let refs = RefStore::open(backend.clone()).unwrap();
    refs.create(NS, simple("a")).unwrap();
    refs.create(NS, simple("b")).unwrap();
    refs.delete(NS, "a", None).unwrap();
    assert_eq!(refs.list(NS, &[]).unwrap().len(), 1);
    drop(refs);
    let reopened = RefStore::open(backend.clone()).unwrap();
    assert_eq!(
        reopened.get(NS, "a").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(backend.get_record(BUCKET, "testing/a").unwrap().is_none());
}

fn records_survive_reopen_with_nanoseconds<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let refs = RefStore::open(backend.clone()).unwrap();
    let mut written = Vec::new();
    for i in 0..20 {
        let created = refs.create(NS, simple(&format!("r{i}"))).unwrap();
        written.push(
            refs.update(NS, created.with_label("i", i.to_string()), &["labels.i"])
                .unwrap(),
        );
    }
    drop(refs);
    let reopened = RefStore::open(backend).unwrap();
    assert!(reopened.check().unwrap().is_empty());
    let mut listed: Vec<ImageRecord> = reopened
        .list(NS, &[])
        .unwrap()
        .iter()
        .map(|r| ImageRecord::clone(r))
        .collect();
    listed.sort_by_key(|r| r.created_at);
    assert_eq!(listed, written, "every field, timestamps to the nanosecond");
}

fn updated_at_strictly_increases_on_rapid_updates<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let mut last = refs.create(NS, simple("a")).unwrap();
    for i in 0..200 {
        let next = refs
            .update(
                NS,
                simple("a").with_label("n", i.to_string()),
                &["labels.n"],
            )
            .unwrap();
        assert!(next.updated_at > last.updated_at, "update {i}");
        assert_eq!(next.created_at, last.created_at);
        last = next;
    }
}

fn concurrent_updates_from_8_threads_leave_one_consistent_record<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let refs = RefStore::open(backend.clone()).unwrap();
    refs.create(NS, simple("shared")).unwrap();
    let per_thread = 25;
    let results: Vec<Vec<ImageRecord>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let refs = &refs;
                scope.spawn(move || {
                    (0..per_thread)
                        .map(|n| {
                            let path = format!("labels.t{t}");
                            let input = simple("shared").with_label(format!("t{t}"), n.to_string());
                            refs.update(NS, input, &[path.as_str()]).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let final_record = refs.get(NS, "shared").unwrap();
    for t in 0..8 {
        assert_eq!(
            final_record.labels[&format!("t{t}")],
            (per_thread - 1).to_string(),
            "thread {t}'s last update is kept"
        );
    }
    let mut stamps: Vec<SystemTime> = results.iter().flatten().map(|r| r.updated_at).collect();
    stamps.sort();
    stamps.dedup();
    assert_eq!(
        stamps.len(),
        8 * per_thread,
        "every update has its own updated_at"
    );
    assert_eq!(final_record.updated_at, *stamps.last().unwrap());
    drop(refs);
    assert_eq!(
        RefStore::open(backend).unwrap().get(NS, "shared").unwrap(),
        final_record
    );
}

fn check_reports_unusable_records_and_reads_skip_them<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let refs = RefStore::open(backend.clone()).unwrap();
    let good = refs.create(NS, simple("good")).unwrap();
    assert_eq!(refs.check().unwrap(), []);
    let mut batch = Batch::new();
    batch
        .put(BUCKET, "testing/broken", b"\x01garbage".to_vec())
        .put(BUCKET, "no-namespace", b"".to_vec())
        .put(BUCKET, "bad namespace/x", b"".to_vec());
    backend.apply(&batch).unwrap();
    // A record that decodes but that no call would store: written by an
    // older version, or by hand. Its bytes are those of a valid record
    // with the media type cut out.
    let valid = refs.create(NS, simple("empty-type")).unwrap();
    let bytes = backend
        .get_record(BUCKET, "testing/empty-type")
        .unwrap()
        .unwrap();
    let media_type = valid.target.media_type.as_bytes();
    let at = bytes
        .windows(media_type.len())
        .position(|w| w == media_type)
        .unwrap();
    let mut cut = bytes[..at - 4].to_vec();
    cut.extend_from_slice(&0u32.to_le_bytes());
    cut.extend_from_slice(&bytes[at + media_type.len()..]);
    let mut batch = Batch::new();
    batch.put(BUCKET, "testing/empty-type", cut);
    backend.apply(&batch).unwrap();

    let problems = refs.check().unwrap();
    let keys: Vec<&str> = problems.iter().map(RefProblem::key).collect();
    assert_eq!(
        keys,
        [
            "bad namespace/x",
            "no-namespace",
            "testing/broken",
            "testing/empty-type"
        ]
    );
    assert!(
        matches!(problems[0], RefProblem::InvalidNamespace { .. }),
        "{problems:?}"
    );
    assert_eq!(
        problems[1],
        RefProblem::KeyWithoutNamespace {
            key: "no-namespace".to_owned()
        }
    );
    assert!(
        matches!(problems[2], RefProblem::Undecodable { .. }),
        "{problems:?}"
    );
    assert!(
        matches!(problems[3], RefProblem::InvalidRecord { .. }),
        "{problems:?}"
    );
    assert_eq!(
        problems[1].to_string(),
        "name record \"no-namespace\": the key names no namespace"
    );

    let listed = refs.list(NS, &[]).unwrap();
    assert_eq!(listed.len(), 2, "the undecodable record is skipped");
    assert_eq!(*listed[1], good);
    assert_eq!(refs.namespaces().unwrap(), [NS]);
    let err = refs.get(NS, "broken").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::DataCorruption, "{err}");
    assert!(matches!(err, RefsError::Corrupt { ref key, .. } if key == "testing/broken"));
    let err = refs.create(NS, simple("broken")).unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "the name is taken: {err}"
    );
    assert_eq!(
        backend
            .get_record(BUCKET, "testing/broken")
            .unwrap()
            .as_deref(),
        Some(&b"\x01garbage"[..]),
        "unusable records are never deleted"
    );
}

fn labels_of_4096_bytes_pass_and_4097_fail_on_create_and_update<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let fits = simple("a").with_label("k", "v".repeat(4095));
    refs.create(NS, fits).unwrap();
    let err = refs
        .create(NS, simple("b").with_label("k", "v".repeat(4096)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.to_string().contains("(4097 bytes)"), "{err}");
    let before = ImageRecord::clone(&refs.get(NS, "a").unwrap());
    let err = refs
        .update(
            NS,
            simple("a").with_label("k2", "v".repeat(4095)),
            &["labels.k2"],
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(*refs.get(NS, "a").unwrap(), before);
}

fn list_with_a_bad_filter_is_invalid_argument<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    refs.create(NS, simple("a")).unwrap();
    let err = refs.list(NS, &["name==a", "labels."]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        err.to_string(),
        "filters: parse error: [labels.]: expected field or quoted"
    );
}

fn name_too_long_for_a_record_key_is_invalid_argument<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let refs = RefStore::open(open(dir.path())).unwrap();
    let longest = "n".repeat(4096 - NS.len() - 1);
    refs.create(NS, simple(&longest)).unwrap();
    let err = refs.create(NS, simple(&format!("{longest}n"))).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(refs.get(NS, &longest).unwrap().name, longest);
}

#[test]
fn stores_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RefStore<imgstore_sqlite::SqliteBackend>>();
    assert_send_sync::<RefStore<imgstore_fs::FsBackend>>();
    assert_send_sync::<RefStore<dyn RecordStore>>();
}

#[test]
fn a_store_works_over_a_trait_object() {
    let dir = tempfile::tempdir().unwrap();
    let backend: Arc<dyn RecordStore> = open_sqlite(dir.path());
    let refs = RefStore::open(backend).unwrap();
    let created = refs.create(NS, simple("a")).unwrap();
    let filter = imgstore_refs::filters::Filter::parse("labels.foo==bar").unwrap();
    assert_eq!(*refs.list_filtered(NS, &filter).unwrap()[0], created);
}

/// `set_targets` (what an import naming one image 10k times uses): new
/// names created, a name elsewhere moved with its labels kept, a name
/// already there untouched, a name given twice at its last target; all of
/// it stored (a reopen sees it).
fn set_targets_and_delete_many_change_many_names_at_once<B: RecordStore>(open: Open<B>) {
    let dir = tempfile::tempdir().unwrap();
    let backend = open(dir.path());
    let refs = RefStore::open(backend.clone()).unwrap();
    let kept = refs.create(NS, simple("kept")).unwrap();
    let moved = refs.create(NS, simple("moved")).unwrap();
    let elsewhere = target(
        Digest::from_bytes(b"elsewhere"),
        3,
        "application/vnd.oci.blab",
        &[],
    );
    let mut targets: Vec<(String, Descriptor)> = vec![
        ("kept".to_owned(), kept.target.clone()),
        ("moved".to_owned(), elsewhere.clone()),
        ("twice".to_owned(), kept.target.clone()),
    ];
    targets.extend((0..1000).map(|i| (format!("new-{i:04}"), elsewhere.clone())));
    targets.push(("twice".to_owned(), elsewhere.clone()));
    let changes = refs.set_targets(NS, &targets).unwrap();
    assert_eq!(changes.len(), 1003);
    assert_eq!(changes[0], TargetChange::Unchanged);
    assert_eq!(changes[1], TargetChange::Moved(Arc::new(moved.clone())));
    assert!(changes[2..].iter().all(|c| *c == TargetChange::Created));
    let reopened = RefStore::open(backend).unwrap();
    for store in [&refs, &reopened] {
        assert_eq!(store.len(NS).unwrap(), 1003);
        assert_eq!(*store.get(NS, "kept").unwrap(), kept);
        let now_moved = store.get(NS, "moved").unwrap();
        assert_eq!(now_moved.target, elsewhere);
        assert_eq!(now_moved.labels, moved.labels);
        assert_eq!(now_moved.created_at, moved.created_at);
        assert!(now_moved.updated_at > moved.updated_at);
        assert_eq!(store.get(NS, "twice").unwrap().target, elsewhere);
        assert_eq!(store.get(NS, "new-0999").unwrap().target, elsewhere);
    }
    // delete_many: all of them in one batch, or none when one is missing.
    let news: Vec<String> = (0..1000).map(|i| format!("new-{i:04}")).collect();
    let mut with_missing = news.clone();
    with_missing.push("absent".to_owned());
    assert_eq!(
        refs.delete_many(NS, &with_missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(refs.len(NS).unwrap(), 1003);
    let removed = refs.delete_many(NS, &news).unwrap();
    assert_eq!(removed.len(), 1000);
    assert_eq!(removed[0].name, "new-0000");
    assert_eq!(refs.len(NS).unwrap(), 3);
    assert_eq!(
        RefStore::open(refs.backend().clone())
            .unwrap()
            .len(NS)
            .unwrap(),
        3
    );
    // An invalid name among them: nothing written.
    let bad = vec![
        ("fine".to_owned(), elsewhere.clone()),
        (String::new(), elsewhere.clone()),
    ];
    assert_eq!(
        refs.set_targets(NS, &bad).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        refs.get(NS, "fine").unwrap_err().kind(),
        ErrorKind::NotFound
    );
}
