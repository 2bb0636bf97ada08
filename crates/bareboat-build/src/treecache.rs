//! Assembled package layers, kept between builds.
//!
//! Unpacking packages is most of a build's work, and a package layer's tree depends only on
//! its packages, those below it, and the settings that shape unpacking (slicing, setuid
//! policy, limits, release). So after each package layer the tree is saved under a key that
//! chains those inputs: its nodes as JSON, its staged contents as hard links to the sealed
//! staging segments (no copy). A later build with the same lower layers resumes from the
//! deepest saved tree and unpacks only what lies above it: rebuilding an application image
//! spends its time on the application.
//!
//! A saved tree is used only when every segment it names is there at its recorded size;
//! anything else is treated as absent and the packages are unpacked again.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bareboat_apt::cache::Cache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rootfs::{Node, Segment, Snapshot};

/// Bumped when what a saved tree means changes.
const FORMAT: u32 = 2;

/// Saved trees in a cache directory.
pub struct TreeCache<'a> {
    cache: &'a Cache,
    dir: PathBuf,
    /// The name each staging segment was linked in under by this process.
    linked: Mutex<HashMap<PathBuf, String>>,
}

/// What a saved tree's JSON holds.
#[derive(Deserialize)]
struct Saved {
    layers: Vec<BTreeMap<String, Node>>,
    segments: Vec<SavedSegment>,
}

/// The same, written without copying the layers.
#[derive(Serialize)]
struct SavedRef<'a> {
    layers: &'a [BTreeMap<String, Node>],
    segments: Vec<SavedSegment>,
}

#[derive(Serialize, Deserialize)]
struct SavedSegment {
    /// The file's name in the cache directory.
    file: String,
    start: u64,
    len: u64,
}

impl<'a> TreeCache<'a> {
    pub fn new(cache: &'a Cache) -> TreeCache<'a> {
        TreeCache {
            cache,
            dir: cache.trees_dir(),
            linked: Mutex::default(),
        }
    }

    /// One key per layer: each covers `settings` and the packages (name and SHA256) of its
    /// layer and every layer below.
    pub fn keys<'p>(
        settings: &str,
        layers: impl IntoIterator<Item = Vec<(&'p str, &'p str)>>,
    ) -> Vec<String> {
        let mut key = hex::encode(Sha256::digest(format!(
            "bareboat {} tree format {FORMAT}\n{settings}",
            env!("CARGO_PKG_VERSION")
        )));
        layers
            .into_iter()
            .map(|packages| {
                let mut h = Sha256::new();
                h.update(&key);
                for (name, sha256) in packages {
                    h.update(format!("\n{name} {sha256}"));
                }
                key = hex::encode(h.finalize());
                key.clone()
            })
            .collect()
    }

    /// The tree saved under `key`, if it is there whole.
    pub fn load(&self, key: &str) -> Option<Snapshot> {
        let record = self.record(key);
        let saved: Saved = serde_json::from_slice(&std::fs::read(&record).ok()?).ok()?;
        let mut segments = Vec::new();
        let mut end = 0;
        for s in &saved.segments {
            let path = self.dir.join(&s.file);
            let whole = std::fs::metadata(&path).is_ok_and(|m| m.len() == s.len);
            if !whole || s.start != end || s.file.contains('/') {
                tracing::warn!(key, file = s.file, "ignoring a damaged saved tree");
                return None;
            }
            end += s.len;
            segments.push(Segment {
                path,
                start: s.start,
                len: s.len,
            });
        }
        self.cache.touch(&record);
        for s in &segments {
            self.cache.touch(&s.path);
        }
        Some(Snapshot {
            layers: saved.layers,
            segments,
        })
    }

    /// Saves a snapshot under `key`. Segments already in the cache, or linked in by an
    /// earlier save, are shared; new ones are written to disk and linked in.
    pub fn save(&self, key: &str, snapshot: &Snapshot) -> io::Result<()> {
        let mut linked = self.linked.lock().unwrap_or_else(|e| e.into_inner());
        let mut segments = Vec::new();
        for s in &snapshot.segments {
            let file = if s.path.parent() == Some(self.dir.as_path()) {
                file_name(&s.path)
            } else if let Some(name) = linked.get(&s.path) {
                name.clone()
            } else {
                let name = format!("{key}-{}.seg", s.start);
                // On disk before any record names it: a crash must not leave a record
                // whose segment reads back as zeros.
                std::fs::File::open(&s.path)?.sync_data()?;
                match std::fs::hard_link(&s.path, self.dir.join(&name)) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => linked.insert(s.path.clone(), name.clone()),
                };
                name
            };
            segments.push(SavedSegment {
                file,
                start: s.start,
                len: s.len,
            });
        }
        let saved = SavedRef {
            layers: &snapshot.layers,
            segments,
        };
        let json = serde_json::to_vec(&saved).map_err(io::Error::other)?;
        self.cache
            .write_atomic(&self.record(key), &json)
            .map_err(io::Error::other)
    }

    fn record(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Slicing;
    use crate::rootfs::{Content, Limits, Rootfs};

    fn tree(cache: &Cache) -> Rootfs {
        let slicing = Slicing::default();
        Rootfs::new(
            &cache.root().join("tmp"),
            slicing,
            globset::GlobSet::empty(),
            Limits::default(),
        )
        .unwrap()
    }

    fn resume(cache: &Cache, key: &str) -> Option<Rootfs> {
        let snapshot = TreeCache::new(cache).load(key)?;
        let tmp = cache.root().join("tmp");
        let setuid = globset::GlobSet::empty();
        let limits = Limits::default();
        Some(Rootfs::resume(&tmp, Slicing::default(), setuid, limits, snapshot).unwrap())
    }

    #[test]
    fn keys_chain_the_layers_below() {
        let a = TreeCache::keys("s", [vec![("libc6", "aa")], vec![("zlib1g", "bb")]]);
        let b = TreeCache::keys("s", [vec![("libc6", "ab")], vec![("zlib1g", "bb")]]);
        let c = TreeCache::keys("t", [vec![("libc6", "aa")]]);
        assert_ne!(a[1], b[1], "a change below changes every key above");
        assert_ne!(a[0], c[0], "settings are part of the key");
        assert_eq!(
            a,
            TreeCache::keys("s", [vec![("libc6", "aa")], vec![("zlib1g", "bb")]])
        );
    }

    #[test]
    fn a_resumed_tree_reads_and_writes_as_the_saved_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let trees = TreeCache::new(&cache);
        let mut t = tree(&cache);
        let l0 = t.push_layer();
        t.add_file(l0, "etc/a", Content::Bytes(b"first"), 0o644, (0, 0), 5)
            .unwrap();
        t.seal().unwrap();
        trees.save("k0", &t.snapshot()).unwrap();
        let l1 = t.push_layer();
        t.add_file(l1, "etc/b", Content::Bytes(b"second"), 0o600, (1, 2), 7)
            .unwrap();
        t.seal().unwrap();
        trees.save("k1", &t.snapshot()).unwrap();
        let saved_entries = t.layer_entries(1);
        drop(t);

        let mut r = resume(&cache, "k1").expect("the saved tree loads");
        assert_eq!(r.read("etc/a").unwrap(), b"first");
        assert_eq!(r.read("etc/b").unwrap(), b"second");
        let l2 = r.push_layer();
        assert_eq!(l2, 2);
        r.add_file(l2, "etc/c", Content::Bytes(b"third"), 0o644, (0, 0), 9)
            .unwrap();
        assert_eq!(r.read("etc/c").unwrap(), b"third");
        assert_eq!(
            r.read("etc/a").unwrap(),
            b"first",
            "earlier segments stay readable"
        );
        // Same content and metadata; only where the content is staged differs.
        let strip = |entries: Vec<bareboat_oci::layer::Entry>| {
            entries
                .into_iter()
                .map(|e| (e.path, e.mode, e.uid, e.gid, e.mtime))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(r.layer_entries(1)), strip(saved_entries));
        // The first segment is shared by both saved trees, not stored twice.
        let segs = std::fs::read_dir(cache.trees_dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "seg")
            })
            .count();
        assert_eq!(segs, 2);
    }

    #[test]
    fn a_damaged_saved_tree_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let mut t = tree(&cache);
        let l0 = t.push_layer();
        t.add_file(l0, "etc/a", Content::Bytes(b"content"), 0o644, (0, 0), 5)
            .unwrap();
        t.seal().unwrap();
        TreeCache::new(&cache).save("k", &t.snapshot()).unwrap();
        drop(t);
        assert!(resume(&cache, "k").is_some());
        let linked = std::fs::read_dir(cache.trees_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap();
        assert!(
            std::fs::read_dir(cache.root().join("tmp"))
                .unwrap()
                .next()
                .is_none(),
            "the staging files go with the tree"
        );
        std::fs::OpenOptions::new()
            .write(true)
            .open(&linked)
            .unwrap()
            .set_len(3)
            .unwrap();
        assert!(resume(&cache, "k").is_none(), "a truncated segment");
        std::fs::write(cache.trees_dir().join("k.json"), b"{not json").unwrap();
        assert!(resume(&cache, "k").is_none(), "a corrupt record");
    }
}
