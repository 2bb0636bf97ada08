//! The staging area: file contents appended, as they stream out of a package or a layer,
//! to one open segment, which sealing ends (it is never written again), so that a finished
//! tree can be kept as a [`Snapshot`] and resumed.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bareboat_oci::layer::Kind;
use bareboat_oci::overlay::Limits;
use globset::GlobSet;
use md5::Md5;
use sha2::{Digest, Sha256};

use super::{ELSEWHERE, Node, NodeKind, Rootfs};
use crate::Error;
use crate::policy::Slicing;

impl Rootfs {
    /// A tree that goes on from a snapshot.
    pub fn resume(
        staging_parent: &Path,
        slicing: Slicing,
        keep_setuid: GlobSet,
        limits: Limits,
        Snapshot { layers, segments }: Snapshot,
    ) -> Result<Rootfs, Error> {
        let mut tree = Rootfs::new(staging_parent, slicing, keep_setuid, limits)?;
        tree.staged_len = segments.last().map_or(0, |s| s.start + s.len);
        tree.staging_start = tree.staged_len;
        tree.sealed = segments
            .into_iter()
            .map(|segment| Sealed {
                segment,
                _temp: None,
            })
            .collect();
        for (i, nodes) in layers.iter().enumerate() {
            tree.top.extend(nodes.keys().map(|p| (p.clone(), i)));
        }
        tree.layers = layers;
        Ok(tree)
    }

    /// Ends the open segment of the staging area: what was staged so far is never written
    /// again.
    pub fn seal(&mut self) -> Result<(), Error> {
        if self.staged_len == self.staging_start {
            return Ok(());
        }
        let next = new_staging(&self.staging_parent)?;
        let done = std::mem::replace(&mut self.staging, next);
        self.sealed.push(Sealed {
            segment: Segment {
                path: done.path().to_path_buf(),
                start: self.staging_start,
                len: self.staged_len - self.staging_start,
            },
            _temp: Some(done),
        });
        self.staging_start = self.staged_len;
        Ok(())
    }

    /// The tree as it stands: its layers and sealed segments. Seal it first, so that
    /// everything staged is in a segment.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            layers: self.layers.clone(),
            segments: self.sealed.iter().map(|s| s.segment.clone()).collect(),
        }
    }

    /// The file holding the staged content at `offset`, and where it is in that file; an
    /// error for content held [`ELSEWHERE`].
    pub(super) fn locate(&self, offset: u64) -> io::Result<(&Path, u64)> {
        if offset == ELSEWHERE {
            return Err(io::Error::other(
                "its content is held only in a layer blob of the shared cache, not here",
            ));
        }
        if offset >= self.staging_start {
            return Ok((self.staging.path(), offset - self.staging_start));
        }
        let i = self
            .sealed
            .partition_point(|s| s.segment.start <= offset)
            .saturating_sub(1);
        let s = &self.sealed[i].segment;
        Ok((&s.path, offset - s.start))
    }

    /// The layer entry kind that reads the content of the file at `path` of `kind`.
    pub(super) fn staged_content(&self, path: &str, kind: &NodeKind) -> Result<Kind, Error> {
        let NodeKind::File {
            offset,
            size,
            sha256,
            ..
        } = kind
        else {
            unreachable!("hard links point at files")
        };
        let (source, at) = self.locate(*offset).map_err(|_| Error::Elsewhere {
            path: path.to_string(),
        })?;
        Ok(Kind::File {
            source: source.to_path_buf(),
            offset: at,
            size: *size,
            sha256: *sha256,
        })
    }

    /// Appends `size` bytes of content to the staging area; with `with_md5`, also returns
    /// their MD5.
    pub(super) fn stage(
        &mut self,
        content: &mut impl Read,
        size: u64,
        with_md5: bool,
    ) -> io::Result<(NodeKind, Option<[u8; 16]>)> {
        let offset = self.staged_len;
        let mut md5 = with_md5.then(Md5::new);
        let result = self.append_staged(content, size, md5.as_mut());
        if result.is_err() {
            // Drop the partial content, so the next file starts where it should.
            self.staging
                .as_file()
                .set_len(offset - self.staging_start)?;
        }
        let sha256 = result?;
        self.staged_len += size;
        let kind = NodeKind::File {
            offset,
            size,
            sha256,
        };
        Ok((kind, md5.map(|m| m.finalize().into())))
    }

    pub(super) fn append_staged(
        &mut self,
        content: &mut impl Read,
        size: u64,
        mut md5: Option<&mut Md5>,
    ) -> io::Result<[u8; 32]> {
        let mut file = self.staging.as_file();
        file.seek(SeekFrom::Start(self.staged_len - self.staging_start))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let mut sha = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut written = 0u64;
        loop {
            let n = content.read(&mut buf)?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > size {
                return Err(io::Error::other(format!(
                    "more than the {size} bytes its header declares"
                )));
            }
            sha.update(&buf[..n]);
            if let Some(md5) = md5.as_mut() {
                md5.update(&buf[..n]);
            }
            out.write_all(&buf[..n])?;
        }
        out.flush()?;
        if written != size {
            return Err(io::Error::other(format!(
                "truncated: {written} of {size} bytes"
            )));
        }
        Ok(sha.finalize().into())
    }
}

/// A sealed part of the staging area: the file holding the contents staged at offsets
/// `start..start + len`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// The file.
    pub path: PathBuf,
    /// The staging offset of its first byte.
    pub start: u64,
    /// How many bytes it holds.
    pub len: u64,
}

/// What a tree resumes from: its layers' nodes and the sealed segments holding their
/// contents, from offset 0 without gaps.
pub struct Snapshot {
    /// Each layer's nodes by path, bottom first.
    pub layers: Vec<BTreeMap<String, Node>>,
    /// The sealed segments, in staging order.
    pub segments: Vec<Segment>,
}

/// A sealed segment, with the temporary file that removes it when the tree is dropped
/// (none for a segment the tree resumed from).
pub(super) struct Sealed {
    segment: Segment,
    _temp: Option<tempfile::NamedTempFile>,
}

pub(super) fn new_staging(parent: &Path) -> Result<tempfile::NamedTempFile, Error> {
    tempfile::Builder::new()
        .prefix("bareboat-staging-")
        .tempfile_in(parent)
        .map_err(|e| Error::Io {
            origin: parent.display().to_string(),
            error: e,
        })
}
