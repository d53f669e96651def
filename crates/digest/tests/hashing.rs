//! go-digest `algorithm_test.go`, `verifiers_test.go` and known values (PEER_SEMANTICS §1.4–1.7).

use std::io::Write;

use imgstore_digest::{Algorithm, Digest, DigestError, FormatProblem, Verifier};

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

#[test]
fn known_values() {
    assert_eq!(
        Digest::from_bytes(b"").as_str(),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        Algorithm::Sha512.from_bytes(b"").as_str(),
        "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    );
    assert_eq!(
        Digest::from_bytes(b"hello").as_str(),
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
}

#[test]
fn hash_sizes() {
    assert_eq!(Algorithm::Sha256.size(), 32);
    assert_eq!(Algorithm::Sha384.size(), 48);
    assert_eq!(Algorithm::Sha512.size(), 64);
}

#[test]
fn flag_interface() {
    let err = Algorithm::from_flag("bean").unwrap_err();
    assert!(matches!(err, DigestError::Unsupported { .. }));
    assert!(err.to_string().contains("unsupported digest algorithm"));
    assert_eq!(Algorithm::default(), Algorithm::Sha256);
    assert_eq!(Algorithm::from_flag("sha512").unwrap(), Algorithm::Sha512);
    assert_eq!(Algorithm::from_flag("").unwrap(), Algorithm::Sha256);
}

#[test]
fn bytes_reader_and_digester_agree_for_every_algorithm() {
    let data = noise(1 << 20, 0x5eed);
    for algorithm in Algorithm::ALL {
        let from_bytes = algorithm.from_bytes(&data);
        let from_reader = algorithm.from_reader(&data[..]).unwrap();
        let mut digester = algorithm.digester();
        for chunk in data.chunks(7919) {
            digester.write_all(chunk).unwrap();
        }
        assert_eq!(from_bytes, from_reader);
        assert_eq!(from_bytes, digester.finish());
        assert_eq!(from_bytes.algorithm(), algorithm);
        assert_eq!(from_bytes.encoded().len(), algorithm.encoded_len());
        assert!(
            from_bytes
                .encoded()
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
    assert_eq!(
        Digest::from_bytes(&data),
        Algorithm::Sha256.from_bytes(&data)
    );
}

#[test]
fn verifier_accepts_the_right_bytes_only_when_complete() {
    let data = noise(1 << 20, 42);
    let mut verifier = Digest::from_bytes(&data).verifier();
    verifier.write_all(&data[..1000]).unwrap();
    assert!(!verifier.verified());
    verifier.write_all(&data[1000..]).unwrap();
    assert!(verifier.verified());
}

#[test]
fn verifier_rejects_wrong_bytes() {
    let mut verifier = Digest::from_bytes(b"expected").verifier();
    verifier.write_all(b"something else").unwrap();
    assert!(!verifier.verified());
}

#[test]
fn verifier_of_unusable_digest_is_a_typed_error() {
    let problem = |s: &str| match Verifier::for_str(s) {
        Err(DigestError::InvalidFormat { problem, .. }) => Some(problem),
        Err(DigestError::Unsupported { .. }) => None,
        other => panic!("{s:?}: {:?}", other.map(|v| v.expected().clone())),
    };
    assert_eq!(problem(""), Some(FormatProblem::NoSeparator));
    assert_eq!(problem(":"), Some(FormatProblem::EmptyAlgorithm));
    assert_eq!(problem("bean:0123456789abcdef"), None);
    assert_eq!(problem("sha256-garbage:pure"), None);
}

#[test]
fn hash_bytes_round_trip() {
    for algorithm in Algorithm::ALL {
        let d = algorithm.from_bytes(b"round trip");
        let raw = d.hash_bytes();
        assert_eq!(raw.len(), algorithm.size());
        assert_eq!(Digest::from_hash(algorithm, &raw).unwrap(), d);
    }
    assert!(matches!(
        Digest::from_hash(Algorithm::Sha256, &[0u8; 31]),
        Err(DigestError::InvalidLength { .. })
    ));
}

#[test]
fn ordering_and_equality_follow_the_string() {
    let mut ds: Vec<Digest> = ["b", "a", "c"]
        .iter()
        .map(|s| Digest::from_bytes(s.as_bytes()))
        .collect();
    ds.push(Algorithm::Sha512.from_bytes(b"a"));
    let mut by_string: Vec<String> = ds.iter().map(|d| d.to_string()).collect();
    ds.sort();
    by_string.sort();
    assert_eq!(
        ds.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        by_string
    );
    let set: std::collections::HashSet<Digest> =
        ds.iter().cloned().chain(ds.iter().cloned()).collect();
    assert_eq!(set.len(), 4);
}

#[test]
fn serde_uses_the_string_form() {
    let d = Digest::from_bytes(b"foo");
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(
        json,
        "\"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\""
    );
    assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    let err = serde_json::from_str::<Digest>("\"sha256:abc\"").unwrap_err();
    assert!(
        err.to_string().contains("invalid checksum digest length"),
        "{err}"
    );
}

#[test]
fn converts_to_and_from_oci_spec() {
    for algorithm in Algorithm::ALL {
        let ours = algorithm.from_bytes(b"oci");
        let theirs = oci_spec::image::Digest::try_from(&ours).unwrap();
        assert_eq!(theirs.to_string(), ours.to_string());
        assert_eq!(Digest::try_from(&theirs).unwrap(), ours);
    }
    let foreign: oci_spec::image::Digest =
        "multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8"
            .parse()
            .unwrap();
    assert!(matches!(
        Digest::try_from(&foreign),
        Err(DigestError::Unsupported { .. })
    ));
}
