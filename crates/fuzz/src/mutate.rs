//! A deterministic random source and byte-level mutations of seed inputs.
//!
//! No coverage feedback: every input is a seed with one to eight stacked
//! mutations (bit flips, interesting bytes, inserted, deleted, duplicated or
//! repeated ranges, dictionary tokens, splices with another seed). Runs are
//! reproducible from the seed printed at their start.

/// xorshift64* : small, fast and good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (any value; zero is remapped).
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so nearby seeds diverge at once.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 0x2545_f491_4f6c_dd1d } else { z })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of a non-empty slice (`None` when empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }
}

/// Bytes that often sit on parser boundaries.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'/', b'.', b':', b'@', b'"', b'\\', b'{', b'}', b'[', b']', b',',
    b'=', b'!', b'~', b'|', b'-', b'_', b'0', b'9', b'a', b'A', b'\n', b' ',
];

/// Mutates `data` in place: one to eight stacked mutations, using `dict`
/// tokens and splicing from `corpus`; the result is at most `max_len` bytes.
pub fn mutate(
    rng: &mut Rng,
    data: &mut Vec<u8>,
    dict: &[&[u8]],
    corpus: &[Vec<u8>],
    max_len: usize,
) {
    let rounds = 1 + rng.below(8);
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(12) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next_u64() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                data[i] = *rng.pick(INTERESTING).unwrap_or(&0);
            }
            3 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(64));
                data.drain(at..at + n);
            }
            5 if len > 0 => {
                // Duplicate a range in place.
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(256));
                let chunk = data[at..at + n].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, chunk);
            }
            6 | 7 => {
                if let Some(token) = rng.pick(dict) {
                    let at = rng.below(len + 1);
                    if rng.one_in(2) || at == len {
                        data.splice(at..at, token.iter().copied());
                    } else {
                        let end = (at + token.len()).min(len);
                        data.splice(at..end, token.iter().copied());
                    }
                }
            }
            8 => {
                if let Some(other) = rng.pick(corpus)
                    && !other.is_empty()
                {
                    // Splice: our head, their tail.
                    let cut = rng.below(len + 1);
                    let from = rng.below(other.len());
                    data.truncate(cut);
                    data.extend_from_slice(&other[from..]);
                }
            }
            9 if len > 0 => {
                let keep = rng.below(len);
                data.truncate(keep);
            }
            10 if len > 0 => {
                // Repeat a short range many times (deep nesting, long runs).
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(8));
                let chunk = data[at..at + n].to_vec();
                let times = 1 + rng.below(512);
                let mut repeated = Vec::with_capacity(n * times);
                for _ in 0..times {
                    repeated.extend_from_slice(&chunk);
                }
                data.splice(at..at, repeated);
            }
            11 if len > 1 => {
                let a = rng.below(len);
                let b = rng.below(len);
                data.swap(a, b);
            }
            _ => {
                let at = rng.below(len + 1);
                data.insert(at, *rng.pick(INTERESTING).unwrap_or(&0));
            }
        }
        data.truncate(max_len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_reproducible_from_their_seed() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let mut data = b"sha256:abc".to_vec();
            for _ in 0..100 {
                mutate(&mut rng, &mut data, &[b"xyz"], &[b"seed".to_vec()], 4096);
            }
            data
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn below_stays_below() {
        let mut rng = Rng::new(0);
        assert_eq!(rng.below(0), 0);
        assert!((0..1000).all(|_| rng.below(3) < 3));
    }
}
