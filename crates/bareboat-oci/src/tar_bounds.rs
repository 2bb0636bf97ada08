//! A tar stream with bounds on what a tar reader would hold in memory.
//!
//! The `tar` crate reads a GNU long name or long link, and a PAX record, whole into memory
//! before it hands out the entry they describe: a header of a few hundred bytes can claim a
//! 1.5 GiB name. [`BoundedTar`] walks the headers of the stream it passes on, as the `tar`
//! crate will read them (sizes in octal or base-256, a PAX `size` record overriding the
//! next entry's, GNU sparse extension blocks), and stops with an error at a name or record
//! longer than [`MAX_RECORD`] before any of it is read.

use std::io::{self, Read, Seek, SeekFrom};

/// The longest long name, long link or PAX record let through: far beyond any path a
/// runtime can create (Linux's PATH_MAX is 4096).
pub const MAX_RECORD: u64 = 64 << 10;

const BLOCK: u64 = 512;

/// Passes a tar stream on, refusing long names and PAX records over [`MAX_RECORD`].
pub struct BoundedTar<R> {
    inner: R,
    /// The header block being read, and how much of it has arrived.
    block: [u8; BLOCK as usize],
    filled: usize,
    /// Bytes of the header block already handed on.
    handed: usize,
    state: State,
    /// The size a PAX record gave the next entry.
    pax_size: Option<u64>,
    /// The data of a PAX record being read, to find its `size`.
    pax: Option<Vec<u8>>,
}

enum State {
    /// The next bytes are a header block.
    Header,
    /// The next bytes are GNU sparse extension blocks, then `data` bytes of data.
    Extension { data: u64 },
    /// The next bytes are this many bytes of an entry's data, padding included.
    Data(u64),
}

impl<R: Read> BoundedTar<R> {
    /// A stream that passes `inner` on, checking each header as it goes.
    pub fn new(inner: R) -> BoundedTar<R> {
        BoundedTar {
            inner,
            block: [0; BLOCK as usize],
            filled: 0,
            handed: 0,
            state: State::Header,
            pax_size: None,
            pax: None,
        }
    }

    /// The stream this reads from.
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Reads a whole block into `self.block`; `false` at the end of the stream.
    fn fill_block(&mut self) -> io::Result<bool> {
        while self.filled < self.block.len() {
            match self.inner.read(&mut self.block[self.filled..])? {
                0 if self.filled == 0 => return Ok(false),
                0 => return Ok(true), // A short last block: the tar reader says what is wrong.
                n => self.filled += n,
            }
        }
        Ok(true)
    }

    /// What follows a header block that has just been read whole.
    fn after_header(&mut self) -> io::Result<State> {
        if self.block.iter().all(|b| *b == 0) {
            return Ok(State::Header);
        }
        let header = tar::Header::from_byte_slice(&self.block);
        let kind = header.entry_type();
        let size = header.entry_size()?;
        let record = kind.is_gnu_longname()
            || kind.is_gnu_longlink()
            || kind.is_pax_local_extensions()
            || kind.is_pax_global_extensions();
        if record && size > MAX_RECORD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a tar {} of {size} bytes: more than {MAX_RECORD} bytes, refused",
                    if kind.is_gnu_longname() || kind.is_gnu_longlink() {
                        "long name"
                    } else {
                        "PAX record"
                    }
                ),
            ));
        }
        // As the tar reader does: a PAX size holds for the next entry that is not itself a
        // record, and a local PAX record is used up by the next entry other than a long name.
        let size = match self.pax_size {
            Some(pax) if !record => pax,
            _ => size,
        };
        if !(kind.is_gnu_longname() || kind.is_gnu_longlink() || kind.is_pax_local_extensions()) {
            self.pax_size = None;
        }
        if kind.is_pax_local_extensions() {
            self.pax = Some(Vec::with_capacity(size as usize));
        }
        let padded = size.checked_add(BLOCK - 1).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "a tar entry's size overflows")
        })? & !(BLOCK - 1);
        let extended = kind.is_gnu_sparse() && header.as_gnu().is_some_and(|g| g.is_extended());
        Ok(if extended {
            State::Extension { data: padded }
        } else {
            State::Data(padded)
        })
    }

    /// Takes in the end of a PAX record's data: its `size`, if it gives one, holds for the
    /// next entry.
    fn end_pax(&mut self) {
        if let Some(record) = self.pax.take() {
            self.pax_size = tar::PaxExtensions::new(&record)
                .map_while(Result::ok)
                .find(|e| e.key() == Ok("size"))
                .and_then(|e| e.value().ok()?.parse().ok());
        }
    }
}

impl<R: Read> Read for BoundedTar<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            // A block read whole is handed on before anything else is read.
            if self.handed < self.filled {
                let n = (self.filled - self.handed).min(buf.len());
                buf[..n].copy_from_slice(&self.block[self.handed..self.handed + n]);
                self.handed += n;
                if self.handed == self.filled {
                    self.filled = 0;
                    self.handed = 0;
                }
                return Ok(n);
            }
            match self.state {
                State::Data(0) => {
                    self.end_pax();
                    self.state = State::Header;
                }
                State::Data(remaining) => {
                    let want = (buf.len() as u64).min(remaining) as usize;
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Ok(0);
                    }
                    if let Some(record) = &mut self.pax {
                        let room = (MAX_RECORD as usize).saturating_sub(record.len());
                        record.extend_from_slice(&buf[..n.min(room)]);
                    }
                    self.state = State::Data(remaining - n as u64);
                    return Ok(n);
                }
                State::Header => {
                    if !self.fill_block()? {
                        return Ok(0);
                    }
                    if self.filled == self.block.len() {
                        self.state = self.after_header()?;
                    }
                }
                State::Extension { data } => {
                    if !self.fill_block()? {
                        return Ok(0);
                    }
                    // The block's `isextended` flag, at byte 504, says whether another follows.
                    if self.block[504] == 0 {
                        self.state = State::Data(data);
                    }
                }
            }
        }
    }
}

/// Skips forward within an entry's data, as the tar reader does to pass over it when it can
/// seek; it makes no other seek.
impl<R: Read + Seek> Seek for BoundedTar<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let unsupported = || io::Error::other("a seek other than forward within an entry's data");
        let SeekFrom::Current(n) = pos else {
            return Err(unsupported());
        };
        let n = u64::try_from(n).map_err(|_| unsupported())?;
        let pending = (self.filled - self.handed) as u64;
        if n == 0 {
            return Ok(self.inner.stream_position()? - pending);
        }
        match self.state {
            // Within a PAX record, only its padding is skipped, once its data has been read.
            State::Data(remaining)
                if n <= remaining && pending == 0 && (self.pax.is_none() || n == remaining) =>
            {
                let at = self.inner.seek(SeekFrom::Current(n as i64))?;
                self.state = State::Data(remaining - n);
                if remaining == n {
                    self.end_pax();
                }
                Ok(at)
            }
            _ => Err(unsupported()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn names(bytes: &[u8]) -> io::Result<Vec<String>> {
        let mut a = tar::Archive::new(BoundedTar::new(bytes));
        let mut out = Vec::new();
        for e in a.entries()? {
            let mut e = e?;
            out.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
            io::copy(&mut e, &mut io::sink())?;
        }
        Ok(out)
    }

    #[test]
    fn ordinary_archives_pass_unchanged() {
        let long = format!("{}/file", "d".repeat(300));
        let bytes = archive(|b| {
            file(b, "a", b"one");
            file(b, &long, &[7u8; 1000]);
            file(b, "b", b"");
        });
        let mut through = Vec::new();
        BoundedTar::new(&bytes[..])
            .read_to_end(&mut through)
            .unwrap();
        assert_eq!(through, bytes);
        assert_eq!(names(&bytes).unwrap(), ["a", long.as_str(), "b"]);
        // Read a byte at a time, the stream is the same.
        let mut slow = Vec::new();
        let mut r = BoundedTar::new(&bytes[..]);
        let mut one = [0u8; 1];
        while r.read(&mut one).unwrap() == 1 {
            slow.push(one[0]);
        }
        assert_eq!(slow, bytes);
    }

    /// A header of `kind` claiming `size` bytes, followed by none of them.
    fn claiming(kind: tar::EntryType, size: u64) -> Vec<u8> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_path("././@LongLink").unwrap();
        h.set_cksum();
        h.as_bytes().to_vec()
    }

    #[test]
    fn huge_long_names_and_pax_records_are_refused_before_they_are_read() {
        for kind in [
            tar::EntryType::GNULongName,
            tar::EntryType::GNULongLink,
            tar::EntryType::XHeader,
            tar::EntryType::XGlobalHeader,
        ] {
            let bytes = claiming(kind, 3 << 29);
            let e = names(&bytes).unwrap_err().to_string();
            assert!(
                e.contains("more than 65536 bytes, refused"),
                "{kind:?}: {e}"
            );
        }
        let mut ok = claiming(tar::EntryType::GNULongName, 10);
        ok.extend_from_slice(b"short-name");
        ok.resize(1024, 0);
        ok.extend_from_slice(&archive(|b| file(b, "x", b"data")));
        assert_eq!(names(&ok).unwrap(), ["short-name"]);
    }

    #[test]
    fn a_pax_size_is_followed_as_the_tar_reader_follows_it() {
        // A PAX record gives the next entry 1024 bytes of data, whatever its header says;
        // within that data sits what would otherwise be read as a huge long name.
        let mut pax = tar::Header::new_ustar();
        let record = b"13 size=1024\n";
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_size(record.len() as u64);
        pax.set_path("pax").unwrap();
        pax.set_cksum();
        let mut bytes = pax.as_bytes().to_vec();
        bytes.extend_from_slice(record);
        bytes.resize(1024, 0);
        let mut entry = tar::Header::new_ustar();
        entry.set_size(0);
        entry.set_path("hidden").unwrap();
        entry.set_cksum();
        bytes.extend_from_slice(entry.as_bytes());
        bytes.extend_from_slice(&claiming(tar::EntryType::GNULongName, 3 << 29));
        bytes.resize(bytes.len() + 512, 0);
        bytes.extend_from_slice(&archive(|b| file(b, "after", b"x")));
        assert_eq!(names(&bytes).unwrap(), ["hidden", "after"]);
    }

    #[test]
    fn a_seeking_reader_passes_over_data_and_pax_records() {
        let bytes = archive(|b| {
            let mut h = tar::Header::new_ustar();
            h.set_size(1000);
            h.set_mode(0o644);
            // A PAX record whose data is not a multiple of a block: the reader seeks past
            // its padding.
            let name = format!("{}/file", "d".repeat(150));
            b.append_data(&mut h, &name, &[b'x'; 1000][..]).unwrap();
            b.append_pax_extensions([("comment", &b"a remark"[..])])
                .unwrap();
            file(b, "small", b"abc");
        });
        let mut archive = tar::Archive::new(BoundedTar::new(io::Cursor::new(bytes)));
        let entries: Vec<(String, u64)> = archive
            .entries_with_seek()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.raw_file_position(),
                )
            })
            .collect();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries[0].0.ends_with("/file"), "{entries:?}");
        assert_eq!(entries[1].0, "small");
    }
}
