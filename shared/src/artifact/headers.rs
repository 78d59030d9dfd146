//! A zip describes every entry twice: once in the central directory (what most tools list) and
//! once in the local header in front of the entry's data (what streaming tools and some
//! reviewers read). A zip whose two descriptions disagree shows different files to different
//! tools, so before anything is read every entry must satisfy all of:
//!
//! - a local header sits where the central directory says, and names the same bytes;
//! - both headers agree on the general-purpose flags, the compression method, the CRC-32 and the
//!   sizes (with bit 3 set, the data descriptor after the data carries the CRC and sizes, and it
//!   must agree too);
//! - neither header marks the entry encrypted (flag bit 0);
//! - the entry (local header, data, data descriptor) ends before the central directory, and no
//!   two entries share a byte.
//!
//! The central directory's own values come from the zip crate (which resolves zip64), the rest
//! is read from the raw bytes here.

use super::error::ArtifactError;
use std::io::Cursor;
use zip::ZipArchive;

const LOCAL_SIGNATURE: &[u8; 4] = b"PK\x03\x04";
const DESCRIPTOR_SIGNATURE: &[u8; 4] = b"PK\x07\x08";
const CENTRAL_SIGNATURE: &[u8; 4] = b"PK\x01\x02";
const LOCAL_HEADER_LEN: u64 = 30;
const CENTRAL_HEADER_LEN: usize = 46;
const FLAG_ENCRYPTED: u16 = 1;
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// A 32-bit size field that defers to the zip64 extra field.
const ZIP64_MARKER: u32 = u32::MAX;
const ZIP64_EXTRA_TAG: u16 = 0x0001;

/// What the central directory says about one entry.
struct Central {
    name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    compressed: u64,
    size: u64,
    local_offset: u64,
}

/// The bytes one entry occupies, for the overlap check.
struct Span {
    start: u64,
    end: u64,
    name: String,
}

/// Check that every central-directory entry of `archive` agrees with its local header, and that
/// the entries neither overlap nor run past the central directory.
pub(super) fn check(
    location: &str,
    bytes: &[u8],
    archive: &ZipArchive<Cursor<&[u8]>>,
) -> Result<(), ArtifactError> {
    let central_start = archive.central_directory_start();
    let mut spans = Vec::with_capacity(archive.len());
    for index in 0..archive.len() {
        let entry =
            archive
                .by_index_data(index)
                .map_err(|source| ArtifactError::ZipUnreadable {
                    location: location.to_owned(),
                    source,
                })?;
        let (name, flags, method) =
            raw_central(bytes, entry.central_header_start()).ok_or_else(|| {
                ArtifactError::CorruptHeader {
                    entry: String::from_utf8_lossy(entry.name_raw()).into_owned(),
                    reason: format!(
                        "no central directory header at offset {}",
                        entry.central_header_start()
                    ),
                }
            })?;
        let central = Central {
            name,
            flags,
            method,
            crc: entry.crc32(),
            compressed: entry.compressed_size(),
            size: entry.size(),
            local_offset: entry.header_start(),
        };
        spans.push(check_entry(bytes, central_start, &central)?);
    }
    spans.sort_by_key(|span| (span.start, span.end));
    for pair in spans.windows(2) {
        if let [first, second] = pair
            && second.start < first.end
        {
            return Err(ArtifactError::OverlappingEntries {
                first: first.name.clone(),
                second: second.name.clone(),
            });
        }
    }
    Ok(())
}

/// The checks of one entry; returns the bytes it occupies.
fn check_entry(bytes: &[u8], central_start: u64, central: &Central) -> Result<Span, ArtifactError> {
    let entry = String::from_utf8_lossy(&central.name).into_owned();
    if central.flags & FLAG_ENCRYPTED != 0 {
        return Err(ArtifactError::EncryptedEntry { entry });
    }
    let no_local = || ArtifactError::CorruptHeader {
        entry: entry.clone(),
        reason: format!(
            "the central directory points at offset {}, where there is no complete local file header",
            central.local_offset
        ),
    };
    let local = Local::parse(bytes, central.local_offset).ok_or_else(no_local)?;
    if local.flags & FLAG_ENCRYPTED != 0 {
        return Err(ArtifactError::EncryptedEntry { entry });
    }
    let mismatch = |field: &'static str, central: String, local: String| {
        Err(ArtifactError::HeaderMismatch {
            entry: entry.clone(),
            field,
            central,
            local,
        })
    };
    if local.name != central.name {
        return mismatch(
            "name",
            format!("`{entry}`"),
            format!("`{}`", String::from_utf8_lossy(&local.name)),
        );
    }
    if local.flags != central.flags {
        return mismatch(
            "general-purpose flags",
            format!("{:#06x}", central.flags),
            format!("{:#06x}", local.flags),
        );
    }
    if local.method != central.method {
        return mismatch(
            "compression method",
            central.method.to_string(),
            local.method.to_string(),
        );
    }
    let data_end = local.data_start.saturating_add(central.compressed);
    let mut end = data_end;
    if local.flags & FLAG_DATA_DESCRIPTOR == 0 {
        compare_values(
            "local header",
            &local.values,
            central,
            &entry,
            Unknown::Refused,
        )?;
    } else {
        // Writers that stream put zero where they do not know a value yet (Info-ZIP's `-fd`
        // knows the uncompressed size, not the CRC); what they do write must agree, and the data
        // descriptor must agree in full.
        compare_values(
            "local header",
            &local.values,
            central,
            &entry,
            Unknown::Zero,
        )?;
        let (values, len) =
            descriptor(bytes, data_end, central).ok_or_else(|| ArtifactError::CorruptHeader {
                entry: entry.clone(),
                reason: "its flags announce a data descriptor after the data, and there is none"
                    .to_owned(),
            })?;
        compare_values(
            "data descriptor",
            &values,
            central,
            &entry,
            Unknown::Refused,
        )?;
        end = data_end.saturating_add(len);
    }
    if end > central_start {
        return Err(ArtifactError::DataPastEnd {
            entry,
            end,
            limit: central_start,
        });
    }
    Ok(Span {
        start: central.local_offset,
        end,
        name: entry,
    })
}

/// CRC-32 and sizes, as a local header or a data descriptor states them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Values {
    crc: u32,
    compressed: u64,
    size: u64,
}

/// Whether a zero may stand for a value the writer did not know yet.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unknown {
    Zero,
    Refused,
}

fn compare_values(
    source: &'static str,
    values: &Values,
    central: &Central,
    entry: &str,
    unknown: Unknown,
) -> Result<(), ArtifactError> {
    let differs =
        |field: &'static str, central: String, local: String| ArtifactError::HeaderMismatch {
            entry: entry.to_owned(),
            field,
            central,
            local: format!("{local} ({source})"),
        };
    let agrees =
        |stated: u64, central: u64| stated == central || (unknown == Unknown::Zero && stated == 0);
    if !agrees(u64::from(values.crc), u64::from(central.crc)) {
        return Err(differs(
            "CRC-32",
            format!("{:#010x}", central.crc),
            format!("{:#010x}", values.crc),
        ));
    }
    if !agrees(values.compressed, central.compressed) {
        return Err(differs(
            "compressed size",
            central.compressed.to_string(),
            values.compressed.to_string(),
        ));
    }
    if !agrees(values.size, central.size) {
        return Err(differs(
            "uncompressed size",
            central.size.to_string(),
            values.size.to_string(),
        ));
    }
    Ok(())
}

/// A local file header.
struct Local {
    flags: u16,
    method: u16,
    name: Vec<u8>,
    values: Values,
    data_start: u64,
}

impl Local {
    /// The local header at `offset`; `None` when there is none (or it is cut short).
    fn parse(bytes: &[u8], offset: u64) -> Option<Local> {
        let at = usize::try_from(offset).ok()?;
        if bytes.get(at..at.checked_add(4)?)? != LOCAL_SIGNATURE {
            return None;
        }
        let name_len = usize::from(u16_at(bytes, at + 26)?);
        let extra_len = usize::from(u16_at(bytes, at + 28)?);
        let name_start = at + LOCAL_HEADER_LEN as usize;
        let name = bytes.get(name_start..name_start + name_len)?.to_vec();
        let extra = bytes.get(name_start + name_len..name_start + name_len + extra_len)?;
        let mut compressed = u64::from(u32_at(bytes, at + 18)?);
        let mut size = u64::from(u32_at(bytes, at + 22)?);
        if (compressed == u64::from(ZIP64_MARKER) || size == u64::from(ZIP64_MARKER))
            && let Some(zip64) = extra_field(extra, ZIP64_EXTRA_TAG)
        {
            // In a local header the zip64 field holds both sizes, uncompressed first.
            size = u64_at(zip64, 0)?;
            compressed = u64_at(zip64, 8)?;
        }
        Some(Local {
            flags: u16_at(bytes, at + 6)?,
            method: u16_at(bytes, at + 8)?,
            name,
            values: Values {
                crc: u32_at(bytes, at + 14)?,
                compressed,
                size,
            },
            data_start: offset + LOCAL_HEADER_LEN + (name_len + extra_len) as u64,
        })
    }
}

/// The data descriptor at `at` and its length: with or without its optional signature, with
/// 4- or 8-byte sizes. The form whose values match the central directory is preferred, so that a
/// CRC that happens to equal the signature is read right; `None` when no form fits the bytes.
fn descriptor(bytes: &[u8], at: u64, central: &Central) -> Option<(Values, u64)> {
    let at = usize::try_from(at).ok()?;
    let read = |start: usize, wide: bool| -> Option<(Values, u64)> {
        let crc = u32_at(bytes, start)?;
        let (compressed, size, len) = if wide {
            (u64_at(bytes, start + 4)?, u64_at(bytes, start + 12)?, 20)
        } else {
            (
                u64::from(u32_at(bytes, start + 4)?),
                u64::from(u32_at(bytes, start + 8)?),
                12,
            )
        };
        Some((
            Values {
                crc,
                compressed,
                size,
            },
            (start - at + len) as u64,
        ))
    };
    let signed = bytes.get(at..at.checked_add(4)?) == Some(DESCRIPTOR_SIGNATURE.as_slice());
    let mut forms = Vec::new();
    if signed {
        forms.extend([read(at + 4, false), read(at + 4, true)]);
    }
    forms.extend([read(at, false), read(at, true)]);
    let forms: Vec<(Values, u64)> = forms.into_iter().flatten().collect();
    let matches = |v: &Values| {
        v.crc == central.crc && v.compressed == central.compressed && v.size == central.size
    };
    let best = forms.iter().position(|(v, _)| matches(v)).unwrap_or(0);
    forms.into_iter().nth(best)
}

/// The name, flags and compression method of the central directory header at `offset`.
fn raw_central(bytes: &[u8], offset: u64) -> Option<(Vec<u8>, u16, u16)> {
    let at = usize::try_from(offset).ok()?;
    if bytes.get(at..at.checked_add(4)?)? != CENTRAL_SIGNATURE {
        return None;
    }
    let name_len = usize::from(u16_at(bytes, at + 28)?);
    let start = at + CENTRAL_HEADER_LEN;
    let name = bytes.get(start..start + name_len)?.to_vec();
    Some((name, u16_at(bytes, at + 8)?, u16_at(bytes, at + 10)?))
}

/// The data of extra field `tag` in an extra-field block.
fn extra_field(mut extra: &[u8], tag: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let id = u16_at(extra, 0)?;
        let len = usize::from(u16_at(extra, 2)?);
        let data = extra.get(4..4 + len)?;
        if id == tag {
            return Some(data);
        }
        extra = &extra[4 + len..];
    }
    None
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        bytes.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}
