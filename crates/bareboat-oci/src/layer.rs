//! Deterministic layers.
//!
//! A layer's bytes depend only on its entries: they are written in the order given (the
//! caller sorts them), with numeric ids, no user or group names, no access or change times,
//! and mtimes clamped to `SOURCE_DATE_EPOCH` when it is set. Compression has fixed settings,
//! and parallel gzip cuts its input into fixed-size blocks, so the output does not depend
//! on the number of threads.
//!
//! That makes a layer's bytes a function of its identity (its entries, their contents'
//! SHA256 and the writer's settings), so a writer given a memo directory records what each
//! identity compressed to and reuses that blob instead of compressing again: from the layout
//! when it holds the blob already (rebuilding an image rewrites only the layers that
//! changed), else from the memo's own store of blobs, one machine wide, which a new layout
//! takes its copy from. A record is sealed ([`crate::seal`]); one that fails its seal is
//! reported and rebuilt. A blob is reused only when its stamp is the one recorded at its
//! last full check against its digest, or when it passes that check again; a damaged blob
//! is removed and written anew.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

use gzp::ZWriter;
use gzp::deflate::Gzip;
use gzp::par::compress::{ParCompress, ParCompressBuilder};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::digest::{Digest, HashingWriter};
use crate::layout::Layout;
use crate::media::Compression;
use crate::seal::{SealKey, Stamp};

/// What a layer entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file: `size` bytes at `offset` in `source`, read when the layer is written.
    /// `sha256` is the content's digest as the caller knows it; it names the content in the
    /// layer's identity.
    File {
        /// The file the content is read from.
        source: PathBuf,
        /// Where in it the content starts.
        offset: u64,
        /// The content's length in bytes.
        size: u64,
        /// The content's SHA256.
        sha256: [u8; 32],
    },
    /// A symbolic link to this target.
    Symlink(String),
    /// A hard link to an earlier entry of the same layer.
    Hardlink(String),
}

/// One entry of a layer: a path relative to the root, without a leading or trailing `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's path.
    pub path: String,
    /// What it is.
    pub kind: Kind,
    /// Its permission bits, with setuid, setgid and sticky (`0o7777` at most).
    pub mode: u32,
    /// Its owner's user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its modification time, in seconds since the epoch, before clamping.
    pub mtime: u64,
}

impl Entry {
    /// A root-owned directory.
    pub fn dir(path: &str, mode: u32, mtime: u64) -> Entry {
        Entry {
            path: path.to_string(),
            kind: Kind::Dir,
            mode,
            uid: 0,
            gid: 0,
            mtime,
        }
    }
}

/// The name of an opaque whiteout's marker.
const OPAQUE: &str = ".wh..wh..opq";

/// What a whiteout entry of an OCI layer deletes from the layers below it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Whiteout {
    /// `DIR/.wh.NAME`: the path `DIR/NAME` and everything under it.
    Path(String),
    /// `DIR/.wh..wh..opq`: everything under `DIR`, but not `DIR` itself.
    Opaque(String),
}

impl Whiteout {
    /// The whiteout an entry named `path` (relative to the root) is, if any.
    pub fn of(path: &str) -> Option<Whiteout> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if name == OPAQUE {
            return Some(Whiteout::Opaque(parent.to_string()));
        }
        let hidden = name.strip_prefix(".wh.")?;
        Some(Whiteout::Path(join(parent, hidden)))
    }

    /// The entry name that empties the directory `dir` (relative to the root).
    pub fn opaque_marker(dir: &str) -> String {
        join(dir, OPAQUE)
    }

    /// The entry name that deletes `path` (relative to the root).
    pub fn marker(path: &str) -> String {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        join(parent, &format!(".wh.{name}"))
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}

/// A written layer blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// The digest of the compressed bytes.
    pub digest: Digest,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    /// The size of the compressed bytes.
    pub size: u64,
    /// The size of the uncompressed tar.
    pub uncompressed_size: u64,
    /// The layer's media type, which names its compression.
    pub media_type: &'static str,
    /// The layer's time: its newest entry's mtime, after clamping.
    pub created: u64,
}

/// What a memo records of a written layer.
#[derive(Serialize, Deserialize)]
struct Recorded {
    digest: String,
    diff_id: String,
    size: u64,
    uncompressed_size: u64,
    created: u64,
    /// The layout blob's stamp when its content last matched `digest`.
    stamp: Option<Stamp>,
    /// The stamp of the memo's own copy of the blob when it last matched `digest`.
    #[serde(default)]
    kept: Option<Stamp>,
}

/// Where a writer records layers and keeps their blobs, and the key that seals the records.
struct Memo {
    dir: PathBuf,
    blobs: PathBuf,
    key: SealKey,
}

/// A kept blob's mtime is moved forward (so that pruning keeps it) once it is this old: not
/// on every use, since that changes its stamp and costs a full check.
const TOUCH_AFTER: std::time::Duration = std::time::Duration::from_secs(86400);

/// Writes layers with fixed settings.
pub struct LayerWriter {
    compression: Compression,
    source_date_epoch: Option<u64>,
    threads: usize,
    memo: Option<Memo>,
}

/// Compressed blocks are this large, whatever the number of threads.
const GZIP_BLOCK: usize = 1 << 20;

impl LayerWriter {
    /// A writer that compresses with `compression`, clamps mtimes to `source_date_epoch` when
    /// given, and uses every available thread.
    pub fn new(compression: Compression, source_date_epoch: Option<u64>) -> LayerWriter {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        LayerWriter {
            compression,
            source_date_epoch,
            threads,
            memo: None,
        }
    }

    /// Records each written layer in `dir`, sealed with `key`, and keeps its blob in
    /// `blobs`; a layer whose identity was written before is taken from the layout, or
    /// copied from `blobs`, instead of being compressed again.
    pub fn memo(mut self, dir: &Path, blobs: &Path, key: SealKey) -> LayerWriter {
        self.memo = Some(Memo {
            dir: dir.to_path_buf(),
            blobs: blobs.to_path_buf(),
            key,
        });
        self
    }

    /// Sets the number of compression threads (at least one); the output does not change.
    pub fn threads(mut self, threads: usize) -> LayerWriter {
        self.threads = threads.max(1);
        self
    }

    /// Writes `entries`, in order, as a compressed tar blob into `layout`, or finds that the
    /// layout holds it already.
    pub fn write(&self, layout: &Layout, entries: &[Entry]) -> Result<LayerBlob, Error> {
        let Some(memo) = &self.memo else {
            return self.compress(layout, entries);
        };
        let record = memo.dir.join(format!("{}.json", self.identity(entries)));
        if let Some(recorded) = self.open(memo, &record) {
            if let Some(blob) = self.recall(layout, memo, &record, &recorded)? {
                return Ok(blob);
            }
            if let Some(blob) = self.take_kept(layout, memo, &record, &recorded)? {
                return Ok(blob);
            }
        }
        let blob = self.compress(layout, entries)?;
        tracing::debug!(digest = %blob.digest, "compressed a layer");
        let kept = keep(memo, &layout.blob_path(&blob.digest), &blob.digest);
        let stamp = Stamp::of(&layout.blob_path(&blob.digest));
        remember(memo, &record, &blob, stamp, kept)?;
        Ok(blob)
    }

    /// The record at `record`, if it opens under the memo's key and describes a blob of
    /// this writer's compression; a damaged one is reported.
    fn open(&self, memo: &Memo, record: &Path) -> Option<Recorded> {
        let sealed = std::fs::read(record).ok()?;
        let recorded = memo
            .key
            .open(&sealed)
            .and_then(|body| serde_json::from_slice::<Recorded>(body).ok())
            .filter(|r| r.blob(self.compression).is_some());
        if recorded.is_none() {
            tracing::warn!(record = %record.display(), "a damaged layer record: compressing the layer again");
        }
        recorded
    }

    /// What a layer's bytes depend on besides its entries: the layer format (bareboat's
    /// version), the compression and its block size, and the clamp on mtimes.
    pub fn settings(&self) -> String {
        format!(
            "bareboat {} layer: {:?}, gzip blocks of {GZIP_BLOCK}, mtimes clamped to {:?}\n",
            env!("CARGO_PKG_VERSION"),
            self.compression,
            self.source_date_epoch
        )
    }

    /// Everything a layer's bytes depend on, hashed: the format, the settings, and each
    /// entry as it will be written.
    fn identity(&self, entries: &[Entry]) -> String {
        let mut h = Sha256::new();
        h.update(self.settings());
        let clamp = self.source_date_epoch.unwrap_or(u64::MAX);
        for e in entries {
            let kind = match &e.kind {
                Kind::Dir => "dir".to_string(),
                Kind::File { size, sha256, .. } => format!("file {size} {}", hex::encode(sha256)),
                Kind::Symlink(t) => format!("symlink {t}"),
                Kind::Hardlink(t) => format!("hardlink {t}"),
            };
            let (mode, uid, gid, mtime) = (e.mode, e.uid, e.gid, e.mtime.min(clamp));
            h.update(format!(
                "{}\0{kind}\0{mode:o} {uid} {gid} {mtime}\n",
                e.path
            ));
        }
        hex::encode(h.finalize())
    }

    /// The recorded blob, if the layout holds it whole: unchanged since its last check (its
    /// stamp), or checked against its digest now. A damaged blob is removed, to be written
    /// again. A reused record is touched, so pruning keeps it.
    fn recall(
        &self,
        layout: &Layout,
        memo: &Memo,
        record: &Path,
        recorded: &Recorded,
    ) -> Result<Option<LayerBlob>, Error> {
        let blob = recorded.blob(self.compression).expect("an opened record");
        let path = layout.blob_path(&blob.digest);
        let Some(stamp) = checked(&path, &blob, recorded.stamp)? else {
            return Ok(None);
        };
        refresh(memo, record, &blob, recorded, Some(stamp), recorded.kept)?;
        Ok(Some(blob))
    }

    /// The recorded blob copied into the layout from the memo's store, if the store holds it
    /// whole, checked as [`LayerWriter::recall`] checks a layout's. A kept blob older than
    /// [`TOUCH_AFTER`] is touched, so pruning keeps it, and its new stamp recorded.
    fn take_kept(
        &self,
        layout: &Layout,
        memo: &Memo,
        record: &Path,
        recorded: &Recorded,
    ) -> Result<Option<LayerBlob>, Error> {
        let blob = recorded.blob(self.compression).expect("an opened record");
        let kept = memo.blobs.join(blob.digest.hex());
        let Some(mut stamp) = checked(&kept, &blob, recorded.kept)? else {
            return Ok(None);
        };
        let old = std::fs::metadata(&kept)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().unwrap_or_default() > TOUCH_AFTER);
        if old && let Ok(f) = File::options().write(true).open(&kept) {
            let _ = f.set_modified(std::time::SystemTime::now());
            stamp = Stamp::of(&kept).unwrap_or(stamp);
        }
        layout.copy_blob_file(&kept, &blob.digest)?;
        tracing::debug!(digest = %blob.digest, "copied a layer an earlier build compressed");
        refresh(memo, record, &blob, recorded, recorded.stamp, Some(stamp))?;
        Ok(Some(blob))
    }

    fn compress(&self, layout: &Layout, entries: &[Entry]) -> Result<LayerBlob, Error> {
        let tmp = layout.temp_blob()?;
        let file = tmp.reopen().map_err(|e| Error::io(tmp.path(), e))?;
        let compressor = self.compressor(HashingWriter::new(BufWriter::new(file)))?;
        let mut tar = tar::Builder::new(HashingWriter::new(compressor));
        let clamp = self.source_date_epoch.unwrap_or(u64::MAX);
        let mut created = 0;
        for entry in entries {
            let mtime = entry.mtime.min(clamp);
            created = created.max(mtime);
            append(&mut tar, entry, mtime)?;
        }
        let (compressor, diff_id, uncompressed_size) = tar
            .into_inner()
            .map_err(|e| Error::io(tmp.path(), e))?
            .finish();
        let (mut file, digest, size) = compressor
            .finish()
            .map_err(|e| Error::io(tmp.path(), e))?
            .finish();
        file.flush().map_err(|e| Error::io(tmp.path(), e))?;
        layout.commit_blob(tmp, &digest)?;
        Ok(LayerBlob {
            digest,
            diff_id,
            size,
            uncompressed_size,
            media_type: self.compression.media_type(),
            created,
        })
    }

    fn compressor(&self, out: HashingWriter<BufWriter<File>>) -> Result<Compressor, Error> {
        Ok(match self.compression {
            Compression::None => Compressor::None(out),
            Compression::Gzip => {
                let z: ParCompress<Gzip, _> = ParCompressBuilder::new()
                    .num_threads(self.threads)
                    .and_then(|b| b.buffer_size(GZIP_BLOCK))
                    .map_err(|e| Error::Codec {
                        what: "the gzip compressor",
                        error: io::Error::other(e),
                    })?
                    .compression_level(flate2::Compression::new(6))
                    .from_writer(out);
                Compressor::Gzip(z)
            }
            Compression::Zstd => {
                let codec = |error| Error::Codec {
                    what: "the zstd compressor",
                    error,
                };
                let mut z = zstd::Encoder::new(out, 3).map_err(codec)?;
                // zstd's output is the same for any number of workers above zero.
                z.multithread(self.threads as u32).map_err(codec)?;
                Compressor::Zstd(z)
            }
        })
    }
}

impl Recorded {
    /// The layer this record describes.
    fn blob(&self, compression: Compression) -> Option<LayerBlob> {
        Some(LayerBlob {
            digest: self.digest.parse().ok()?,
            diff_id: self.diff_id.parse().ok()?,
            size: self.size,
            uncompressed_size: self.uncompressed_size,
            media_type: compression.media_type(),
            created: self.created,
        })
    }
}

/// The stamp of the blob file at `path` if it holds `blob` whole: unchanged since it last
/// matched (`recorded`), or matching its digest now. A file that does not match is removed.
fn checked(path: &Path, blob: &LayerBlob, recorded: Option<Stamp>) -> Result<Option<Stamp>, Error> {
    let Some(stamp) = Stamp::of(path).filter(|s| s.size() == blob.size) else {
        return Ok(None);
    };
    if recorded != Some(stamp) && !blob_matches(path, &blob.digest)? {
        tracing::warn!(blob = %path.display(), "a layer blob does not match its digest: writing it again");
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
        return Ok(None);
    }
    Ok(Some(stamp))
}

/// Puts the layout's new blob at `path` into the memo's store, as a hard link (a copy across
/// filesystems), and returns the kept blob's stamp; a failure only costs later builds a
/// compression, so it is reported, not returned.
fn keep(memo: &Memo, path: &Path, digest: &Digest) -> Option<Stamp> {
    let kept = memo.blobs.join(digest.hex());
    let linked =
        std::fs::create_dir_all(&memo.blobs).and_then(|()| crate::blob::link_or_copy(path, &kept));
    if let Err(e) = linked {
        tracing::debug!(blob = %kept.display(), "could not keep a layer blob for other layouts: {e}");
        return None;
    }
    Stamp::of(&kept)
}

/// Whether the file at `path` is a regular file whose content has `digest`.
fn blob_matches(path: &Path, digest: &Digest) -> Result<bool, Error> {
    let mut file = crate::blob::open_regular(path).map_err(|e| Error::io(path, e))?;
    let mut hashing = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hashing).map_err(|e| Error::io(path, e))?;
    Ok(hashing.finish().1 == *digest)
}

/// Records the blobs' new stamps if either changed, else touches the record, so that pruning
/// keeps it.
fn refresh(
    memo: &Memo,
    record: &Path,
    blob: &LayerBlob,
    recorded: &Recorded,
    stamp: Option<Stamp>,
    kept: Option<Stamp>,
) -> Result<(), Error> {
    if (stamp, kept) != (recorded.stamp, recorded.kept) {
        return remember(memo, record, blob, stamp, kept);
    }
    if let Ok(f) = File::options().write(true).open(record) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    Ok(())
}

/// Records what an identity's layer compressed to, with the blob's stamp when it was last
/// seen to match its digest.
fn remember(
    memo: &Memo,
    record: &Path,
    blob: &LayerBlob,
    stamp: Option<Stamp>,
    kept: Option<Stamp>,
) -> Result<(), Error> {
    let recorded = Recorded {
        digest: blob.digest.to_string(),
        diff_id: blob.diff_id.to_string(),
        size: blob.size,
        uncompressed_size: blob.uncompressed_size,
        created: blob.created,
        stamp,
        kept,
    };
    let json = serde_json::to_vec(&recorded).expect("a record serializes");
    crate::layout::write_atomic(record, &memo.key.seal(&json))
}

type BlobFile = HashingWriter<BufWriter<File>>;

enum Compressor {
    None(BlobFile),
    Gzip(ParCompress<'static, Gzip, BlobFile>),
    Zstd(zstd::Encoder<'static, BlobFile>),
}

impl Compressor {
    /// Ends the stream and hands back the blob file.
    fn finish(self) -> io::Result<BlobFile> {
        match self {
            Compressor::None(f) => Ok(f),
            Compressor::Gzip(mut z) => z.finish().map_err(io::Error::other),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl Write for Compressor {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(f) => f.write(buf),
            Compressor::Gzip(z) => z.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(f) => f.flush(),
            Compressor::Gzip(z) => z.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

fn append<W: Write>(tar: &mut tar::Builder<W>, entry: &Entry, mtime: u64) -> Result<(), Error> {
    let bad = |e: io::Error| Error::BadEntry {
        path: entry.path.clone(),
        reason: e.to_string(),
    };
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode & 0o7777);
    header.set_uid(entry.uid.into());
    header.set_gid(entry.gid.into());
    header.set_mtime(mtime);
    match &entry.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, format!("{}/", entry.path), io::empty())
                .map_err(bad)
        }
        Kind::File {
            source,
            offset,
            size,
            ..
        } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(*size);
            let mut file = File::open(source).map_err(|e| Error::io(source, e))?;
            // A staged file cut short since would corrupt the archive.
            let actual = file.metadata().map_err(|e| Error::io(source, e))?.len();
            if actual < offset + size {
                return Err(Error::BadEntry {
                    path: entry.path.clone(),
                    reason: format!("staged content is shorter than its {size} bytes"),
                });
            }
            file.seek(io::SeekFrom::Start(*offset))
                .map_err(|e| Error::io(source, e))?;
            tar.append_data(&mut header, &entry.path, file.take(*size))
                .map_err(bad)
        }
        Kind::Symlink(target) | Kind::Hardlink(target) => {
            let kind = if matches!(entry.kind, Kind::Symlink(_)) {
                tar::EntryType::Symlink
            } else {
                tar::EntryType::Link
            };
            header.set_entry_type(kind);
            header.set_size(0);
            tar.append_link(&mut header, &entry.path, target)
                .map_err(bad)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &std::path::Path) -> Vec<Entry> {
        let data = dir.join("data");
        // Several gzip blocks, so parallel compression has work to split.
        let content: Vec<u8> = (0..400_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        std::fs::write(&data, &content).unwrap();
        vec![
            Entry::dir("etc", 0o755, 100),
            Entry {
                path: "etc/data".into(),
                kind: Kind::File {
                    source: data,
                    offset: 0,
                    size: content.len() as u64,
                    sha256: Sha256::digest(&content).into(),
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                mtime: 300,
            },
            Entry {
                path: "etc/link".into(),
                kind: Kind::Symlink("data".into()),
                mode: 0o777,
                uid: 0,
                gid: 0,
                mtime: 200,
            },
        ]
    }

    fn write(threads: usize, compression: Compression, sde: Option<u64>) -> (LayerBlob, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("layout")).unwrap();
        let blob = LayerWriter::new(compression, sde)
            .threads(threads)
            .write(&layout, &entries(dir.path()))
            .unwrap();
        let bytes = std::fs::read(layout.blob_path(&blob.digest)).unwrap();
        (blob, bytes)
    }

    #[test]
    fn bytes_do_not_depend_on_threads_or_place() {
        for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let (one, bytes) = write(1, compression, None);
            let (four, _) = write(4, compression, None);
            assert_eq!(one, four, "{compression:?}");
            assert_eq!(Digest::of(&bytes), one.digest);
            assert_eq!(one.size, bytes.len() as u64);
            // An uncompressed layer is its own tar stream.
            assert_eq!(
                compression == Compression::None,
                one.digest == one.diff_id,
                "{compression:?}"
            );
        }
    }

    #[test]
    fn diff_id_is_the_uncompressed_tar_and_headers_are_plain() {
        let (blob, bytes) = write(2, Compression::Gzip, None);
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut tar)
            .unwrap();
        assert_eq!(Digest::of(&tar), blob.diff_id);
        assert_eq!(blob.uncompressed_size, tar.len() as u64);
        let mut archive = tar::Archive::new(&tar[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.username().unwrap(), Some(""));
            assert!(
                h.as_gnu().unwrap().atime.iter().all(|b| *b == 0),
                "no atime"
            );
            seen.push((e.path().unwrap().display().to_string(), h.mtime().unwrap()));
        }
        assert_eq!(
            seen,
            [
                ("etc/".into(), 100),
                ("etc/data".into(), 300),
                ("etc/link".into(), 200)
            ]
        );
        assert_eq!(blob.created, 300, "the layer's time is its newest file");
    }

    #[test]
    fn source_date_epoch_clamps_each_mtime() {
        let (blob, bytes) = write(2, Compression::Gzip, Some(150));
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut tar)
            .unwrap();
        let times: Vec<u64> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().header().mtime().unwrap())
            .collect();
        assert_eq!(times, [100, 150, 150]);
        assert_eq!(blob.created, 150);
    }

    #[test]
    fn memo_reuses_a_layout_blob_only_for_the_same_identity() {
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("memo");
        std::fs::create_dir(&memo).unwrap();
        let layout = Layout::create(&dir.path().join("layout")).unwrap();
        let key = SealKey::new([1; 32]);
        let kept = dir.path().join("kept");
        let writer = LayerWriter::new(Compression::Gzip, None).memo(&memo, &kept, key.clone());
        let entries = entries(dir.path());
        let first = writer.write(&layout, &entries).unwrap();

        // With the content gone, only a memo hit can produce the layer.
        std::fs::remove_file(dir.path().join("data")).unwrap();
        assert_eq!(writer.write(&layout, &entries).unwrap(), first);

        // Another layout gets its own copy of the kept blob.
        let other = Layout::create(&dir.path().join("other")).unwrap();
        assert_eq!(writer.write(&other, &entries).unwrap(), first);
        let copied = other.blob_path(&first.digest);
        assert!(blob_matches(&copied, &first.digest).unwrap());
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        assert_ne!(inode(&copied), inode(&kept.join(first.digest.hex())));

        // Not reused, the layer is compressed again, which needs the content that is gone.
        let compressed = |result: Result<_, Error>| {
            let e = result.unwrap_err();
            assert!(
                matches!(&e, Error::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound)
                    && e.to_string().contains("data"),
                "{e}"
            );
        };
        // Without the kept blob, a third layout needs the layer compressed again.
        std::fs::remove_file(kept.join(first.digest.hex())).unwrap();
        let third = Layout::create(&dir.path().join("third")).unwrap();
        compressed(writer.write(&third, &entries));

        // Any change to an entry is another identity.
        let mut changed = entries.clone();
        changed[1].mode = 0o600;
        compressed(writer.write(&layout, &changed));
        let mut changed = entries.clone();
        changed[2].kind = Kind::Symlink("elsewhere".into());
        compressed(writer.write(&layout, &changed));

        // A clamp that changes mtimes is another identity too.
        let clamped = LayerWriter::new(Compression::Gzip, Some(150)).memo(&memo, &kept, key);
        compressed(clamped.write(&layout, &entries));
    }

    #[test]
    fn a_damaged_record_or_blob_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("memo");
        std::fs::create_dir(&memo).unwrap();
        let layout = Layout::create(&dir.path().join("layout")).unwrap();
        let kept = dir.path().join("kept");
        let writer =
            LayerWriter::new(Compression::Gzip, None).memo(&memo, &kept, SealKey::new([1; 32]));
        let entries = entries(dir.path());
        let first = writer.write(&layout, &entries).unwrap();
        let mut other_entries = entries.clone();
        other_entries[1].mode = 0o600;
        let other = writer.write(&layout, &other_entries).unwrap();
        let record = std::fs::read_dir(&memo)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                let text = std::fs::read_to_string(p).unwrap();
                text.contains(&first.digest.to_string())
            })
            .unwrap();

        // A record edited to name another blob of the layout (with its size) is refused.
        let text = std::fs::read_to_string(&record).unwrap();
        let edited = text
            .replace(&first.digest.to_string(), &other.digest.to_string())
            .replace(
                &format!("\"size\":{},", first.size),
                &format!("\"size\":{},", other.size),
            );
        std::fs::write(&record, edited).unwrap();
        assert_eq!(writer.write(&layout, &entries).unwrap(), first);

        // A blob of the right size with other bytes is written again, not reused.
        let path = layout.blob_path(&first.digest);
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(writer.write(&layout, &entries).unwrap(), first);
        assert!(blob_matches(&path, &first.digest).unwrap());
        // A record sealed under another key opens under none but its own.
        let stranger =
            LayerWriter::new(Compression::Gzip, None).memo(&memo, &kept, SealKey::new([2; 32]));
        std::fs::remove_file(dir.path().join("data")).unwrap();
        // Not reused: compressing needs the content, which is gone.
        let e = stranger.write(&layout, &entries).unwrap_err();
        assert!(
            matches!(&e, Error::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound),
            "{e}"
        );
    }

    #[test]
    fn a_kept_blob_is_copied_only_whole_and_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let memo = dir.path().join("memo");
        std::fs::create_dir(&memo).unwrap();
        let kept = dir.path().join("kept");
        let writer =
            LayerWriter::new(Compression::Gzip, None).memo(&memo, &kept, SealKey::new([1; 32]));
        let entries = entries(dir.path());
        let first = writer
            .write(&Layout::create(&dir.path().join("a")).unwrap(), &entries)
            .unwrap();
        let kept_blob = kept.join(first.digest.hex());

        // Other bytes of the same size: removed, and the layer compressed again.
        let mut bytes = std::fs::read(&kept_blob).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::remove_file(&kept_blob).unwrap();
        std::fs::write(&kept_blob, &bytes).unwrap();
        let b = Layout::create(&dir.path().join("b")).unwrap();
        assert_eq!(writer.write(&b, &entries).unwrap(), first);
        assert!(blob_matches(&b.blob_path(&first.digest), &first.digest).unwrap());
        assert!(
            blob_matches(&kept_blob, &first.digest).unwrap(),
            "kept anew"
        );

        // A file of another size in the blob's place is not taken, and a layer written
        // afresh replaces it.
        std::fs::remove_file(&kept_blob).unwrap();
        std::fs::write(&kept_blob, b"short").unwrap();
        let d = Layout::create(&dir.path().join("d")).unwrap();
        assert_eq!(writer.write(&d, &entries).unwrap(), first);
        assert!(blob_matches(&kept_blob, &first.digest).unwrap(), "replaced");

        // A link in the blob's place, even to the right bytes, is not taken: without the
        // content, the layer cannot be made.
        let elsewhere = dir.path().join("elsewhere");
        std::fs::rename(&kept_blob, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &kept_blob).unwrap();
        std::fs::remove_file(dir.path().join("data")).unwrap();
        let c = Layout::create(&dir.path().join("c")).unwrap();
        let e = writer.write(&c, &entries).unwrap_err();
        assert!(e.to_string().contains("data"), "{e}");
        assert!(!c.has_blob(&first.digest));
    }

    #[test]
    fn whiteouts_name_what_they_delete() {
        assert_eq!(
            Whiteout::of("a/b/.wh.c"),
            Some(Whiteout::Path("a/b/c".into()))
        );
        assert_eq!(Whiteout::of(".wh.top"), Some(Whiteout::Path("top".into())));
        assert_eq!(
            Whiteout::of("a/.wh..wh..opq"),
            Some(Whiteout::Opaque("a".into()))
        );
        assert_eq!(Whiteout::of("a/b.wh.c"), None);
        assert_eq!(
            Whiteout::marker("etc/nsswitch.conf"),
            "etc/.wh.nsswitch.conf"
        );
        assert_eq!(Whiteout::marker("top"), ".wh.top");
    }
}
