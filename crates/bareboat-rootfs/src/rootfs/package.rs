//! Unpacking a package's data archive into a layer: each entry moved where merged /usr puts
//! it, sliced, its setuid bits stripped unless kept, staged with its MD5 for dpkg's
//! md5sums, and inserted unless another package (or the base) has something else there.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use bareboat_apt::dpkg::{MERGED_DIRS, merged_usr};
use bareboat_oci::overlay::{self, Change, Kind as EntryKind};

use super::{Node, NodeKind, Rootfs, Unpack, checked, id};
use crate::Error;

impl Rootfs {
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

    pub(super) fn filter_mode(&self, path: &str, mode: u32, kind: &NodeKind) -> u32 {
        let special = matches!(kind, NodeKind::File { .. } | NodeKind::Hardlink(_));
        if special && mode & 0o6000 != 0 && !self.keep_setuid.is_match(path) {
            mode & !0o6000
        } else {
            mode
        }
    }

    /// Inserts a package's node, unless the image has the same thing at `path` already.
    pub(super) fn insert(
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
}

/// What one package left in the tree.
#[derive(Clone, Debug, Default)]
pub struct Unpacked {
    /// Regular files kept, with their MD5, in archive order.
    pub md5sums: Vec<(String, String)>,
    /// How many entries slicing dropped.
    pub dropped: usize,
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
