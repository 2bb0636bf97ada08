//! Reading blobs that anyone may have put there.
//!
//! A layout, or an archive unpacked into one, may have been made to trick its reader: a
//! blob that is a symbolic link to a host file, a FIFO that blocks the reader, a blob with
//! other content than its digest, or a config whose `rootfs.diff_ids` do not describe its
//! layers (so that a runtime's snapshot cache, keyed by diff_id, serves other content).
//! Every blob is therefore opened here, and only here:
//!
//! - without following a symbolic link, and only if it is a regular file (a FIFO is
//!   refused before it can block: the open does not wait for a writer);
//! - read no further than its descriptor's size, and checked against that size and its
//!   digest as it streams: the stream fails at its end unless both match;
//! - for a layer of an image, also checked against the diff_id the image's config gives
//!   it. A reader of the layer's content ([`LayerReader`]) hashes the uncompressed stream
//!   it reads; a copier ([`BlobReader`]) decompresses on the side as it copies.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use oci_spec::image::Descriptor;
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::digest::{Digest, DigestCheck, HashingWriter, VerifyingReader};
use crate::media::{Compression, Kind};

/// A layer of an image: its descriptor, and the diff_id its image's config gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    /// The layer's descriptor, as the manifest gives it.
    pub descriptor: Descriptor,
    /// The digest of its uncompressed content, as the config gives it.
    pub diff_id: Digest,
}

/// A blob an image reaches, and for a layer the diff_id it must also match.
#[derive(Clone, Debug, PartialEq)]
pub struct Blob {
    /// The blob's descriptor.
    pub descriptor: Descriptor,
    /// For a layer, the digest its uncompressed content must also have.
    pub diff_id: Option<Digest>,
}

impl Blob {
    /// A blob checked against its descriptor alone: a document, a config, an artifact.
    pub fn of(descriptor: &Descriptor) -> Blob {
        Blob {
            descriptor: descriptor.clone(),
            diff_id: None,
        }
    }
}

impl From<&Layer> for Blob {
    fn from(layer: &Layer) -> Blob {
        Blob {
            descriptor: layer.descriptor.clone(),
            diff_id: Some(layer.diff_id.clone()),
        }
    }
}

/// Opens `path` for reading, refusing a symbolic link and anything but a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    open_no_follow(path, OpenOptions::new().read(true))
}

/// Puts the regular file `src` at `dest`, in place of whatever is there, as a hard link or,
/// where linking fails (across filesystems), as a copy; either is made beside `dest` under a
/// temporary name and renamed into place, so `dest` is never something else half-way.
pub(crate) fn link_or_copy(src: &Path, dest: &Path) -> io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)?
        .into_temp_path();
    std::fs::remove_file(&name)?;
    match std::fs::hard_link(src, &name) {
        Ok(()) => name.persist(dest).map_err(|e| e.error),
        Err(_) => copy_into(src, dest),
    }
}

/// Copies the regular file `src` (refused if it is a link) to `dest` through a temporary
/// file beside it, so that `dest` appears whole or not at all.
fn copy_into(src: &Path, dest: &Path) -> io::Result<()> {
    let mut from = open_regular(src)?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    io::copy(&mut from, tmp.as_file_mut())?;
    tmp.persist(dest).map_err(|e| e.error)?;
    Ok(())
}

/// Opens (creating) a lock file at `path`, never through a symbolic link and never
/// truncating what is there.
pub(crate) fn open_lock(path: &Path) -> io::Result<File> {
    open_no_follow(path, OpenOptions::new().read(true).write(true).create(true))
}

fn open_no_follow(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    // O_NONBLOCK, so that opening a FIFO does not wait for a writer and it can be refused.
    // It stays set: it has no effect on a regular file, the only kind kept.
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a symbolic link, which bareboat never follows here: refused",
                )
            } else {
                e
            }
        })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {}, not a regular file: refused", kind_name(kind)),
        ));
    }
    Ok(file)
}

fn kind_name(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// A blob's bytes as stored, checked against its size and digest (and, for a layer,
/// its diff_id) as they stream: the read that reaches the end fails unless all match.
pub struct BlobReader {
    raw: Raw,
    side: Option<SideCheck>,
}

/// A blob's stored bytes, wherever a source keeps them (a file, an archive member, a
/// registry's response), read no further than its descriptor's size.
type Raw = VerifyingReader<io::Take<Box<dyn Read + Send>>>;

/// The stored bytes of the blob `d` describes, checked as they stream.
fn raw(stored: Box<dyn Read + Send>, d: &Descriptor) -> Result<Raw, Error> {
    let digest = digest_of(d)?;
    Ok(VerifyingReader::new(
        stored.take(d.size()),
        digest,
        d.size(),
    ))
}

fn digest_of(d: &Descriptor) -> Result<Digest, Error> {
    Digest::named(d.digest().as_ref())
}

/// `stored`, the bytes of the blob `blob` describes, as a [`BlobReader`].
pub(crate) fn verified(stored: Box<dyn Read + Send>, blob: &Blob) -> Result<BlobReader, Error> {
    let raw = raw(stored, &blob.descriptor)?;
    let side = match &blob.diff_id {
        Some(diff_id) => Some(SideCheck::new(&blob.descriptor, diff_id)?),
        None => None,
    };
    Ok(BlobReader { raw, side })
}

/// The blob file at `path`, which must be a regular file of the descriptor's size.
pub(crate) fn stored_file(path: &Path, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
    let refused = |reason: String| Error::Blob {
        digest: d.digest().to_string(),
        reason,
    };
    let file = open_regular(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidInput => refused(format!("{}: {e}", path.display())),
        _ => Error::io(path, e),
    })?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    check_stored_size(d, len, &path.display().to_string())?;
    Ok(Box::new(file))
}

/// Refuses a blob whose store says it holds `len` bytes where its descriptor says otherwise;
/// `place` says where it is stored.
pub(crate) fn check_stored_size(d: &Descriptor, len: u64, place: &str) -> Result<(), Error> {
    if len == d.size() {
        return Ok(());
    }
    Err(Error::Blob {
        digest: d.digest().to_string(),
        reason: format!(
            "{place}: it is {len} bytes, and its descriptor says {}: it does not match its descriptor",
            d.size()
        ),
    })
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.raw.read(buf)?;
        if n > 0 {
            if let Some(side) = &mut self.side {
                side.feed(&buf[..n]);
            }
        } else if !buf.is_empty()
            && let Some(side) = self.side.take()
        {
            // The end, and the raw stream matched its digest: the layer is whole.
            side.finish()?;
        }
        Ok(n)
    }
}

/// How a layer's blob is compressed, by its media type; a blob of another kind is no layer
/// whose diff_id could be checked.
fn compression_of(d: &Descriptor) -> Result<Compression, Error> {
    match Kind::of(d.media_type().as_ref()) {
        Kind::Layer(compression) => Ok(compression),
        _ => Err(Error::Image {
            what: format!("layer {}", d.digest()),
            reason: format!(
                "its media type {} is not a tar, gzip or zstd layer, so its diff_id cannot be checked",
                d.media_type()
            ),
        }),
    }
}

/// The diff_id check of a layer that is copied as it is stored: what passes is
/// decompressed into a hash on the side.
struct SideCheck {
    inflater: Inflater,
    /// Why decompressing failed. It is reported only once the blob has matched its
    /// digest: damage to the blob breaks decompression first, and is told as damage.
    failed: Option<io::Error>,
    layer: String,
    diff_id: Digest,
}

enum Inflater {
    None(HashingWriter<io::Sink>),
    Gzip(Box<flate2::write::MultiGzDecoder<HashingWriter<io::Sink>>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, HashingWriter<io::Sink>>>),
}

impl SideCheck {
    fn new(d: &Descriptor, diff_id: &Digest) -> Result<SideCheck, Error> {
        let hashing = HashingWriter::new(io::sink());
        let inflater = match compression_of(d)? {
            Compression::None => Inflater::None(hashing),
            Compression::Gzip => {
                Inflater::Gzip(Box::new(flate2::write::MultiGzDecoder::new(hashing)))
            }
            Compression::Zstd => Inflater::Zstd(Box::new(
                zstd::stream::write::Decoder::new(hashing).map_err(|error| Error::Codec {
                    what: "a zstd decoder",
                    error,
                })?,
            )),
        };
        Ok(SideCheck {
            inflater,
            failed: None,
            layer: d.digest().to_string(),
            diff_id: diff_id.clone(),
        })
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none()
            && let Err(e) = self.inflater.write_all(bytes)
        {
            self.failed = Some(e);
        }
    }

    fn finish(self) -> io::Result<()> {
        let SideCheck {
            inflater,
            failed,
            layer,
            diff_id,
        } = self;
        let finished = match failed {
            Some(e) => Err(e),
            None => match inflater {
                Inflater::None(w) => Ok(w),
                Inflater::Gzip(w) => w.finish(),
                Inflater::Zstd(mut w) => w.flush().map(|()| w.into_inner()),
            },
        };
        let hashing = finished.map_err(|e| {
            io::Error::other(Error::Image {
                what: format!("layer {layer}"),
                reason: format!("it does not decompress: {e}"),
            })
        })?;
        let (_, actual, _) = hashing.finish();
        check_diff_id(&layer, &actual, &diff_id)
    }
}

impl Write for Inflater {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Inflater::None(w) => w.write(buf),
            Inflater::Gzip(w) => w.write(buf),
            Inflater::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Inflater::None(w) => w.flush(),
            Inflater::Gzip(w) => w.flush(),
            Inflater::Zstd(w) => w.flush(),
        }
    }
}

fn check_diff_id(layer: &str, actual: &Digest, expected: &Digest) -> io::Result<()> {
    if actual == expected {
        return Ok(());
    }
    Err(io::Error::other(Error::Image {
        what: format!("layer {layer}"),
        reason: format!(
            "its uncompressed content has diff_id {actual}, and the image's config says {expected}"
        ),
    }))
}

/// A layer's uncompressed tar stream, checked as it is read: the read that reaches the end
/// fails unless the blob matched its size and digest and the stream its diff_id.
pub struct LayerReader {
    decoder: Decoder,
    /// The diff_id's hasher, unless a reader of its output hashes it ([`Ahead`]).
    hasher: Option<Sha256>,
    layer: String,
    diff_id: Digest,
    checked: bool,
}

enum Decoder {
    None(Box<BufReader<Raw>>),
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<Raw>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Raw>>>),
}

/// `stored`, the bytes of the blob `layer` describes, as its uncompressed content.
pub(crate) fn layer_of(stored: Box<dyn Read + Send>, layer: &Layer) -> Result<LayerReader, Error> {
    let d = &layer.descriptor;
    let compression = compression_of(d)?;
    let raw = BufReader::new(raw(stored, d)?);
    let decoder = match compression {
        Compression::None => Decoder::None(Box::new(raw)),
        Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(raw))),
        Compression::Zstd => Decoder::Zstd(Box::new(
            zstd::stream::read::Decoder::with_buffer(raw).map_err(|error| Error::Codec {
                what: "a zstd decoder",
                error,
            })?,
        )),
    };
    Ok(LayerReader {
        decoder,
        hasher: Some(Sha256::new()),
        layer: d.digest().to_string(),
        diff_id: layer.diff_id.clone(),
        checked: false,
    })
}

impl LayerReader {
    /// The stored bytes below the decompressor.
    fn raw(&mut self) -> &mut BufReader<Raw> {
        match &mut self.decoder {
            Decoder::None(r) => r,
            Decoder::Gzip(r) => r.get_mut(),
            Decoder::Zstd(r) => r.get_mut(),
        }
    }

    /// What is wrong with the stored blob, for a reader of the layer that failed: the rest
    /// of the blob is read, so that its size and digest are checked. A damaged blob usually
    /// breaks decompression or the tar stream first, and this names the real fault; `None`
    /// when the blob is what its descriptor says.
    pub fn damage(&mut self) -> Option<Error> {
        let drained = io::copy(self.raw(), &mut io::sink());
        drained.err()?.downcast::<Error>().ok()
    }
}

/// How far [`LayerReader::ahead`] decodes ahead of its reader: this many chunks of
/// [`AHEAD_CHUNK`] bytes, waiting in its channel.
const AHEAD_CHUNKS: usize = 4;

/// The size of a chunk of decoded layer passed from the decoding thread.
const AHEAD_CHUNK: usize = 256 << 10;

impl LayerReader {
    /// The layer decoded on a thread of its own: decompressing runs on one core while the
    /// caller hashes the stored bytes and the diff_id and parses and hashes the tar stream
    /// on another (decompressing is the longer work, so all hashing is on the caller's
    /// side). The thread is at most about [`AHEAD_CHUNKS`] chunks ahead, so memory stays
    /// bounded however much the layer decompresses to.
    pub fn ahead(self) -> Ahead {
        self.ahead_by(AHEAD_CHUNKS * AHEAD_CHUNK)
    }

    /// The layer decoded on a thread of its own as [`ahead`](LayerReader::ahead) decodes
    /// it, up to about `bytes` (decoded and stored) ahead of its reader before the reader
    /// begins: a layer started before its reader is ready for it gets that far meanwhile.
    /// From then on it gets no further ahead than it is, so what waited is freed as the
    /// reader catches up, down to what [`ahead`](LayerReader::ahead) keeps.
    pub fn ahead_by(mut self, bytes: usize) -> Ahead {
        let stored = self.raw().get_mut().hash_elsewhere();
        let diff_id = DiffId {
            hasher: self.hasher.take().unwrap_or_default(),
            layer: self.layer.clone(),
            expected: self.diff_id.clone(),
        };
        let (send, chunks) = std::sync::mpsc::channel();
        // Every chunk comes back once read, with the stored bytes of a later one, to be
        // filled again: a fresh buffer would be zeroed or grown, and faulted in page by page,
        // on the thread that bounds the whole read. What comes back is also what lets the
        // decoder go on.
        let (recycle, recycled) = std::sync::mpsc::channel::<(Vec<u8>, Vec<u8>)>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let decoder = std::thread::spawn(move || {
            // The bytes of each message sent and not yet back (decoded and stored), oldest
            // first, and how many may be: `bytes` until the reader begins, then no more
            // than were out when a chunk last came back, plus what
            // [`ahead`](LayerReader::ahead) keeps.
            let (mut out, mut out_bytes) = (std::collections::VecDeque::new(), 0);
            let mut budget = bytes.max(AHEAD_CHUNKS * AHEAD_CHUNK);
            while !stopped.load(Ordering::Relaxed) {
                let mut buffers = None;
                loop {
                    let full = out_bytes >= budget;
                    let back = match full {
                        true => recycled.recv().ok(),
                        false => recycled.try_recv().ok(),
                    };
                    let Some(pair) = back else {
                        // A reader that has gone away wants no more.
                        if full {
                            return self;
                        }
                        break;
                    };
                    out_bytes -= out.pop_front().unwrap_or(0);
                    budget = budget
                        .min(out_bytes + AHEAD_CHUNKS * AHEAD_CHUNK)
                        .max(AHEAD_CHUNKS * AHEAD_CHUNK);
                    buffers = Some(pair);
                }
                let (mut chunk, spare) = buffers.unwrap_or_default();
                chunk.resize(AHEAD_CHUNK, 0);
                // On a failure the stored bytes read stay with the reader, which
                // [`Ahead::into_inner`] gives back to be asked what is wrong.
                let filled = fill(&mut self, &mut chunk);
                let stored = || self.raw().get_mut().take_unhashed(spare);
                let message = match filled {
                    // The end, after the blob's size was checked, said as such: a channel
                    // that closes without it is a decoder that stopped short.
                    Ok(0) => Chunk::End { stored: stored() },
                    Ok(n) => {
                        chunk.truncate(n);
                        Chunk::Bytes {
                            decoded: chunk,
                            stored: stored(),
                        }
                    }
                    Err(e) => Chunk::Failed(e),
                };
                let size = match &message {
                    Chunk::Bytes { decoded, stored } => decoded.len() + stored.len(),
                    _ => 0,
                };
                let last = !matches!(message, Chunk::Bytes { .. });
                if send.send(message).is_err() || last {
                    break;
                }
                out.push_back(size);
                out_bytes += size;
            }
            self
        });
        Ahead {
            chunks: Some(chunks),
            stop,
            recycle: Some(recycle),
            current: Vec::new(),
            at: 0,
            ended: None,
            decoder: Some(decoder),
            given_back: None,
            stored,
            diff_id: Some(diff_id),
        }
    }
}

/// The diff_id of a layer being read through [`Ahead`], hashed as its chunks arrive.
struct DiffId {
    hasher: Sha256,
    layer: String,
    expected: Digest,
}

/// What the decoding thread of [`Ahead`] sends: the bytes it decoded and the stored bytes
/// it read for them, then the stored bytes it read to reach the end.
enum Chunk {
    Bytes { decoded: Vec<u8>, stored: Vec<u8> },
    End { stored: Vec<u8> },
    Failed(io::Error),
}

/// Reads into `buf` until it is full or the reader ends; how much was read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A layer being decoded ahead of its reader ([`LayerReader::ahead`]).
pub struct Ahead {
    chunks: Option<std::sync::mpsc::Receiver<Chunk>>,
    /// Set to stop the decoder at its next chunk.
    stop: Arc<AtomicBool>,
    /// Where read chunks go back to the decoder.
    recycle: Option<std::sync::mpsc::Sender<(Vec<u8>, Vec<u8>)>>,
    current: Vec<u8>,
    at: usize,
    /// How the layer ended, once it has: `Ok` at its end, else the failure, given again to
    /// every later read.
    ended: Option<Result<(), (io::ErrorKind, String)>>,
    decoder: Option<std::thread::JoinHandle<LayerReader>>,
    /// The decoder's reader, once a failure has taken it back.
    given_back: Option<LayerReader>,
    /// The blob's digest and the layer's diff_id, checked at the end.
    stored: Option<DigestCheck>,
    diff_id: Option<DiffId>,
}

impl Ahead {
    /// Stops decoding and gives the layer's reader back, to ask it what is wrong with the
    /// blob ([`LayerReader::damage`]). A decoder that panicked panics here.
    pub fn into_inner(mut self) -> LayerReader {
        match self.given_back.take() {
            Some(reader) => reader,
            None => self.stop_decoder(),
        }
    }

    /// Stops the decoder and takes its reader back, with the digest's check and every
    /// stored byte read so far in it.
    fn stop_decoder(&mut self) -> LayerReader {
        self.stop.store(true, Ordering::Relaxed);
        // A decoder waiting for a chunk back gets none, and stops.
        self.recycle = None;
        // What the decoder sent before it stopped was read from the blob: its digest takes
        // those bytes before the reader hashes the rest itself.
        if let Some(chunks) = self.chunks.take() {
            for chunk in chunks {
                if let Chunk::Bytes { stored, .. } | Chunk::End { stored } = chunk {
                    self.hash_stored(stored);
                }
            }
        }
        let decoder = self.decoder.take().expect("the decoding thread");
        let mut reader = decoder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        if let Some(check) = self.stored.take() {
            reader.raw().get_mut().hash_here(check);
        }
        reader
    }

    /// Hashes stored bytes the decoder sent, giving them back for reuse.
    fn hash_stored(&mut self, stored: Vec<u8>) -> Vec<u8> {
        if let Some(check) = &mut self.stored {
            check.update(&stored);
        }
        stored
    }

    /// The next chunk from the decoder, or how the layer ends; a failure is returned as the
    /// decoder gave it the first time.
    fn next_chunk(&mut self) -> io::Result<()> {
        let next = self.chunks.as_ref().and_then(|c| c.recv().ok());
        match next {
            Some(Chunk::Bytes { decoded, stored }) => {
                let stored = self.hash_stored(stored);
                if let Some(d) = &mut self.diff_id {
                    d.hasher.update(&decoded);
                }
                let done = std::mem::replace(&mut self.current, decoded);
                self.at = 0;
                // A decoder that has ended takes none back.
                if let Some(recycle) = &self.recycle {
                    let _ = recycle.send((done, stored));
                }
            }
            Some(Chunk::End { stored }) => {
                // The blob's own damage is told before its content's. A blob that fails
                // keeps its check, so that the reader given back names the damage.
                self.hash_stored(stored);
                if let Some(Err(e)) = self.stored.clone().map(DigestCheck::finish) {
                    self.ended = Some(Err((e.kind(), e.to_string())));
                    return Err(e);
                }
                self.stored = None;
                let d = self.diff_id.take().expect("one end");
                let actual = Digest::from_hasher(d.hasher);
                if let Err(e) = check_diff_id(&d.layer, &actual, &d.expected) {
                    self.ended = Some(Err((e.kind(), e.to_string())));
                    return Err(e);
                }
                self.ended = Some(Ok(()));
            }
            Some(Chunk::Failed(e)) => {
                // Damage to the blob usually breaks its decoding first: it is told as what
                // it is, from the rest of the stored bytes (never decoded).
                let mut reader = self.stop_decoder();
                let e = reader.damage().map_or(e, io::Error::other);
                self.given_back = Some(reader);
                self.ended = Some(Err((e.kind(), e.to_string())));
                return Err(e);
            }
            None => {
                // Closed without an end: the decoder panicked, which is raised here.
                if let Some(decoder) = self.decoder.take()
                    && let Err(panic) = decoder.join()
                {
                    std::panic::resume_unwind(panic);
                }
                let stopped = "the layer's decoder stopped before its end".to_string();
                self.ended = Some(Err((io::ErrorKind::Other, stopped)));
            }
        }
        Ok(())
    }
}

impl Read for Ahead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.current.len() {
            match &self.ended {
                Some(Ok(())) => return Ok(0),
                Some(Err((kind, message))) => return Err(io::Error::new(*kind, message.clone())),
                None => self.next_chunk()?,
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.recycle = None;
        self.chunks = None;
        if let Some(decoder) = self.decoder.take() {
            let _ = decoder.join();
        }
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.decoder {
            Decoder::None(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        if n == 0 && !buf.is_empty() && !self.checked {
            // A decompressor may stop at the end of its stream: what follows is read too,
            // so the blob's digest covers every byte stored.
            io::copy(self.raw(), &mut io::sink())?;
            if let Some(hasher) = self.hasher.take() {
                let actual = Digest::from_hasher(hasher);
                check_diff_id(&self.layer, &actual, &self.diff_id)?;
            }
            self.checked = true;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    fn descriptor(media_type: MediaType, bytes: &[u8]) -> Descriptor {
        Descriptor::new(
            media_type,
            bytes.len() as u64,
            oci_spec::image::Digest::try_from(Digest::of(bytes).to_string()).unwrap(),
        )
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// What copying and reading `stored` as a layer of `media_type` with `diff_id` say.
    fn copy_and_read(
        dir: &Path,
        media_type: MediaType,
        stored: &[u8],
        diff_id: &Digest,
    ) -> [Result<Vec<u8>, String>; 3] {
        let path = dir.join("blob");
        std::fs::write(&path, stored).unwrap();
        let layer = Layer {
            descriptor: descriptor(media_type, stored),
            diff_id: diff_id.clone(),
        };
        let read_all = |mut r: Box<dyn Read>| {
            let mut out = Vec::new();
            r.read_to_end(&mut out)
                .map(|_| out)
                .map_err(|e| e.to_string())
        };
        [
            stored_file(&path, &layer.descriptor)
                .and_then(|stored| verified(stored, &(&layer).into()))
                .map_err(|e| e.to_string())
                .and_then(|r| read_all(Box::new(r))),
            stored_file(&path, &layer.descriptor)
                .and_then(|stored| layer_of(stored, &layer))
                .map_err(|e| e.to_string())
                .and_then(|r| read_all(Box::new(r))),
            // The same, decoded ahead on a thread of its own.
            stored_file(&path, &layer.descriptor)
                .and_then(|stored| layer_of(stored, &layer))
                .map_err(|e| e.to_string())
                .and_then(|r| read_all(Box::new(r.ahead()))),
        ]
    }

    #[test]
    fn a_layer_that_breaks_its_decompressor_is_named_by_what_is_wrong_with_its_blob() {
        let dir = tempfile::tempdir().unwrap();
        let tar = noise_text(200_000);
        let good = gzip(&tar);
        let layer = Layer {
            descriptor: descriptor(MediaType::ImageLayerGzip, &good),
            diff_id: Digest::of(&tar),
        };
        // The stored blob differs from the one described: a byte in the middle flipped.
        let mut bad = good.clone();
        bad[good.len() / 2] ^= 0xff;
        let path = dir.path().join("blob");
        std::fs::write(&path, &bad).unwrap();
        let mut reader = layer_of(stored_file(&path, &layer.descriptor).unwrap(), &layer).unwrap();
        let read = io::copy(&mut reader, &mut io::sink());
        let err = format!("{:#}", read.unwrap_err());
        assert!(
            err.contains("its content does not match its digest"),
            "{err}"
        );
        let damage = reader.damage().expect("the blob is damaged").to_string();
        assert!(damage.contains("does not match its digest"), "{damage}");
        // Decoded ahead: the same error, and the reader given back says the same.
        let reader = layer_of(stored_file(&path, &layer.descriptor).unwrap(), &layer).unwrap();
        let mut ahead = reader.ahead();
        let err = format!("{:#}", io::copy(&mut ahead, &mut io::sink()).unwrap_err());
        assert!(
            err.contains("its content does not match its digest"),
            "{err}"
        );
        // Read again, it fails again, rather than seem to end.
        let again = ahead.read(&mut [0; 16]).unwrap_err().to_string();
        assert!(
            again.contains("its content does not match its digest"),
            "{again}"
        );
        let damage = ahead.into_inner().damage().expect("the blob is damaged");
        assert!(damage.to_string().contains("does not match its digest"));

        // A whole gzip stream that is not the blob described: it decodes to its end, to
        // the content the diff_id names, and its end names the blob's damage, ahead or not.
        // Short, it is decoded to its end before it is read; long, it is not.
        for count in [200_000, 3 << 20] {
            let tar = noise_text(count);
            let stored = gzip(&tar);
            std::fs::write(&path, &stored).unwrap();
            let elsewhere = Layer {
                descriptor: Descriptor::new(
                    MediaType::ImageLayerGzip,
                    stored.len() as u64,
                    oci_spec::image::Digest::try_from(Digest::of(b"another").to_string()).unwrap(),
                ),
                diff_id: Digest::of(&tar),
            };
            let open = || {
                layer_of(
                    stored_file(&path, &elsewhere.descriptor).unwrap(),
                    &elsewhere,
                )
            };
            let mut plain = open().unwrap();
            let mut ahead = open().unwrap().ahead();
            for reader in [&mut plain as &mut dyn Read, &mut ahead] {
                let err = format!("{:#}", io::copy(reader, &mut io::sink()).unwrap_err());
                assert!(
                    err.contains("its content does not match its digest"),
                    "{err}"
                );
            }
            let damage = ahead.into_inner().damage().expect("the blob is damaged");
            assert!(damage.to_string().contains("does not match its digest"));
            // And a reader given back before its reader reached the end says the same.
            let mut ahead = open().unwrap().ahead();
            let _ = ahead.read_exact(&mut [0; 1000]);
            let damage = ahead.into_inner().damage().expect("the blob is damaged");
            assert!(damage.to_string().contains("does not match its digest"));
        }

        // A blob that is what it says has no damage, whatever its reader thought of it.
        std::fs::write(&path, &good).unwrap();
        let mut reader = layer_of(stored_file(&path, &layer.descriptor).unwrap(), &layer).unwrap();
        reader.read_exact(&mut [0; 100]).unwrap();
        assert!(reader.damage().is_none());
    }

    /// Text that compresses, but not to nothing, so that a flipped byte breaks it.
    fn noise_text(count: usize) -> Vec<u8> {
        (0..count).map(|i| b'a' + ((i * 7919) % 26) as u8).collect()
    }

    #[test]
    fn layers_are_checked_against_their_diff_id_when_copied_and_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let tar = b"pretend this is a tar stream".repeat(100);
        let compressed = [
            (MediaType::ImageLayerGzip, gzip(&tar)),
            (
                MediaType::ImageLayerZstd,
                zstd::encode_all(&tar[..], 3).unwrap(),
            ),
            (MediaType::ImageLayer, tar.clone()),
        ];
        for (media_type, stored) in compressed {
            let [copied, read, ahead] =
                copy_and_read(dir.path(), media_type.clone(), &stored, &Digest::of(&tar));
            assert_eq!(copied.unwrap(), stored, "{media_type}");
            assert_eq!(read.unwrap(), tar, "{media_type}");
            assert_eq!(ahead.unwrap(), tar, "{media_type}");

            let wrong = Digest::of(b"other");
            for result in copy_and_read(dir.path(), media_type.clone(), &stored, &wrong) {
                let e = result.unwrap_err();
                assert!(
                    e.contains(&format!(
                        "has diff_id {}, and the image's config says {wrong}",
                        Digest::of(&tar)
                    )),
                    "{media_type}: {e}"
                );
            }
        }
        // A damaged blob breaks decompression first, but is told as damage.
        let stored = gzip(&tar);
        let layer = Layer {
            descriptor: descriptor(MediaType::ImageLayerGzip, &stored),
            diff_id: Digest::of(&tar),
        };
        let mut damaged = stored.clone();
        damaged[20] ^= 1;
        let path = dir.path().join("damaged");
        std::fs::write(&path, damaged).unwrap();
        let e = stored_file(&path, &layer.descriptor)
            .and_then(|stored| verified(stored, &(&layer).into()))
            .and_then(|mut r| {
                io::copy(&mut r, &mut io::sink()).map_err(|e| Error::from_stream(&path, e))
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("its content does not match its digest"), "{e}");

        let [copied, _, _] = copy_and_read(
            dir.path(),
            MediaType::Other("application/x-secret".into()),
            b"x",
            &Digest::of(b"x"),
        );
        assert!(
            copied
                .unwrap_err()
                .contains("is not a tar, gzip or zstd layer")
        );
    }

    #[test]
    fn only_regular_files_of_the_described_size_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"host secret").unwrap();
        let d = descriptor(MediaType::ImageConfig, b"host secret");
        let read = |path: &Path| {
            let mut out = Vec::new();
            stored_file(path, &d)
                .and_then(|stored| verified(stored, &Blob::of(&d)))
                .and_then(|mut r| {
                    r.read_to_end(&mut out)
                        .map_err(|e| Error::from_stream(path, e))
                })
                .map(|_| out)
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(&secret).unwrap(), b"host secret");

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.unwrap().success());
        let longer = dir.path().join("longer");
        std::fs::write(&longer, b"host secret and more").unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"host SECRET").unwrap();
        for (path, expected) in [
            (
                &link,
                "is a symbolic link, which bareboat never follows here",
            ),
            (&fifo, "is a FIFO, not a regular file"),
            (
                &dir.path().to_path_buf(),
                "is a directory, not a regular file",
            ),
            (&longer, "it is 20 bytes, and its descriptor says 11"),
            (&other, "its content does not match its digest"),
        ] {
            let e = read(path).unwrap_err();
            assert!(
                e.starts_with(&format!("blob {}: ", d.digest())) && e.contains(expected),
                "{}: {e}",
                path.display()
            );
            assert!(!e.contains("host"), "{e}");
        }

        // A lock file is created, or opened as it is, but never through a link.
        let lock = dir.path().join("lock");
        open_lock(&lock).unwrap();
        std::fs::write(&lock, b"kept").unwrap();
        open_lock(&lock).unwrap();
        assert_eq!(std::fs::read(&lock).unwrap(), b"kept");
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("made"), &dangling).unwrap();
        for refused in [&link, &dangling] {
            let err = format!("{:#}", open_lock(refused).unwrap_err());
            assert!(
                err.contains("a symbolic link, which bareboat never follows"),
                "{err}"
            );
        }
        assert!(!dir.path().join("made").exists());
        assert_eq!(std::fs::read(&secret).unwrap(), b"host secret");
    }
}
