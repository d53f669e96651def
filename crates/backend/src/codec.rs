//! A compact binary encoding for the records a listing reads by the
//! thousand (image summaries, the name index's `image-names`): a version
//! byte, then little-endian fixed-width integers and length-prefixed UTF-8
//! strings, in an order the record type fixes.
//!
//! JSON's parse was most of `images` at 10k images (7 500 instructions per
//! summary); this decodes one in a few hundred. A [`Decoder`] never panics
//! and never allocates by a length it read: a short, overlong or malformed
//! value is a [`CodecError`] naming what was wrong.
//!
//! ```
//! use imgstore_backend::codec::{Decoder, Encoder};
//!
//! let mut encoder = Encoder::new(1);
//! encoder.u64(42).str("linux").opt_str(None);
//! let bytes = encoder.finish();
//!
//! let mut decoder = Decoder::new(&bytes, 1).unwrap();
//! assert_eq!(decoder.u64().unwrap(), 42);
//! assert_eq!(decoder.str().unwrap(), "linux");
//! assert_eq!(decoder.opt_str().unwrap(), None);
//! decoder.finish().unwrap();
//! ```

use std::fmt;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError(String);

impl CodecError {
    /// An error of a record type's own check on a decoded field (a digest
    /// that does not parse, say).
    pub fn new(reason: impl Into<String>) -> CodecError {
        CodecError(reason.into())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodecError {}

/// Writes one value: [`Encoder::new`] with the format version, the fields
/// in order, then [`Encoder::finish`].
#[derive(Debug, Clone)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    /// Starts a value of format `version`.
    pub fn new(version: u8) -> Encoder {
        let mut bytes = Vec::with_capacity(128);
        bytes.push(version);
        Encoder { bytes }
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) -> &mut Encoder {
        self.bytes.push(value);
        self
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self, value: u64) -> &mut Encoder {
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// A length (four bytes, little-endian; record fields are far below
    /// 4 GiB, a longer one saturates and fails to decode) and the UTF-8
    /// bytes.
    pub fn str(&mut self, value: &str) -> &mut Encoder {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(value.as_bytes());
        self
    }

    /// A presence byte (0 or 1), then the string when present.
    pub fn opt_str(&mut self, value: Option<&str>) -> &mut Encoder {
        match value {
            None => self.u8(0),
            Some(value) => self.u8(1).str(value),
        }
    }

    /// The encoded value.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads one value written by an [`Encoder`], field by field in the same
/// order, then [`Decoder::finish`] checks nothing is left over.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// Starts reading `bytes`, which must be of format `version`.
    pub fn new(bytes: &'a [u8], version: u8) -> Result<Decoder<'a>, CodecError> {
        match bytes.split_first() {
            Some((&found, rest)) if found == version => Ok(Decoder { rest }),
            Some((&found, _)) => Err(CodecError(format!("format {found}, expected {version}"))),
            None => Err(CodecError("empty value".into())),
        }
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], CodecError> {
        if self.rest.len() < len {
            return Err(CodecError(format!(
                "truncated: {what} needs {len} bytes, {} left",
                self.rest.len()
            )));
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1, "a byte")?[0])
    }

    /// Eight bytes, little-endian.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        let bytes = self.take(8, "an integer")?;
        let mut array = [0u8; 8];
        array.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(array))
    }

    /// A length-prefixed UTF-8 string, borrowed from the value.
    pub fn str(&mut self) -> Result<&'a str, CodecError> {
        let mut len = [0u8; 4];
        len.copy_from_slice(self.take(4, "a string length")?);
        let len = usize::try_from(u32::from_le_bytes(len)).unwrap_or(usize::MAX);
        let bytes = self.take(len, "a string")?;
        std::str::from_utf8(bytes).map_err(|e| CodecError(format!("a string: {e}")))
    }

    /// A presence byte, then the string when present.
    pub fn opt_str(&mut self) -> Result<Option<&'a str>, CodecError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            other => Err(CodecError(format!("presence byte {other}, not 0 or 1"))),
        }
    }

    /// Succeeds when every byte was read.
    pub fn finish(self) -> Result<(), CodecError> {
        match self.rest.len() {
            0 => Ok(()),
            left => Err(CodecError(format!(
                "bytes left after the last field: {left}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut encoder = Encoder::new(7);
        encoder
            .u8(3)
            .u64(u64::MAX)
            .str("héllo")
            .opt_str(Some(""))
            .opt_str(None);
        encoder.finish()
    }

    #[test]
    fn a_value_reads_back_field_by_field() {
        let bytes = sample();
        let mut decoder = Decoder::new(&bytes, 7).unwrap();
        assert_eq!(decoder.u8().unwrap(), 3);
        assert_eq!(decoder.u64().unwrap(), u64::MAX);
        assert_eq!(decoder.str().unwrap(), "héllo");
        assert_eq!(decoder.opt_str().unwrap(), Some(""));
        assert_eq!(decoder.opt_str().unwrap(), None);
        decoder.finish().unwrap();
    }

    #[test]
    fn every_truncation_and_a_wrong_version_are_errors() {
        let bytes = sample();
        assert_eq!(
            Decoder::new(&bytes, 8).unwrap_err().to_string(),
            "format 7, expected 8"
        );
        assert_eq!(Decoder::new(&[], 7).unwrap_err().to_string(), "empty value");
        for cut in 1..bytes.len() {
            let read = |bytes: &[u8]| -> Result<(), CodecError> {
                let mut decoder = Decoder::new(bytes, 7)?;
                decoder.u8()?;
                decoder.u64()?;
                decoder.str()?;
                decoder.opt_str()?;
                decoder.opt_str()?;
                decoder.finish()
            };
            assert!(read(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_huge_length_is_an_error_not_an_allocation() {
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let mut decoder = Decoder::new(&bytes, 1).unwrap();
        assert_eq!(
            decoder.str().unwrap_err().to_string(),
            "truncated: a string needs 4294967295 bytes, 3 left"
        );
    }

    #[test]
    fn bad_utf8_a_bad_presence_byte_and_trailing_bytes_are_errors() {
        let mut bytes = vec![1u8];
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&[0xff, 0xfe]);
        assert!(Decoder::new(&bytes, 1).unwrap().str().is_err());
        assert_eq!(
            Decoder::new(&[1, 2], 1)
                .unwrap()
                .opt_str()
                .unwrap_err()
                .to_string(),
            "presence byte 2, not 0 or 1"
        );
        assert_eq!(
            Decoder::new(&[1, 0], 1)
                .unwrap()
                .finish()
                .unwrap_err()
                .to_string(),
            "bytes left after the last field: 1"
        );
    }
}
