//! Raw tar archives, written byte by byte so that they can say anything a
//! hostile archive says (`../x`, absolute names, links out, device files,
//! duplicate and non-UTF-8 names, sizes that lie), which archive builders
//! refuse to write.

use std::io::Write;

/// Type flag of a regular file.
pub const REGULAR: u8 = b'0';
/// Type flag of a hard link.
pub const HARDLINK: u8 = b'1';
/// Type flag of a symbolic link.
pub const SYMLINK: u8 = b'2';
/// Type flag of a character device.
pub const CHAR_DEVICE: u8 = b'3';
/// Type flag of a block device.
pub const BLOCK_DEVICE: u8 = b'4';
/// Type flag of a directory.
pub const DIRECTORY: u8 = b'5';
/// Type flag of a FIFO.
pub const FIFO: u8 = b'6';
/// Type flag of a GNU long name.
pub const GNU_LONG_NAME: u8 = b'L';
/// Type flag of a GNU long link target.
pub const GNU_LONG_LINK: u8 = b'K';
/// Type flag of a PAX extended header.
pub const PAX: u8 = b'x';

/// One member of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name, as raw bytes (a GNU long-name member precedes it when it
    /// is longer than 100 bytes).
    pub name: Vec<u8>,
    /// The type flag ([`REGULAR`], [`SYMLINK`], ...).
    pub kind: u8,
    /// The link target (links only).
    pub link: Vec<u8>,
    /// The content.
    pub data: Vec<u8>,
    /// The size the header declares, when it differs from `data`'s length.
    pub declared_size: Option<u64>,
}

impl Entry {
    /// A regular file.
    pub fn file(name: impl AsRef<[u8]>, data: impl Into<Vec<u8>>) -> Entry {
        Entry {
            name: name.as_ref().to_vec(),
            kind: REGULAR,
            link: Vec::new(),
            data: data.into(),
            declared_size: None,
        }
    }

    /// A directory.
    pub fn dir(name: impl AsRef<[u8]>) -> Entry {
        Entry {
            kind: DIRECTORY,
            ..Entry::file(name, Vec::new())
        }
    }

    /// A symbolic link.
    pub fn symlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Entry {
        Entry {
            kind: SYMLINK,
            link: target.as_ref().to_vec(),
            ..Entry::file(name, Vec::new())
        }
    }

    /// A hard link.
    pub fn hardlink(name: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Entry {
        Entry {
            kind: HARDLINK,
            ..Entry::symlink(name, target)
        }
    }

    /// A member of type `kind` without content (devices, FIFOs).
    pub fn special(name: impl AsRef<[u8]>, kind: u8) -> Entry {
        Entry {
            kind,
            ..Entry::file(name, Vec::new())
        }
    }
}

/// Writes `value` into a numeric header field: octal when it fits, else
/// base-256 (GNU).
fn put_number(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let octal = format!("{value:0digits$o}");
    if octal.len() <= digits {
        field[..digits].copy_from_slice(octal.as_bytes());
        field[digits] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let bytes = value.to_be_bytes();
        let n = field.len();
        field[n - 8..].copy_from_slice(&bytes);
    }
}

/// Sets the checksum of one 512-byte header.
pub fn set_checksum(header: &mut [u8]) {
    if header.len() < 512 {
        return;
    }
    header[148..156].fill(b' ');
    let sum: u32 = header[..512].iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(&text.as_bytes()[..8]);
}

/// One ustar header block.
pub fn header(name: &[u8], kind: u8, link: &[u8], size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    put_number(&mut h[100..108], 0o644);
    put_number(&mut h[108..116], 0);
    put_number(&mut h[116..124], 0);
    put_number(&mut h[124..136], size);
    put_number(&mut h[136..148], 0);
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    set_checksum(&mut h);
    h
}

fn pad(out: &mut Vec<u8>) {
    let rem = out.len() % 512;
    if rem != 0 {
        out.resize(out.len() + 512 - rem, 0);
    }
}

/// Appends one entry (with GNU long-name and long-link members first when
/// needed) to `out`.
pub fn append(out: &mut Vec<u8>, entry: &Entry) {
    if entry.name.len() > 100 {
        let mut long = entry.name.clone();
        long.push(0);
        out.extend_from_slice(&header(
            b"././@LongLink",
            GNU_LONG_NAME,
            b"",
            long.len() as u64,
        ));
        out.extend_from_slice(&long);
        pad(out);
    }
    if entry.link.len() > 100 {
        let mut long = entry.link.clone();
        long.push(0);
        out.extend_from_slice(&header(
            b"././@LongLink",
            GNU_LONG_LINK,
            b"",
            long.len() as u64,
        ));
        out.extend_from_slice(&long);
        pad(out);
    }
    let size = entry.declared_size.unwrap_or(entry.data.len() as u64);
    out.extend_from_slice(&header(&entry.name, entry.kind, &entry.link, size));
    out.extend_from_slice(&entry.data);
    pad(out);
}

/// A whole archive: the entries and the two zero blocks that end it.
pub fn archive(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        append(&mut out, entry);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// The size in a header's size field, if it parses (octal or base-256).
fn header_size(h: &[u8]) -> Option<u64> {
    let field = &h[124..136];
    if field[0] & 0x80 != 0 {
        let mut v: u64 = 0;
        for &b in &field[4..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// Walks the headers of a (mutated) archive and sets their checksums, so that
/// mutations of names, types, links and sizes reach the importer instead of
/// failing the checksum. Stops at the first zero block or unparsable size.
pub fn fix_checksums(buf: &mut [u8]) {
    let mut at = 0usize;
    while at + 512 <= buf.len() {
        let block = &mut buf[at..at + 512];
        if block.iter().all(|&b| b == 0) {
            return;
        }
        let Some(size) = header_size(block) else {
            return;
        };
        set_checksum(block);
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(511))
            .map(|s| s / 512 * 512)
            .and_then(|s| s.checked_add(at + 512))
        else {
            return;
        };
        at = next;
    }
}

/// The offsets of the headers [`fix_checksums`] would visit.
pub fn header_offsets(buf: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0usize;
    while at + 512 <= buf.len() {
        let block = &buf[at..at + 512];
        if block.iter().all(|&b| b == 0) {
            break;
        }
        let Some(size) = header_size(block) else {
            break;
        };
        offsets.push(at);
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(511))
            .map(|s| s / 512 * 512)
            .and_then(|s| s.checked_add(at + 512))
        else {
            break;
        };
        at = next;
    }
    offsets
}

/// `data` gzip-compressed (default level).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_read_back_with_the_tar_crate() {
        let long = "d/".repeat(60) + "f";
        let bytes = archive(&[
            Entry::file("a", b"hello".to_vec()),
            Entry::file(&long, b"x".to_vec()),
        ]);
        assert_eq!(bytes.len() % 512, 0);
        let mut tar = imgstore_tar_names(&bytes);
        tar.sort();
        assert_eq!(tar, vec!["a".to_owned(), long]);
        assert_eq!(header_offsets(&bytes).len(), 3);
    }

    fn imgstore_tar_names(bytes: &[u8]) -> Vec<String> {
        // Parse with our own walker: names of non-long-name headers.
        header_offsets(bytes)
            .into_iter()
            .filter(|&o| bytes[o + 156] != GNU_LONG_NAME)
            .map(|o| {
                let prev_long = o >= 1024 && bytes[o - 1024 + 156] == GNU_LONG_NAME;
                if prev_long {
                    let data = &bytes[o - 512..o];
                    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                    String::from_utf8_lossy(&data[..end]).into_owned()
                } else {
                    let end = bytes[o..o + 100]
                        .iter()
                        .position(|&b| b == 0)
                        .unwrap_or(100);
                    String::from_utf8_lossy(&bytes[o..o + end]).into_owned()
                }
            })
            .collect()
    }

    #[test]
    fn checksums_are_restored_after_mutation() {
        let mut bytes = archive(&[Entry::file("a", b"x".to_vec())]);
        let good = bytes[148..156].to_vec();
        bytes[0] = b'b';
        fix_checksums(&mut bytes);
        assert_ne!(bytes[148..156], good[..]);
        let mut again = bytes.clone();
        fix_checksums(&mut again);
        assert_eq!(again, bytes);
    }

    #[test]
    fn huge_sizes_use_base_256() {
        let h = header(b"big", REGULAR, b"", 1 << 40);
        assert_eq!(h[124], 0x80);
        assert_eq!(header_size(&h), Some(1 << 40));
    }
}
