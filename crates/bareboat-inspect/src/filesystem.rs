//! An image's filesystem, read from its layers once each, as a stream.
//!
//! Each layer is decompressed, checked against its digest as it is read, and walked entry
//! by entry; nothing is written to disk and no link is followed, so a hostile layer can at
//! worst be refused. The layers stack as an overlay filesystem stacks them: a later entry
//! replaces an earlier one, `.wh.NAME` deletes NAME and `.wh..wh..opq` empties its
//! directory. What a later layer replaces or deletes still costs its bytes in the earlier
//! layer: that is the waste the report shows.

use std::collections::BTreeMap;
use std::io::{self, Read};

use bareboat_oci::layer::Whiteout;
use bareboat_oci::layout::Layout;
use oci_spec::image::Descriptor;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::{Error, secrets};

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink(String),
    Hardlink(String),
    /// A device node or FIFO.
    Special,
}

/// A path as the layer that last wrote it has it.
#[derive(Clone, Debug, Serialize)]
pub struct Node {
    /// The layer, counted from 0 at the bottom.
    pub layer: usize,
    pub kind: Kind,
    /// The content's size, for a regular file.
    pub size: u64,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    #[serde(skip)]
    pub sha256: Option<[u8; 32]>,
}

/// Bytes a layer carries that the finished image does not show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Waste {
    pub path: String,
    pub layer: usize,
    pub size: u64,
    /// The layer that replaced or deleted it.
    pub by_layer: usize,
    /// `overwritten` or `deleted`.
    pub how: &'static str,
}

/// One layer, as read.
#[derive(Clone, Debug, Serialize)]
pub struct LayerRead {
    pub digest: String,
    pub media_type: String,
    /// Its blob's size.
    pub size: u64,
    /// Its tar stream's size.
    pub uncompressed_size: u64,
    pub entries: u64,
    /// The bytes of its regular files.
    pub file_bytes: u64,
}

/// A regular file of one layer.
#[derive(Clone, Debug)]
pub struct Content {
    pub layer: usize,
    pub path: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// The filesystem an image's layers stack to.
#[derive(Debug, Default)]
pub struct Filesystem {
    pub layers: Vec<LayerRead>,
    /// Every path of the finished image, with the node that shows.
    pub view: BTreeMap<String, Node>,
    pub waste: Vec<Waste>,
    /// Every regular file of every layer, shown or not.
    pub contents: Vec<Content>,
    /// The metadata files the finished image shows (see [`metadata_limit`]), by path.
    pub metadata: BTreeMap<String, Vec<u8>>,
    /// Files of any layer that hold a secret, shown or not: a deleted key still ships.
    pub secrets: Vec<Secret>,
}

/// A file that holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub layer: usize,
    pub path: String,
    pub kind: &'static str,
}

/// Caps that keep a hostile image from exhausting memory.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The most entries a layer may hold.
    pub max_entries: u64,
    /// The largest package database file kept in memory.
    pub max_database: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 4 << 20,
            max_database: 64 << 20,
        }
    }
}

/// Whether a path is a package database that [`crate::packages`] reads: dpkg's `status`,
/// a package's `status.d` entry (not its `.md5sums` or another list; package names may
/// hold dots, as `libstdc++6` and `python3.13` do), or apk's `installed`.
pub fn is_database(path: &str) -> bool {
    path == "var/lib/dpkg/status"
        || path == "lib/apk/db/installed"
        || path
            .strip_prefix("var/lib/dpkg/status.d/")
            .is_some_and(|name| {
                !name.contains('/')
                    && ![".md5sums", ".list", ".conffiles"]
                        .iter()
                        .any(|suffix| name.ends_with(suffix))
            })
}

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

/// Reads `layers` of `layout`, bottom first.
pub fn read(layout: &Layout, layers: &[Descriptor], limits: Limits) -> Result<Filesystem, Error> {
    let mut fs = Filesystem::default();
    for (i, d) in layers.iter().enumerate() {
        let read = fs.read_layer(layout, i, d, limits).or_else(|e| {
            // A damaged blob usually breaks decompression first: say what is wrong.
            layout.verify_blob(d)?;
            Err(e)
        })?;
        fs.layers.push(read);
    }
    fs.metadata
        .retain(|path, _| fs.view.get(path).is_some_and(|n| n.kind == Kind::File));
    Ok(fs)
}

impl Filesystem {
    /// Reads layer `i`, `d`, onto the layers below.
    fn read_layer(
        &mut self,
        layout: &Layout,
        i: usize,
        d: &Descriptor,
        limits: Limits,
    ) -> Result<LayerRead, Error> {
        let layer_err = |reason: String| Error::Layer {
            layer: d.digest().to_string(),
            reason,
        };
        let mut counted = Counting {
            inner: layout.open_layer(d)?,
            count: 0,
        };
        let mut read = LayerRead {
            digest: d.digest().to_string(),
            media_type: d.media_type().to_string(),
            size: d.size(),
            uncompressed_size: 0,
            entries: 0,
            file_bytes: 0,
        };
        let mut archive = tar::Archive::new(&mut counted);
        let io_err = |e: io::Error| layer_err(e.to_string());
        for entry in archive.entries().map_err(io_err)? {
            let mut entry = entry.map_err(io_err)?;
            read.entries += 1;
            if read.entries > limits.max_entries {
                return Err(layer_err(format!(
                    "more than {} entries: refused as a decompression bomb",
                    limits.max_entries
                )));
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let path = normalize(&raw).ok_or_else(|| {
                layer_err(format!(
                    "entry {raw:?} leads out of the image's root: refused"
                ))
            })?;
            if path.is_empty() {
                continue;
            }
            // A layer's entries imply their directories, whiteouts' included.
            self.imply_parents(&path, i);
            match Whiteout::of(&path) {
                Some(Whiteout::Opaque(dir)) => {
                    self.delete(&dir, false, i);
                    continue;
                }
                Some(Whiteout::Path(hidden)) => {
                    self.delete(&hidden, true, i);
                    continue;
                }
                None => {}
            }
            let header = entry.header();
            let link = || {
                entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default()
            };
            let kind = match header.entry_type() {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink(link()),
                tar::EntryType::Link => Kind::Hardlink(link()),
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => Kind::File,
                _ => Kind::Special,
            };
            // A sparse file's holes read as zeros: its apparent size may be far beyond
            // what the layer stores, so it is measured but not read.
            let sparse = header.entry_type().is_gnu_sparse();
            // Odd metadata is shown as 0, not refused: inspect reads any image.
            let mut node = Node {
                layer: i,
                mode: header.mode().unwrap_or_default() & 0o7777,
                uid: header.uid().unwrap_or_default(),
                gid: header.gid().unwrap_or_default(),
                size: 0,
                sha256: None,
                kind,
            };
            if node.kind == Kind::File {
                node.size = entry.size();
                read.file_bytes += node.size;
            }
            if node.kind == Kind::File && !sparse {
                let metadata = metadata_limit(&path, &limits).is_some_and(|max| node.size <= max);
                let scanned = node.size <= secrets::MAX_SCANNED;
                let (sha256, bytes) = hash(&mut entry, metadata || scanned).map_err(io_err)?;
                let secret = bytes.as_deref().filter(|_| scanned).and_then(secrets::kind);
                if let Some(kind) = secret {
                    self.secrets.push(Secret {
                        layer: i,
                        path: path.clone(),
                        kind,
                    });
                }
                let bytes = bytes.filter(|_| metadata);
                node.sha256 = Some(sha256);
                self.contents.push(Content {
                    layer: i,
                    path: path.clone(),
                    size: node.size,
                    sha256,
                });
                match bytes {
                    Some(bytes) => self.metadata.insert(path.clone(), bytes),
                    None => self.metadata.remove(&path),
                };
            }
            self.place(path, node);
        }
        // Read to the end, so the whole blob is checked against its digest.
        let counted = archive.into_inner();
        io::copy(counted, &mut io::sink()).map_err(|e| layer_err(e.to_string()))?;
        read.uncompressed_size = counted.count;
        Ok(read)
    }

    /// Puts `node` at `path`, over whatever lower layers (or this one) had there.
    fn place(&mut self, path: String, node: Node) {
        let layer = node.layer;
        match self.view.get(&path) {
            Some(old) if old.kind == Kind::Dir && node.kind == Kind::Dir => {}
            Some(old) => {
                if old.kind == Kind::File {
                    self.waste.push(Waste {
                        path: path.clone(),
                        layer: old.layer,
                        size: old.size,
                        by_layer: layer,
                        how: "overwritten",
                    });
                }
                if old.kind == Kind::Dir {
                    self.delete(&path, false, layer);
                }
            }
            None => {}
        }
        // A file read whole has already replaced or dropped its metadata.
        if node.sha256.is_none() {
            self.metadata.remove(&path);
        }
        self.view.insert(path, node);
    }

    /// Gives the directories above `path` that the image lacks a node of layer `layer`.
    fn imply_parents(&mut self, path: &str, layer: usize) {
        let mut p = path;
        while let Some((parent, _)) = p.rsplit_once('/') {
            if self.view.contains_key(parent) {
                break;
            }
            let node = Node {
                layer,
                kind: Kind::Dir,
                size: 0,
                mode: 0o755,
                uid: 0,
                gid: 0,
                sha256: None,
            };
            self.view.insert(parent.to_string(), node);
            p = parent;
        }
    }

    /// Deletes everything under `path` (and `path` itself, `with_self`) that lower layers
    /// put there, as layer `by` does.
    fn delete(&mut self, path: &str, with_self: bool, by: usize) {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let mut doomed: Vec<String> = self
            .view
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(_, n)| n.layer < by)
            .map(|(p, _)| p.clone())
            .collect();
        if with_self && self.view.get(path).is_some_and(|n| n.layer < by) {
            doomed.push(path.to_string());
        }
        for p in doomed {
            let Some(node) = self.view.remove(&p) else {
                continue;
            };
            self.metadata.remove(&p);
            if node.kind == Kind::File {
                self.waste.push(Waste {
                    path: p,
                    layer: node.layer,
                    size: node.size,
                    by_layer: by,
                    how: "deleted",
                });
            }
        }
    }

    /// The entries directly under `dir` in the finished image.
    pub fn children(&self, dir: &str) -> Vec<(&str, &Node)> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.view
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| !p[prefix.len()..].contains('/'))
            .map(|(p, n)| (p.as_str(), n))
            .collect()
    }
}

/// A path inside the image, relative to its root without `./` or a trailing `/`; `None`
/// for one that climbs out of it.
pub fn normalize(raw: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Hashes a file's content as it streams past, keeping it when `keep`.
fn hash(content: &mut impl Read, keep: bool) -> io::Result<([u8; 32], Option<Vec<u8>>)> {
    let mut sha = Sha256::new();
    let mut kept = keep.then(Vec::new);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = content.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha.update(&buf[..n]);
        if let Some(k) = kept.as_mut() {
            k.extend_from_slice(&buf[..n]);
        }
    }
    Ok((sha.finalize().into(), kept))
}

/// A reader that counts what passes.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;
    use std::io::Write;

    /// A gzip layer of `(path, content)` files (a `None` content is a directory) in `layout`.
    fn layer(layout: &Layout, entries: &[(&str, Option<&[u8]>)]) -> Descriptor {
        let mut tar = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut h = tar::Header::new_old();
            let data = content.unwrap_or_default();
            // Written as is, so that names which escape can be tested.
            h.as_old_mut().name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_entry_type(match content {
                Some(_) => tar::EntryType::Regular,
                None => tar::EntryType::Directory,
            });
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
    fn gzip_layer(layout: &Layout, tar: tar::Builder<Vec<u8>>) -> Descriptor {
        let raw = tar.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        layout
            .put_json(MediaType::ImageLayerGzip, &gz.finish().unwrap())
            .unwrap()
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
        assert_eq!(fs.layers[0].size, layers[0].size());
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
        let path = dir.path().join("blobs/sha256").join(good.digest().digest());
        let bytes = std::fs::read(&path).unwrap();
        // A truncated gzip stream, and a flipped byte, are found.
        for damaged in [bytes[..bytes.len() / 2].to_vec(), {
            let mut b = bytes.clone();
            let at = b.len() - 20;
            b[at] ^= 1;
            b
        }] {
            std::fs::write(&path, damaged).unwrap();
            assert!(read(&layout, std::slice::from_ref(&good), Limits::default()).is_err());
        }

        let many: Vec<(String, Option<&[u8]>)> =
            (0..50).map(|i| (format!("f{i}"), Some(&b""[..]))).collect();
        let many: Vec<(&str, Option<&[u8]>)> = many.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let bomb = layer(&layout, &many);
        let limits = Limits {
            max_entries: 10,
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
}
