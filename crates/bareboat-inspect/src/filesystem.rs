//! An image's filesystem, read from its layers once each, as a stream.
//!
//! Each layer is decompressed, checked against its digest as it is read, and walked entry
//! by entry; nothing is written to disk and no link is followed out of the image, so a
//! hostile layer can at worst be refused. The layers stack as an overlay filesystem stacks
//! them: a later entry replaces an earlier one, `.wh.NAME` deletes NAME and `.wh..wh..opq`
//! empties its directory. What a later layer replaces or deletes still costs its bytes in
//! the earlier layer: that is the waste the report shows.
//!
//! The layers stack in [`bareboat_oci::stack`], as every reader of an image stacks them: an
//! entry whose parent is a symlink of the image (`x/sh` under `x -> usr/bin`) lands where
//! a runtime unpacking the layer puts it, `usr/bin/sh`, so an audit of the literal path
//! would not miss what runtimes run. What inspect notes besides (contents, waste, secrets,
//! metadata, redirects) are the stack's [`Hooks`]. A caller that needs file contents has
//! them kept on disk, within a budget ([`read_keeping`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read};

use bareboat_oci::blob::{Ahead, Layer, LayerReader};
use bareboat_oci::overlay::{self, Entry, Refusal};
use bareboat_oci::source::BlobSource;
use bareboat_oci::stack::{self, Filled, Hooks, How, Stack, Store};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::{Error, secrets};

pub use bareboat_oci::overlay::Kind;
pub use bareboat_oci::stack::Node;

/// Bytes a layer carries that the finished image does not show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waste {
    /// The path in the layer that carries it.
    pub path: String,
    /// That layer.
    pub layer: usize,
    /// The bytes it costs.
    pub size: u64,
    /// The layer that replaced or deleted it.
    pub by_layer: usize,
    /// `overwritten` or `deleted`.
    pub how: &'static str,
}

/// One layer, as read.
#[derive(Clone, Debug, Serialize)]
pub struct LayerRead {
    /// Its blob's digest.
    pub digest: String,
    /// Its media type, which says how it is compressed.
    pub media_type: String,
    /// Its blob's size.
    pub size: u64,
    /// Its tar stream's size.
    pub uncompressed_size: u64,
    /// How many tar entries it holds, whiteouts included.
    pub entries: u64,
    /// The bytes of its regular files.
    pub file_bytes: u64,
    /// The layer (counted from 0) where the manifest lists the same blob again, which was
    /// read in this one's place: the image's files are the same without this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listed_again_as: Option<usize>,
}

impl LayerRead {
    /// A layer not read, because the manifest lists its blob again as layer `above`.
    fn listed_again(layer: &Layer, above: usize) -> LayerRead {
        let d = &layer.descriptor;
        LayerRead {
            digest: d.digest().to_string(),
            media_type: d.media_type().to_string(),
            size: d.size(),
            uncompressed_size: 0,
            entries: 0,
            file_bytes: 0,
            listed_again_as: Some(above),
        }
    }
}

/// A regular file of one layer.
#[derive(Clone, Debug)]
pub struct Content {
    /// The layer, counted from 0 at the bottom.
    pub layer: usize,
    /// Where the file lands in the image.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Its content's SHA256, unless it is in the layer read last and no other layer has a
    /// file of its size: only then can no other layer repeat it, and it is not hashed.
    pub sha256: Option<[u8; 32]>,
}

/// One entry of a directory listing.
#[derive(Debug, Serialize)]
pub struct TreeEntry<'a> {
    /// Its absolute path in the image.
    pub path: String,
    /// What it is.
    pub node: &'a Node,
}

/// The filesystem an image's layers stack to.
#[derive(Debug, Default)]
pub struct Filesystem {
    /// Each layer as read, bottom first.
    pub layers: Vec<LayerRead>,
    /// Every path of the finished image, with the node that shows.
    pub view: Stack,
    /// The files later layers overwrite or delete, in the order they do.
    pub waste: Vec<Waste>,
    /// Every regular file of every layer, shown or not.
    pub contents: Vec<Content>,
    /// The metadata files the finished image shows (see [`metadata_limit`]), by path.
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// The bytes `metadata` holds.
    metadata_bytes: u64,
    /// Files of any layer that hold a secret, shown or not: a deleted key still ships.
    pub secrets: Vec<Secret>,
    /// Entries, whiteouts included, that a layer writes through a symlinked parent.
    pub redirects: Vec<Redirect>,
    /// The paths of regular files the layer being read has written, with their records in
    /// `contents` and `waste`: a layer that writes one path a million times keeps one
    /// record of each, not a million.
    written_here: HashMap<String, Written>,
    /// Whether the layer being read hashes every regular file: all but the last do, as a
    /// layer above may repeat their content.
    hash_every_file: bool,
    /// The sizes of the regular files read so far, in the layers that hash every file.
    sizes_below: HashSet<u64>,
    /// The caps it is read within.
    limits: Limits,
}

/// What the layer being read has recorded of one path it wrote.
#[derive(Debug, Default)]
struct Written {
    /// Its entry in `contents`.
    content: Option<usize>,
    /// Its entry in `waste`, once the layer wrote the path again.
    waste: Option<usize>,
    /// Its entry in `secrets`, if what it held at this path was a secret.
    secret: Option<usize>,
    /// Whether its entry at this path (as the layer names it) is in `redirects`.
    redirected: bool,
}

/// An entry written through a symlinked parent, and where it lands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Redirect {
    /// The layer that writes it.
    pub layer: usize,
    /// The entry's path as the layer names it.
    pub path: String,
    /// Where a runtime writes it, and where the view has it.
    pub landed: String,
}

/// A file that holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Secret {
    /// The layer that carries it.
    pub layer: usize,
    /// Where the file lands in the image.
    pub path: String,
    /// What kind of secret it holds, as [`secrets::kind`] names it.
    pub kind: &'static str,
}

/// Caps that keep a hostile image from exhausting memory.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The caps on each layer the overlay engine reads.
    pub layer: overlay::Limits,
    /// The largest package database file kept in memory.
    pub max_database: u64,
    /// The most path components that following symlinks to its entries' parents may walk
    /// in one layer. A runtime follows up to [`stack::MAX_LINK_HOPS`] links for each entry, and a
    /// link's target may be long, so without a budget a small layer could cost billions of
    /// steps.
    pub max_link_steps: u64,
    /// The most bytes of metadata (package databases, os-release, copyright files) kept
    /// in memory for all layers together.
    pub max_metadata: u64,
    /// The most bytes all the layers read may decompress to, together.
    pub max_unpacked: u64,
    /// The most a layer may decompress to per byte of its blob, once past `ratio_after`
    /// bytes: ordinary layers stay far below it, and a decompression bomb far above (zstd
    /// makes 10 GiB of zeros out of 330 kB).
    pub max_ratio: u64,
    /// The bytes a layer may decompress to before `max_ratio` applies.
    pub ratio_after: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            layer: overlay::Limits::IMAGE,
            max_database: bareboat_apt::dpkg::MAX_DATABASE,
            max_link_steps: stack::MAX_LINK_STEPS,
            max_metadata: 128 << 20,
            max_unpacked: 64 << 30,
            max_ratio: 250,
            ratio_after: 256 << 20,
        }
    }
}

/// Whether a path is a package database that [`crate::packages`] reads: dpkg's (see
/// [`bareboat_apt::dpkg::is_database`]), or apk's `installed`.
pub fn is_database(path: &str) -> bool {
    bareboat_apt::dpkg::is_database(path) || path == APK_INSTALLED
}

/// apk's database of installed packages.
pub const APK_INSTALLED: &str = "lib/apk/db/installed";

/// The largest a metadata file at `path` may be for the reader to keep it, or `None` for a
/// path that is not metadata: package databases, `os-release`, and packages' copyright
/// files (for their licences).
pub fn metadata_limit(path: &str, limits: &Limits) -> Option<u64> {
    if is_database(path) {
        return Some(limits.max_database);
    }
    let os_release = path == "etc/os-release" || path == "usr/lib/os-release";
    let copyright = path
        .strip_prefix("usr/share/doc/")
        .and_then(|p| p.strip_suffix("/copyright"))
        .is_some_and(|name| !name.contains('/'));
    (os_release || copyright).then_some(1 << 20)
}

/// How far the largest layer may decode ahead while the layers below it are read: the
/// memory it may take meanwhile, freed as its reader catches up.
const EARLY_BYTES: usize = 64 << 20;

/// Reads `layers` of `source`, bottom first, each checked against its digest and diff_id.
pub fn read(
    source: &dyn BlobSource,
    layers: &[Layer],
    limits: Limits,
) -> Result<Filesystem, Error> {
    read_into(Stack::new(), source, layers, limits)
}

/// Reads `layers` as [`read`] does, and keeps the content of every regular file the finished
/// image shows in `store`, within its budget: for a reader of whole images. [`Stack::read`]
/// and [`Stack::open`] give them back.
pub fn read_keeping(
    source: &dyn BlobSource,
    layers: &[Layer],
    limits: Limits,
    store: Store,
) -> Result<Kept, Error> {
    read_into(Stack::keeping(store), source, layers, limits).map(Kept)
}

/// An image's filesystem with the content of its files kept ([`read_keeping`]).
#[derive(Debug)]
pub struct Kept(pub Filesystem);

impl std::ops::Deref for Kept {
    type Target = Filesystem;

    fn deref(&self) -> &Filesystem {
        &self.0
    }
}

fn read_into(
    view: Stack,
    source: &dyn BlobSource,
    layers: &[Layer],
    limits: Limits,
) -> Result<Filesystem, Error> {
    let mut fs = Filesystem {
        view: view.with_link_steps(limits.max_link_steps),
        limits,
        ..Filesystem::default()
    };
    let mut unpacked = 0;
    let again = overlay::listed_again(
        &layers
            .iter()
            .map(|l| l.descriptor.digest())
            .collect::<Vec<_>>(),
    );
    // The largest layer starts decoding at once, on a thread of its own, while the layers
    // below it are read: a gzip member decodes only in order, so it is the floor of the
    // whole read, and the layers below are read in its shadow.
    let largest = (0..layers.len())
        .filter(|&i| again[i].is_none())
        .max_by_key(|&i| layers[i].descriptor.size())
        .filter(|&i| i > 0);
    let mut early = match largest {
        Some(i) => Some(source.open_layer(&layers[i])?.ahead_by(EARLY_BYTES)),
        None => None,
    };
    let spare_core = std::thread::available_parallelism().is_ok_and(|n| n.get() > 2);
    for (i, layer) in layers.iter().enumerate() {
        if let Some(above) = again[i] {
            fs.layers.push(LayerRead::listed_again(layer, above));
            continue;
        }
        fs.hash_every_file = i + 1 < layers.len();
        // With two cores, the largest layer's decoder and this thread take both: a layer
        // below it is decoded here, not on a third thread that would slow the one that
        // bounds the whole read.
        let mut reader = match early.take_if(|_| Some(i) == largest) {
            Some(reader) => Decoding::Ahead(Box::new(reader)),
            None if early.is_some() && !spare_core => Decoding::Here(source.open_layer(layer)?),
            None => Decoding::Ahead(Box::new(source.open_layer(layer)?.ahead())),
        };
        let read = fs.read_layer(reader.stream(), i, layer, &mut unpacked);
        let read = read.map_err(|e| reader.damage().map_or(e, Error::from))?;
        fs.layers.push(read);
    }
    // A layer not read has the figures of the same blob where it was.
    for (i, above) in again.iter().enumerate() {
        if let Some(above) = *above {
            let read = &fs.layers[above];
            let (size, entries, bytes) = (read.uncompressed_size, read.entries, read.file_bytes);
            let lower = &mut fs.layers[i];
            (lower.uncompressed_size, lower.entries, lower.file_bytes) = (size, entries, bytes);
        }
    }
    Ok(fs)
}

/// A layer's uncompressed stream, decoded on the thread that reads it or ahead of it.
enum Decoding {
    Here(LayerReader),
    Ahead(Box<Ahead>),
}

impl Decoding {
    fn stream(&mut self) -> &mut dyn Read {
        match self {
            Decoding::Here(reader) => reader,
            Decoding::Ahead(reader) => reader.as_mut(),
        }
    }

    /// What is wrong with the stored blob, for a read that failed.
    fn damage(self) -> Option<bareboat_oci::Error> {
        match self {
            Decoding::Here(mut reader) => reader.damage(),
            Decoding::Ahead(reader) => reader.into_inner().damage(),
        }
    }
}

impl Filesystem {
    /// Reads layer `i` onto the layers below.
    fn read_layer(
        &mut self,
        reader: &mut dyn Read,
        i: usize,
        layer: &Layer,
        unpacked: &mut u64,
    ) -> Result<LayerRead, Error> {
        let d = &layer.descriptor;
        let layer_err = |reason: String| Error::Layer {
            layer: d.digest().to_string(),
            reason,
        };
        let mut counted = Counting {
            inner: reader,
            count: 0,
            before: *unpacked,
            stored: d.size(),
            limits: self.limits,
        };
        // The stack is taken out while it reads the layer, with this filesystem as its hooks.
        let mut view = std::mem::take(&mut self.view);
        let caps = self.limits.layer;
        let stats = view.apply(&mut counted, i, &caps, self);
        self.view = view;
        let stats = stats.map_err(|e| {
            layer_err(match e.entry.as_str() {
                "" => e.reason,
                raw => format!("entry {raw:?}: {}", e.reason),
            })
        })?;
        self.written_here = HashMap::new();
        // Read to the end, so the whole blob is checked against its digest.
        io::copy(&mut counted, &mut io::sink()).map_err(|e| layer_err(e.to_string()))?;
        *unpacked += counted.count;
        Ok(LayerRead {
            digest: d.digest().to_string(),
            media_type: d.media_type().to_string(),
            size: d.size(),
            uncompressed_size: counted.count,
            entries: stats.entries,
            file_bytes: stats.file_bytes,
            listed_again_as: None,
        })
    }

    /// Keeps (or, with `None`, forgets) the metadata file at `path`, counting what is kept.
    fn keep_metadata(&mut self, path: String, bytes: Option<Vec<u8>>) {
        let old = match bytes {
            Some(bytes) => {
                self.metadata_bytes += bytes.len() as u64;
                self.metadata.insert(path, bytes)
            }
            None => self.metadata.remove(&path),
        };
        self.metadata_bytes -= old.map_or(0, |b| b.len() as u64);
    }

    /// The entries of `dir` as `bareboat inspect --tree` lists them.
    pub fn tree(&self, dir: &str) -> Vec<TreeEntry<'_>> {
        self.children(dir)
            .into_iter()
            .map(|(path, node)| TreeEntry {
                path: format!("/{path}"),
                node,
            })
            .collect()
    }

    /// The entries directly under `dir` in the finished image.
    pub fn children(&self, dir: &str) -> Vec<(&str, &Node)> {
        self.view.children(dir)
    }
}

/// The largest library the ABI check reads whole from an image.
const MAX_LIBRARY: u64 = 512 << 20;

/// An image read with its contents kept, as the tree its programs' libraries are looked up
/// in (by [`bareboat_elf::unmet_versions`]): paths are followed through the image's own
/// links, as its loader follows them.
impl bareboat_elf::Tree for Kept {
    fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.view.read(path.trim_start_matches('/'), MAX_LIBRARY)
    }

    fn list(&self, dir: &str) -> Vec<String> {
        let Some(real) = self.view.resolve(dir.trim_matches('/')) else {
            return Vec::new();
        };
        (self.view.children(&real).into_iter())
            .map(|(path, _)| path.rsplit('/').next().unwrap_or(path).to_string())
            .collect()
    }
}

/// What inspect notes of each layer as the stack reads it.
impl Hooks for Filesystem {
    /// Hashes a regular file, scans it for secrets, keeps it when it is metadata, and keeps
    /// its content when the stack keeps contents.
    fn entry(
        &mut self,
        layer: usize,
        path: &str,
        entry: &mut Entry<'_>,
        store: Option<&mut Store>,
    ) -> Result<Filled, Refusal> {
        let refuse = |reason: String| Refusal {
            entry: entry.raw.clone(),
            reason,
        };
        // A sparse file's holes read as zeros: it is measured but not read.
        if entry.kind != Kind::File || entry.sparse {
            return Ok(Filled::default());
        }
        let size = entry.size;
        let limits = &self.limits;
        let metadata = metadata_limit(path, limits).is_some_and(|max| size <= max);
        // Refused before it is read, from the size its header gives. What was at the path
        // is gone already.
        if metadata && self.metadata_bytes + size > limits.max_metadata {
            return Err(refuse(format!(
                "its package databases and other metadata files, with the layers' below, pass {} bytes: refused",
                limits.max_metadata
            )));
        }
        let scanned = size <= secrets::MAX_SCANNED;
        let keep = (metadata || scanned).then_some(size);
        // Content can repeat only where another layer has a file of its size.
        let hash = self.hash_every_file || self.sizes_below.contains(&size);
        if self.hash_every_file {
            self.sizes_below.insert(size);
        }
        let mut hashing = Hashing::new(&mut *entry.content, hash, keep);
        let content = match store {
            Some(store) => Some(store.stage(&mut hashing, size).map_err(refuse)?),
            None => {
                io::copy(&mut hashing, &mut io::sink()).map_err(|e| refuse(e.to_string()))?;
                None
            }
        };
        let (sha256, bytes) = hashing.finish();
        let secret = bytes.as_deref().filter(|_| scanned).and_then(secrets::kind);
        if let Some(kind) = secret {
            // One record of a kind of secret at a path of a layer, however often the layer
            // writes it there.
            let written = self.written_here.entry(path.to_string()).or_default();
            if written
                .secret
                .is_none_or(|at| self.secrets[at].kind != kind)
            {
                written.secret = Some(self.secrets.len());
                self.secrets.push(Secret {
                    layer,
                    path: path.to_string(),
                    kind,
                });
            }
        }
        let record = Content {
            layer,
            path: path.to_string(),
            size,
            sha256,
        };
        // An earlier entry of this layer at the same path is hidden by this one.
        let written = self.written_here.entry(path.to_string()).or_default();
        match written.content {
            Some(at) => self.contents[at] = record,
            None => {
                written.content = Some(self.contents.len());
                self.contents.push(record);
            }
        }
        if metadata {
            self.keep_metadata(path.to_string(), bytes);
        }
        Ok(Filled { sha256, content })
    }

    /// A file taken away is waste: its layer still carries it.
    fn gone(&mut self, path: &str, node: &Node, by: usize, how: How) {
        self.keep_metadata(path.to_string(), None);
        if node.kind != Kind::File {
            return;
        }
        // A layer that writes one path again and again wastes, at that path, all its
        // copies but the last: one record, summed.
        let here = (how == How::Overwritten && node.layer == by)
            .then(|| self.written_here.entry(path.to_string()).or_default());
        match here.as_ref().and_then(|w| w.waste) {
            Some(at) => self.waste[at].size += node.size,
            None => {
                if let Some(here) = here {
                    here.waste = Some(self.waste.len());
                }
                self.waste.push(Waste {
                    path: path.to_string(),
                    layer: node.layer,
                    size: node.size,
                    by_layer: by,
                    how: how.as_str(),
                });
            }
        }
    }

    fn redirected(&mut self, layer: usize, literal: &str, landed: &str) {
        let written = self.written_here.entry(literal.to_string()).or_default();
        if !std::mem::replace(&mut written.redirected, true) {
            self.redirects.push(Redirect {
                layer,
                path: literal.to_string(),
                landed: landed.to_string(),
            });
        }
    }
}

/// A file's content as it streams past: hashed when `hash` says so, and kept in a buffer of
/// the size `keep` gives (which the caller has bounded), when it gives one.
struct Hashing<'r> {
    inner: &'r mut dyn Read,
    sha: Option<Sha256>,
    kept: Option<Vec<u8>>,
}

impl<'r> Hashing<'r> {
    fn new(inner: &'r mut dyn Read, hash: bool, keep: Option<u64>) -> Hashing<'r> {
        Hashing {
            inner,
            sha: hash.then(Sha256::new),
            kept: keep.map(|size| Vec::with_capacity(size as usize)),
        }
    }

    /// The SHA256 of what was read, if it was hashed, and what was kept of it.
    fn finish(self) -> (Option<[u8; 32]>, Option<Vec<u8>>) {
        (self.sha.map(|sha| sha.finalize().into()), self.kept)
    }
}

impl Read for Hashing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(sha) = self.sha.as_mut() {
            sha.update(&buf[..n]);
        }
        if let Some(k) = self.kept.as_mut() {
            k.extend_from_slice(&buf[..n]);
        }
        Ok(n)
    }
}

/// A layer's decompressed stream, counted, and stopped at the bounds of [`Limits`].
struct Counting<R> {
    inner: R,
    count: u64,
    /// What the layers read before this one decompressed to.
    before: u64,
    /// The blob's size.
    stored: u64,
    limits: Limits,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        let bomb = |what: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{what}: refused as a decompression bomb"),
            )
        };
        if self.count > self.limits.ratio_after
            && self.count > self.stored.saturating_mul(self.limits.max_ratio)
        {
            return Err(bomb(format!(
                "its {} bytes decompress to more than {} bytes ({} times as many)",
                self.stored, self.count, self.limits.max_ratio
            )));
        }
        if self.before + self.count > self.limits.max_unpacked {
            return Err(bomb(format!(
                "the layers read decompress to more than {} bytes in all",
                self.limits.max_unpacked
            )));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bareboat_oci::layout::Layout;
    use oci_spec::image::MediaType;
    use std::io::Write;
    use std::path::Path;

    #[test]
    fn deep_paths_hoarded_metadata_and_decompression_bombs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("l")).unwrap();
        let deep = "d/".repeat(overlay::MAX_PATH / 2) + "f";
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        tar.append_data(&mut h, &deep, &b"x"[..]).unwrap();
        let deep = gzip_layer(&layout, tar);
        let e = read(&layout, &[deep], Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("longer than 4096"), "{e}");

        let big = vec![b'x'; 600];
        let dbs: Vec<(String, Option<&[u8]>)> = (0..3)
            .map(|i| (format!("var/lib/dpkg/status.d/p{i}"), Some(&big[..])))
            .collect();
        let dbs: Vec<(&str, Option<&[u8]>)> = dbs.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let limits = Limits {
            max_metadata: 1500,
            ..Limits::default()
        };
        let e = read(&layout, &[layer(&layout, &dbs)], limits)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass 1500 bytes"), "{e}");
        assert!(read(&layout, &[layer(&layout, &dbs[..2])], limits).is_ok());

        let zeros = vec![0u8; 1 << 20];
        let bomb = layer(&layout, &[("zeros", Some(&zeros[..]))]);
        // gzip gives 1 MiB of zeros about 10 kB; zstd would give it far less.
        let tight = Limits {
            ratio_after: 1 << 16,
            max_ratio: 50,
            ..Limits::default()
        };
        let e = read(&layout, std::slice::from_ref(&bomb), tight)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("decompression bomb") && e.contains("50 times"),
            "{e}"
        );
        let budget = Limits {
            max_unpacked: 3 << 20,
            ..Limits::default()
        };
        // Three different layers: one listed again would be read once.
        let fill = |byte: u8| vec![byte; 1 << 20];
        let (ones, twos) = (fill(1), fill(2));
        let one = layer(&layout, &[("ones", Some(&ones[..]))]);
        let two = layer(&layout, &[("twos", Some(&twos[..]))]);
        assert!(read(&layout, &[bomb.clone(), one.clone()], budget).is_ok());
        let e = read(&layout, &[bomb.clone(), one.clone(), two], budget)
            .unwrap_err()
            .to_string();
        assert!(e.contains("in all"), "{e}");
        // The same layer three times is read once, within the budget.
        assert!(read(&layout, &[bomb.clone(), bomb.clone(), bomb], budget).is_ok());
    }

    /// A gzip layer of `(path, content)` files (a `None` content is a directory) in `layout`.
    fn layer(layout: &Layout, entries: &[(&str, Option<&[u8]>)]) -> Layer {
        let entries: Vec<(&str, Made)> = entries
            .iter()
            .map(|(path, content)| (*path, content.map_or(Made::Dir, Made::File)))
            .collect();
        made_layer(layout, &entries)
    }

    /// What an entry of [`made_layer`] is.
    enum Made<'a> {
        Dir,
        File(&'a [u8]),
        Symlink(&'a str),
    }

    /// A gzip layer of `entries` in `layout`.
    fn made_layer(layout: &Layout, entries: &[(&str, Made)]) -> Layer {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, made) in entries {
            let mut h = tar::Header::new_old();
            // Written as is, so that names which escape can be tested.
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            let data = match made {
                Made::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    &[][..]
                }
                Made::File(data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    data
                }
                Made::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
                    &[][..]
                }
            };
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            tar.append(&h, data).unwrap();
        }
        gzip_layer(layout, tar)
    }

    /// The tar `tar` built, gzipped, as a layer of `layout`.
    fn gzip_layer(layout: &Layout, tar: tar::Builder<Vec<u8>>) -> Layer {
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        let descriptor = layout
            .put_json(MediaType::ImageLayerGzip, &gz.finish().unwrap())
            .unwrap();
        let diff_id = bareboat_oci::digest::Digest::of(&raw);
        Layer {
            descriptor,
            diff_id,
        }
    }

    #[test]
    fn the_largest_layer_decoded_early_is_stacked_in_its_place_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let noise: Vec<u8> = (0..400_000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let small = layer(&layout, &[("f", Some(b"below"))]);
        let large = layer(&layout, &[("f", Some(&noise[..]))]);
        let top = layer(&layout, &[("g", Some(b"above"))]);
        let fs = read(
            &layout,
            &[small.clone(), large.clone(), top.clone()],
            Limits::default(),
        )
        .unwrap();
        // The large layer, read first, still lands between the others.
        let f = fs.view.get("f").unwrap();
        assert_eq!((f.layer, f.size), (1, noise.len() as u64));
        assert_eq!(fs.waste.len(), 1, "{:?}", fs.waste);
        assert_eq!(fs.waste[0].layer, 0);
        // Its diff_id is checked as any layer's is.
        let wrong = Layer {
            diff_id: bareboat_oci::digest::Digest::of(b"other"),
            ..large
        };
        let e = read(&layout, &[small, wrong, top], Limits::default()).unwrap_err();
        assert!(e.to_string().contains("has diff_id"), "{e}");
    }

    #[test]
    fn content_repeated_in_other_layers_is_found_and_the_last_layer_hashes_only_what_can_be() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let shared = b"the same bytes in three layers";
        let unique = vec![3u8; 9000];
        let layers = [
            layer(
                &layout,
                &[("a", Some(shared)), ("b", Some(b"below, 16 bytes."))],
            ),
            layer(&layout, &[("c", Some(shared))]),
            layer(
                &layout,
                &[
                    ("d", Some(shared)),
                    // The size of `b`, and other content.
                    ("e", Some(b"above, 16 bytes!")),
                    // No other layer has a file of its size: it cannot repeat one.
                    ("f", Some(&unique)),
                    ("g", Some(b"")),
                ],
            ),
        ];
        let fs = read(&layout, &layers, Limits::default()).unwrap();
        let hashed = |path: &str| {
            let c = fs.contents.iter().find(|c| c.path == path).unwrap();
            c.sha256.map(hex::encode)
        };
        let sha = |bytes: &[u8]| Some(hex::encode(Sha256::digest(bytes)));
        assert_eq!(hashed("a"), sha(shared));
        assert_eq!(hashed("d"), sha(shared));
        assert_eq!(hashed("e"), sha(b"above, 16 bytes!"));
        assert_eq!((hashed("f"), hashed("g")), (None, None));
        // Each lower layer hashes every file, for the layers above it.
        assert_eq!(hashed("b"), sha(b"below, 16 bytes."));

        let repeated = crate::inspect::repeated(&fs);
        assert_eq!(repeated.len(), 1, "{repeated:?}");
        let r = &repeated[0];
        assert_eq!(Some(r.sha256.clone()), sha(shared));
        let copies = [(0, "/a"), (1, "/c"), (2, "/d")].map(|(l, p)| (l, p.to_string()));
        assert_eq!((r.size, r.wasted), (30, 60));
        assert_eq!(r.copies, copies);
    }

    #[test]
    fn layers_stack_and_what_they_hide_is_waste() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let big = vec![7u8; 5000];
        let layers = [
            layer(
                &layout,
                &[
                    ("a", None),
                    ("a/big", Some(&big)),
                    ("a/keep", Some(b"v1")),
                    ("c/d/e", Some(b"e")),
                    (
                        "var/lib/dpkg/status.d/tool",
                        Some(b"Package: tool\nVersion: 1\n"),
                    ),
                ],
            ),
            layer(
                &layout,
                &[
                    ("a/.wh.big", Some(b"")),
                    ("a/keep", Some(b"v2")),
                    ("c/.wh..wh..opq", Some(b"")),
                    ("copy/of-big", Some(&big)),
                ],
            ),
        ];
        let fs = read(&layout, &layers, Limits::default()).unwrap();
        let paths: Vec<&str> = fs.view.keys().map(String::as_str).collect();
        // Directories only implied by their entries are there too.
        assert_eq!(
            paths,
            [
                "a",
                "a/keep",
                "c",
                "copy",
                "copy/of-big",
                "var",
                "var/lib",
                "var/lib/dpkg",
                "var/lib/dpkg/status.d",
                "var/lib/dpkg/status.d/tool"
            ]
        );
        assert_eq!(fs.view["a/keep"].layer, 1);
        let waste: Vec<(&str, u64, &str)> = fs
            .waste
            .iter()
            .map(|w| (w.path.as_str(), w.size, w.how))
            .collect();
        assert_eq!(
            waste,
            [
                ("a/big", 5000, "deleted"),
                ("a/keep", 2, "overwritten"),
                ("c/d/e", 1, "deleted")
            ]
        );
        assert_eq!(fs.metadata.len(), 1);
        assert_eq!(fs.layers[0].size, layers[0].descriptor.size());
        assert!(fs.layers[0].uncompressed_size >= 5000 + 4 * 512);
        assert_eq!(fs.children("a").len(), 1);
    }

    #[test]
    fn hostile_layers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let escape = layer(&layout, &[("../etc/passwd", Some(b"x"))]);
        let e = read(&layout, &[escape], Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("leads out of the image's root"), "{e}");

        let good = layer(&layout, &[("f", Some(&[1u8; 100_000]))]);
        let path = dir
            .path()
            .join("blobs/sha256")
            .join(good.descriptor.digest().digest());
        let bytes = std::fs::read(&path).unwrap();
        // A truncated gzip stream, and a flipped byte, are found.
        for damaged in [bytes[..bytes.len() / 2].to_vec(), {
            let mut b = bytes.clone();
            let at = b.len() - 20;
            b[at] ^= 1;
            b
        }] {
            std::fs::write(&path, damaged).unwrap();
            let err = read(&layout, std::slice::from_ref(&good), Limits::default()).unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains("it does not match its descriptor"), "{err}");
        }

        let many: Vec<(String, Option<&[u8]>)> =
            (0..50).map(|i| (format!("f{i}"), Some(&b""[..]))).collect();
        let many: Vec<(&str, Option<&[u8]>)> = many.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let bomb = layer(&layout, &many);
        let limits = Limits {
            layer: overlay::Limits {
                max_entries: 10,
                ..overlay::Limits::IMAGE
            },
            ..Limits::default()
        };
        let e = read(&layout, &[bomb], limits).unwrap_err().to_string();
        assert!(e.contains("decompression bomb"), "{e}");
    }

    #[test]
    fn links_out_of_the_tree_are_recorded_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        for (path, kind, target) in [
            (
                "etc/shadow-link",
                tar::EntryType::Symlink,
                "../../../../etc/shadow",
            ),
            ("etc/abs-link", tar::EntryType::Symlink, "/etc/shadow"),
            ("etc/hard", tar::EntryType::Link, "../../outside"),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o777);
            tar.append_link(&mut h, path, target).unwrap();
        }
        let fs = read(&layout, &[gzip_layer(&layout, tar)], Limits::default()).unwrap();
        assert_eq!(
            fs.view["etc/shadow-link"].kind,
            Kind::Symlink("../../../../etc/shadow".into())
        );
        assert_eq!(
            fs.view["etc/hard"].kind,
            Kind::Hardlink("../../outside".into())
        );
        // Nothing was read through them.
        assert!(fs.contents.is_empty() && fs.metadata.is_empty());
    }

    #[test]
    fn a_huge_sparse_file_is_measured_without_reading_its_holes() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let apparent: u64 = 1 << 40;
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_path("var/huge").unwrap();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_mode(0o644);
        // One 512-byte block of data at the very end; the rest is a hole.
        h.set_size(512);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.sparse[0].set_offset(apparent - 512);
        gnu.sparse[0].set_length(512);
        gnu.set_real_size(apparent);
        h.set_cksum();
        tar.append(&h, &[7u8; 512][..]).unwrap();
        let mut after = tar::Header::new_gnu();
        after.set_size(2);
        after.set_mode(0o644);
        tar.append_data(&mut after, "var/after", &b"ok"[..])
            .unwrap();
        let fs = read(&layout, &[gzip_layer(&layout, tar)], Limits::default()).unwrap();
        let huge = &fs.view["var/huge"];
        assert_eq!(
            (&huge.kind, huge.size, huge.sha256),
            (&Kind::File, apparent, None)
        );
        assert_eq!(fs.layers[0].file_bytes, apparent + 2);
        // The entry after it is read in place.
        assert_eq!(fs.view["var/after"].size, 2);
    }

    #[test]
    fn a_hundred_thousand_tiny_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        for i in 0..100_000 {
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            let path = format!("many/{}/{i}", i % 100);
            tar.append_data(&mut h, path, &b"x"[..]).unwrap();
        }
        let fs = read(&layout, &[gzip_layer(&layout, tar)], Limits::default()).unwrap();
        assert_eq!(fs.layers[0].entries, 100_000);
        assert_eq!(fs.layers[0].file_bytes, 100_000);
        // 100,000 files, 100 directories implied by them, and `many`.
        assert_eq!(fs.view.len(), 100_000 + 100 + 1);
        assert_eq!(fs.children("many").len(), 100);
    }

    #[test]
    fn a_layer_that_writes_one_path_again_and_again_is_recorded_once() {
        use Made::*;
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let key: &[u8] = b"-----BEGIN RSA PRIVATE KEY-----\nabc\n";
        let mut entries = vec![("usr", Dir), ("x", Symlink("usr"))];
        for _ in 0..1000 {
            entries.extend([
                ("id_rsa", File(key)),
                ("big", File(b"0123456789")),
                ("x/through", File(b"t")),
            ]);
        }
        let fs = read(&layout, &[made_layer(&layout, &entries)], Limits::default()).unwrap();
        let at = |path: &str| fs.contents.iter().filter(|c| c.path == path).count();
        assert_eq!((at("id_rsa"), at("big"), at("usr/through")), (1, 1, 1));
        assert_eq!(fs.secrets.len(), 1, "{:?}", fs.secrets);
        assert_eq!(fs.redirects.len(), 1, "{:?}", fs.redirects);
        // The layer's own copies but the last are its waste, summed per path.
        let waste: Vec<(&str, u64)> = fs.waste.iter().map(|w| (w.path.as_str(), w.size)).collect();
        assert_eq!(
            waste,
            [
                ("id_rsa", 999 * key.len() as u64),
                ("big", 9990),
                ("usr/through", 999)
            ]
        );
    }

    #[test]
    fn entries_through_a_symlinked_parent_land_where_a_runtime_puts_them() {
        use Made::*;
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let layers = [
            made_layer(
                &layout,
                &[
                    ("usr", Dir),
                    ("usr/bin", Dir),
                    ("usr/bin/doomed", File(b"d")),
                    ("x", Symlink("usr/bin")),
                    ("x/sh", File(b"sh")),
                    ("x/apt-get", File(b"apt")),
                    ("d", Symlink("/no/such")),
                    ("d/f", File(b"f")),
                    ("etc", Symlink("usr/lib")),
                    ("etc/os-release", File(b"ID=debian\n")),
                ],
            ),
            // Through a link of a lower layer: whiteouts too, as umoci deletes them.
            made_layer(
                &layout,
                &[
                    ("y", Symlink("../../x")),
                    ("y/bash", File(b"bash")),
                    ("x/.wh.doomed", File(b"")),
                ],
            ),
            made_layer(
                &layout,
                &[("x/.wh..wh..opq", File(b"")), ("x/new", File(b"n"))],
            ),
        ];
        let fs = read(&layout, &layers[..2], Limits::default()).unwrap();
        let shown: Vec<&str> = fs.view.keys().map(String::as_str).collect();
        assert_eq!(
            shown,
            [
                "d",
                "etc",
                "no",
                "no/such",
                "no/such/f",
                "usr",
                "usr/bin",
                "usr/bin/apt-get",
                "usr/bin/bash",
                "usr/bin/sh",
                "usr/lib",
                "usr/lib/os-release",
                "x",
                "y"
            ]
        );
        assert_eq!(fs.view["x"].kind, Kind::Symlink("usr/bin".into()));
        assert_eq!(fs.view["usr/bin/bash"].layer, 1);
        assert_eq!(fs.waste[0].path, "usr/bin/doomed");
        // What is kept and found follows the file to where it lands.
        assert!(fs.metadata.contains_key("usr/lib/os-release"));
        assert!(fs.contents.iter().any(|c| c.path == "usr/bin/sh"));
        let redirects: Vec<(usize, &str, &str)> = fs
            .redirects
            .iter()
            .map(|r| (r.layer, r.path.as_str(), r.landed.as_str()))
            .collect();
        assert_eq!(
            redirects,
            [
                (0, "x/sh", "usr/bin/sh"),
                (0, "x/apt-get", "usr/bin/apt-get"),
                (0, "d/f", "no/such/f"),
                (0, "etc/os-release", "usr/lib/os-release"),
                (1, "y/bash", "usr/bin/bash"),
                (1, "x/.wh.doomed", "usr/bin/.wh.doomed"),
            ]
        );
        // An opaque whiteout through the link empties the directory it resolves to.
        let fs = read(&layout, &layers, Limits::default()).unwrap();
        assert_eq!(fs.children("usr/bin").len(), 1);
        assert!(fs.view.contains_key("usr/bin/new"));
    }

    #[test]
    fn contents_are_kept_on_disk_when_asked_and_read_through_the_images_links() {
        use Made::*;
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("l")).unwrap();
        let layers = [
            made_layer(
                &layout,
                &[
                    ("usr/lib/libx.so.1", File(b"old")),
                    ("lib", Symlink("usr/lib")),
                ],
            ),
            made_layer(&layout, &[("lib/libx.so.1", File(b"new"))]),
        ];
        let store = Store::new(&dir.path().join("kept"), 1 << 20).unwrap();
        let fs = read_keeping(&layout, &layers, Limits::default(), store).unwrap();
        // The upper layer's file landed through the link and replaced the lower one's.
        assert_eq!(
            fs.view.read("lib/libx.so.1", 64).as_deref(),
            Some(&b"new"[..])
        );
        assert_eq!(
            fs.view.read("usr/lib/libx.so.1", 64).as_deref(),
            Some(&b"new"[..])
        );
        assert_eq!(fs.waste[0].path, "usr/lib/libx.so.1");
        // Without a store nothing is kept; with too small a one the image is refused. (The
        // budget holds what the image shows: the replaced copy was given back.)
        let fs = read(&layout, &layers, Limits::default()).unwrap();
        assert_eq!(fs.view.read("lib/libx.so.1", 64), None);
        let just = Store::new(&dir.path().join("just"), 3).unwrap();
        read_keeping(&layout, &layers, Limits::default(), just).unwrap();
        let small = Store::new(&dir.path().join("small"), 2).unwrap();
        let e = read_keeping(&layout, &layers, Limits::default(), small).unwrap_err();
        assert!(e.to_string().contains("past 2 bytes"), "{e}");
    }

    #[test]
    fn a_programs_symbol_versions_are_checked_against_the_images_own_libraries() {
        use Made::*;
        let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
        let host_lib = |name: &str| std::fs::read(format!("/lib/{triple}/{name}")).unwrap();
        let ls = bareboat_elf::analyze(Path::new("/bin/ls"), "/usr/bin/ls").unwrap();
        let paths = |lib: &str| vec![format!("/lib/{triple}/{lib}")];
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(&dir.path().join("l")).unwrap();
        let image = |libc: &[u8]| {
            let at = format!("usr/lib/{triple}/libc.so.6");
            // Found through the image's merged-/usr link, as its loader finds it.
            let layer = made_layer(&layout, &[("lib", Symlink("usr/lib")), (&at, File(libc))]);
            let store = Store::new(&dir.path().join("kept"), 64 << 20).unwrap();
            read_keeping(&layout, &[layer], Limits::default(), store).unwrap()
        };
        // This machine's own libc defines what its ls needs.
        let fs = image(&host_lib("libc.so.6"));
        assert_eq!(bareboat_elf::unmet_versions(&fs, &ls, paths), []);
        // A library of that name that defines none of it (zlib's) is named, with each need.
        let fs = image(&host_lib("libz.so.1"));
        let unmet = bareboat_elf::unmet_versions(&fs, &ls, paths);
        assert!(!unmet.is_empty());
        assert!(
            unmet.iter().all(|u| u.needs.starts_with("GLIBC_")
                && u.library == format!("/lib/{triple}/libc.so.6")
                && u.highest.is_none()),
            "{unmet:?}"
        );
    }

    #[test]
    fn parents_no_runtime_can_resolve_are_refused_naming_the_entry() {
        use Made::*;
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let refused = |entries: &[(&str, Made)], limits: Limits| {
            let layer = made_layer(&layout, entries);
            read(&layout, &[layer], limits).unwrap_err().to_string()
        };
        let e = refused(
            &[
                ("l1", Symlink("l2")),
                ("l2", Symlink("l1")),
                ("l1/f", File(b"")),
            ],
            Limits::default(),
        );
        assert!(
            e.contains("entry \"l1/f\"") && e.contains("as a loop does"),
            "{e}"
        );
        // A whiteout there is refused too, as umoci refuses it.
        let e = refused(
            &[("l1", Symlink("l1")), ("l1/.wh.f", File(b""))],
            Limits::default(),
        );
        assert!(e.contains("entry \"l1/.wh.f\""), "{e}");
        let e = refused(
            &[
                ("real", File(b"r")),
                ("f", Symlink("real")),
                ("f/g", File(b"")),
            ],
            Limits::default(),
        );
        assert!(
            e.contains("entry \"f/g\": it lands under /real, which is not a directory"),
            "{e}"
        );
        // Links that are fine one at a time exhaust the layer's budget together.
        let entries: Vec<String> = (0..10).map(|i| format!("x/f{i}")).collect();
        let mut made = vec![("x", Symlink("a/b/c"))];
        made.extend(entries.iter().map(|p| (p.as_str(), File(b""))));
        let limits = Limits {
            max_link_steps: 20,
            ..Limits::default()
        };
        let e = refused(&made, limits);
        assert!(
            e.contains("entry \"x/f6\"") && e.contains("past 20 path components"),
            "{e}"
        );
    }
}
