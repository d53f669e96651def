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

/// `IS_LOWER_HEX[b]` is 1 for `[0-9a-f]`, else 0.
static IS_LOWER_HEX: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = matches!(c as u8, b'0'..=b'9' | b'a'..=b'f') as u8;
        c += 1;
    }
    table
};

/// True when every byte is `[0-9a-f]`. Branch-free over the input, so the
/// 64 bytes of a sha256 digest check in a few nanoseconds.
#[inline]
pub(crate) fn is_lower_hex(s: &[u8]) -> bool {
    s.iter()
        .fold(1u8, |ok, &c| ok & IS_LOWER_HEX[usize::from(c)])
        == 1
}

/// Decodes lower-case hex of even length into `out`; the caller has validated it.
pub(crate) fn decode_into(hex: &[u8], out: &mut [u8]) {
    for (dst, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let hi = nibble(pair[0]).unwrap_or(0);
        let lo = nibble(pair[1]).unwrap_or(0);
        *dst = (hi << 4) | lo;
    }
}
