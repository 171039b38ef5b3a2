//! The dump file format of `FlexCache.dump` / `FlexCache.load`, in pure
//! Rust (no Python, so the decoder can be fuzzed on its own).
//!
//! ```text
//! magic    14 bytes  \x89FLEXCACHE\r\n\x1a\n
//! version  u32       1
//! record*            u32 body length, body, u32 CRC-32 of length and body
//!   settings   kind 1: policy (u8 form, u32 length, bytes), scan_interval f64,
//!              max_items u64, max_bytes u64, thread_safe u8,
//!              background_scan (u8 present, f64)
//!   entry      kind 2: size u64, wall deadline i64 ns since the epoch
//!              (i64::MAX: never), uses u64, key length u32, key, value
//!   end        kind 3: entry count u64
//! ```
//!
//! Integers are little-endian. The first record is the settings, then the
//! entries in eviction order (the next victim first), then the end, and
//! nothing after it. The magic's high byte and line endings catch a file
//! mangled by a text-mode copy, as PNG's do. Every byte after the header
//! is under a checksum or a length that the file's own end bounds, so a
//! truncation or any single changed byte is found, and [`decode`] checks
//! the whole file before handing back anything: the caller runs no
//! deserializer on a file that turns out to be corrupt.

use std::fmt;

/// The first bytes of every dump.
pub const MAGIC: &[u8; 14] = b"\x89FLEXCACHE\r\n\x1a\n";

/// The format version this code writes, and the newest it reads.
pub const VERSION: u32 = 1;

/// The wall deadline of an entry that never expires.
pub const NEVER_WALL: i64 = i64::MAX;

const KIND_SETTINGS: u8 = 1;
const KIND_ENTRY: u8 = 2;
const KIND_END: u8 = 3;

/// How the settings record holds the eviction policy.
const POLICY_NAME: u8 = 0;
const POLICY_SERIALIZED: u8 = 1;

/// The body of an entry record before its key and value: kind, size,
/// deadline, uses, key length.
const ENTRY_FIXED: usize = 1 + 8 + 8 + 8 + 4;

/// The eviction policy as a dump holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyForm<B> {
    /// A built-in policy, by name.
    Name(B),
    /// Anything else, as the serializer wrote it.
    Serialized(B),
}

/// The settings a dump carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings<B> {
    pub policy: PolicyForm<B>,
    pub scan_interval: f64,
    pub max_items: u64,
    pub max_bytes: u64,
    pub thread_safe: bool,
    pub background_scan: Option<f64>,
}

/// An entry as a dump holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryRecord<'a> {
    pub size: u64,
    /// Nanoseconds since the Unix epoch; [`NEVER_WALL`] for none.
    pub wall_deadline: i64,
    /// The `lfu` count (0 for the policies that keep none).
    pub uses: u64,
    pub key: &'a [u8],
    pub value: &'a [u8],
}

/// Why bytes are not a dump this code can load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a `FlexCache` dump at all.
    WrongMagic,
    /// A dump of a format version this code does not read.
    Version(u32),
    /// The bytes end before the dump does, at this offset.
    Truncated(usize),
    /// The record at this offset fails its checksum.
    Checksum(usize),
    /// A record that checksums but does not make sense where it is.
    Malformed(usize, &'static str),
    /// The end record counts another number of entries than there are.
    Count { recorded: u64, found: u64 },
    /// Bytes after the end record, at this offset.
    Trailing(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::WrongMagic => write!(f, "not a FlexCache dump (wrong magic bytes)"),
            DecodeError::Version(version) if *version > VERSION => write!(
                f,
                "a FlexCache dump of format version {version}, newer than this FlexCache \
                 reads (up to {VERSION})"
            ),
            DecodeError::Version(version) => {
                write!(f, "a FlexCache dump of unknown format version {version}")
            }
            DecodeError::Truncated(offset) => {
                write!(f, "truncated FlexCache dump (it ends at byte {offset})")
            }
            DecodeError::Checksum(offset) => write!(
                f,
                "corrupt FlexCache dump (checksum mismatch in the record at byte {offset})"
            ),
            DecodeError::Malformed(offset, what) => {
                write!(f, "corrupt FlexCache dump ({what}, at byte {offset})")
            }
            DecodeError::Count { recorded, found } => write!(
                f,
                "corrupt FlexCache dump (its end counts {recorded} entries, it holds {found})"
            ),
            DecodeError::Trailing(offset) => write!(
                f,
                "corrupt FlexCache dump (bytes after its end, from byte {offset})"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Writes a dump into a growing buffer, which the caller drains into its
/// sink as it likes ([`Encoder::buffer`]).
#[derive(Debug, Default)]
pub struct Encoder {
    buffer: Vec<u8>,
    entries: u64,
}

/// An entry too large for a record (a key or a record over 4 GiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordTooLarge;

impl Encoder {
    /// The header and the settings record.
    ///
    /// # Errors
    /// [`RecordTooLarge`] for a policy of 4 GiB or more.
    pub fn new(settings: &Settings<&[u8]>) -> Result<Self, RecordTooLarge> {
        let mut encoder = Encoder::default();
        encoder.buffer.extend_from_slice(MAGIC);
        encoder.buffer.extend_from_slice(&VERSION.to_le_bytes());
        let (form, policy) = match settings.policy {
            PolicyForm::Name(name) => (POLICY_NAME, name),
            PolicyForm::Serialized(bytes) => (POLICY_SERIALIZED, bytes),
        };
        let policy_len = u32::try_from(policy.len()).map_err(|_| RecordTooLarge)?;
        let mut body = vec![KIND_SETTINGS, form];
        body.extend_from_slice(&policy_len.to_le_bytes());
        body.extend_from_slice(policy);
        body.extend_from_slice(&settings.scan_interval.to_le_bytes());
        body.extend_from_slice(&settings.max_items.to_le_bytes());
        body.extend_from_slice(&settings.max_bytes.to_le_bytes());
        body.push(u8::from(settings.thread_safe));
        body.push(u8::from(settings.background_scan.is_some()));
        body.extend_from_slice(&settings.background_scan.unwrap_or(0.0).to_le_bytes());
        encoder.record(&[&body])?;
        Ok(encoder)
    }

    /// Appends one entry record.
    ///
    /// # Errors
    /// [`RecordTooLarge`], writing nothing.
    pub fn entry(&mut self, entry: &EntryRecord<'_>) -> Result<(), RecordTooLarge> {
        let key_len = u32::try_from(entry.key.len()).map_err(|_| RecordTooLarge)?;
        let mut fixed = [0u8; ENTRY_FIXED];
        fixed[0] = KIND_ENTRY;
        fixed[1..9].copy_from_slice(&entry.size.to_le_bytes());
        fixed[9..17].copy_from_slice(&entry.wall_deadline.to_le_bytes());
        fixed[17..25].copy_from_slice(&entry.uses.to_le_bytes());
        fixed[25..29].copy_from_slice(&key_len.to_le_bytes());
        self.record(&[&fixed, entry.key, entry.value])?;
        self.entries += 1;
        Ok(())
    }

    /// The end record; the number of entries written.
    ///
    /// # Panics
    /// Never: the end record is 9 bytes long.
    pub fn finish(&mut self) -> u64 {
        let mut body = [0u8; 9];
        body[0] = KIND_END;
        body[1..].copy_from_slice(&self.entries.to_le_bytes());
        self.record(&[&body]).expect("the end record is small");
        self.entries
    }

    /// What is written and not yet drained.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.buffer
    }

    /// A record of `parts`, one after the other, as its body.
    fn record(&mut self, parts: &[&[u8]]) -> Result<(), RecordTooLarge> {
        let body_len: usize = parts.iter().map(|part| part.len()).sum();
        let length = u32::try_from(body_len).map_err(|_| RecordTooLarge)?;
        let length = length.to_le_bytes();
        let mut crc = crc32fast::Hasher::new();
        crc.update(&length);
        self.buffer.reserve(body_len + 8);
        self.buffer.extend_from_slice(&length);
        for part in parts {
            crc.update(part);
            self.buffer.extend_from_slice(part);
        }
        self.buffer.extend_from_slice(&crc.finalize().to_le_bytes());
        Ok(())
    }
}

/// A reader over the bytes of a dump, failing at its end.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or(DecodeError::Truncated(self.data.len()))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// The next record's body, its checksum verified, and its offset.
    fn record(&mut self) -> Result<(usize, &'a [u8]), DecodeError> {
        let start = self.at;
        let length = self.array::<4>()?;
        let body = self.take(u32::from_le_bytes(length) as usize)?;
        let stored = self.u32()?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&length);
        crc.update(body);
        if crc.finalize() != stored {
            return Err(DecodeError::Checksum(start));
        }
        if body.is_empty() {
            return Err(DecodeError::Malformed(start, "an empty record"));
        }
        Ok((start, body))
    }
}

/// A reader over one record's body, whose fields must fill it exactly.
struct Fields<'a> {
    body: &'a [u8],
    offset: usize,
}

impl<'a> Fields<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.body.len() < len {
            return Err(DecodeError::Malformed(
                self.offset,
                "a record shorter than its fields",
            ));
        }
        let (head, rest) = self.body.split_at(len);
        self.body = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Malformed(
                self.offset,
                "a flag that is neither 0 nor 1",
            )),
        }
    }

    fn end(self) -> Result<(), DecodeError> {
        if self.body.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                self.offset,
                "a record longer than its fields",
            ))
        }
    }
}

/// A dump's settings and entries, in the order written, after checking
/// every byte of it.
///
/// # Errors
/// [`DecodeError`] for anything but a whole, intact dump of a version this
/// code reads.
#[allow(clippy::type_complexity)]
pub fn decode(data: &[u8]) -> Result<(Settings<&[u8]>, Vec<EntryRecord<'_>>), DecodeError> {
    decode_kept(data, |_| true)
}

/// As [`decode`], handing back only the entries `keep` accepts (every
/// record is checked all the same): a load leaves out the expired ones
/// here, which for a dump of expired entries saves a record per entry.
///
/// # Errors
/// As [`decode`].
#[allow(clippy::type_complexity)]
pub fn decode_kept<'a>(
    data: &'a [u8],
    mut keep: impl FnMut(&EntryRecord<'a>) -> bool,
) -> Result<(Settings<&'a [u8]>, Vec<EntryRecord<'a>>), DecodeError> {
    let mut reader = Reader { data, at: 0 };
    let magic = reader
        .take(MAGIC.len())
        .map_err(|_| DecodeError::WrongMagic)?;
    if magic != MAGIC {
        return Err(DecodeError::WrongMagic);
    }
    let version = reader.u32()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let (offset, body) = reader.record()?;
    let settings = settings_of(body, offset)?;
    let mut entries = Vec::new();
    let mut found: u64 = 0;
    loop {
        let (offset, body) = reader.record()?;
        let mut fields = Fields {
            body: &body[1..],
            offset,
        };
        match body[0] {
            KIND_ENTRY => {
                let size = fields.u64()?;
                let wall_deadline = i64::from_le_bytes(fields.array()?);
                let uses = fields.u64()?;
                let key_len = u32::from_le_bytes(fields.array()?) as usize;
                let key = fields.take(key_len)?;
                let entry = EntryRecord {
                    size,
                    wall_deadline,
                    uses,
                    key,
                    value: fields.body,
                };
                found += 1;
                if keep(&entry) {
                    entries.push(entry);
                }
            }
            KIND_END => {
                let recorded = fields.u64()?;
                fields.end()?;
                if recorded != found {
                    return Err(DecodeError::Count { recorded, found });
                }
                if reader.at != data.len() {
                    return Err(DecodeError::Trailing(reader.at));
                }
                return Ok((settings, entries));
            }
            KIND_SETTINGS => {
                return Err(DecodeError::Malformed(offset, "a second settings record"))
            }
            _ => return Err(DecodeError::Malformed(offset, "a record of unknown kind")),
        }
    }
}

fn settings_of(body: &[u8], offset: usize) -> Result<Settings<&[u8]>, DecodeError> {
    if body[0] != KIND_SETTINGS {
        return Err(DecodeError::Malformed(offset, "no settings record first"));
    }
    let mut fields = Fields {
        body: &body[1..],
        offset,
    };
    let form = fields.u8()?;
    let policy_len = u32::from_le_bytes(fields.array()?) as usize;
    let policy = fields.take(policy_len)?;
    let policy = match form {
        POLICY_NAME => PolicyForm::Name(policy),
        POLICY_SERIALIZED => PolicyForm::Serialized(policy),
        _ => return Err(DecodeError::Malformed(offset, "an unknown form of policy")),
    };
    let scan_interval = fields.f64()?;
    let max_items = fields.u64()?;
    let max_bytes = fields.u64()?;
    let thread_safe = fields.flag()?;
    let has_background_scan = fields.flag()?;
    let background_scan = fields.f64()?;
    fields.end()?;
    Ok(Settings {
        policy,
        scan_interval,
        max_items,
        max_bytes,
        thread_safe,
        background_scan: has_background_scan.then_some(background_scan),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings<&'static [u8]> {
        Settings {
            policy: PolicyForm::Name(b"lfu"),
            scan_interval: 0.5,
            max_items: 10,
            max_bytes: 0,
            thread_safe: true,
            background_scan: Some(2.0),
        }
    }

    fn sample() -> Vec<u8> {
        let mut encoder = Encoder::new(&settings()).unwrap();
        for (n, key) in [&b"a"[..], b"bb", b""].into_iter().enumerate() {
            encoder
                .entry(&EntryRecord {
                    size: n as u64 + 1,
                    wall_deadline: if n == 1 { 123 } else { NEVER_WALL },
                    uses: n as u64,
                    key,
                    value: b"value",
                })
                .unwrap();
        }
        assert_eq!(encoder.finish(), 3);
        std::mem::take(encoder.buffer())
    }

    #[test]
    fn round_trip() {
        let data = sample();
        let (read, entries) = decode(&data).unwrap();
        assert_eq!(read, settings());
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].key, b"bb");
        assert_eq!(entries[1].wall_deadline, 123);
        assert_eq!(entries[2].key, b"");
        assert_eq!(entries[2].value, b"value");
        assert_eq!(entries[2].uses, 2);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_an_error() {
        let data = sample();
        for len in 0..data.len() {
            assert!(decode(&data[..len]).is_err(), "truncated to {len}");
        }
        for at in 0..data.len() {
            for flip in [0x01, 0x80, 0xff] {
                let mut bad = data.clone();
                bad[at] ^= flip;
                assert!(decode(&bad).is_err(), "byte {at} ^ {flip:#x}");
            }
        }
        let (_, kept) = decode_kept(&data, |entry| entry.wall_deadline == NEVER_WALL).unwrap();
        assert_eq!(kept.len(), 2);
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(DecodeError::Trailing(data.len())));
    }

    #[test]
    fn magic_and_version_are_named() {
        let mut data = sample();
        assert_eq!(decode(b"not a dump"), Err(DecodeError::WrongMagic));
        data[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&2u32.to_le_bytes());
        let error = decode(&data).unwrap_err();
        assert_eq!(error, DecodeError::Version(2));
        assert!(error.to_string().contains("newer"), "{error}");
    }
}
