//! Lower-case hex, the only encoding OCI digests use.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes the lower-case hex of `bytes` into `out`, which holds twice as many bytes.
pub(crate) fn encode_to_slice(bytes: &[u8], out: &mut [u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
}

/// The value of one lower-case hex digit, or `None`.
#[inline]
pub(crate) fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// True when every byte is `[0-9a-f]`.
#[inline]
pub(crate) fn is_lower_hex(s: &[u8]) -> bool {
    s.iter().all(|&c| nibble(c).is_some())
}

/// Decodes lower-case hex of even length into `out`; the caller has validated it.
pub(crate) fn decode_into(hex: &[u8], out: &mut [u8]) {
    for (dst, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let hi = nibble(pair[0]).unwrap_or(0);
        let lo = nibble(pair[1]).unwrap_or(0);
        *dst = (hi << 4) | lo;
    }
}
