//! The image's file tree, assembled layer by layer from package data archives and
//! synthesized files. This module keeps the layered tree itself (each layer's nodes, the
//! topmost layer of each path, links resolved as every reader of an image resolves them)
//! and the files bareboat adds; each other concern is a module of its own, which calls it:
//! - [`staging`]: contents on disk, sealed segments and snapshots;
//! - [`package`]: a package's data archive unpacked by the policy (merged /usr, slicing,
//!   setuid, conflicts);
//! - [`base`]: a base image's layers stacked, and removals from them;
//! - [`layer`]: a layer's entries for the layer writer;
//! - [`materialize`]: a tree written out to a directory.
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

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bareboat_oci::overlay::{self, Kind as EntryKind, Limits};
use bareboat_oci::stack;
use globset::GlobSet;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::policy::Slicing;

mod base;
mod layer;
mod materialize;
mod package;
mod staging;

pub use package::Unpacked;
use staging::{Sealed, new_staging};
pub use staging::{Segment, Snapshot};

/// The staging offset of a regular file whose content is not staged here: a layer a shared
/// cache supplied whole, whose nodes are known and whose blob is used as it is. Reading it
/// fails, and so does writing it into a layer.
pub const ELSEWHERE: u64 = u64::MAX;

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

/// All of `content`, of `size` bytes.
fn read_whole(mut content: impl Read, size: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size as usize);
    content.read_to_end(&mut out)?;
    Ok(out)
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
    /// The base image's layers as they stack, while they are read.
    base: base::Base,
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
            base: base::Base::default(),
        })
    }

    /// Says that the lowest `n` layers of a resumed tree came from a base image.
    pub fn set_base_layers(&mut self, n: usize) {
        self.base_layers = n;
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

    /// The content of the regular file at `path`, following links. A file that cannot be
    /// read (its content held elsewhere, say) reads as none, with a warning.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let opened = self.open(path)?;
        let read = opened.and_then(|(content, size)| read_whole(content, size));
        read.inspect_err(|e| tracing::warn!("/{path} reads as absent: {e}"))
            .ok()
    }

    /// A reader of the content of the regular file at `path` (links followed), and its size.
    pub fn open(&self, path: &str) -> Option<io::Result<(impl Read + use<>, u64)>> {
        let real = self.resolve(path)?;
        self.content(self.get(&real)?)
    }

    /// A reader of the staged content of `node`, if it is a regular file, and its size.
    fn content(&self, node: &Node) -> Option<io::Result<(io::Take<File>, u64)>> {
        let NodeKind::File { offset, size, .. } = node.kind else {
            return None;
        };
        Some(self.locate(offset).and_then(|(staged, at)| {
            let mut f = File::open(staged)?;
            f.seek(SeekFrom::Start(at))?;
            Ok((f.take(size), size))
        }))
    }

    /// The nodes layer `layer` holds, by path: what a record of the layer keeps.
    pub fn layer_nodes(&self, layer: usize) -> &BTreeMap<String, Node> {
        &self.layers[layer]
    }

    /// The content of the regular file layer `layer` holds at `path`, whatever the layers
    /// above show there; `None` when the layer holds no regular file there.
    pub fn read_in(&self, layer: usize, path: &str) -> Option<io::Result<Vec<u8>>> {
        let opened = self.content(self.layers[layer].get(path)?)?;
        Some(opened.and_then(|(content, size)| read_whole(content, size)))
    }

    /// The paths layer `layer` shows in the finished image, in order.
    pub fn layer_paths(&self, layer: usize) -> impl Iterator<Item = &str> {
        self.layers[layer].keys().map(String::as_str)
    }

    /// How many layers the tree has.
    pub fn layer_count(&self) -> usize {
        self.layers.len()
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
fn checked(entry: &overlay::Entry<'_>) -> Result<(), overlay::Refusal> {
    let refuse = |reason: &str| overlay::Refusal {
        entry: entry.raw.clone(),
        reason: reason.to_string(),
    };
    if let Some(field) = entry.malformed {
        return Err(refuse(&format!("its header's {field} does not parse")));
    }
    match &entry.kind {
        EntryKind::Symlink(t) | EntryKind::Hardlink(t) if t.is_empty() || t.contains('\0') => {
            Err(refuse("a link with an empty target"))
        }
        _ => Ok(()),
    }
}

/// A user or group id of `entry`, which the tree keeps in 32 bits, as Linux does.
fn id(entry: &overlay::Entry<'_>, id: u64) -> Result<u32, overlay::Refusal> {
    u32::try_from(id).map_err(|_| overlay::Refusal {
        entry: entry.raw.clone(),
        reason: format!("the id {id} is past 32 bits"),
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
    use bareboat_oci::layer::Kind;

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

    #[test]
    fn content_held_elsewhere_is_never_read_or_written_but_layers_above_it_are() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = Node {
            kind: NodeKind::File {
                offset: ELSEWHERE,
                size: 4,
                sha256: [0; 32],
            },
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: 1,
            package: Some("libc6".into()),
        };
        let layer: BTreeMap<String, Node> = [("usr/lib/libc.so.6".to_string(), elsewhere)].into();
        let snapshot = Snapshot {
            layers: vec![layer],
            segments: Vec::new(),
        };
        let mut t = Rootfs::resume(
            dir.path(),
            Slicing::default(),
            GlobSet::empty(),
            Limits::BUILD,
            snapshot,
        )
        .unwrap();
        // Its node is known; its bytes are not, and nothing pretends they are.
        assert!(t.exists("usr/lib/libc.so.6"));
        assert_eq!(t.read("usr/lib/libc.so.6"), None);
        let e = t.open("usr/lib/libc.so.6").unwrap().err().unwrap();
        assert!(e.to_string().contains("held only in a layer blob"), "{e}");
        let e = t.layer_entries(0).unwrap_err();
        assert!(
            e.to_string()
                .contains("/usr/lib/libc.so.6: its content is held only"),
            "{e}"
        );
        // A layer above is written as ever.
        let above = t.push_layer();
        t.add_file(
            above,
            "app/run",
            Content::Bytes(b"#!/x\n"),
            0o755,
            (0, 0),
            2,
        )
        .unwrap();
        let entries = t.layer_entries(above).unwrap();
        assert_eq!(entries.last().unwrap().path, "app/run");
        assert_eq!(t.read("app/run").unwrap(), b"#!/x\n");
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
        let entries = t.layer_entries(layer).unwrap();
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
        let entries = t.layer_entries(layer).unwrap();
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
