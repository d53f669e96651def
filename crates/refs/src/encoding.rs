//! The stored form of a record (the value under `<namespace>/<name>`).
//!
//! Version 1, integers little-endian, strings as `u32` length + UTF-8 bytes:
//!
//! ```text
//! u8   version = 1
//! i64  created_at seconds since the Unix epoch, u32 nanoseconds (0..1e9)
//! i64  updated_at seconds,                      u32 nanoseconds
//! str  target media type
//! str  target digest
//! i64  target size
//! u32  annotation count, then (str key, str value) in key order
//! u32  label count,      then (str key, str value) in key order
//! ```
//!
//! The name is the key's part after the namespace, so it is not repeated.
//! Maps are written in key order, so equal records encode to equal bytes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use imgstore_digest::Digest;

use crate::{Descriptor, ImageRecord};

const VERSION: u8 = 1;
const NANOS_PER_SECOND: u32 = 1_000_000_000;

/// Encodes everything but the name.
pub(crate) fn encode(record: &ImageRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        64 + record.target.media_type.len()
            + map_len(&record.labels)
            + map_len(&record.target.annotations),
    );
    out.push(VERSION);
    put_time(&mut out, record.created_at);
    put_time(&mut out, record.updated_at);
    put_str(&mut out, &record.target.media_type);
    put_str(&mut out, record.target.digest.as_str());
    out.extend_from_slice(&record.target.size.to_le_bytes());
    put_map(&mut out, &record.target.annotations);
    put_map(&mut out, &record.labels);
    out
}

/// Decodes a value stored under `name`; the error says what is wrong.
pub(crate) fn decode(name: &str, bytes: &[u8]) -> Result<ImageRecord, String> {
    let mut reader = Reader { bytes };
    let version = reader.take::<1>()?[0];
    if version != VERSION {
        return Err(format!("unknown record version {version}"));
    }
    let created_at = reader.time()?;
    let updated_at = reader.time()?;
    let media_type = reader.string()?;
    let digest = Digest::parse(&reader.string()?).map_err(|e| format!("target digest: {e}"))?;
    let size = i64::from_le_bytes(reader.take::<8>()?);
    let annotations = reader.map()?;
    let labels = reader.map()?;
    if !reader.bytes.is_empty() {
        return Err(format!("{} bytes after the record", reader.bytes.len()));
    }
    Ok(ImageRecord {
        name: name.to_owned(),
        labels,
        target: Descriptor {
            media_type,
            digest,
            size,
            annotations,
        },
        created_at,
        updated_at,
    })
}

fn map_len(map: &BTreeMap<String, String>) -> usize {
    map.iter()
        .map(|(k, v)| 8 + k.len() + v.len())
        .sum::<usize>()
        + 4
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Keys, values and names are far below 4 GiB (record keys are at most 4096 bytes,
    // labels 4096); saturate rather than wrap if a caller ever passes more.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_map(out: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    put_len(out, map.len());
    for (key, value) in map {
        put_str(out, key);
        put_str(out, value);
    }
}

/// Seconds (floor) and nanoseconds since the epoch; before it, seconds are negative.
fn put_time(out: &mut Vec<u8>, time: SystemTime) {
    let (seconds, nanos) = match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => (
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        ),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => (-whole, 0),
                n => (-whole - 1, NANOS_PER_SECOND - n),
            }
        }
    };
    out.extend_from_slice(&seconds.to_le_bytes());
    out.extend_from_slice(&nanos.to_le_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let (head, rest) = self
            .bytes
            .split_first_chunk::<N>()
            .ok_or_else(|| "truncated".to_owned())?;
        self.bytes = rest;
        Ok(*head)
    }

    fn string(&mut self) -> Result<String, String> {
        let len = u32::from_le_bytes(self.take::<4>()?) as usize;
        if len > self.bytes.len() {
            return Err("truncated string".to_owned());
        }
        let (text, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        String::from_utf8(text.to_vec()).map_err(|_| "string is not UTF-8".to_owned())
    }

    fn map(&mut self) -> Result<BTreeMap<String, String>, String> {
        let count = u32::from_le_bytes(self.take::<4>()?);
        let mut map = BTreeMap::new();
        for _ in 0..count {
            let key = self.string()?;
            let value = self.string()?;
            map.insert(key, value);
        }
        Ok(map)
    }

    fn time(&mut self) -> Result<SystemTime, String> {
        let seconds = i64::from_le_bytes(self.take::<8>()?);
        let nanos = u32::from_le_bytes(self.take::<4>()?);
        if nanos >= NANOS_PER_SECOND {
            return Err(format!("{nanos} nanoseconds in a timestamp"));
        }
        let time = if seconds >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(seconds.unsigned_abs(), nanos))
        } else {
            SystemTime::UNIX_EPOCH
                .checked_sub(Duration::from_secs(seconds.unsigned_abs()))
                .and_then(|t| t.checked_add(Duration::from_nanos(u64::from(nanos))))
        };
        time.ok_or_else(|| format!("timestamp {seconds}s out of range"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at: SystemTime) -> ImageRecord {
        let mut target = Descriptor::new(
            "application/vnd.oci.image.index.v1+json",
            Digest::from_bytes(b"x"),
            42,
        );
        target.annotations.insert("a".into(), "b".into());
        let mut r =
            ImageRecord::new("docker.io/library/busybox:latest", target).with_label("k", "v");
        r.created_at = at;
        r.updated_at = at + Duration::from_nanos(1);
        r
    }

    #[test]
    fn round_trips_with_nanoseconds_on_both_sides_of_the_epoch() {
        for at in [
            SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789),
            SystemTime::UNIX_EPOCH - Duration::new(5, 1),
            SystemTime::UNIX_EPOCH,
        ] {
            let r = record(at);
            let bytes = encode(&r);
            assert_eq!(decode(&r.name, &bytes), Ok(r));
        }
    }

    #[test]
    fn every_truncation_and_a_trailing_byte_are_refused() {
        let bytes = encode(&record(SystemTime::now()));
        for len in 0..bytes.len() {
            assert!(decode("n", &bytes[..len]).is_err(), "length {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode("n", &longer).is_err());
        let mut other_version = bytes;
        other_version[0] = 2;
        assert!(decode("n", &other_version).is_err());
    }
}
