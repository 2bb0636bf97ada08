//! Reading `.deb` packages as a stream: the `ar` container, the control paragraph and
//! md5sums from `control.tar.*`, and the entries of `data.tar[.*]`.
//!
//! Nothing is held in memory but the (size-capped) control archive: `data.tar` is handed out
//! as a decompressing stream for the assembler to walk.

use std::fs::File;
use std::io::{BufReader, Read, Take};
use std::path::Path;

use crate::Error;
use crate::index::Compression;

/// Control archives are a few kilobytes; a much larger one is refused as a bomb.
const CONTROL_LIMIT: u64 = 64 << 20;

/// An opened package, positioned at its data member.
pub struct Deb<R: Read> {
    control: String,
    md5sums: Option<String>,
    data_compression: Compression,
    data: Take<R>,
}

impl Deb<BufReader<File>> {
    /// Opens a `.deb` file.
    pub fn open_file(path: &Path) -> Result<Self, Error> {
        let f = File::open(path).map_err(|e| Error::io(path, e))?;
        Deb::open(BufReader::with_capacity(1 << 16, f), path)
    }
}

impl<R: Read + Send> Deb<R> {
    /// Reads the container up to the data member. `path` names the package in errors.
    pub fn open(mut reader: R, path: &Path) -> Result<Self, Error> {
        let bad = |reason: String| Error::BadDeb {
            path: path.to_path_buf(),
            reason,
        };
        let mut magic = [0u8; 8];
        reader
            .read_exact(&mut magic)
            .map_err(|e| bad(format!("cannot read the ar header: {e}")))?;
        if &magic != b"!<arch>\n" {
            return Err(bad("not an ar archive".into()));
        }
        let (name, size) = member(&mut reader).map_err(bad)?;
        if name != "debian-binary" {
            return Err(bad(format!("first member is {name:?}, not debian-binary")));
        }
        let mut version = String::new();
        read_member(&mut reader, size, 64)
            .and_then(|b| String::from_utf8(b).map_err(|e| e.to_string()))
            .map(|v| version = v)
            .map_err(bad)?;
        if !version.starts_with("2.") {
            return Err(bad(format!(
                "unsupported format version {:?}",
                version.trim()
            )));
        }
        let (mut control, mut md5sums) = (None, None);
        loop {
            let (name, size) = member(&mut reader).map_err(bad)?;
            if let Some(ext) = name.strip_prefix("control.tar") {
                let bytes = read_member(&mut reader, size, CONTROL_LIMIT).map_err(bad)?;
                let compression =
                    compression_of(ext).ok_or_else(|| bad(format!("unknown member {name}")))?;
                (control, md5sums) = read_control(&bytes, compression).map_err(bad)?;
            } else if let Some(ext) = name.strip_prefix("data.tar") {
                let data_compression =
                    compression_of(ext).ok_or_else(|| bad(format!("unknown member {name}")))?;
                let control =
                    control.ok_or_else(|| bad("no control file before data.tar".into()))?;
                return Ok(Deb {
                    control,
                    md5sums,
                    data_compression,
                    data: reader.take(size),
                });
            } else if name.starts_with('_') {
                // Optional members (signatures and the like) are skipped.
                read_member(&mut reader, size, CONTROL_LIMIT).map_err(bad)?;
            } else {
                return Err(bad(format!("unexpected member {name:?}")));
            }
        }
    }

    /// The package's control paragraph, as shipped.
    pub fn control(&self) -> &str {
        &self.control
    }

    /// A field of the control paragraph (first line only for multi-line fields).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.control.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The `md5sums` control file, when the package has one.
    pub fn md5sums(&self) -> Option<&str> {
        self.md5sums.as_deref()
    }
}

impl<'a, R: Read + Send + 'a> Deb<R> {
    /// The data archive, decompressed: a tar stream, to be read through
    /// `bareboat_oci::tar_bounds::BoundedTar`, which bounds what a tar reader holds.
    pub fn data_stream(self) -> Box<dyn Read + Send + 'a> {
        self.data_compression.decoder(self.data)
    }
}

fn compression_of(ext: &str) -> Option<Compression> {
    Some(match ext {
        ".gz" => Compression::Gzip,
        ".xz" => Compression::Xz,
        ".zst" => Compression::Zstd,
        "" => Compression::None,
        _ => return None,
    })
}

/// Reads one ar member header: name and size.
fn member(r: &mut impl Read) -> Result<(String, u64), String> {
    let mut hdr = [0u8; 60];
    r.read_exact(&mut hdr)
        .map_err(|e| format!("truncated ar member header: {e}"))?;
    if &hdr[58..60] != b"`\n" {
        return Err("corrupt ar member header".into());
    }
    let name = String::from_utf8_lossy(&hdr[..16])
        .trim_end()
        .trim_end_matches('/')
        .to_string();
    let size = std::str::from_utf8(&hdr[48..58])
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| format!("bad size in ar member {name:?}"))?;
    Ok((name, size))
}

/// Reads a whole member (and its padding byte), refusing one larger than `limit`.
fn read_member(r: &mut impl Read, size: u64, limit: u64) -> Result<Vec<u8>, String> {
    if size > limit {
        return Err(format!(
            "member of {size} bytes exceeds the {limit}-byte limit"
        ));
    }
    let mut buf = vec![0u8; size as usize];
    r.read_exact(&mut buf)
        .map_err(|e| format!("truncated ar member: {e}"))?;
    if size % 2 == 1 {
        let mut pad = [0u8; 1];
        r.read_exact(&mut pad)
            .map_err(|e| format!("truncated ar padding: {e}"))?;
    }
    Ok(buf)
}

/// Extracts `control` and `md5sums` from the control archive, capping the decompressed size.
fn read_control(
    bytes: &[u8],
    compression: Compression,
) -> Result<(Option<String>, Option<String>), String> {
    let decoder = compression.decoder(bytes).take(CONTROL_LIMIT);
    let mut tar = tar::Archive::new(decoder);
    let (mut control, mut md5sums) = (None, None);
    for entry in tar.entries().map_err(|e| format!("control archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("control archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let slot = match path.trim_start_matches("./") {
            "control" => &mut control,
            "md5sums" => &mut md5sums,
            _ => continue,
        };
        let mut text = String::new();
        entry
            .read_to_string(&mut text)
            .map_err(|e| format!("control archive {path}: {e}"))?;
        *slot = Some(text);
    }
    if control.is_none() {
        return Err("control archive has no control file".into());
    }
    Ok((control, md5sums))
}
