//! How a lookup query is read: classified as go-digest's `Lookup` does, and a
//! hex prefix turned into a range of hashes (as big-endian 64-bit words).
//! Nothing here allocates.

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

/// The longest hash we store, sha512: 64 bytes, 8 words of 64 bits.
pub(crate) const MAX_WORDS: usize = 8;

/// Hex digits per 64-bit word.
const DIGITS_PER_WORD: usize = 16;

/// A hash as big-endian 64-bit words: word order is byte order is hex order,
/// and comparing a few `u64`s is much cheaper than a `memcmp` call per B-tree
/// comparison.
pub(crate) type Words = [u64; MAX_WORDS];

/// A lower-case hex prefix as bounds on hashes: the hashes whose hex starts
/// with the prefix are exactly those in `low..=high`, because hex order is
/// word order. Digits after the prefix are 0 in `low` and f in `high`, so an
/// odd-length prefix becomes a range too.
#[derive(Debug, Clone)]
pub(crate) struct HexPrefix {
    low: Words,
    digits: usize,
}

impl HexPrefix {
    /// `None` when `hex` is not lower-case hex or is longer than any hash.
    pub(crate) fn parse(hex: &str) -> Option<HexPrefix> {
        Some(HexPrefix {
            low: decode(hex)?,
            digits: hex.len(),
        })
    }

    /// The number of hex digits.
    pub(crate) fn digits(&self) -> usize {
        self.digits
    }

    /// The bounds for hashes of `W` words, or `None` when the prefix is longer
    /// than such a hash (no hash of that size can match).
    pub(crate) fn bounds<const W: usize>(&self) -> Option<([u64; W], [u64; W])> {
        if self.digits > W * DIGITS_PER_WORD {
            return None;
        }
        let low: [u64; W] = *self.low.first_chunk()?;
        let mut high = low;
        let (full_words, partial) = (self.digits / DIGITS_PER_WORD, self.digits % DIGITS_PER_WORD);
        for (i, word) in high.iter_mut().enumerate().skip(full_words) {
            *word |= if i == full_words {
                u64::MAX >> (4 * partial)
            } else {
                u64::MAX
            };
        }
        Some((low, high))
    }
}

/// Decodes lower-case hex (at most 128 digits) into words, digits after the
/// end being 0; `None` for anything else. Eight digits at a time, without a
/// branch per digit: this runs on every add, remove and lookup.
pub(crate) fn decode(hex: &str) -> Option<Words> {
    let bytes = hex.as_bytes();
    if bytes.len() > MAX_WORDS * DIGITS_PER_WORD {
        return None;
    }
    let mut words = [0u64; MAX_WORDS];
    let mut chunks = bytes.chunks_exact(8);
    for (k, chunk) in (&mut chunks).enumerate() {
        let value = u64::from(decode8(chunk.first_chunk()?)?);
        // Two 8-digit halves per word, the first one high.
        words[k / 2] |= if k % 2 == 0 { value << 32 } else { value };
    }
    let done = bytes.len() - chunks.remainder().len();
    for (i, &c) in chunks.remainder().iter().enumerate() {
        let pos = done + i;
        words[pos / DIGITS_PER_WORD] |= u64::from(nibble(c)?) << (60 - 4 * (pos % DIGITS_PER_WORD));
    }
    Some(words)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` (all below 0x80) set when the byte is in `lo..=hi`.
#[inline]
fn bytes_in_range(x: u64, lo: u8, hi: u8) -> u64 {
    // Per byte, no carries: (0x80 + hi) - b has its high bit set iff b <= hi,
    // b + (0x80 - lo) iff b >= lo.
    let at_most_hi = (ONES * (0x80 + u64::from(hi))) - x;
    let at_least_lo = x + ONES * (0x80 - u64::from(lo));
    at_most_hi & at_least_lo & HIGH_BITS
}

/// Eight lower-case hex digits to their value, or `None`.
#[inline]
fn decode8(chunk: &[u8; 8]) -> Option<u32> {
    let x = u64::from_be_bytes(*chunk);
    if x & HIGH_BITS != 0
        || (bytes_in_range(x, b'0', b'9') | bytes_in_range(x, b'a', b'f')) != HIGH_BITS
    {
        return None;
    }
    // '0'..'9' -> low nibble; 'a'..'f' (bit 6 set) -> low nibble + 9.
    let mut v = (x & (ONES * 0x0f)) + 9 * ((x >> 6) & ONES);
    // Pack the eight nibbles, one per byte, into 32 bits.
    v = (v | (v >> 4)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v >> 8)) & 0x0000_ffff_0000_ffff;
    v = (v | (v >> 16)) & 0x0000_0000_ffff_ffff;
    Some(v as u32)
}

/// One lower-case hex digit's value, or `None`.
#[inline]
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// The eight lower-case hex digits of `value`.
#[inline]
fn encode8(value: u32) -> [u8; 8] {
    // Spread the nibbles one per byte, first digit in the high byte.
    let mut x = u64::from(value);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & (ONES * 0x0f);
    // '0' + v, plus ('a' - '0' - 10) where v >= 10.
    let letters = ((x + ONES * 6) >> 4) & ONES;
    (x + ONES * u64::from(b'0') + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

/// Writes the lower-case hex of `words` into `out` (16 digits per word);
/// returns how many bytes were written.
pub(crate) fn encode_words(words: &[u64], out: &mut [u8]) -> usize {
    let mut written = 0;
    for (word, dst) in words.iter().zip(out.chunks_exact_mut(DIGITS_PER_WORD)) {
        let (high, low) = dst.split_at_mut(DIGITS_PER_WORD / 2);
        high.copy_from_slice(&encode8((word >> 32) as u32));
        low.copy_from_slice(&encode8(*word as u32));
        written += DIGITS_PER_WORD;
    }
    written
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
        let (low, high) = p.bounds::<1>().unwrap();
        assert_eq!(low, [0xabc0_0000_0000_0000]);
        assert_eq!(high, [0xabcf_ffff_ffff_ffff]);
        let p = HexPrefix::parse(&format!("{}1", "0".repeat(16))).unwrap();
        let (low, high) = p.bounds::<2>().unwrap();
        assert_eq!(low, [0, 0x1000_0000_0000_0000]);
        assert_eq!(high, [0, 0x1fff_ffff_ffff_ffff]);
        assert!(p.bounds::<1>().is_none());
    }

    #[test]
    fn empty_prefix_spans_everything() {
        let p = HexPrefix::parse("").unwrap();
        let (low, high) = p.bounds::<4>().unwrap();
        assert_eq!(low, [0; 4]);
        assert_eq!(high, [u64::MAX; 4]);
    }

    #[test]
    fn full_hex_round_trips_through_words() {
        let hex = "0123456789abcdef".repeat(4);
        let p = HexPrefix::parse(&hex).unwrap();
        let (low, high) = p.bounds::<4>().unwrap();
        assert_eq!(low, high);
        let mut out = [0u8; 64];
        assert_eq!(encode_words(&low, &mut out), 64);
        assert_eq!(&out[..], hex.as_bytes());
    }

    #[test]
    fn decode8_accepts_exactly_lower_hex() {
        for c in 0..=255u8 {
            let mut chunk = *b"0123abcd";
            chunk[3] = c;
            let expected = nibble(c).map(|n| 0x0120_abcd | (u32::from(n) << 16));
            assert_eq!(decode8(&chunk), expected, "byte {c:#x}");
        }
        assert_eq!(decode8(b"fedcba98"), Some(0xfedc_ba98));
        assert_eq!(decode8(b"00000000"), Some(0));
    }

    #[test]
    fn encode8_round_trips() {
        for value in [0, 1, 0x0123_4567, 0x89ab_cdef, 0xffff_ffff, 0xa0b0_c0d0] {
            let text = encode8(value);
            assert_eq!(text, *format!("{value:08x}").as_bytes());
            assert_eq!(decode8(&text), Some(value));
        }
    }

    #[test]
    fn decode_matches_digit_by_digit_for_every_length() {
        let hex = "0123456789abcdeffedcba9876543210".repeat(4);
        for len in 0..=128 {
            let words = decode(&hex[..len]).unwrap();
            let mut expected = [0u64; MAX_WORDS];
            for (i, c) in hex[..len].bytes().enumerate() {
                expected[i / 16] |= u64::from(nibble(c).unwrap()) << (60 - 4 * (i % 16));
            }
            assert_eq!(words, expected, "len {len}");
        }
        assert!(decode(&format!("{}g", &hex[..20])).is_none());
        assert!(decode(&format!("{}G", &hex[..15])).is_none());
    }

    #[test]
    fn non_hex_and_too_long_prefixes_match_nothing() {
        assert!(HexPrefix::parse("12x").is_none());
        assert!(HexPrefix::parse("ABC").is_none());
        assert!(HexPrefix::parse(&"1".repeat(129)).is_none());
        assert!(HexPrefix::parse(&"1".repeat(128)).is_some());
    }
}
