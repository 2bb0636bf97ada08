//! A layer's entries, as the layer writer takes them: sorted by path, every parent present,
//! each set of hard links carried by its first path, contents read from the staging area.

use std::collections::{BTreeMap, HashMap};

use bareboat_oci::layer::{Entry, Kind};

use super::{Node, NodeKind, Rootfs};
use crate::Error;

impl Rootfs {
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
    /// each set of hard links carried by its first path. A file whose content is held
    /// elsewhere cannot be written, and is an error.
    pub fn layer_entries(&self, layer: usize) -> Result<Vec<Entry>, Error> {
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
                        _ => self.staged_content(path, &node.kind)?,
                    },
                    NodeKind::Hardlink(target) => {
                        let first = carrier[target.as_str()];
                        if first == path {
                            self.staged_content(path, &nodes[target].kind)?
                        } else {
                            Kind::Hardlink(first.to_string())
                        }
                    }
                };
                Ok(Entry {
                    path: path.clone(),
                    kind,
                    mode: node.mode,
                    uid: node.uid,
                    gid: node.gid,
                    mtime: node.mtime,
                })
            })
            .collect()
    }
}
