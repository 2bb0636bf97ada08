//! A base image's layers in the tree: stacked by [`bareboat_oci::stack`], as inspect and
//! every other reader of an image stacks them, then put in the tree's layers, each path in
//! the layer that last wrote it; and the removals a spec makes from the base, as whiteouts
//! of a layer of their own.

use std::collections::HashMap;
use std::io::{self, Read};

use bareboat_oci::layer::Whiteout;
use bareboat_oci::overlay::{self, Kind as EntryKind};
use bareboat_oci::stack::{Filled, Hooks, Stack, Store};

use super::{Node, NodeKind, Rootfs, Unpack, checked, id, synthesized};
use crate::Error;

impl Rootfs {
    /// Reads a layer of a base image into `layer` as runtimes stack it, through
    /// [`bareboat_oci::stack`] as every reader of an image does: `.wh.NAME` deletes NAME
    /// from the layers below, `.wh..wh..opq` empties its directory below, and every entry
    /// lands under its parent resolved through the symlinks below. Names are normalised as
    /// runtimes do (an absolute name is taken from the root), `..` is refused and the size
    /// caps apply as for packages, but nothing is sliced, moved or stripped: the base's
    /// layers are kept as they are, and the tree only learns what they hold. Device nodes and
    /// FIFOs stay in the layer and out of the tree; a hard link is a file with its target's
    /// content.
    pub fn add_image_layer<R: Read>(
        &mut self,
        layer: usize,
        origin: &str,
        data: R,
    ) -> Result<(), Error> {
        let limits = self.limits;
        let mut base = std::mem::take(&mut self.base);
        let stacked = base.stack.apply(
            data,
            layer,
            &limits,
            &mut BaseEntries {
                tree: self,
                files: &mut base.files,
            },
        );
        self.base = base;
        stacked.map_err(|e| Unpack::Refused(e).within(origin))?;
        self.restack_base(layer);
        self.base_layers = layer + 1;
        Ok(())
    }

    /// Makes the tree's layers up to `top` what the base's stack shows, each path in the
    /// layer that last wrote it.
    pub(super) fn restack_base(&mut self, top: usize) {
        for nodes in &mut self.layers[..=top] {
            nodes.clear();
        }
        self.top.retain(|_, l| *l > top);
        for (path, node) in self.base.stack.iter() {
            let layer = node.layer;
            let kind = match &node.kind {
                _ if node.implied => continue,
                EntryKind::Dir => NodeKind::Dir,
                EntryKind::Symlink(target) => NodeKind::Symlink(target.clone()),
                EntryKind::File | EntryKind::Hardlink(_) => {
                    match self.base.files.get(&(layer, path.clone())) {
                        Some(kind) => kind.clone(),
                        None => continue,
                    }
                }
                _ => continue,
            };
            // Ids past 32 bits were refused as the entries were read.
            let node = Node {
                kind,
                mode: node.mode,
                uid: u32::try_from(node.uid).unwrap_or_default(),
                gid: u32::try_from(node.gid).unwrap_or_default(),
                mtime: node.mtime,
                package: None,
            };
            self.layers[layer].insert(path.clone(), node);
            self.top.insert(path.clone(), layer);
        }
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
    pub(super) fn delete_below(&mut self, layer: usize, path: &str, with_self: bool) {
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
}

/// The base's layers as they stack, and the staged content of each file and hard link of
/// theirs, by layer and path.
#[derive(Default)]
pub(super) struct Base {
    stack: Stack,
    files: HashMap<(usize, String), NodeKind>,
}

/// What the tree takes of each entry of a base layer as the stack reads it: the header
/// checked, and a file's content staged (a hard link's is its target's).
struct BaseEntries<'t> {
    tree: &'t mut Rootfs,
    files: &'t mut HashMap<(usize, String), NodeKind>,
}

impl Hooks for BaseEntries<'_> {
    fn entry(
        &mut self,
        layer: usize,
        path: &str,
        entry: &mut overlay::Entry<'_>,
        _store: Option<&mut Store>,
    ) -> Result<Filled, overlay::Refusal> {
        let refuse = |reason: String| overlay::Refusal {
            entry: entry.raw.clone(),
            reason,
        };
        checked(entry)?;
        id(entry, entry.uid)?;
        id(entry, entry.gid)?;
        let kind = match &entry.kind {
            EntryKind::Hardlink(link) => {
                let target = overlay::normalize(link).map_err(refuse)?;
                match self.files.get(&(layer, target.clone())) {
                    Some(kind) => kind.clone(),
                    None => {
                        return Err(refuse(format!(
                            "a hard link to {target:?}, which is not an earlier file of this layer"
                        )));
                    }
                }
            }
            EntryKind::File => {
                let size = entry.size;
                let content = &mut (&mut *entry.content).take(size + 1);
                let (kind, _) = (self.tree)
                    .stage(content, size, false)
                    .map_err(|e| refuse(e.to_string()))?;
                kind
            }
            _ => return Ok(Filled::default()),
        };
        self.files.insert((layer, path.to_string()), kind);
        Ok(Filled::default())
    }
}
