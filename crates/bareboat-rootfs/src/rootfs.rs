//! The image's file tree, assembled layer by layer from package data archives and
//! synthesized files.
//!
//! File contents are staged on disk, appended to a staging file as they stream out of the
//! package (one file per entry would spend most of a build creating inodes); the tree keeps
//! only paths, metadata and offsets. Sealing ends a segment of the staging area, which is
//! never written again, so a finished tree can be kept and resumed (see
//! [`crate::treecache`]). Nothing is ever created on disk at an image path, so nothing can
//! be written through a symlink, and the policy checks that no image path is either: a
//! package's entry whose parent is a symlink is refused, as are `..`, absolute names,
//! device nodes, whiteout names, hard links to anything but an earlier entry of the same
//! package, and entries past the size caps. A base image's layer is read as runtimes read it
//! (see [`Rootfs::add_image_layer`]).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bareboat_apt::dpkg::{MERGED_DIRS, merged_usr};
use bareboat_oci::layer::{Entry, Kind, Whiteout};
use bareboat_oci::overlay::{self, Change, Kind as EntryKind, Limits};
use bareboat_oci::stack;
use globset::GlobSet;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::policy::Slicing;

mod materialize;

/// What a tree node is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A directory.
    Dir,
    /// A regular file, its content staged.
    File {
        /// Where the content starts in the staging area.
        offset: u64,
        /// The content's size.
        size: u64,
        /// The content's SHA256.
        #[serde(with = "hex::serde")]
        sha256: [u8; 32],
    },
    /// A symbolic link to this target, as given.
    Symlink(String),
    /// Another path of the same layer with the same content.
    Hardlink(String),
}

/// A path in the tree.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    /// What it is.
    pub kind: NodeKind,
    /// Its permission bits, setuid, setgid and sticky included.
    pub mode: u32,
    /// Its owner's user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its modification time, in seconds since the epoch.
    pub mtime: u64,
    /// The package that shipped it, or `None` for synthesized and added files.
    pub package: Option<String>,
}

/// Content for a file that does not come from a package.
pub enum Content<'a> {
    /// These bytes.
    Bytes(&'a [u8]),
    /// The content of this file on the host, read as it is added.
    Host(&'a Path),
}

/// What one package left in the tree.
#[derive(Clone, Debug, Default)]
pub struct Unpacked {
    /// Regular files kept, with their MD5, in archive order.
    pub md5sums: Vec<(String, String)>,
    /// How many entries slicing dropped.
    pub dropped: usize,
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
struct Sealed {
    segment: Segment,
    _temp: Option<tempfile::NamedTempFile>,
}

/// The image tree under assembly.
pub struct Rootfs {
    staging_parent: PathBuf,
    sealed: Vec<Sealed>,
    /// The open segment, holding the contents staged from `staging_start` on.
    staging: tempfile::NamedTempFile,
    staging_start: u64,
    staged_len: u64,
    layers: Vec<BTreeMap<String, Node>>,
    /// The topmost layer holding each path.
    top: HashMap<String, usize>,
    slicing: Slicing,
    keep_setuid: GlobSet,
    limits: Limits,
    /// How many of the lowest layers came from a base image.
    base_layers: usize,
}

impl Rootfs {
    /// An empty tree, staging file contents in a new directory under `staging_parent`.
    pub fn new(
        staging_parent: &Path,
        slicing: Slicing,
        keep_setuid: GlobSet,
        limits: Limits,
    ) -> Result<Rootfs, Error> {
        Ok(Rootfs {
            staging: new_staging(staging_parent)?,
            staging_parent: staging_parent.to_path_buf(),
            sealed: Vec::new(),
            staging_start: 0,
            staged_len: 0,
            layers: Vec::new(),
            top: HashMap::new(),
            slicing,
            keep_setuid,
            limits,
            base_layers: 0,
        })
    }

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

    /// Says that the lowest `n` layers of a resumed tree came from a base image.
    pub fn set_base_layers(&mut self, n: usize) {
        self.base_layers = n;
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

    /// The file holding the staged content at `offset`, and where it is in that file.
    fn locate(&self, offset: u64) -> (&Path, u64) {
        if offset >= self.staging_start {
            return (self.staging.path(), offset - self.staging_start);
        }
        let i = self
            .sealed
            .partition_point(|s| s.segment.start <= offset)
            .saturating_sub(1);
        let s = &self.sealed[i].segment;
        (&s.path, offset - s.start)
    }

    /// Starts a new layer on top and returns its index.
    pub fn push_layer(&mut self) -> usize {
        self.layers.push(BTreeMap::new());
        self.layers.len() - 1
    }

    /// The node the finished image shows at `path`, without following links.
    pub fn get(&self, path: &str) -> Option<&Node> {
        let layer = *self.top.get(path)?;
        self.layers[layer].get(path)
    }

    /// Follows symlinks (in every component) inside the image root, as runtimes and every
    /// other reader of an image do ([`stack::resolve`]), and returns the path they lead to
    /// (a hard link's target, for a hard link), or `None` for a symlink loop.
    pub fn resolve(&self, path: &str) -> Option<String> {
        let mut budget = stack::MAX_LINK_STEPS;
        let real = stack::resolve(path, |p| self.link_at(p), &mut budget).ok()?;
        match self.get(&real).map(|n| &n.kind) {
            Some(NodeKind::Hardlink(target)) => Some(target.clone()),
            _ => Some(real),
        }
    }

    /// The target of the symlink at `path`, if it is one.
    fn link_at(&self, path: &str) -> Option<&str> {
        match &self.get(path)?.kind {
            NodeKind::Symlink(target) => Some(target),
            _ => None,
        }
    }

    /// The content of the regular file at `path`, following links.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let real = self.resolve(path)?;
        match &self.get(&real)?.kind {
            NodeKind::File { offset, size, .. } => {
                let (path, at) = self.locate(*offset);
                let mut f = File::open(path).ok()?;
                f.seek(SeekFrom::Start(at)).ok()?;
                let mut out = Vec::with_capacity(*size as usize);
                f.take(*size).read_to_end(&mut out).ok()?;
                Some(out)
            }
            _ => None,
        }
    }

    /// Whether the finished image has something at `path`, following links.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_some_and(|p| self.get(&p).is_some())
    }

    /// The paths under `dir` (following links to reach it) in the finished image, sorted.
    pub fn paths_under(&self, dir: &str) -> Vec<String> {
        let Some(real) = self.resolve(dir) else {
            return Vec::new();
        };
        let prefix = format!("{real}/");
        let mut out: Vec<String> = self
            .top
            .keys()
            .filter(|p| p.starts_with(&prefix))
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// The regular files under `dir` (following links to reach it), sorted by path.
    pub fn files_under(&self, dir: &str) -> Vec<String> {
        let mut out = self.paths_under(dir);
        out.retain(|p| {
            matches!(
                self.get(p).map(|n| &n.kind),
                Some(NodeKind::File { .. } | NodeKind::Hardlink(_))
            )
        });
        out
    }

    /// Streams a package's data archive into `layer`.
    ///
    /// `replaces` lists the packages this one declares `Replaces:` on: as with dpkg, it may
    /// overwrite their files; any other package's different file at the same path is a
    /// conflict.
    pub fn add_package<R: Read>(
        &mut self,
        layer: usize,
        package: &str,
        replaces: &[String],
        data: R,
    ) -> Result<Unpacked, Error> {
        let origin = format!("package {package}");
        let limits = self.limits;
        let mut unpacking = PackageUnpack {
            tree: self,
            layer,
            package,
            replaces,
            origin: &origin,
            unpacked: Unpacked::default(),
            dropped_files: HashSet::new(),
            md5s: HashMap::new(),
        };
        overlay::apply(data, &limits, &mut unpacking).map_err(|e| e.within(&origin))?;
        Ok(unpacking.unpacked)
    }

    /// Reads a layer of a base image into `layer` as an overlay filesystem stacks it:
    /// `.wh.NAME` deletes NAME from the layers below, and `.wh..wh..opq` empties its
    /// directory below. Names are normalised as runtimes do (an absolute name is taken from
    /// the root), `..` is refused and the size caps apply as for packages, but nothing is
    /// sliced, moved or stripped: the base's layers are kept as they are, and
    /// the tree only learns what they hold. Device nodes and FIFOs stay in the layer and
    /// out of the tree.
    pub fn add_image_layer<R: Read>(
        &mut self,
        layer: usize,
        origin: &str,
        data: R,
    ) -> Result<(), Error> {
        let limits = self.limits;
        let mut stacking = BaseStack {
            tree: self,
            layer,
            steps: stack::MAX_LINK_STEPS,
        };
        overlay::apply(data, &limits, &mut stacking).map_err(|e| e.within(origin))?;
        self.base_layers = layer + 1;
        Ok(())
    }

    /// Puts a base layer's entry into `layer`, replacing whatever the layers below had
    /// there (all of it, unless both are directories).
    fn put_image_entry(&mut self, layer: usize, entry: overlay::Entry<'_>) -> Result<(), Unpack> {
        let refuse = |reason: String| Unpack::refused(&entry.raw, reason);
        checked(&entry)?;
        let kind = match &entry.kind {
            EntryKind::Dir => NodeKind::Dir,
            EntryKind::Symlink(link) => NodeKind::Symlink(link.clone()),
            EntryKind::Hardlink(link) => {
                let target = overlay::normalize(link).map_err(refuse)?;
                if !matches!(
                    self.layers[layer].get(&target).map(|n| &n.kind),
                    Some(NodeKind::File { .. })
                ) {
                    return Err(refuse(format!(
                        "a hard link to {target:?}, which is not an earlier file of this layer"
                    )));
                }
                NodeKind::Hardlink(target)
            }
            EntryKind::File => {
                let (kind, _) = self
                    .stage(
                        &mut (&mut *entry.content).take(entry.size + 1),
                        entry.size,
                        false,
                    )
                    .map_err(|e| refuse(e.to_string()))?;
                kind
            }
            _ => return Ok(()),
        };
        if kind != NodeKind::Dir {
            self.delete_below(layer, &entry.path, true);
        }
        let node = Node {
            kind,
            mode: entry.mode,
            uid: id(&entry, entry.uid)?,
            gid: id(&entry, entry.gid)?,
            mtime: entry.mtime,
            package: None,
        };
        self.layers[layer].insert(entry.path.clone(), node);
        self.top.insert(entry.path, layer);
        Ok(())
    }

    /// Deletes `path` from the base image with a whiteout in `layer`, which sits on the
    /// base's layers.
    pub fn remove(&mut self, layer: usize, path: &str, mtime: u64) -> Result<(), Error> {
        let refuse = |reason: &str| Error::Refused {
            origin: "remove".into(),
            path: format!("/{path}"),
            reason: reason.to_string(),
        };
        match self.top.get(path) {
            Some(l) if *l < self.base_layers => {}
            Some(_) => {
                return Err(refuse(
                    "bareboat adds it: leave its package out, or drop it with [slice] drop",
                ));
            }
            None => {
                return Err(refuse(
                    "the base image has nothing at this path (a path through a symlink must be given as the real path)",
                ));
            }
        }
        self.delete_below(layer, path, true);
        let parent = path.rsplit_once('/').map_or("", |(p, _)| p);
        // The whiteout's directories keep their metadata from below: an upper layer's
        // directory replaces the lower one's mode and owner.
        // (A directory the base's tar only implies is implied again.)
        let mut dir = parent;
        while !dir.is_empty() {
            if let Some(node) = self.get(dir).cloned() {
                self.layers[layer].insert(dir.to_string(), node);
            }
            dir = dir.rsplit_once('/').map_or("", |(p, _)| p);
        }
        let marker = Whiteout::marker(path);
        let (kind, _) = self
            .stage(&mut io::empty(), 0, false)
            .map_err(|e| refuse(&e.to_string()))?;
        // The marker is in the layer, not in the image the tree shows.
        self.layers[layer].insert(marker, synthesized(kind, 0o644, (0, 0), mtime));
        Ok(())
    }

    /// Deletes from the layers below `layer` everything under `path`, and `path` itself
    /// when `with_self`.
    fn delete_below(&mut self, layer: usize, path: &str, with_self: bool) {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        for nodes in &mut self.layers[..layer] {
            let mut doomed: Vec<String> = nodes
                .range::<str, _>((
                    std::ops::Bound::Included(prefix.as_str()),
                    std::ops::Bound::Unbounded,
                ))
                .map(|(p, _)| p)
                .take_while(|p| p.starts_with(&prefix))
                .cloned()
                .collect();
            if with_self && nodes.contains_key(path) {
                doomed.push(path.to_string());
            }
            for p in doomed {
                nodes.remove(&p);
                if self.top.get(&p).is_some_and(|l| *l < layer) {
                    self.top.remove(&p);
                }
            }
        }
    }

    /// Adds a regular file that no package ships.
    pub fn add_file(
        &mut self,
        layer: usize,
        path: &str,
        content: Content<'_>,
        mode: u32,
        owner: (u32, u32),
        mtime: u64,
    ) -> Result<(), Error> {
        let origin = "bareboat".to_string();
        let io_err = |e: io::Error| Error::Io {
            origin: path.to_string(),
            error: e,
        };
        let kind = match content {
            Content::Bytes(b) => self.stage(&mut &b[..], b.len() as u64, false),
            Content::Host(host) => {
                let f = File::open(host).map_err(|e| Error::Io {
                    origin: host.display().to_string(),
                    error: e,
                })?;
                let size = f.metadata().map_err(io_err)?.len();
                self.stage(&mut f.take(size + 1), size, false)
            }
        }
        .map_err(io_err)?
        .0;
        self.insert_replacing(layer, path, synthesized(kind, mode, owner, mtime), &origin)
    }

    /// Adds a directory that no package ships.
    pub fn add_dir(
        &mut self,
        layer: usize,
        path: &str,
        mode: u32,
        owner: (u32, u32),
        mtime: u64,
    ) -> Result<(), Error> {
        let node = synthesized(NodeKind::Dir, mode, owner, mtime);
        self.insert_replacing(layer, path, node, "bareboat")
    }

    /// Adds a symlink that no package ships.
    pub fn add_symlink(
        &mut self,
        layer: usize,
        path: &str,
        target: &str,
        mtime: u64,
    ) -> Result<(), Error> {
        let node = synthesized(NodeKind::Symlink(target.to_string()), 0o777, (0, 0), mtime);
        self.insert_replacing(layer, path, node, "bareboat")
    }

    /// Moves a file within one layer, as when a debug image's busybox goes to `/busybox`.
    pub fn rename(&mut self, layer: usize, from: &str, to: &str) -> Result<(), Error> {
        let node = self.layers[layer]
            .remove(from)
            .ok_or_else(|| Error::Refused {
                origin: "bareboat".into(),
                path: from.to_string(),
                reason: "not in this layer, so it cannot be moved".into(),
            })?;
        self.top.remove(from);
        self.insert_replacing(layer, to, node, "bareboat")
    }

    /// The newest mtime in a layer.
    pub fn newest(&self, layer: usize) -> u64 {
        self.layers[layer]
            .values()
            .map(|n| n.mtime)
            .max()
            .unwrap_or(0)
    }

    /// The newest mtime in the layers below `layer`: what a layer of bareboat's own files,
    /// with no packages to date it, is dated by.
    pub fn newest_below(&self, layer: usize) -> u64 {
        (0..layer).map(|l| self.newest(l)).max().unwrap_or(0)
    }

    /// A layer's entries in tar order: sorted by path, every parent directory present, and
    /// each set of hard links carried by its first path.
    pub fn layer_entries(&self, layer: usize) -> Vec<Entry> {
        let nodes = &self.layers[layer];
        let newest = self.newest(layer);
        // Parents that the layer lacks are implied directories.
        let mut implied: BTreeMap<String, Node> = BTreeMap::new();
        for path in nodes.keys() {
            let mut p = path.as_str();
            while let Some((parent, _)) = p.rsplit_once('/') {
                if !nodes.contains_key(parent) && !implied.contains_key(parent) {
                    implied.insert(
                        parent.to_string(),
                        Node {
                            kind: NodeKind::Dir,
                            mode: 0o755,
                            uid: 0,
                            gid: 0,
                            mtime: newest,
                            package: None,
                        },
                    );
                }
                p = parent;
            }
        }
        // The first path (in tar order) of each hard-link set carries the content.
        let mut carrier: HashMap<&str, &str> = HashMap::new();
        for (path, node) in nodes {
            if let NodeKind::Hardlink(target) = &node.kind {
                let first = carrier.entry(target.as_str()).or_insert(target.as_str());
                if path.as_str() < *first {
                    *first = path.as_str();
                }
            }
        }
        let merged = nodes.iter().chain(implied.iter());
        let mut all: Vec<(&String, &Node)> = merged.collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.into_iter()
            .map(|(path, node)| {
                let kind = match &node.kind {
                    NodeKind::Dir => Kind::Dir,
                    NodeKind::Symlink(t) => Kind::Symlink(t.clone()),
                    NodeKind::File { .. } => match carrier.get(path.as_str()) {
                        Some(first) if first != path => Kind::Hardlink(first.to_string()),
                        _ => self.staged_content(&node.kind),
                    },
                    NodeKind::Hardlink(target) => {
                        let first = carrier[target.as_str()];
                        if first == path {
                            self.staged_content(&nodes[target].kind)
                        } else {
                            Kind::Hardlink(first.to_string())
                        }
                    }
                };
                Entry {
                    path: path.clone(),
                    kind,
                    mode: node.mode,
                    uid: node.uid,
                    gid: node.gid,
                    mtime: node.mtime,
                }
            })
            .collect()
    }

    /// The layer entry kind that reads a staged file's content.
    fn staged_content(&self, kind: &NodeKind) -> Kind {
        let NodeKind::File {
            offset,
            size,
            sha256,
            ..
        } = kind
        else {
            unreachable!("hard links point at files")
        };
        let (source, at) = self.locate(*offset);
        Kind::File {
            source: source.to_path_buf(),
            offset: at,
            size: *size,
            sha256: *sha256,
        }
    }

    fn filter_mode(&self, path: &str, mode: u32, kind: &NodeKind) -> u32 {
        let special = matches!(kind, NodeKind::File { .. } | NodeKind::Hardlink(_));
        if special && mode & 0o6000 != 0 && !self.keep_setuid.is_match(path) {
            mode & !0o6000
        } else {
            mode
        }
    }

    /// Appends `size` bytes of content to the staging area; with `with_md5`, also returns
    /// their MD5.
    fn stage(
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

    fn append_staged(
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

    /// Refuses a path whose parent, in the image as built so far, is a symlink.
    fn check_parents(&self, path: &str, origin: &str) -> Result<(), Error> {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            if let Some(Node {
                kind: NodeKind::Symlink(target),
                ..
            }) = self.get(parent)
            {
                return Err(Error::Refused {
                    origin: origin.to_string(),
                    path: path.to_string(),
                    reason: format!(
                        "its parent {parent:?} is a symlink (to {target:?}): writing through it is refused"
                    ),
                });
            }
            end += i + 1;
        }
        Ok(())
    }

    /// Inserts a package's node, unless the image has the same thing at `path` already.
    fn insert(
        &mut self,
        layer: usize,
        path: &str,
        node: Node,
        replaces: &[String],
        origin: &str,
    ) -> Result<(), Error> {
        self.check_parents(path, origin)?;
        if let Some(existing) = self.get(path) {
            let same = match (&existing.kind, &node.kind) {
                (NodeKind::Dir, NodeKind::Dir) => true,
                (NodeKind::Symlink(a), NodeKind::Symlink(b)) => a == b,
                (NodeKind::File { sha256: a, .. }, NodeKind::File { sha256: b, .. }) => a == b,
                _ => false,
            };
            if same {
                return Ok(());
            }
            let first = match &existing.package {
                Some(p) if replaces.contains(p) => None,
                Some(p) => Some(format!("package {p}")),
                None if self.top[path] < self.base_layers => Some("the base image".into()),
                None => Some("package bareboat".into()),
            };
            if let Some(first) = first {
                return Err(Error::Conflict {
                    path: format!("/{path}"),
                    first,
                    second: origin.to_string(),
                });
            }
        }
        self.layers[layer].insert(path.to_string(), node);
        self.top.insert(path.to_string(), layer);
        Ok(())
    }

    /// Inserts a node that bareboat makes, replacing whatever the path held.
    fn insert_replacing(
        &mut self,
        layer: usize,
        path: &str,
        node: Node,
        origin: &str,
    ) -> Result<(), Error> {
        self.check_parents(path, origin)?;
        self.layers[layer].insert(path.to_string(), node);
        self.top.insert(path.to_string(), layer);
        Ok(())
    }
}

/// Why unpacking an archive into the tree stopped: an entry refused (named as the archive
/// names it), or a problem with the tree.
enum Unpack {
    Refused(overlay::Refusal),
    Tree(Error),
}

impl Unpack {
    fn refused(raw: &str, reason: String) -> Unpack {
        Unpack::Refused(overlay::Refusal {
            entry: raw.to_string(),
            reason,
        })
    }

    /// The error, for an archive that `origin` names.
    fn within(self, origin: &str) -> Error {
        match self {
            Unpack::Refused(r) => Error::Refused {
                origin: origin.to_string(),
                path: r.entry,
                reason: r.reason,
            },
            Unpack::Tree(e) => e,
        }
    }
}

impl From<overlay::Refusal> for Unpack {
    fn from(r: overlay::Refusal) -> Unpack {
        Unpack::Refused(r)
    }
}

impl From<Error> for Unpack {
    fn from(e: Error) -> Unpack {
        Unpack::Tree(e)
    }
}

/// Refuses an entry whose header the tree cannot keep: a field that does not parse, or a
/// link to nothing.
fn checked(entry: &overlay::Entry<'_>) -> Result<(), Unpack> {
    if let Some(field) = entry.malformed {
        return Err(Unpack::refused(
            &entry.raw,
            format!("its header's {field} does not parse"),
        ));
    }
    match &entry.kind {
        EntryKind::Symlink(t) | EntryKind::Hardlink(t) if t.is_empty() || t.contains('\0') => Err(
            Unpack::refused(&entry.raw, "a link with an empty target".into()),
        ),
        _ => Ok(()),
    }
}

/// A user or group id of `entry`, which the tree keeps in 32 bits, as Linux does.
fn id(entry: &overlay::Entry<'_>, id: u64) -> Result<u32, Unpack> {
    u32::try_from(id)
        .map_err(|_| Unpack::refused(&entry.raw, format!("the id {id} is past 32 bits")))
}

/// The overlay engine's visitor for a base image's layer: each entry, whiteouts included,
/// lands under its parent resolved through the symlinks below, as runtimes and every other
/// reader of an image put it ([`stack::landing`]); whiteouts delete from the layers below,
/// and every other entry replaces what they had at its path.
struct BaseStack<'t> {
    tree: &'t mut Rootfs,
    layer: usize,
    /// What is left of the layer's budget for following symlinks.
    steps: u64,
}

impl BaseStack<'_> {
    /// Where the entry `raw`, named `path`, lands.
    fn land(&mut self, raw: &str, path: &str) -> Result<String, Unpack> {
        let tree = &*self.tree;
        stack::landing(
            path,
            |p| tree.link_at(p),
            &mut self.steps,
            stack::MAX_LINK_STEPS,
        )
        .map_err(|reason| Unpack::refused(raw, reason))
    }
}

impl overlay::Visitor for BaseStack<'_> {
    type Error = Unpack;

    fn visit(&mut self, change: Change<'_>) -> Result<(), Unpack> {
        match change {
            Change::Delete { raw, path } => {
                let path = self.land(&raw, &path)?;
                self.tree.delete_below(self.layer, &path, true);
            }
            Change::Empty { raw, dir } => {
                let marker = self.land(&raw, &Whiteout::opaque_marker(&dir))?;
                if let Some(Whiteout::Opaque(dir)) = Whiteout::of(&marker) {
                    self.tree.delete_below(self.layer, &dir, false);
                }
            }
            Change::Put(mut entry) => {
                entry.path = self.land(&entry.raw, &entry.path)?;
                self.tree.put_image_entry(self.layer, entry)?;
            }
        }
        Ok(())
    }
}

/// The overlay engine's visitor for a package's data archive: each entry moved where merged
/// /usr puts it, sliced, staged, and inserted unless it conflicts.
struct PackageUnpack<'t, 'p> {
    tree: &'t mut Rootfs,
    layer: usize,
    package: &'p str,
    replaces: &'p [String],
    origin: &'p str,
    unpacked: Unpacked,
    /// Files slicing dropped: a hard link to one is dropped with it.
    dropped_files: HashSet<String>,
    /// What dpkg's md5sums list; only package files need it.
    md5s: HashMap<String, [u8; 16]>,
}

impl overlay::Visitor for PackageUnpack<'_, '_> {
    type Error = Unpack;

    fn visit(&mut self, change: Change<'_>) -> Result<(), Unpack> {
        let entry = match change {
            Change::Put(entry) => entry,
            // In an image it would delete what is below: no package may ship one.
            Change::Delete { raw, .. } | Change::Empty { raw, .. } => {
                return Err(Unpack::refused(
                    &raw,
                    "a whiteout's name, which an image reads as a deletion, is refused".into(),
                ));
            }
        };
        let refuse = |reason: String| Unpack::refused(&entry.raw, reason);
        if entry.raw.starts_with('/') {
            return Err(refuse("absolute entry names are refused".into()));
        }
        checked(&entry)?;
        // A bookworm-style top-level directory becomes its place under usr/.
        let path = match &entry.kind {
            EntryKind::Dir if MERGED_DIRS.contains(&entry.path.as_str()) => {
                format!("usr/{}", entry.path)
            }
            _ => merged_usr(&entry.path),
        };
        let kept = self.tree.slicing.keeps(self.package, &path);
        let node_kind = match &entry.kind {
            EntryKind::Dir => NodeKind::Dir,
            EntryKind::Symlink(link) => NodeKind::Symlink(link.clone()),
            EntryKind::Hardlink(link) if link.starts_with('/') => {
                return Err(refuse("absolute link targets are refused".into()));
            }
            EntryKind::Hardlink(link) => {
                NodeKind::Hardlink(merged_usr(&overlay::normalize(link).map_err(refuse)?))
            }
            EntryKind::File if !kept => {
                // Not staged; a hard link to it is dropped with it.
                self.unpacked.dropped += 1;
                self.dropped_files.insert(path);
                return Ok(());
            }
            EntryKind::File => {
                let size = entry.size;
                let (kind, md5) = self
                    .tree
                    .stage(&mut (&mut *entry.content).take(size + 1), size, true)
                    .map_err(|e| refuse(e.to_string()))?;
                self.md5s.extend(md5.map(|m| (path.clone(), m)));
                kind
            }
            EntryKind::CharDevice | EntryKind::BlockDevice => {
                return Err(refuse("device nodes are refused".into()));
            }
            EntryKind::Fifo => return Err(refuse("FIFOs are refused".into())),
            EntryKind::Other => return Err(refuse("an entry of a type no filesystem has".into())),
        };
        let node_kind = match node_kind {
            _ if !kept => None,
            NodeKind::Hardlink(target) if self.dropped_files.contains(&target) => None,
            NodeKind::Hardlink(target) => Some(self.hardlink(target, &entry.raw)?),
            k => Some(k),
        };
        let Some(node_kind) = node_kind else {
            // Sliced away, or a hard link to content slicing dropped.
            self.unpacked.dropped += 1;
            return Ok(());
        };
        let node = Node {
            mode: self.tree.filter_mode(&path, entry.mode, &node_kind),
            kind: node_kind,
            uid: id(&entry, entry.uid)?,
            gid: id(&entry, entry.gid)?,
            mtime: entry.mtime,
            package: Some(self.package.to_string()),
        };
        let md5 = match &node.kind {
            NodeKind::Hardlink(target) => self.md5s.get(target).copied(),
            _ => self.md5s.get(&path).copied(),
        };
        self.tree
            .insert(self.layer, &path, node, self.replaces, self.origin)?;
        if let Some(md5) = md5 {
            self.unpacked.md5sums.push((path, hex::encode(md5)));
        }
        Ok(())
    }
}

impl PackageUnpack<'_, '_> {
    /// A hard link to `target`, which must be an earlier file of this package.
    fn hardlink(&self, target: String, raw: &str) -> Result<NodeKind, Unpack> {
        match self.tree.layers[self.layer].get(&target) {
            Some(Node {
                kind: NodeKind::File { .. },
                package: Some(p),
                ..
            }) if p == self.package => Ok(NodeKind::Hardlink(target)),
            _ => Err(Unpack::refused(
                raw,
                format!("a hard link to {target:?}, which is not an earlier file of this package"),
            )),
        }
    }
}

fn new_staging(parent: &Path) -> Result<tempfile::NamedTempFile, Error> {
    tempfile::Builder::new()
        .prefix("bareboat-staging-")
        .tempfile_in(parent)
        .map_err(|e| Error::Io {
            origin: parent.display().to_string(),
            error: e,
        })
}

fn synthesized(kind: NodeKind, mode: u32, (uid, gid): (u32, u32), mtime: u64) -> Node {
    Node {
        kind,
        mode,
        uid,
        gid,
        mtime,
        package: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw tar entry: its name is written as is, so escaping names can be tested.
    enum E<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8], u32),
        Symlink(&'a str, &'a str),
        Hardlink(&'a str, &'a str),
        Device(&'a str),
    }

    fn tar_of(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_old();
            let (name, kind, data, mode, link): (&str, tar::EntryType, &[u8], u32, Option<&str>) =
                match e {
                    E::Dir(n) => (n, tar::EntryType::Directory, b"", 0o755, None),
                    E::File(n, d, m) => (n, tar::EntryType::Regular, d, *m, None),
                    E::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", 0o777, Some(t)),
                    E::Hardlink(n, t) => (n, tar::EntryType::Link, b"", 0o644, Some(t)),
                    E::Device(n) => (n, tar::EntryType::Char, b"", 0o600, None),
                };
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                old.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_entry_type(kind);
            h.set_size(data.len() as u64);
            h.set_mode(mode);
            h.set_mtime(1000);
            h.set_uid(0);
            h.set_gid(0);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn tree() -> (tempfile::TempDir, Rootfs) {
        let dir = tempfile::tempdir().unwrap();
        let t = Rootfs::new(
            dir.path(),
            Slicing::default(),
            GlobSet::empty(),
            Limits::BUILD,
        )
        .unwrap();
        (dir, t)
    }

    fn add(t: &mut Rootfs, layer: usize, pkg: &str, entries: &[E]) -> Result<Unpacked, Error> {
        let bytes = tar_of(entries);
        t.add_package(layer, pkg, &[], &bytes[..])
    }

    #[test]
    fn escapes_are_refused() {
        for (entries, needle) in [
            (vec![E::File("../etc/passwd", b"x", 0o644)], "'..'"),
            (vec![E::File("/etc/passwd", b"x", 0o644)], "absolute"),
            (vec![E::Device("./dev/sda")], "device nodes"),
            // An image would read it as deleting usr/lib from the layers below.
            (vec![E::File("./usr/.wh.lib", b"", 0o644)], "whiteout"),
            (
                vec![
                    E::Symlink("./etc/evil", "/"),
                    E::File("./etc/evil/passwd", b"x", 0o644),
                ],
                "is a symlink",
            ),
            (
                vec![E::Hardlink("./usr/bin/a", "etc/shadow")],
                "not an earlier file of this package",
            ),
            (
                vec![
                    E::Hardlink("./usr/bin/a", "./usr/bin/b"),
                    E::File("./usr/bin/b", b"x", 0o755),
                ],
                "not an earlier file",
            ),
        ] {
            let (_d, mut t) = tree();
            let layer = t.push_layer();
            let e = add(&mut t, layer, "evil", &entries)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle) && e.contains("package evil"), "{e}");
        }
    }

    #[test]
    fn a_link_from_another_package_is_not_written_through() {
        let (_d, mut t) = tree();
        let layer = t.push_layer();
        add(&mut t, layer, "a", &[E::Symlink("./opt/data", "/etc")]).unwrap();
        let e = add(
            &mut t,
            layer,
            "b",
            &[E::File("./opt/data/passwd", b"x", 0o644)],
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"opt/data\" is a symlink"), "{e}");
    }

    #[test]
    fn absolute_symlinks_are_kept_and_resolve_inside_the_root() {
        let (_d, mut t) = tree();
        let layer = t.push_layer();
        add(
            &mut t,
            layer,
            "openjdk",
            &[
                E::File("./etc/ssl/certs/java/cacerts", b"store", 0o644),
                E::Symlink(
                    "./usr/lib/jvm/lib/security/cacerts",
                    "/etc/ssl/certs/java/cacerts",
                ),
                E::Symlink(
                    "./usr/lib/escape",
                    "../../../../../etc/ssl/certs/java/cacerts",
                ),
            ],
        )
        .unwrap();
        let link = t.get("usr/lib/jvm/lib/security/cacerts").unwrap();
        assert_eq!(
            link.kind,
            NodeKind::Symlink("/etc/ssl/certs/java/cacerts".into())
        );
        assert_eq!(
            t.read("usr/lib/jvm/lib/security/cacerts").unwrap(),
            b"store"
        );
        assert_eq!(t.read("usr/lib/escape").unwrap(), b"store");
    }

    #[test]
    fn bookworm_paths_move_under_usr() {
        let (_d, mut t) = tree();
        let layer = t.push_layer();
        let u = add(
            &mut t,
            layer,
            "libc6",
            &[
                E::Dir("./lib/"),
                E::Dir("./lib/x86_64-linux-gnu/"),
                E::File("./lib/x86_64-linux-gnu/libc.so.6", b"elf", 0o755),
                E::Symlink(
                    "./lib64/ld-linux-x86-64.so.2",
                    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                ),
            ],
        )
        .unwrap();
        assert!(t.get("usr/lib/x86_64-linux-gnu/libc.so.6").is_some());
        assert!(t.get("lib").is_none() && t.get("usr/lib").is_some());
        assert!(t.get("usr/lib64/ld-linux-x86-64.so.2").is_some());
        assert_eq!(u.md5sums.len(), 1);
        assert_eq!(u.md5sums[0].0, "usr/lib/x86_64-linux-gnu/libc.so.6");
    }

    #[test]
    fn conflicts_are_reported_unless_replaced() {
        let (_d, mut t) = tree();
        let layer = t.push_layer();
        add(
            &mut t,
            layer,
            "a",
            &[E::File("./usr/bin/tool", b"one", 0o755)],
        )
        .unwrap();
        add(
            &mut t,
            layer,
            "same",
            &[E::File("./usr/bin/tool", b"one", 0o755)],
        )
        .unwrap();
        let e = add(
            &mut t,
            layer,
            "b",
            &[E::File("./usr/bin/tool", b"two", 0o755)],
        )
        .unwrap_err();
        assert!(
            matches!(&e, Error::Conflict { first, .. } if first == "package a"),
            "{e}"
        );
        let bytes = tar_of(&[E::File("./usr/bin/tool", b"two", 0o755)]);
        t.add_package(layer, "b", &["a".into()], &bytes[..])
            .unwrap();
        assert_eq!(t.read("usr/bin/tool").unwrap(), b"two");
    }

    #[test]
    fn setuid_is_stripped_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut keep = globset::GlobSetBuilder::new();
        keep.add(globset::Glob::new("usr/bin/ping").unwrap());
        let mut t = Rootfs::new(
            dir.path(),
            Slicing::default(),
            keep.build().unwrap(),
            Limits::BUILD,
        )
        .unwrap();
        let layer = t.push_layer();
        add(
            &mut t,
            layer,
            "p",
            &[
                E::File("./usr/bin/su", b"x", 0o4755),
                E::File("./usr/bin/ping", b"y", 0o4755),
            ],
        )
        .unwrap();
        assert_eq!(t.get("usr/bin/su").unwrap().mode, 0o755);
        assert_eq!(t.get("usr/bin/ping").unwrap().mode, 0o4755);
    }

    #[test]
    fn bombs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits {
            max_file_size: 1 << 20,
            max_size: 3 << 20,
            max_entries: 100,
        };
        let big = vec![0u8; 2 << 20];
        let mut t = Rootfs::new(dir.path(), Slicing::default(), GlobSet::empty(), limits).unwrap();
        let layer = t.push_layer();
        let e = add(&mut t, layer, "bomb", &[E::File("./big", &big, 0o644)]).unwrap_err();
        assert!(e.to_string().contains("decompression bomb"), "{e}");
        let mb = vec![0u8; 1 << 20];
        let names: Vec<String> = (0..4).map(|i| format!("./f{i}")).collect();
        let entries: Vec<E> = names.iter().map(|n| E::File(n, &mb, 0o644)).collect();
        let e = add(&mut t, layer, "bomb", &entries).unwrap_err();
        assert!(e.to_string().contains("pass 3145728 bytes in all"), "{e}");
        let names: Vec<String> = (0..101).map(|i| format!("./d{i}/")).collect();
        let entries: Vec<E> = names.iter().map(|n| E::Dir(n)).collect();
        let e = add(&mut t, layer, "bomb", &entries).unwrap_err();
        assert!(e.to_string().contains("entries"), "{e}");
    }

    #[test]
    fn slicing_and_md5sums_agree() {
        let (_d, mut t) = tree();
        let layer = t.push_layer();
        let u = add(
            &mut t,
            layer,
            "p",
            &[
                E::File("./usr/share/doc/p/copyright", b"c", 0o644),
                E::File("./usr/share/doc/p/changelog.gz", b"l", 0o644),
                E::File("./usr/share/man/man1/p.1.gz", b"m", 0o644),
                E::Hardlink("./usr/share/man/man1/q.1.gz", "./usr/share/man/man1/p.1.gz"),
                E::File("./usr/bin/p", b"p", 0o755),
            ],
        )
        .unwrap();
        let kept: Vec<&str> = u.md5sums.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(kept, ["usr/share/doc/p/copyright", "usr/bin/p"]);
        assert_eq!(u.dropped, 3);
    }

    #[test]
    fn a_package_kept_in_part_records_only_the_kept_files() {
        let dir = tempfile::tempdir().unwrap();
        let slicing = Slicing::default()
            .keeping_only(&[("libc-bin".into(), vec!["usr/lib/locale/C.utf8".into()])]);
        let mut t = Rootfs::new(dir.path(), slicing, GlobSet::empty(), Limits::BUILD).unwrap();
        let layer = t.push_layer();
        let entries = [
            E::Dir("./usr/"),
            E::Dir("./usr/lib/"),
            E::Dir("./usr/lib/locale/"),
            E::Dir("./usr/lib/locale/C.utf8/"),
            E::File("./usr/lib/locale/C.utf8/LC_CTYPE", b"ctype", 0o644),
            E::File("./usr/sbin/ldconfig", b"elf", 0o755),
            E::Hardlink("./usr/sbin/ldconfig.real", "./usr/sbin/ldconfig"),
            E::Dir("./etc/"),
        ];
        let u = add(&mut t, layer, "libc-bin", &entries).unwrap();
        let kept: Vec<&str> = u.md5sums.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(kept, ["usr/lib/locale/C.utf8/LC_CTYPE"]);
        assert_eq!(u.dropped, 3);
        assert_eq!(t.read("usr/lib/locale/C.utf8/LC_CTYPE").unwrap(), b"ctype");
        assert!(t.get("usr/lib/locale").is_some());
        assert!(t.get("usr/sbin/ldconfig").is_none() && t.get("etc").is_none());
        // Another package's paths are not limited.
        add(&mut t, layer, "libc6", &entries[5..7]).unwrap();
        assert!(t.get("usr/sbin/ldconfig").is_some());
    }

    #[test]
    fn layer_entries_are_sorted_with_parents_and_hardlinks_after_their_file() {
        let (_d, mut t) = tree();
        let layer = t.push_layer();
        add(
            &mut t,
            layer,
            "p",
            &[
                E::File("./usr/bin/z", b"same", 0o755),
                E::Hardlink("./usr/bin/a", "./usr/bin/z"),
            ],
        )
        .unwrap();
        let entries = t.layer_entries(layer);
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["usr", "usr/bin", "usr/bin/a", "usr/bin/z"]);
        assert!(matches!(entries[2].kind, Kind::File { .. }));
        assert_eq!(entries[3].kind, Kind::Hardlink("usr/bin/a".into()));
    }

    fn add_base(t: &mut Rootfs, entries: &[E]) -> Result<usize, Error> {
        let bytes = tar_of(entries);
        let layer = t.push_layer();
        t.add_image_layer(layer, "base", &bytes[..])?;
        Ok(layer)
    }

    #[test]
    fn base_layers_stack_as_overlays_do_and_removals_are_whiteouts() {
        let (_d, mut t) = tree();
        add_base(
            &mut t,
            &[
                E::Dir("a/"),
                E::File("a/x", b"x", 0o644),
                E::File("a/y", b"y", 0o4755),
                E::File("b/z", b"z", 0o644),
                E::File("c/d/e", b"e", 0o644),
                E::File("keep/f", b"f", 0o644),
            ],
        )
        .unwrap();
        add_base(
            &mut t,
            &[
                E::File("a/.wh.x", b"", 0o644),
                E::File("b/.wh..wh..opq", b"", 0o644),
                E::File("b/w", b"w", 0o644),
                // A file where a directory was hides all under it.
                E::File("c", b"c", 0o644),
            ],
        )
        .unwrap();
        assert!(t.get("a/x").is_none());
        // Nothing is stripped from a base: its setuid bit stays as its layer has it.
        assert_eq!(t.get("a/y").unwrap().mode, 0o4755);
        assert!(t.get("b/z").is_none());
        assert_eq!(t.read("b/w").unwrap(), b"w");
        assert!(t.get("c/d/e").is_none());
        assert_eq!(t.read("c").unwrap(), b"c");

        // A removal deletes a base path in a layer of its own, as a whiteout beside it,
        // under directories that keep their metadata from below.
        let layer = t.push_layer();
        t.remove(layer, "keep/f", 7).unwrap();
        assert!(t.get("keep/f").is_none());
        let entries = t.layer_entries(layer);
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["keep", "keep/.wh.f"]);
        let e = t.remove(layer, "no/such", 7).unwrap_err().to_string();
        assert!(e.contains("the base image has nothing at this path"), "{e}");

        // A package's file that differs from the base's is a conflict naming the base.
        let layer = t.push_layer();
        let e = add(&mut t, layer, "p", &[E::File("./a/y", b"other", 0o755)])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("the base image") && e.contains("package p"),
            "{e}"
        );

        // Base layers are checked like packages: no escapes, no links out of the layer.
        for (entries, needle) in [
            (vec![E::File("../etc/passwd", b"x", 0o644)], "'..'"),
            (
                vec![E::Hardlink("a/h", "a/y")],
                "not an earlier file of this layer",
            ),
        ] {
            let e = add_base(&mut t, &entries).unwrap_err().to_string();
            assert!(e.contains(needle) && e.contains("base"), "{e}");
        }
    }

    #[test]
    fn base_entries_land_through_the_symlinks_below_as_runtimes_put_them() {
        let (_d, mut t) = tree();
        add_base(
            &mut t,
            &[
                E::Dir("usr/bin/"),
                E::Symlink("bin", "usr/bin"),
                E::Symlink("up", "../../usr/./bin/"),
            ],
        )
        .unwrap();
        add_base(
            &mut t,
            &[
                E::File("bin/sh", b"sh", 0o755),
                E::File("up/env", b"env", 0o755),
            ],
        )
        .unwrap();
        // Where inspect shows them, and where a runtime writes them.
        assert_eq!(t.read("usr/bin/sh").unwrap(), b"sh");
        assert_eq!(t.read("usr/bin/env").unwrap(), b"env");
        assert!(t.get("bin/sh").is_none());
        assert_eq!(t.resolve("bin/sh").as_deref(), Some("usr/bin/sh"));
        // A whiteout through the link deletes what it resolves to.
        add_base(&mut t, &[E::File("bin/.wh.sh", b"", 0o644)]).unwrap();
        assert!(t.get("usr/bin/sh").is_none());
        assert!(t.get("usr/bin/env").is_some());
        // A loop is refused, as runtimes refuse it.
        let e = add_base(
            &mut t,
            &[
                E::Symlink("l1", "l2"),
                E::Symlink("l2", "l1"),
                E::File("l1/f", b"", 0o644),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("as a loop does"), "{e}");
    }
}
