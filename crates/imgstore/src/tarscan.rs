//! A streaming tar header scanner: adds up the bytes of the regular files
//! in a layer tar as the decompressed stream goes by, for Docker's image
//! SIZE (the sum over an image's layers of this figure).
//!
//! It reads 512-byte header blocks and skips file data without keeping it:
//! memory is one header block plus a few counters, whatever the layer size.
//! Regular files are typeflags `'0'`, `'\0'` and `'7'`; every other entry
//! (whiteouts are empty regular files, hard and symbolic links, directories,
//! devices) adds 0. Handled like Go's `archive/tar`, which Docker reads
//! layers with: GNU `'L'`/`'K'` long names and links (skipped), pax `'x'`
//! headers (a `size=` record sets the size of the next entry, its data
//! length included), pax `'g'` global headers (skipped; Go does not apply
//! them to later entries either), base-256 sizes, header checksums. The
//! archive ends at its first zero block or at the end of the stream right
//! after an entry's data (umoci writes tars without end blocks or final
//! padding); a stream cut inside a header or inside file data is truncated.
//! A header record (long name or link, pax header) over 1 MiB is refused,
//! as Go's reader refuses it.

use std::io;

use crate::limits::MAX_TAR_HEADER_RECORD;

/// Size of a tar block.
const BLOCK: u64 = 512;
/// Longest pax record key kept to be compared (longer keys are skipped).
const MAX_PAX_KEY: usize = 32;

/// Why a stream is not a tar whose files size can be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TarScanError {
    /// A header block's checksum does not match: not a tar (or damaged).
    #[error("tar header {index}: bad checksum")]
    BadChecksum {
        /// Which header block (0-based, counting every header).
        index: u64,
    },
    /// A numeric header field does not parse.
    #[error("tar header {index}: bad {field} field")]
    BadNumber {
        /// Which header block.
        index: u64,
        /// The field (`size`).
        field: &'static str,
    },
    /// A pax extended header is malformed.
    #[error("tar header {index}: bad pax record: {reason}")]
    BadPax {
        /// Which header block.
        index: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A GNU long name or link, or a pax header, is larger than Go's
    /// `archive/tar` (Docker's reader) accepts.
    #[error("tar header {index}: a {size}-byte header record is more than the {max} allowed")]
    HeaderRecordTooLong {
        /// Which header block.
        index: u64,
        /// The record's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The stream ends inside a header block.
    #[error("tar truncated inside a header ({got} of 512 bytes)")]
    TruncatedHeader {
        /// Bytes of the header that were there.
        got: usize,
    },
    /// The stream ends inside an entry's data.
    #[error("tar truncated: {missing} bytes of an entry's data are missing")]
    TruncatedData {
        /// Data bytes (padding excluded) that did not come.
        missing: u64,
    },
}

/// Streaming parser of pax extended header records (`"<len> <key>=<value>\n"`),
/// keeping only a `size` value.
#[derive(Debug, Default)]
struct PaxParser {
    /// Bytes of the current record not consumed yet, once its length is read.
    record_left: Option<u64>,
    /// The length being read (digits so far).
    length: u64,
    length_digits: usize,
    /// The key, while it is being read (`None` once `=` was seen).
    key: Option<Vec<u8>>,
    key_too_long: bool,
    /// Whether the current record is `size`, and its value so far.
    is_size: bool,
    value: u64,
    value_digits: usize,
    /// The last `size=` of the header.
    size: Option<u64>,
}

impl PaxParser {
    fn feed(&mut self, bytes: &[u8]) -> Result<(), &'static str> {
        for &b in bytes {
            let Some(left) = self.record_left else {
                // Reading the length, up to its space.
                match b {
                    b'0'..=b'9' => {
                        self.length = self
                            .length
                            .checked_mul(10)
                            .and_then(|l| l.checked_add(u64::from(b - b'0')))
                            .ok_or("record length overflows")?;
                        self.length_digits += 1;
                    }
                    b' ' if self.length_digits > 0 => {
                        let left = self
                            .length
                            .checked_sub(self.length_digits as u64 + 1)
                            .filter(|&l| l >= 3)
                            .ok_or("record length too small")?;
                        self.record_left = Some(left);
                        self.key = Some(Vec::new());
                        self.key_too_long = false;
                    }
                    _ => return Err("record length is not a number"),
                }
                continue;
            };
            let left = left - 1;
            self.record_left = Some(left);
            if left == 0 {
                if b != b'\n' {
                    return Err("record does not end with a newline");
                }
                if self.key.is_some() {
                    return Err("record has no '='");
                }
                if self.is_size {
                    if self.value_digits == 0 {
                        return Err("empty size");
                    }
                    self.size = Some(self.value);
                }
                *self = PaxParser {
                    size: self.size,
                    ..PaxParser::default()
                };
                continue;
            }
            match &mut self.key {
                Some(key) => {
                    if b == b'=' {
                        self.is_size = !self.key_too_long && key.as_slice() == b"size";
                        self.value = 0;
                        self.value_digits = 0;
                        self.key = None;
                    } else if key.len() < MAX_PAX_KEY {
                        key.push(b);
                    } else {
                        self.key_too_long = true;
                    }
                }
                None if self.is_size => {
                    if !b.is_ascii_digit() {
                        return Err("size is not a decimal number");
                    }
                    self.value = self
                        .value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                        .ok_or("size overflows")?;
                    self.value_digits += 1;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The `size` value, once the whole header data went through.
    fn finish(self) -> Result<Option<u64>, &'static str> {
        if self.record_left.is_some() || self.length_digits > 0 {
            return Err("last record is cut short");
        }
        Ok(self.size)
    }
}

#[derive(Debug)]
enum State {
    /// Reading a header block (`filled` bytes of it so far).
    Header,
    /// Skipping an entry's data, then its padding; a pax header's data is
    /// parsed on the way.
    Data {
        data_left: u64,
        pad_left: u64,
        pax: Option<Box<PaxParser>>,
    },
    /// After the end-of-archive block: the rest is ignored.
    End,
    /// A problem was found; the rest is ignored.
    Failed(TarScanError),
}

/// Adds up the regular files' bytes of a tar fed to it in pieces of any size.
#[derive(Debug)]
pub(crate) struct TarScanner {
    state: State,
    block: [u8; BLOCK as usize],
    filled: usize,
    /// Headers read so far (for messages).
    headers: u64,
    /// The size a pax `'x'` header set for the next entry.
    next_size: Option<u64>,
    files_size: u64,
}

impl Default for TarScanner {
    fn default() -> TarScanner {
        TarScanner::new()
    }
}

impl TarScanner {
    /// A scanner at the start of a tar.
    pub(crate) fn new() -> TarScanner {
        TarScanner {
            state: State::Header,
            block: [0; BLOCK as usize],
            filled: 0,
            headers: 0,
            next_size: None,
            files_size: 0,
        }
    }

    /// Feeds the next bytes of the tar stream.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::End | State::Failed(_) => return,
                State::Header => {
                    let take = (self.block.len() - self.filled).min(bytes.len());
                    self.block[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
                    self.filled += take;
                    bytes = &bytes[take..];
                    if self.filled == self.block.len() {
                        self.filled = 0;
                        self.state = match self.header() {
                            Ok(state) => state,
                            Err(e) => State::Failed(e),
                        };
                    }
                }
                State::Data {
                    data_left,
                    pad_left,
                    pax,
                } => {
                    if *data_left > 0 {
                        let take = usize::try_from(*data_left)
                            .unwrap_or(usize::MAX)
                            .min(bytes.len());
                        if let Some(parser) = pax
                            && let Err(reason) = parser.feed(&bytes[..take])
                        {
                            self.state = State::Failed(TarScanError::BadPax {
                                index: self.headers - 1,
                                reason,
                            });
                            continue;
                        }
                        *data_left -= take as u64;
                        bytes = &bytes[take..];
                        if *data_left == 0
                            && let Some(parser) = pax.take()
                        {
                            match parser.finish() {
                                Ok(size) => self.next_size = size,
                                Err(reason) => {
                                    self.state = State::Failed(TarScanError::BadPax {
                                        index: self.headers - 1,
                                        reason,
                                    });
                                    continue;
                                }
                            }
                        }
                    } else {
                        let take = usize::try_from(*pad_left)
                            .unwrap_or(usize::MAX)
                            .min(bytes.len());
                        *pad_left -= take as u64;
                        bytes = &bytes[take..];
                    }
                    if let State::Data {
                        data_left: 0,
                        pad_left: 0,
                        ..
                    } = self.state
                    {
                        self.state = State::Header;
                    }
                }
            }
        }
    }

    /// Reads the full header block in `self.block`: the state after it.
    fn header(&mut self) -> Result<State, TarScanError> {
        let index = self.headers;
        self.headers += 1;
        let block = &self.block;
        if block.iter().all(|&b| b == 0) {
            return Ok(State::End);
        }
        // Checksum: the sum of the header bytes with the checksum field read
        // as spaces; unsigned, or signed as some old tars wrote it.
        let stored = parse_octal(&block[148..156]).ok_or(TarScanError::BadChecksum { index })?;
        let (mut unsigned, mut signed) = (0u64, 0i64);
        for (i, &b) in block.iter().enumerate() {
            let b = if (148..156).contains(&i) { b' ' } else { b };
            unsigned += u64::from(b);
            signed += i64::from(b as i8);
        }
        if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
            return Err(TarScanError::BadChecksum { index });
        }
        let typeflag = block[156];
        let header_size = parse_number(&block[124..136]).ok_or(TarScanError::BadNumber {
            index,
            field: "size",
        })?;
        if matches!(typeflag, b'x' | b'g' | b'L' | b'K') && header_size > MAX_TAR_HEADER_RECORD {
            return Err(TarScanError::HeaderRecordTooLong {
                index,
                size: header_size,
                max: MAX_TAR_HEADER_RECORD,
            });
        }
        // A pax `size` applies to the entry right after its header.
        let size = match typeflag {
            b'x' | b'g' | b'L' | b'K' => header_size,
            _ => self.next_size.take().unwrap_or(header_size),
        };
        // Entries whose data Go's reader never reads (links, directories,
        // devices, fifos) have none, whatever their size field says.
        let data = match typeflag {
            b'1' | b'2' | b'3' | b'4' | b'5' | b'6' => 0,
            _ => size,
        };
        if matches!(typeflag, b'0' | b'\0' | b'7') {
            self.files_size = self.files_size.saturating_add(size);
        }
        let pax = (typeflag == b'x').then(Box::default);
        let pad = (BLOCK - data % BLOCK) % BLOCK;
        Ok(if data == 0 {
            State::Header
        } else {
            State::Data {
                data_left: data,
                pad_left: pad,
                pax,
            }
        })
    }

    /// The regular files' bytes, once the whole stream went through.
    pub(crate) fn finish(self) -> Result<u64, TarScanError> {
        match self.state {
            State::Failed(e) => Err(e),
            State::Header if self.filled > 0 => {
                Err(TarScanError::TruncatedHeader { got: self.filled })
            }
            State::Data { data_left, .. } if data_left > 0 => {
                Err(TarScanError::TruncatedData { missing: data_left })
            }
            // Unterminated tars end right after an entry's data (its padding
            // missing or not): accepted, as Go's reader does.
            State::Header | State::Data { .. } | State::End => Ok(self.files_size),
        }
    }
}

impl io::Write for TarScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An octal field: leading spaces, digits, then NULs or spaces. An empty
/// field is 0.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let start = field.iter().position(|&b| b != b' ').unwrap_or(field.len());
    let mut value: u64 = 0;
    let mut digits = field[start..].iter();
    for &b in digits.by_ref() {
        match b {
            b'0'..=b'7' => value = value.checked_mul(8)?.checked_add(u64::from(b - b'0'))?,
            b'\0' | b' ' => break,
            _ => return None,
        }
    }
    // After the terminator only NULs and spaces.
    digits.all(|&b| b == b'\0' || b == b' ').then_some(value)
}

/// A numeric field: octal, or GNU base-256 when the high bit of the first
/// byte is set (negative values refused).
fn parse_number(field: &[u8]) -> Option<u64> {
    match field.first() {
        Some(&first) if first & 0x80 != 0 => {
            if first & 0x40 != 0 {
                return None; // negative
            }
            let mut value = u64::from(first & 0x3f);
            for &b in &field[1..] {
                if value >> 56 != 0 {
                    return None;
                }
                value = (value << 8) | u64::from(b);
            }
            Some(value)
        }
        _ => parse_octal(field),
    }
}

#[cfg(test)]
mod tests {
    use super::{TarScanError, TarScanner, parse_number};

    /// A ustar header block with a valid checksum.
    fn header(name: &str, typeflag: u8, size: u64) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        checksum(&mut h);
        h
    }

    fn checksum(h: &mut [u8; 512]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    /// An entry: header, data, padding.
    fn entry(out: &mut Vec<u8>, name: &str, typeflag: u8, data: &[u8]) {
        out.extend_from_slice(&header(name, typeflag, data.len() as u64));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }

    fn pax_record(key: &str, value: &str) -> String {
        let body = format!(" {key}={value}\n");
        let mut len = body.len() + 1;
        while body.len() + len.to_string().len() != len {
            len = body.len() + len.to_string().len();
        }
        format!("{len}{body}")
    }

    /// Scans `tar` fed in pieces of `chunk` bytes.
    fn scan(tar: &[u8], chunk: usize) -> Result<u64, TarScanError> {
        let mut scanner = TarScanner::new();
        for piece in tar.chunks(chunk) {
            scanner.feed(piece);
        }
        scanner.finish()
    }

    fn scan_all_chunkings(tar: &[u8]) -> Result<u64, TarScanError> {
        let whole = scan(tar, tar.len().max(1));
        for chunk in [1, 7, 511, 512, 513, 4096] {
            assert_eq!(scan(tar, chunk), whole, "fed {chunk} bytes at a time");
        }
        whole
    }

    #[test]
    fn header_records_over_one_mib_are_refused_as_go_refuses_them() {
        for typeflag in [b'x', b'g', b'L', b'K'] {
            // Only the header: the scanner refuses before any data comes.
            let tar = header("././@LongLink", typeflag, (1 << 20) + 1);
            assert_eq!(
                scan(&tar, 512),
                Err(TarScanError::HeaderRecordTooLong {
                    index: 0,
                    size: (1 << 20) + 1,
                    max: 1 << 20,
                }),
                "typeflag {}",
                typeflag as char
            );
        }
        // 1 MiB exactly is allowed.
        let mut tar = Vec::new();
        entry(&mut tar, "././@LongLink", b'L', &vec![b'a'; 1 << 20]);
        entry(&mut tar, "short", b'0', b"12");
        assert_eq!(scan(&tar, 4096), Ok(2));
    }

    #[test]
    fn counts_regular_files_only() {
        let mut tar = Vec::new();
        entry(&mut tar, "dir/", b'5', b"");
        entry(&mut tar, "dir/a", b'0', &[1; 700]);
        entry(&mut tar, "dir/b", b'\0', b"hello");
        entry(&mut tar, "dir/c", b'7', b"xyz");
        entry(&mut tar, "dir/.wh.gone", b'0', b"");
        entry(&mut tar, "dir/link", b'2', b"");
        // A hard link whose size field is set has no data: Go reads none.
        tar.extend_from_slice(&header("dir/hard", b'1', 700));
        entry(&mut tar, "dir/d", b'0', b"1234");
        tar.extend_from_slice(&[0; 1024]);
        assert_eq!(scan_all_chunkings(&tar), Ok(700 + 5 + 3 + 4));
        // Anything after the end blocks is ignored.
        tar.extend_from_slice(b"trailing garbage");
        assert_eq!(scan_all_chunkings(&tar), Ok(712));
    }

    #[test]
    fn pax_size_overrides_the_header_and_the_data_length() {
        let mut tar = Vec::new();
        let records = format!(
            "{}{}{}",
            pax_record("path", "a/very/long/name"),
            pax_record("size", "1000"),
            pax_record("mtime", "1700000000.5")
        );
        entry(&mut tar, "PaxHeaders/x", b'x', records.as_bytes());
        // The ustar size field says 0 (as if it overflowed); pax says 1000.
        tar.extend_from_slice(&header("a/very/long/name", b'0', 0));
        tar.extend_from_slice(&[9; 1000]);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
        entry(&mut tar, "next", b'0', b"12");
        // A global header's size is neither counted nor applied later.
        entry(
            &mut tar,
            "global",
            b'g',
            pax_record("size", "77").as_bytes(),
        );
        entry(&mut tar, "last", b'0', b"123");
        tar.extend_from_slice(&[0; 1024]);
        assert_eq!(scan_all_chunkings(&tar), Ok(1000 + 2 + 3));
    }

    #[test]
    fn bad_pax_records_are_reported() {
        let mut tar = Vec::new();
        entry(&mut tar, "PaxHeaders/x", b'x', b"12 size=1x\n");
        entry(&mut tar, "f", b'0', b"");
        assert_eq!(
            scan_all_chunkings(&tar),
            Err(TarScanError::BadPax {
                index: 0,
                reason: "size is not a decimal number"
            })
        );
    }

    #[test]
    fn gnu_long_names_are_skipped() {
        let long = "d/".repeat(150) + "file";
        let mut tar = Vec::new();
        entry(
            &mut tar,
            "././@LongLink",
            b'L',
            format!("{long}\0").as_bytes(),
        );
        entry(&mut tar, &long[..100], b'0', &[0; 1500]);
        entry(&mut tar, "././@LongLink", b'K', "t/".repeat(80).as_bytes());
        entry(&mut tar, "sym", b'2', b"");
        tar.extend_from_slice(&[0; 1024]);
        assert_eq!(scan_all_chunkings(&tar), Ok(1500));
    }

    #[test]
    fn tars_made_by_the_tar_crate_agree() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut total = 0u64;
        for (i, len) in [0usize, 1, 511, 512, 513, 70_000].into_iter().enumerate() {
            let mut h = tar::Header::new_gnu();
            h.set_size(len as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            let name = format!("{}/{i}", "long-directory-name".repeat(8));
            builder
                .append_data(&mut h, name, &vec![7u8; len][..])
                .unwrap();
            total += len as u64;
        }
        let tar = builder.into_inner().unwrap();
        assert_eq!(scan_all_chunkings(&tar), Ok(total));
    }

    #[test]
    fn base_256_sizes() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[4..].copy_from_slice(&0x2_0000_0001u64.to_be_bytes());
        assert_eq!(parse_number(&field), Some(0x2_0000_0001));
        field[0] = 0xff;
        assert_eq!(parse_number(&field), None, "negative");
        let mut h = header("big", b'0', 0);
        h[124..136].copy_from_slice(&{
            let mut f = [0u8; 12];
            f[0] = 0x80;
            f[10..].copy_from_slice(&600u16.to_be_bytes());
            f
        });
        checksum(&mut h);
        let mut tar = h.to_vec();
        tar.extend_from_slice(&[1; 600]);
        tar.resize(1536, 0);
        tar.extend_from_slice(&[0; 1024]);
        assert_eq!(scan_all_chunkings(&tar), Ok(600));
    }

    #[test]
    fn unterminated_tars_are_accepted() {
        // umoci insert: no end blocks and no padding after the last data.
        let mut tar = Vec::new();
        entry(&mut tar, "a", b'0', b"abc");
        tar.extend_from_slice(&header("b", b'0', 10));
        tar.extend_from_slice(b"0123456789");
        assert_eq!(scan_all_chunkings(&tar), Ok(13));
        // Padding there, end blocks missing.
        tar.resize(tar.len().div_ceil(512) * 512, 0);
        assert_eq!(scan_all_chunkings(&tar), Ok(13));
        // One end block only.
        tar.extend_from_slice(&[0; 512]);
        assert_eq!(scan_all_chunkings(&tar), Ok(13));
        // Empty stream: an empty tar.
        assert_eq!(scan(&[], 1), Ok(0));
    }

    #[test]
    fn truncated_tars_are_reported() {
        let mut tar = Vec::new();
        entry(&mut tar, "a", b'0', b"abc");
        let whole = header("b", b'0', 10);
        let mut cut = tar.clone();
        cut.extend_from_slice(&whole[..100]);
        assert_eq!(
            scan_all_chunkings(&cut),
            Err(TarScanError::TruncatedHeader { got: 100 })
        );
        let mut cut = tar.clone();
        cut.extend_from_slice(&whole);
        cut.extend_from_slice(b"0123");
        assert_eq!(
            scan_all_chunkings(&cut),
            Err(TarScanError::TruncatedData { missing: 6 })
        );
    }

    #[test]
    fn garbage_is_not_a_tar() {
        let mut bytes = vec![b'x'; 2048];
        assert_eq!(
            scan_all_chunkings(&bytes),
            Err(TarScanError::BadChecksum { index: 0 })
        );
        bytes[124..136].copy_from_slice(b"not a number");
        assert_eq!(
            scan(&bytes, 2048),
            Err(TarScanError::BadChecksum { index: 0 })
        );
        let mut h = header("f", b'0', 0);
        h[124..136].copy_from_slice(b"12z45\0\0\0\0\0\0\0");
        checksum(&mut h);
        assert_eq!(
            scan(&h, 512),
            Err(TarScanError::BadNumber {
                index: 0,
                field: "size"
            })
        );
    }
}
