//! How a lookup query is read: classified as go-digest's `Lookup` does, and a
//! hex prefix turned into a range of raw hash bytes. Nothing here allocates.

use imgstore_digest::Algorithm;

/// What a lookup query asks for.
///
/// go-digest parses the query as a digest first: `InvalidFormat` makes the whole
/// query a bare hex prefix over every algorithm; any other outcome (OK,
/// `InvalidLength`, `Unsupported`) makes it `algorithm:hex-prefix`. Calling
/// `Digest::parse` would allocate its error, so the same classification is done
/// here by hand. It only needs to agree on the queries that can match: every
/// other one is [`Query::Nothing`]. (The property tests check it against a
/// reference built on `Digest::parse`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Query<'a> {
    /// No `:`: a prefix of the hex of an entry of any algorithm.
    Bare(&'a str),
    /// A supported algorithm and a non-empty encoded part: a hex prefix of that
    /// algorithm's entries (a full-length one is an exact match).
    Qualified(Algorithm, &'a str),
    /// Matches nothing: an empty algorithm or encoded part (`sha256:`,
    /// `:abc`, which go reads as a bare prefix containing `:`), or an algorithm
    /// we do not know (`Unsupported`, or a bare prefix containing `:`).
    Nothing,
}

impl<'a> Query<'a> {
    pub(crate) fn classify(query: &'a str) -> Query<'a> {
        let Some((name, encoded)) = query.split_once(':') else {
            return Query::Bare(query);
        };
        if name.is_empty() || encoded.is_empty() {
            return Query::Nothing;
        }
        match Algorithm::from_name(name) {
            Some(algorithm) => Query::Qualified(algorithm, encoded),
            None => Query::Nothing,
        }
    }
}

/// The longest hash we store, sha512: 64 bytes, 128 hex digits.
const MAX_BYTES: usize = 64;

/// A lower-case hex prefix as bounds on raw hash bytes: the hashes whose hex
/// starts with the prefix are exactly those in `low..=high`, because hex order
/// is byte order. An odd last digit fills the low nibble with 0 (low bound) or
/// f (high bound); missing bytes are 0x00 and 0xff.
#[derive(Debug, Clone)]
pub(crate) struct HexPrefix {
    low: [u8; MAX_BYTES],
    high: [u8; MAX_BYTES],
    digits: usize,
}

impl HexPrefix {
    /// `None` when `hex` is not lower-case hex or is longer than any hash.
    pub(crate) fn parse(hex: &str) -> Option<HexPrefix> {
        if hex.len() > MAX_BYTES * 2 {
            return None;
        }
        let mut low = [0x00; MAX_BYTES];
        let mut high = [0xff; MAX_BYTES];
        for (i, c) in hex.bytes().enumerate() {
            let nibble = nibble(c)?;
            let byte = i / 2;
            if i % 2 == 0 {
                low[byte] = nibble << 4;
                high[byte] = (nibble << 4) | 0x0f;
            } else {
                low[byte] |= nibble;
                high[byte] = (high[byte] & 0xf0) | nibble;
            }
        }
        Some(HexPrefix {
            low,
            high,
            digits: hex.len(),
        })
    }

    /// The bounds for hashes of `N` bytes, or `None` when the prefix is longer
    /// than such a hash (no hash of that size can match).
    pub(crate) fn bounds<const N: usize>(&self) -> Option<(&[u8; N], &[u8; N])> {
        if self.digits > N * 2 {
            return None;
        }
        Some((self.low.first_chunk()?, self.high.first_chunk()?))
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_follows_go_parse() {
        assert_eq!(Query::classify("1234"), Query::Bare("1234"));
        assert_eq!(Query::classify(""), Query::Bare(""));
        assert_eq!(Query::classify("sha256"), Query::Bare("sha256"));
        assert_eq!(Query::classify("sha256:"), Query::Nothing);
        assert_eq!(Query::classify(":12"), Query::Nothing);
        assert_eq!(Query::classify("foo:12"), Query::Nothing);
        assert_eq!(Query::classify("SHA256:12"), Query::Nothing);
        assert_eq!(
            Query::classify("sha384:ab:c"),
            Query::Qualified(Algorithm::Sha384, "ab:c")
        );
    }

    #[test]
    fn odd_prefix_pads_low_nibble() {
        let p = HexPrefix::parse("abc").unwrap();
        let (low, high) = p.bounds::<2>().unwrap();
        assert_eq!(low, &[0xab, 0xc0]);
        assert_eq!(high, &[0xab, 0xcf]);
        assert!(p.bounds::<1>().is_none());
    }

    #[test]
    fn non_hex_and_too_long_prefixes_match_nothing() {
        assert!(HexPrefix::parse("12x").is_none());
        assert!(HexPrefix::parse("ABC").is_none());
        assert!(HexPrefix::parse(&"1".repeat(129)).is_none());
        assert!(HexPrefix::parse(&"1".repeat(128)).is_some());
    }
}
