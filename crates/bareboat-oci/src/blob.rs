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

use oci_spec::image::Descriptor;
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::media::{Compression, Kind};

mod ahead;

pub use ahead::Ahead;

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

/// How many stored bytes a layer's reader asks its source for at a time: fewer, larger
/// reads than `BufReader`'s default 8 KiB make a layer decode about 8% faster.
pub const STORED_READ: usize = 64 << 10;

/// `stored`, the bytes of the blob `layer` describes, as its uncompressed content.
pub(crate) fn layer_of(stored: Box<dyn Read + Send>, layer: &Layer) -> Result<LayerReader, Error> {
    let d = &layer.descriptor;
    let compression = compression_of(d)?;
    let raw = BufReader::with_capacity(STORED_READ, raw(stored, d)?);
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
    ) -> [Result<Vec<u8>, String>; 4] {
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
            // The same, decoded ahead on a thread of its own, a little or far (in huge
            // chunks).
            stored_file(&path, &layer.descriptor)
                .and_then(|stored| layer_of(stored, &layer))
                .map_err(|e| e.to_string())
                .and_then(|r| read_all(Box::new(r.ahead()))),
            stored_file(&path, &layer.descriptor)
                .and_then(|stored| layer_of(stored, &layer))
                .map_err(|e| e.to_string())
                .and_then(|r| read_all(Box::new(r.ahead_by(64 << 20)))),
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
            let err = format!("{:#}", io::copy(&mut plain, &mut io::sink()).unwrap_err());
            assert!(
                err.contains("its content does not match its digest"),
                "{err}"
            );
            // Decoded ahead a little, or far in huge chunks.
            for room in [None, Some(64 << 20)] {
                let ahead = |r: LayerReader| match room {
                    Some(bytes) => r.ahead_by(bytes),
                    None => r.ahead(),
                };
                let mut reader = ahead(open().unwrap());
                let err = format!("{:#}", io::copy(&mut reader, &mut io::sink()).unwrap_err());
                assert!(
                    err.contains("its content does not match its digest"),
                    "{room:?}: {err}"
                );
                let damage = reader.into_inner().damage().expect("the blob is damaged");
                assert!(damage.to_string().contains("does not match its digest"));
                // And a reader given back before its reader reached the end says the same.
                let mut reader = ahead(open().unwrap());
                let _ = reader.read_exact(&mut [0; 1000]);
                let damage = reader.into_inner().damage().expect("the blob is damaged");
                assert!(damage.to_string().contains("does not match its digest"));
            }
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
            let [copied, read, ahead, far] =
                copy_and_read(dir.path(), media_type.clone(), &stored, &Digest::of(&tar));
            assert_eq!(copied.unwrap(), stored, "{media_type}");
            assert_eq!(read.unwrap(), tar, "{media_type}");
            assert_eq!(ahead.unwrap(), tar, "{media_type}");
            assert_eq!(far.unwrap(), tar, "{media_type}");

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

        let [copied, ..] = copy_and_read(
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
