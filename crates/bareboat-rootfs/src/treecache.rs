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
//! A saved tree's record is sealed with the cache's key ([`bareboat_oci::seal`]), and names
//! each segment with its SHA256. A tree is used only when its record opens and every segment
//! is unchanged since it was last checked (its stamp), or matches its SHA256 when checked
//! again; anything else is reported, treated as absent, and the packages are unpacked again.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use bareboat_apt::cache::Cache;
use bareboat_oci::seal::{SealKey, Stamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::rootfs::{Node, Segment, Snapshot};

/// Bumped when what a saved tree means changes.
const FORMAT: u32 = 4;

/// A used segment's mtime is moved forward (so that pruning keeps it) once it is this old:
/// not on every use, since that changes its stamp and costs a full check.
const TOUCH_AFTER: std::time::Duration = std::time::Duration::from_secs(86400);

/// Saved trees in a cache directory.
pub struct TreeCache<'a> {
    cache: &'a Cache,
    dir: PathBuf,
    key: SealKey,
    /// The name each staging segment was linked in under by this process.
    linked: Mutex<HashMap<PathBuf, String>>,
    /// Each segment file's SHA256 and its stamp when it last matched, as this process knows.
    checked: Mutex<HashMap<String, (String, Option<Stamp>)>>,
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
    sha256: String,
    /// The file's stamp when it last matched `sha256`.
    stamp: Option<Stamp>,
}

impl<'a> TreeCache<'a> {
    /// The saved trees of `cache`, their records sealed with `key`.
    pub fn new(cache: &'a Cache, key: SealKey) -> TreeCache<'a> {
        TreeCache {
            cache,
            dir: cache.trees_dir(),
            key,
            linked: Mutex::default(),
            checked: Mutex::default(),
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

    /// The tree saved under `key`, if it is there whole and unchanged.
    pub fn load(&self, key: &str) -> Option<Snapshot> {
        let record = self.record(key);
        let sealed = std::fs::read(&record).ok()?;
        let damaged = |why: &str| {
            tracing::warn!(
                key,
                "ignoring a damaged saved tree ({why}): unpacking again"
            );
        };
        let Some(saved) = self
            .key
            .open(&sealed)
            .and_then(|body| serde_json::from_slice::<Saved>(body).ok())
        else {
            damaged("its record fails its seal");
            return None;
        };
        let mut segments = Vec::new();
        let mut restamped = false;
        let mut end = 0;
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
        for s in &saved.segments {
            let path = self.dir.join(&s.file);
            if s.start != end || s.file.contains('/') {
                damaged("its segments do not follow each other");
                return None;
            }
            let stamp = Stamp::of(&path).filter(|st| st.size() == s.len);
            let Some(stamp) = stamp else {
                damaged(&format!("segment {} is missing or of another size", s.file));
                return None;
            };
            if s.stamp != Some(stamp) {
                if sha256_of(&path).ok().as_deref() != Some(s.sha256.as_str()) {
                    damaged(&format!("segment {} does not match its SHA256", s.file));
                    return None;
                }
                restamped = true;
            }
            checked.insert(s.file.clone(), (s.sha256.clone(), Some(stamp)));
            end += s.len;
            segments.push(Segment {
                path,
                start: s.start,
                len: s.len,
            });
        }
        self.cache.touch(&record);
        for s in &segments {
            let old = std::fs::metadata(&s.path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > TOUCH_AFTER);
            if old {
                self.cache.touch(&s.path);
                let file = file_name(&s.path);
                if let Some(entry) = checked.get_mut(&file) {
                    entry.1 = Stamp::of(&s.path);
                }
                restamped = true;
            }
        }
        drop(checked);
        let snapshot = Snapshot {
            layers: saved.layers,
            segments,
        };
        // The segments were checked in full: record their new stamps, so the next build
        // need not read them again.
        if restamped && let Err(e) = self.save(key, &snapshot) {
            tracing::debug!(key, "could not record the segments' new stamps: {e}");
        }
        Some(snapshot)
    }

    /// Saves a snapshot under `key`. Segments already in the cache, or linked in by an
    /// earlier save, are shared; new ones are written to disk and linked in.
    pub fn save(&self, key: &str, snapshot: &Snapshot) -> io::Result<()> {
        let mut linked = self.linked.lock().unwrap_or_else(|e| e.into_inner());
        let mut checked = self.checked.lock().unwrap_or_else(|e| e.into_inner());
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
                // Linked under a temporary name and renamed over whatever has the name (a
                // damaged segment of an earlier save), so the name is always this content.
                let temp = self.dir.join(format!("{name}.{}.tmp", std::process::id()));
                let _ = std::fs::remove_file(&temp);
                std::fs::hard_link(&s.path, &temp)?;
                std::fs::rename(&temp, self.dir.join(&name))?;
                linked.insert(s.path.clone(), name.clone());
                name
            };
            let path = self.dir.join(&file);
            let (sha256, stamp) = match checked.get(&file) {
                Some(known) => known.clone(),
                // Stamped before it is hashed: a write in between makes the stamp stale,
                // which costs a check, never a false match.
                None => {
                    let stamp = Stamp::of(&path);
                    (sha256_of(&path)?, stamp)
                }
            };
            checked.insert(file.clone(), (sha256.clone(), stamp));
            segments.push(SavedSegment {
                file,
                start: s.start,
                len: s.len,
                sha256,
                stamp,
            });
        }
        drop(checked);
        let saved = SavedRef {
            layers: &snapshot.layers,
            segments,
        };
        let json = serde_json::to_vec(&saved).map_err(io::Error::other)?;
        self.cache
            .write_atomic(&self.record(key), &self.key.seal(&json))
            .map_err(io::Error::other)
    }

    fn record(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }
}

fn sha256_of(path: &Path) -> io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
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
    use crate::rootfs::{Content, Rootfs};
    use bareboat_oci::overlay::Limits;

    fn tree(cache: &Cache) -> Rootfs {
        let slicing = Slicing::default();
        Rootfs::new(
            &cache.root().join("tmp"),
            slicing,
            globset::GlobSet::empty(),
            Limits::BUILD,
        )
        .unwrap()
    }

    fn key_of(cache: &Cache) -> SealKey {
        SealKey::new(cache.seal_key().unwrap())
    }

    fn resume(cache: &Cache, key: &str) -> Option<Rootfs> {
        let snapshot = TreeCache::new(cache, key_of(cache)).load(key)?;
        let tmp = cache.root().join("tmp");
        let setuid = globset::GlobSet::empty();
        let limits = Limits::BUILD;
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
        let trees = TreeCache::new(&cache, key_of(&cache));
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
        let saved_entries = t.layer_entries(1).unwrap();
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
        assert_eq!(strip(r.layer_entries(1).unwrap()), strip(saved_entries));
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

    /// Saves, under the key `k`, a tree of one file holding `content`, and returns the
    /// saved segment's path.
    fn save_one(cache: &Cache) -> PathBuf {
        let mut t = tree(cache);
        let l0 = t.push_layer();
        t.add_file(l0, "etc/a", Content::Bytes(b"content"), 0o644, (0, 0), 5)
            .unwrap();
        t.seal().unwrap();
        TreeCache::new(cache, key_of(cache))
            .save("k", &t.snapshot())
            .unwrap();
        std::fs::read_dir(cache.trees_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "seg"))
            .unwrap()
    }

    #[test]
    fn a_damaged_saved_tree_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let linked = save_one(&cache);
        assert!(resume(&cache, "k").is_some());
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

    #[test]
    fn a_segment_changed_at_its_length_or_an_edited_record_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let segment = save_one(&cache);
        let record = cache.trees_dir().join("k.json");
        let sealed = std::fs::read(&record).unwrap();
        let bytes = std::fs::read(&segment).unwrap();
        assert_eq!(
            resume(&cache, "k").unwrap().read("etc/a").unwrap(),
            b"content"
        );

        // Other bytes of the same length: the stamp moved, the SHA256 no longer matches.
        std::fs::write(&segment, bytes.to_ascii_uppercase()).unwrap();
        assert!(resume(&cache, "k").is_none(), "a segment changed in place");
        // The same bytes written back match again after a full check, which records the
        // new stamp.
        std::fs::write(&segment, &bytes).unwrap();
        assert!(resume(&cache, "k").is_some());
        assert_ne!(
            std::fs::read(&record).unwrap(),
            sealed,
            "new stamps recorded"
        );

        // An edited record (its text changed, seal kept) fails its seal.
        let edited = String::from_utf8(std::fs::read(&record).unwrap())
            .unwrap()
            .replace("etc/a", "etc/b");
        std::fs::write(&record, edited).unwrap();
        assert!(resume(&cache, "k").is_none(), "an edited record");
    }
}
