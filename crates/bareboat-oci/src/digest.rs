//! Hashing while streaming.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::Error;

/// A `sha256:<hex>` content digest.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    pub(crate) fn from_hasher(h: Sha256) -> Digest {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }

    /// The digest a document names, which must be a sha256 one: [`Error::BadDigest`] if not.
    pub fn named(digest: &str) -> Result<Digest, Error> {
        digest.parse().map_err(|_| Error::BadDigest {
            digest: digest.to_string(),
        })
    }

    /// The hex part, which names the blob in a layout.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Digest, String> {
        let hex = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("{s:?} is not a sha256 digest"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!("{s:?} is not a sha256 digest"));
        }
        Ok(Digest(s.to_string()))
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    /// A writer that passes everything on to `inner`, hashing and counting it.
    pub fn new(inner: W) -> HashingWriter<W> {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Returns the inner writer, and the digest and size of everything written.
    pub fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it reads and, at the end, fails unless the bytes had the
/// expected digest and size: a tampered or truncated blob is never taken for the real one.
pub struct VerifyingReader<R> {
    inner: R,
    digest: Hashing,
    expected: Digest,
    count: u64,
    size: u64,
    checked: bool,
    /// Whether a read of `inner` failed: what it yields after that (a download that failed
    /// ends its stream early) says nothing of the blob, so no verdict is given on it.
    failed: bool,
}

/// Where a [`VerifyingReader`]'s bytes are hashed.
enum Hashing {
    Here(DigestCheck),
    /// By whoever took the check ([`VerifyingReader::hash_elsewhere`]): the bytes read
    /// since they were last taken.
    Elsewhere(Vec<u8>),
    /// The digest matched.
    Done,
}

/// The digest half of a blob's check: the bytes are hashed as they arrive, and the end
/// fails unless they had the expected digest.
#[derive(Clone)]
pub struct DigestCheck {
    hasher: Sha256,
    expected: Digest,
}

impl DigestCheck {
    fn new(expected: Digest) -> DigestCheck {
        DigestCheck {
            hasher: Sha256::new(),
            expected,
        }
    }

    /// Hashes the next bytes of the blob.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
    }

    /// Fails unless everything hashed had the expected digest.
    pub fn finish(self) -> io::Result<()> {
        let actual = Digest::from_hasher(self.hasher);
        if actual == self.expected {
            return Ok(());
        }
        Err(refused(
            &self.expected,
            format!(
                "it does not match its descriptor: its content does not match its digest (it hashes to {actual})"
            ),
        ))
    }
}

/// The error the blob of digest `digest` is refused with.
fn refused(digest: &Digest, reason: String) -> io::Error {
    io::Error::other(Error::Blob {
        digest: digest.to_string(),
        reason,
    })
}

impl<R: Read> VerifyingReader<R> {
    /// A reader of `inner` that fails unless it yields `size` bytes with digest `expected`.
    pub fn new(inner: R, expected: Digest, size: u64) -> VerifyingReader<R> {
        VerifyingReader {
            inner,
            digest: Hashing::Here(DigestCheck::new(expected.clone())),
            expected,
            count: 0,
            size,
            checked: false,
            failed: false,
        }
    }
}

impl<R> VerifyingReader<R> {
    /// Hands the digest's check to the caller, for another thread to do: from now on the
    /// bytes read are kept for [`take_unhashed`](VerifyingReader::take_unhashed), and the end
    /// checks the size alone. `None` when it was handed already, or done.
    pub fn hash_elsewhere(&mut self) -> Option<DigestCheck> {
        match std::mem::replace(&mut self.digest, Hashing::Elsewhere(Vec::new())) {
            Hashing::Here(check) => Some(check),
            other => {
                self.digest = other;
                None
            }
        }
    }

    /// The bytes read since they were last taken, while the digest is checked elsewhere;
    /// `spare`, emptied, keeps the next ones (a buffer used before grows no more).
    pub fn take_unhashed(&mut self, mut spare: Vec<u8>) -> Vec<u8> {
        spare.clear();
        match &mut self.digest {
            Hashing::Elsewhere(kept) => std::mem::replace(kept, spare),
            Hashing::Here(_) | Hashing::Done => Vec::new(),
        }
    }

    /// Takes the digest's check back, with every byte read so far hashed into it: the
    /// reader's end checks the digest again, even when it was reached already.
    pub fn hash_here(&mut self, mut check: DigestCheck) {
        check.update(&self.take_unhashed(Vec::new()));
        self.digest = Hashing::Here(check);
        self.checked = false;
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|e| {
            self.failed |= e.kind() != io::ErrorKind::Interrupted;
        })?;
        match &mut self.digest {
            Hashing::Here(check) => check.update(&buf[..n]),
            Hashing::Elsewhere(kept) => kept.extend_from_slice(&buf[..n]),
            Hashing::Done => {}
        }
        self.count += n as u64;
        if self.count > self.size {
            return Err(refused(
                &self.expected,
                format!(
                    "it is larger than the {} bytes its descriptor says",
                    self.size
                ),
            ));
        }
        if n == 0 && !buf.is_empty() && !self.checked {
            if self.failed {
                return Err(io::Error::other(
                    "the blob's stream failed before its end, so it cannot be checked",
                ));
            }
            if self.count != self.size {
                return Err(refused(
                    &self.expected,
                    format!(
                        "it does not match its descriptor: it ends after {} bytes, and its descriptor says {}",
                        self.count, self.size
                    ),
                ));
            }
            if let Hashing::Here(check) = &mut self.digest {
                // A fresh hasher stays after a mismatch, so a read again fails again.
                let fresh = DigestCheck::new(self.expected.clone());
                std::mem::replace(check, fresh).finish()?;
                self.digest = Hashing::Done;
            }
            self.checked = true;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_what_passes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (out, d, n) = w.finish();
        assert_eq!(out, b"abc");
        assert_eq!(n, 3);
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(d, Digest::of(b"abc"));
        let err = "sha256:xyz".parse::<Digest>().unwrap_err().to_string();
        assert!(
            err.contains("\"sha256:xyz\" is not a sha256 digest"),
            "{err}"
        );
    }

    #[test]
    fn verifying_reader_refuses_other_bytes() {
        let read = |bytes: &[u8], size| {
            let mut r = VerifyingReader::new(bytes, Digest::of(b"abc"), size);
            let mut out = Vec::new();
            r.read_to_end(&mut out).map(|_| out)
        };
        assert_eq!(read(b"abc", 3).unwrap(), b"abc");
        assert!(
            read(b"abd", 3)
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
        let err = format!("{:#}", read(b"ab", 3).unwrap_err());
        assert!(
            err.contains("it ends after 2 bytes, and its descriptor says 3"),
            "{err}"
        );
        assert!(read(b"abcd", 3).unwrap_err().to_string().contains("larger"));
    }

    /// A stream that fails once, then ends, as a download that failed does.
    struct FailsThenEnds(bool);

    impl Read for FailsThenEnds {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            match std::mem::replace(&mut self.0, true) {
                false => Err(io::Error::other("the registry went away")),
                true => Ok(0),
            }
        }
    }

    #[test]
    fn a_stream_that_failed_is_not_called_short() {
        let mut r = VerifyingReader::new(FailsThenEnds(false), Digest::of(b"abc"), 3);
        let mut buf = [0u8; 8];
        let first = r.read(&mut buf).unwrap_err();
        assert_eq!(first.to_string(), "the registry went away");
        // Read again, as a reader looking for the blob's fault does: no verdict of a short
        // blob, which would hide the failure.
        let again = r.read(&mut buf).unwrap_err();
        assert!(again.downcast::<Error>().is_err(), "a verdict on the blob");
    }
}
