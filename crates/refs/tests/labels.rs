//! containerd's `pkg/labels/validate_test.go` (PEER_SEMANTICS §6.5) and
//! namespace identifiers (`pkg/identifiers`).

use imgstore_backend::ErrorKind;
use imgstore_refs::{
    MAX_LABEL_SIZE, RefsError, is_reserved_label_key, validate_label, validate_namespace,
};

fn s(n: usize) -> String {
    "s".repeat(n)
}

/// A key of `key_len` bytes and a value filling the pair to `total` bytes.
fn pair(key_len: usize, total: usize) -> (String, String) {
    (s(key_len), "v".repeat(total - key_len))
}

#[test]
fn short_and_4096_byte_labels_are_valid() {
    validate_label("some", "value").unwrap();
    validate_label("s", &s(4095)).unwrap();
    assert_eq!(MAX_LABEL_SIZE, 4096);
}

#[test]
fn a_label_of_4097_bytes_is_invalid_argument() {
    let err = validate_label(&s(4096), "s").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        matches!(err, RefsError::LabelTooLong { size: 4097, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "label key and value length (4097 bytes) greater than maximum size (4096 bytes), key: ssssssssss"
    );
}

#[test]
fn long_keys_count_towards_the_same_limit() {
    let (k, v) = pair(65, 4096);
    validate_label(&k, &v).unwrap();
    let (k, v) = pair(76, 4097);
    assert_eq!(
        validate_label(&k, &v).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let (k, v) = pair(63, 4096);
    validate_label(&k, &v).unwrap();
    let (k, v) = pair(63, 4095);
    validate_label(&k, &v).unwrap();
}

#[test]
fn reserved_prefixes_are_containerds_own() {
    assert!(is_reserved_label_key("containerd.io/gc.ref.content"));
    assert!(is_reserved_label_key("containerd.io/"));
    assert!(is_reserved_label_key("io.cri-containerd.image"));
    assert!(is_reserved_label_key("io.cri-containerd"));
    assert!(!is_reserved_label_key("containerd.io"));
    assert!(!is_reserved_label_key("io.containerd.something"));
    assert!(!is_reserved_label_key("com.example.app"));
}

#[test]
fn namespaces_follow_containerds_identifier_rules() {
    for ok in [
        "default",
        "k8s.io",
        "moby",
        "a",
        "A1",
        "a_b-c.d",
        &"x".repeat(76),
    ] {
        validate_namespace(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    for bad in [
        "a/b",
        ".a",
        "a.",
        "a..b",
        "a-_b",
        "_",
        "a b",
        "ü",
        &"x".repeat(77),
    ] {
        let err = validate_namespace(bad).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
    }
    let err = validate_namespace("").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(err.to_string(), "namespace is required");
}
