//! Telling whether cached data can be reused without reading all of it again.
//!
//! - A [`SealKey`] signs the records a cache keeps (what a layer compressed to, what a saved
//!   tree holds) with an HMAC under a key that never leaves the machine: a record that was
//!   damaged, edited or brought from elsewhere fails its seal and is rebuilt, never reused.
//! - A [`Stamp`] is what identifies a file's bytes without reading them: a file whose device,
//!   inode, size, mtime and ctime equal those recorded when its content was last checked
//!   against its digest has not been written since (any write moves its ctime).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The key that seals a cache's records.
#[derive(Clone)]
pub struct SealKey([u8; 32]);

impl SealKey {
    /// The key of these 32 bytes, such as a cache's seal key.
    pub fn new(key: [u8; 32]) -> SealKey {
        SealKey(key)
    }

    fn mac(&self, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key");
        mac.update(body);
        mac
    }

    /// `body` with its seal in front: a line of hex, then the body.
    pub fn seal(&self, body: &[u8]) -> Vec<u8> {
        let tag = hex::encode(self.mac(body).finalize().into_bytes());
        let mut out = Vec::with_capacity(tag.len() + 1 + body.len());
        out.extend_from_slice(tag.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(body);
        out
    }

    /// The body of a sealed record, if its seal is this key's over it.
    pub fn open<'a>(&self, sealed: &'a [u8]) -> Option<&'a [u8]> {
        let newline = sealed.iter().position(|b| *b == b'\n')?;
        let tag = hex::decode(&sealed[..newline]).ok()?;
        let body = &sealed[newline + 1..];
        self.mac(body).verify_slice(&tag).ok()?;
        Some(body)
    }
}

/// A regular file's identity and last change, as `stat` gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The stamp of the regular file at `path` (not followed if it is a link), if it is one.
    pub fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::symlink_metadata(path).ok()?;
        m.is_file().then(|| Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }

    /// The file's size.
    pub fn size(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_opens_only_whole_and_under_its_own_key() {
        let key = SealKey::new([7; 32]);
        let sealed = key.seal(b"{\"digest\":\"sha256:aa\"}");
        assert_eq!(key.open(&sealed), Some(&b"{\"digest\":\"sha256:aa\"}"[..]));
        let mut edited = sealed.clone();
        let last = edited.len() - 3;
        edited[last] = b'b';
        assert_eq!(key.open(&edited), None, "an edited body");
        assert_eq!(
            SealKey::new([8; 32]).open(&sealed),
            None,
            "another machine's key"
        );
        assert_eq!(key.open(b"{\"digest\":\"sha256:aa\"}"), None, "no seal");
        assert_eq!(key.open(b""), None);
    }

    #[test]
    fn a_write_changes_the_stamp_and_a_read_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"content").unwrap();
        let before = Stamp::of(&path).unwrap();
        assert_eq!(before.size(), 7);
        std::fs::read(&path).unwrap();
        assert_eq!(Stamp::of(&path), Some(before));
        // The same size and mtime, other bytes: the ctime still moves.
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, b"CONTENT").unwrap();
        let f = std::fs::File::options().write(true).open(&path).unwrap();
        f.set_modified(mtime).unwrap();
        assert_ne!(Stamp::of(&path), Some(before));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(Stamp::of(&link), None, "a link is not followed");
    }
}
