//! Decoding a layer on a thread of its own, ahead of its reader ([`LayerReader::ahead`]).

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use super::{LayerReader, check_diff_id};
use crate::digest::{Digest, DigestCheck};

/// How far [`LayerReader::ahead`] decodes ahead of its reader: this many chunks of
/// [`AHEAD_CHUNK`] bytes, waiting in its channel.
const AHEAD_CHUNKS: usize = 4;

/// The size of a chunk of decoded layer passed from the decoding thread.
const AHEAD_CHUNK: usize = 256 << 10;

/// The size of a chunk of a decoder given room to get far ahead
/// ([`ahead_by`](LayerReader::ahead_by)): one huge page.
const HUGE_CHUNK: usize = 2 << 20;

/// Memory for a chunk of decoded bytes, mapped on its own. A mapping of [`HUGE_CHUNK`]
/// bytes is one huge page's size, which Linux aligns to one, and the kernel is asked to
/// back it with one: a decoder filling tens of megabytes of fresh memory while its reader
/// is busy elsewhere would otherwise spend a third of its time faulting in 4 KiB pages.
struct Block {
    map: memmap2::MmapMut,
    /// How much of it is filled.
    len: usize,
}

impl Block {
    fn new(size: usize) -> io::Result<Block> {
        let map = memmap2::MmapMut::map_anon(size)?;
        if size == HUGE_CHUNK {
            // Only advice: without huge pages, the block is faulted in page by page.
            let _ = map.advise(memmap2::Advice::HugePage);
        }
        Ok(Block { map, len: 0 })
    }

    fn filled(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl LayerReader {
    /// The layer decoded on a thread of its own: decompressing runs on one core while the
    /// caller hashes the stored bytes and the diff_id and parses and hashes the tar stream
    /// on another (decompressing is the longer work, so all hashing is on the caller's
    /// side). The thread is at most about `AHEAD_CHUNKS` chunks ahead, so memory stays
    /// bounded however much the layer decompresses to.
    pub fn ahead(self) -> Ahead {
        self.ahead_by(AHEAD_CHUNKS * AHEAD_CHUNK)
    }

    /// The layer decoded on a thread of its own as [`ahead`](LayerReader::ahead) decodes
    /// it, up to about `bytes` (decoded and stored) ahead of its reader before the reader
    /// begins: a layer started before its reader is ready for it gets that far meanwhile.
    /// From then on it gets no further ahead than it is, so what waited is freed as the
    /// reader catches up, down to `AHEAD_CHUNKS` chunks. Given more room than
    /// [`ahead`](LayerReader::ahead), it decodes in chunks of one huge page (`HUGE_CHUNK`).
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
        let (recycle, recycled) = std::sync::mpsc::channel::<(Option<Block>, Vec<u8>)>();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let decoder = std::thread::spawn(move || {
            // The bytes of each message sent and not yet back (decoded and stored), oldest
            // first, and how many may be: `bytes` until the reader begins, then no more
            // than were out when a chunk last came back, plus `AHEAD_CHUNKS` chunks.
            let (mut out, mut out_bytes) = (std::collections::VecDeque::new(), 0);
            let chunk = match bytes > AHEAD_CHUNKS * AHEAD_CHUNK {
                true => HUGE_CHUNK,
                false => AHEAD_CHUNK,
            };
            let kept = AHEAD_CHUNKS * chunk;
            let mut budget = bytes.max(kept);
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
                    budget = budget.min(out_bytes + kept).max(kept);
                    buffers = Some(pair);
                }
                let (block, spare) = buffers.unwrap_or_default();
                // On a failure the stored bytes read stay with the reader, which
                // [`Ahead::into_inner`] gives back to be asked what is wrong.
                let block = block.map_or_else(|| Block::new(chunk), Ok);
                let filled = block.and_then(|mut block| {
                    block.len = fill(&mut self, &mut block.map)?;
                    Ok(block)
                });
                let stored = || self.raw().get_mut().take_unhashed(spare);
                let message = match filled {
                    // The end, after the blob's size was checked, said as such: a channel
                    // that closes without it is a decoder that stopped short.
                    Ok(block) if block.len == 0 => Chunk::End { stored: stored() },
                    Ok(block) => Chunk::Bytes {
                        decoded: block,
                        stored: stored(),
                    },
                    Err(e) => Chunk::Failed(e),
                };
                let size = match &message {
                    Chunk::Bytes { decoded, stored } => decoded.len + stored.len(),
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
            current: None,
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
    Bytes { decoded: Block, stored: Vec<u8> },
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
    /// Where read chunks go back to the decoder, each with the stored-bytes buffer of a
    /// later one (the first, sent before any chunk was read, with none).
    recycle: Option<std::sync::mpsc::Sender<(Option<Block>, Vec<u8>)>>,
    current: Option<Block>,
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

    /// What is left to read of the current chunk.
    fn unread(&self) -> &[u8] {
        self.current
            .as_ref()
            .map_or(&[], |b| &b.filled()[self.at..])
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
                    d.hasher.update(decoded.filled());
                }
                let done = self.current.replace(decoded);
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
        while self.unread().is_empty() {
            match &self.ended {
                Some(Ok(())) => return Ok(0),
                Some(Err((kind, message))) => return Err(io::Error::new(*kind, message.clone())),
                None => self.next_chunk()?,
            }
        }
        let left = self.unread();
        let n = buf.len().min(left.len());
        buf[..n].copy_from_slice(&left[..n]);
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
