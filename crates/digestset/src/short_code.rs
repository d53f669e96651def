//! go-digest's `ShortCodeTable`, plus the fallback that makes every code resolve.

use std::collections::BTreeMap;

use imgstore_digest::Digest;

/// A code as go-digest picks it, before our fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// The first `n` hex digits.
    Bare(usize),
    /// The whole `alg:hex` string.
    Full,
}

/// `entries` are in set order (hex, then algorithm).
pub(crate) fn table(entries: Vec<Digest>, min_len: usize) -> BTreeMap<Digest, String> {
    let hexes: Vec<&str> = entries.iter().map(Digest::encoded).collect();
    let codes = go_codes(&hexes, min_len);
    let texts: Vec<String> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| match *code {
            Code::Bare(n) => match hexes[i].get(..n) {
                Some(short) if resolves(&hexes, i, short) => short.to_owned(),
                _ => entries[i].to_string(),
            },
            Code::Full => entries[i].to_string(),
        })
        .collect();
    entries.into_iter().zip(texts).collect()
}

/// go-digest's loop, on the sorted hexes. The length `l` only grows while a
/// run of colliding entries lasts and is reset to `min_len` once the scan has
/// passed the last entry that collided (`reset_idx`), so codes are unique
/// but not always the shortest; the algorithm is ignored when testing
/// collisions.
fn go_codes(hexes: &[&str], min_len: usize) -> Vec<Code> {
    let mut codes = Vec::with_capacity(hexes.len());
    let mut l = min_len;
    let mut reset_idx = 0;
    for (i, hex) in hexes.iter().enumerate() {
        let code = loop {
            let Some(short) = hex.get(..l).filter(|_| hex.len() > l) else {
                break Code::Full;
            };
            let mut extended = false;
            for (j, next) in hexes.iter().enumerate().skip(i + 1) {
                if !next.starts_with(short) {
                    break;
                }
                reset_idx = reset_idx.max(j);
                extended = true;
            }
            if !extended {
                break Code::Bare(l);
            }
            l += 1;
        };
        codes.push(code);
        if i >= reset_idx {
            l = min_len;
        }
    }
    codes
}

/// Whether the bare prefix `short` of `hexes[i]` matches that entry alone.
/// The hexes with a given prefix are contiguous in sorted order, so only the
/// neighbours can also match. go's scan only looks forward, so the entry
/// before can collide: a sha256 hex that is a prefix of a sha512 hex got the
/// full string, and the sha512 entry's code is that same 64-digit hex.
fn resolves(hexes: &[&str], i: usize, short: &str) -> bool {
    let before = i.checked_sub(1).and_then(|j| hexes.get(j));
    let after = hexes.get(i + 1);
    !before.is_some_and(|h| h.starts_with(short)) && !after.is_some_and(|h| h.starts_with(short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_codes_keep_length_until_the_collision_run_ends() {
        // Sorted hexes of go's TestShortCodeTable, shortened to 6 digits.
        let hexes = [
            "123411", "123451", "123461", "543211", "643211", "653211", "654211", "654311",
        ];
        let codes = go_codes(&hexes, 0);
        assert!(codes.iter().all(|c| *c == Code::Bare(5)));
        let codes = go_codes(&hexes, 1);
        let lens: Vec<_> = codes
            .iter()
            .map(|c| match c {
                Code::Bare(n) => *n,
                Code::Full => 0,
            })
            .collect();
        assert_eq!(lens, [5, 5, 5, 1, 2, 3, 4, 4]);
    }

    #[test]
    fn hex_not_longer_than_length_is_full() {
        assert_eq!(go_codes(&["ab"], 2), [Code::Full]);
        assert_eq!(go_codes(&["ab"], 1), [Code::Bare(1)]);
    }
}
