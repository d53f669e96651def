//! No input makes the parser panic, and every answer is consistent with go-digest's grammar.

use imgstore_digest::{Digest, DigestError};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC*") {
        let _ = Digest::parse(&s);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = Digest::parse(&s);
    }

    #[test]
    fn digest_shaped_strings_classify_by_go_rules(
        alg in "(sha256|sha384|sha512|[a-z0-9]{1,6}([.+_-][a-z0-9]{1,4})?|[A-Z]{1,3})",
        enc in "[a-zA-Z0-9=_:. -]{0,140}",
    ) {
        let input = format!("{alg}:{enc}");
        match Digest::parse(&input) {
            Ok(d) => {
                prop_assert_eq!(d.as_str(), input.as_str());
                prop_assert_eq!(d.encoded().len(), d.algorithm().encoded_len());
                prop_assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
            }
            Err(DigestError::InvalidLength { expected, actual, .. }) => {
                prop_assert!(["sha256", "sha384", "sha512"].contains(&alg.as_str()));
                prop_assert_ne!(expected, actual);
            }
            Err(DigestError::Unsupported { .. }) => {
                prop_assert!(!["sha256", "sha384", "sha512"].contains(&alg.as_str()));
            }
            Err(_) => {}
        }
    }

    #[test]
    fn hashed_digests_always_parse(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let d = Digest::from_bytes(&data);
        prop_assert_eq!(Digest::parse(d.as_str()).unwrap(), d);
    }
}
