//! A small deterministic random generator, so the suite needs no `rand`.

use std::io::{self, Read};
use std::time::{SystemTime, UNIX_EPOCH};

/// SplitMix64: fast, deterministic for a seed, good enough for test data
/// (not for anything secret).
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator that yields the same sequence for the same seed.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// A generator seeded from the clock and the process id.
    pub fn from_entropy() -> Rng {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `low..high` (`low` when the range is empty).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.next_u64() % (high - low)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.range(0, 100) < percent
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        self.fill(&mut out);
        out
    }

    /// `len` random lower-case hex characters.
    pub fn hex(&mut self, len: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        (0..len)
            .map(|_| char::from(HEX[(self.next_u64() % 16) as usize]))
            .collect()
    }
}

/// A reader that yields `len` pseudo-random bytes for a seed without holding
/// them: two generators with the same seed and length yield the same stream,
/// however the reads are sized.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    position: u64,
    len: u64,
}

impl Generator {
    /// `len` bytes generated from `seed`.
    pub fn new(seed: u64, len: u64) -> Generator {
        Generator {
            seed,
            position: 0,
            len,
        }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        Rng::new(self.seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407))
            .next_u64()
            .to_le_bytes()
    }
}

impl Read for Generator {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len - self.position) as usize;
        let mut index = self.position / 8;
        let mut word = self.word(index);
        for (i, byte) in buf[..n].iter_mut().enumerate() {
            let position = self.position + i as u64;
            if position / 8 != index {
                index = position / 8;
                word = self.word(index);
            }
            *byte = word[(position % 8) as usize];
        }
        self.position += n as u64;
        Ok(n)
    }
}
