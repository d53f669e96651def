//! Docker reference parsing and normalisation (docker/distribution), and the
//! CRI ranking of PEER_SEMANTICS §7.4.

use imgstore_backend::ErrorKind;
use imgstore_refs::reference::{
    AnyReference, FamiliarParts, Reference, ReferenceError, ReferenceRank, familiar,
    familiar_parts, normalize, rank, sort_references,
};

const HEX: &str = "ccb28a06ca54f02372657c78ba14c5bf7e3ac83a1646eba3dba9b262cbcf89bb";

fn digest() -> String {
    format!("sha256:{HEX}")
}

#[test]
fn normalize_fills_in_domain_library_and_latest() {
    let d = digest();
    let cases = [
        ("busybox", "docker.io/library/busybox:latest".to_owned()),
        ("busybox:1.36", "docker.io/library/busybox:1.36".to_owned()),
        (
            "library/busybox",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "docker.io/busybox",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "index.docker.io/busybox",
            "docker.io/library/busybox:latest".to_owned(),
        ),
        (
            "index.docker.io/user/app",
            "docker.io/user/app:latest".to_owned(),
        ),
        ("user/app", "docker.io/user/app:latest".to_owned()),
        (
            &format!("busybox@{d}"),
            format!("docker.io/library/busybox@{d}"),
        ),
        (
            &format!("busybox:1@{d}"),
            format!("docker.io/library/busybox:1@{d}"),
        ),
        ("localhost/app", "localhost/app:latest".to_owned()),
        (
            "localhost:5000/team/app:v1",
            "localhost:5000/team/app:v1".to_owned(),
        ),
        (
            "quay.io/coreos/etcd:v3",
            "quay.io/coreos/etcd:v3".to_owned(),
        ),
        (
            "127.0.0.1:5000/debian",
            "127.0.0.1:5000/debian:latest".to_owned(),
        ),
        (
            "[fc00::1]:5000/docker",
            "[fc00::1]:5000/docker:latest".to_owned(),
        ),
        ("[fc00::1]/docker", "[fc00::1]/docker:latest".to_owned()),
        (
            "192.168.0.1",
            "docker.io/library/192.168.0.1:latest".to_owned(),
        ),
        (
            "192.168.0.1:80",
            "docker.io/library/192.168.0.1:80".to_owned(),
        ),
        ("Foo/bar", "Foo/bar:latest".to_owned()),
        (
            "a__b/c-----d.e_f",
            "docker.io/a__b/c-----d.e_f:latest".to_owned(),
        ),
        (
            &format!("docker.io/{HEX}"),
            format!("docker.io/library/{HEX}:latest"),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(
            normalize(input).unwrap_or_else(|e| panic!("{input}: {e}")),
            expected
        );
    }
}

#[test]
fn familiar_drops_the_default_domain_and_library() {
    let d = digest();
    let cases = [
        (
            "docker.io/library/busybox:latest",
            "busybox:latest".to_owned(),
        ),
        ("docker.io/library/busybox", "busybox".to_owned()),
        ("busybox", "busybox".to_owned()),
        ("docker.io/user/repo:1", "user/repo:1".to_owned()),
        ("docker.io/library/foo/bar", "library/foo/bar".to_owned()),
        ("quay.io/x/y:1", "quay.io/x/y:1".to_owned()),
        ("localhost/foo", "localhost/foo".to_owned()),
        (
            &format!("docker.io/library/busybox@{d}"),
            format!("busybox@{d}"),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(familiar(input).unwrap(), expected, "{input}");
    }
}

#[test]
fn parts_are_exposed() {
    let r = Reference::parse_normalized(&format!("busybox:1.36@{}", digest())).unwrap();
    assert_eq!(r.domain(), "docker.io");
    assert_eq!(r.path(), "library/busybox");
    assert_eq!(r.name(), "docker.io/library/busybox");
    assert_eq!(r.tag(), Some("1.36"));
    assert_eq!(r.digest().map(|d| d.as_str().to_owned()), Some(digest()));
    assert_eq!(r.familiar_name(), "busybox");
    assert!(!r.is_name_only());
    let parsed: Reference = "busybox".parse().unwrap();
    assert!(parsed.is_name_only());
    assert_eq!(parsed.with_default_tag().tag(), Some("latest"));
}

#[test]
fn bad_references_are_refused_with_the_reason() {
    let long_path = "a".repeat(256 - "docker.io/library/".len());
    type IsExpected = fn(&ReferenceError) -> bool;
    let cases: Vec<(String, IsExpected)> = vec![
        ("".into(), |e| matches!(e, ReferenceError::NameEmpty)),
        (HEX.into(), |e| {
            matches!(e, ReferenceError::AmbiguousName { .. })
        }),
        (format!("busybox:{HEX}"), |e| {
            matches!(e, ReferenceError::AmbiguousTag { .. })
        }),
        ("Busybox".into(), |e| {
            matches!(e, ReferenceError::NameContainsUppercase { .. })
        }),
        ("docker.io/docker/Docker".into(), |e| {
            matches!(e, ReferenceError::NameContainsUppercase { .. })
        }),
        ("busybox:".into(), |e| {
            matches!(e, ReferenceError::InvalidTag { .. })
        }),
        ("busybox:-x".into(), |e| {
            matches!(e, ReferenceError::InvalidTag { .. })
        }),
        (format!("busybox:{}", "t".repeat(129)), |e| {
            matches!(e, ReferenceError::InvalidTag { .. })
        }),
        ("busybox@sha256:abc".into(), |e| {
            matches!(e, ReferenceError::InvalidDigest { .. })
        }),
        ("busybox@md5:0123456789abcdef0123456789abcdef".into(), |e| {
            matches!(e, ReferenceError::InvalidDigest { .. })
        }),
        (long_path, |e| matches!(e, ReferenceError::NameTooLong)),
        ("https://github.com/docker/docker".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
        ("-docker".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
        ("-docker.io/docker/docker".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
        ("docker///docker".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
        ("a_-b".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
        ("a___b".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
        ("localhost:x/app".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
        ("[zz::1]/app".into(), |e| {
            matches!(e, ReferenceError::InvalidFormat { .. })
        }),
    ];
    for (input, expected) in cases {
        let err = Reference::parse_normalized(&input).expect_err(&input);
        assert!(expected(&err), "{input:?} gave {err:?}");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    }
    assert_eq!(
        Reference::parse_normalized(HEX).unwrap_err().to_string(),
        format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
    );
    let tag_128 = format!("busybox:{}", "t".repeat(128));
    Reference::parse_normalized(&tag_128).unwrap();
    let longest = "a".repeat(255 - "docker.io/library/".len());
    Reference::parse_normalized(&longest).unwrap();
}

#[test]
fn any_reference_reads_hex_as_a_sha256_digest() {
    assert_eq!(AnyReference::parse(HEX).unwrap().to_string(), digest());
    assert_eq!(
        AnyReference::parse(&digest()).unwrap().to_string(),
        digest()
    );
    assert_eq!(
        AnyReference::parse("busybox").unwrap().to_string(),
        "docker.io/library/busybox"
    );
    assert!(AnyReference::parse("not a ref").is_err());
}

#[test]
fn ranks_follow_how_much_a_reference_says() {
    let d = digest();
    assert_eq!(
        rank(&format!("busybox:1@{d}")),
        ReferenceRank::NameTagDigest
    );
    assert_eq!(rank("busybox:1"), ReferenceRank::NameTag);
    assert_eq!(rank(&format!("busybox@{d}")), ReferenceRank::NameDigest);
    assert_eq!(rank("busybox"), ReferenceRank::Name);
    assert_eq!(rank(&d), ReferenceRank::Digest);
    assert_eq!(rank(HEX), ReferenceRank::Digest);
    assert_eq!(rank("Not/Valid!"), ReferenceRank::Unparsable);
}

#[test]
fn cri_sort_puts_the_most_informative_first_and_unparsable_last() {
    let d = digest();
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000001";
    let input = vec![
        other.to_owned(),
        "busybox".to_owned(),
        "not a ref!".to_owned(),
        format!("busybox:1@{d}"),
        HEX.to_owned(),
        "alpine:3".to_owned(),
        format!("busybox@{d}"),
        "ABC".to_owned(),
        "alpine".to_owned(),
    ];
    let expected = vec![
        format!("docker.io/library/busybox:1@{d}"),
        "docker.io/library/alpine:3".to_owned(),
        format!("docker.io/library/busybox@{d}"),
        "docker.io/library/alpine".to_owned(),
        "docker.io/library/busybox".to_owned(),
        other.to_owned(),
        d.clone(),
        "ABC".to_owned(),
        "not a ref!".to_owned(),
    ];
    assert_eq!(sort_references(&input), expected);
}

#[test]
fn cri_sort_normalises_the_strings_it_returns() {
    assert_eq!(
        sort_references(["containerd.io/ref-1", "busybox", HEX]),
        [
            "containerd.io/ref-1".to_owned(),
            "docker.io/library/busybox".to_owned(),
            digest()
        ]
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn reference_like() -> impl Strategy<Value = String> {
        let component = "[a-z0-9]{1,4}([._-][a-z0-9]{1,3})?";
        (
            prop::option::of(prop::sample::select(vec![
                "docker.io",
                "index.docker.io",
                "localhost",
                "localhost:5000",
                "quay.io",
                "[fc00::1]:5000",
            ])),
            prop::collection::vec(component, 1..4),
            prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}"),
            prop::option::of(Just(digest())),
        )
            .prop_map(|(domain, path, tag, digest)| {
                let mut s = String::new();
                if let Some(domain) = domain {
                    s.push_str(domain);
                    s.push('/');
                }
                s.push_str(&path.join("/"));
                if let Some(tag) = tag {
                    s.push(':');
                    s.push_str(&tag);
                }
                if let Some(digest) = digest {
                    s.push('@');
                    s.push_str(&digest);
                }
                s
            })
    }

    proptest! {
        #[test]
        fn parsing_never_panics(input in "\\PC{0,80}") {
            let _ = Reference::parse_normalized(&input);
            let _ = AnyReference::parse(&input);
            let _ = sort_references([input.as_str()]);
        }

        #[test]
        fn normalize_is_idempotent_and_familiar_round_trips(input in reference_like()) {
            let normalized = normalize(&input).unwrap();
            prop_assert_eq!(normalize(&normalized).unwrap(), normalized.clone());
            let familiar_form = familiar(&normalized).unwrap();
            // As in distribution, `docker.io/a.b/c` shows as `a.b/c`, which
            // reads back with `a.b` as its domain: no round trip for those.
            let first = familiar_form.split('/').next().unwrap_or_default();
            prop_assume!(
                !familiar_form.contains('/') || normalized.starts_with(first) || !first.contains(['.', ':'])
            );
            prop_assert_eq!(normalize(&familiar_form).unwrap(), normalized);
        }

        #[test]
        fn familiar_parts_of_the_full_form_are_the_parsed_ones(input in reference_like()) {
            let reference = Reference::parse_normalized(&input).unwrap();
            let full = reference.to_string();
            let digest = reference.digest().map(|d| d.to_string());
            let expected = FamiliarParts {
                name: &reference.familiar_name(),
                tag: reference.tag(),
                digest: digest.as_deref(),
            };
            prop_assert_eq!(familiar_parts(&full), Some(expected));
        }
    }
}

#[test]
fn familiar_parts_slice_the_full_form() {
    let parts = |s| familiar_parts(s).map(|p| (p.name, p.tag, p.digest));
    assert_eq!(
        parts("docker.io/library/busybox:1.36"),
        Some(("busybox", Some("1.36"), None))
    );
    assert_eq!(
        parts("docker.io/library/a/b:x"),
        Some(("library/a/b", Some("x"), None))
    );
    assert_eq!(parts("docker.io/user/app"), Some(("user/app", None, None)));
    let pinned = format!("localhost:5000/app@{}", digest());
    assert_eq!(
        parts(&pinned),
        Some(("localhost:5000/app", None, Some(digest().as_str())))
    );
    assert_eq!(
        parts("quay.io/x/y:1"),
        Some(("quay.io/x/y", Some("1"), None))
    );
    // Not in full form: the caller parses instead.
    assert_eq!(parts("busybox:1"), None);
    assert_eq!(parts("user/app"), None);
}
