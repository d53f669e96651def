//! image-spec `identity/chainid_test.go` and the extra vectors of PEER_SEMANTICS §3.

use imgstore_digest::{Digest, chain_id, chain_id_unchecked, chain_ids};

const AB: &str = "sha256:970a948bffa8de94d6e22d747ba8c95030e6e546909f98f54e99a13005e173a8";
const ABC: &str = "sha256:dee159b33409cefa3f6eda71539f006014283e9d9130c18a1dea7bd8a33c9b1b";
const EMPTY_TAR: &str = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef";

fn d(s: &str) -> Digest {
    Digest::parse(s).unwrap()
}

#[test]
fn empty_input_has_no_chain_id() {
    assert_eq!(chain_id(&[]), None);
    assert!(chain_ids(&[]).is_empty());
    assert_eq!(chain_id_unchecked::<&str>(&[]), None);
}

#[test]
fn single_element_comes_back_unchanged_even_if_invalid() {
    assert_eq!(
        chain_id_unchecked(&["sha256:a"]).as_deref(),
        Some("sha256:a")
    );
    let bare = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    assert_eq!(chain_id_unchecked(&[bare]).as_deref(), Some(bare));
}

#[test]
fn links_join_with_one_space_without_validation() {
    assert_eq!(
        chain_id_unchecked(&["sha256:a", "sha256:b"]).as_deref(),
        Some(AB)
    );
    assert_eq!(
        chain_id_unchecked(&["sha256:a", "sha256:b", "sha256:c"]).as_deref(),
        Some(ABC)
    );
}

#[test]
fn typed_chain_ids_match_the_derived_vectors() {
    let a = Digest::from_bytes(b"foo");
    let b = Digest::from_bytes(b"bar");
    let c = Digest::from_bytes(b"baz");
    assert_eq!(
        a.as_str(),
        "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
    );
    let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(
        ids.iter().map(Digest::as_str).collect::<Vec<_>>(),
        [
            a.as_str(),
            "sha256:9abe30faa5bc3b839df938728ef8d9af0bcbe042db6d46fc4d816ae64d60a786",
            "sha256:072cf3f52bccf5b529f11ecd03b16ec1edf2c4cb1a01a3660f26a18938f1a61c",
        ]
    );
    // The single-result function returns the last element of the list.
    assert_eq!(chain_id(&[a, b, c]).as_ref(), ids.last());
}

#[test]
fn empty_layer_chain_ids() {
    let empty = d(EMPTY_TAR);
    assert_eq!(chain_id(std::slice::from_ref(&empty)), Some(empty.clone()));
    assert_eq!(
        chain_id(&[empty.clone(), empty]).unwrap().as_str(),
        "sha256:170b376f64fb30995c140276be3d71dfb256b308d86183ca3b22aa93a79ad548"
    );
}

#[test]
fn input_is_left_unchanged() {
    let input = vec![Digest::from_bytes(b"foo"), Digest::from_bytes(b"bar")];
    let copy = input.clone();
    let _ = chain_id(&input);
    let _ = chain_ids(&input);
    assert_eq!(input, copy);
}
