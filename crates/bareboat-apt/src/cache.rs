//! The package cache: content-addressed `.deb` files, parsed indexes and verified `InRelease`
//! files, shared safely by concurrent processes.
//!
//! Layout under the root (`$XDG_CACHE_HOME/bareboat` by default):
//!
//! ```text
//! debs/<sha256>.deb        packages, named by their SHA256
//! dists/<sha256>           Packages and Contents files as the archive served them, verified
//! indexes/<sha256>.idx     their parsed form, named by the same SHA256
//! releases/<key>.InRelease the last verified InRelease of each source, for --offline
//! releases/<key>.newest    the newest Date seen in one, so an older replay is refused
//! verified/<key>.txt       the text of an InRelease whose signature has been verified
//! vouches/<sha256>.txt     which other signed Release vouched for a Contents file a mirror
//!                          served in place of the one with this SHA256
//! uses/<key>.txt           the packages each lockfile used, for `cache prune`
//! layers/<key>.json        what a layer compressed to, named by everything its bytes depend on
//! trees/                   unpacked package layers (see bareboat-rootfs's treecache)
//! toolboxes/<key>/         debugging toolboxes: lockfile, layout and root, touched on use
//! tmp/                     partial writes, renamed into place when complete and verified
//! key                      the key that seals the cache's records (never exported)
//! ```
//!
//! Every entry is written to `tmp/` and renamed into place, so a reader sees a whole file
//! or none. Normal work holds a shared lock on `lock`; `prune` and `import` hold it
//! exclusively.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;

use crate::Error;
use crate::deb::Deb;
use crate::syntax::is_sha256;

/// An open cache directory.
pub struct Cache {
    root: PathBuf,
    _lock: File,
}

/// What `prune` removed.
#[derive(Debug, Default, serde::Serialize)]
pub struct PruneReport {
    /// Files removed, entries of the staging directory included.
    pub removed_files: u64,
    /// The bytes the removed files took (staging directories not counted).
    pub removed_bytes: u64,
    /// Files kept because a recent lockfile used them or they were read recently.
    pub kept_files: u64,
}

const DIRS: [&str; 12] = [
    "debs",
    "dists",
    "indexes",
    "releases",
    "verified",
    "vouches",
    "layers",
    "blobs",
    "trees",
    "toolboxes",
    "uses",
    "tmp",
];

impl Cache {
    /// `$XDG_CACHE_HOME/bareboat`, or `~/.cache/bareboat`.
    pub fn default_root() -> PathBuf {
        std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir)
            .join("bareboat")
    }

    /// Opens (creating if needed) the cache at `root` for normal, shared use.
    pub fn open(root: &Path) -> Result<Cache, Error> {
        Cache::open_with(root, false)
    }

    /// Opens the cache for exclusive maintenance (prune, import), waiting for other users.
    pub fn open_exclusive(root: &Path) -> Result<Cache, Error> {
        Cache::open_with(root, true)
    }

    fn open_with(root: &Path, exclusive: bool) -> Result<Cache, Error> {
        for d in DIRS {
            let p = root.join(d);
            std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        let lock_path = root.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(&lock_path, e))?;
        let cache = Cache {
            root: root.to_path_buf(),
            _lock: lock,
        };
        if exclusive {
            cache._lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        } else {
            // When no other process uses the cache, what is in tmp/ was left by one that
            // was killed: it goes now, whatever its age, not at the next prune.
            if cache._lock.try_lock().is_ok() {
                cache.remove_temporaries(&mut PruneReport::default());
            }
            cache
                ._lock
                .lock_shared()
                .map_err(|e| Error::io(&lock_path, e))?;
        }
        Ok(cache)
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key that seals this cache's records (what a layer compressed to, what a saved
    /// tree holds), made on first use. It stays in the cache directory, readable by its
    /// owner alone, and is never exported: a record from elsewhere does not open under it.
    pub fn seal_key(&self) -> Result<[u8; 32], Error> {
        let path = self.root.join("key");
        let read = |path: &Path| -> std::io::Result<[u8; 32]> {
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = File::options()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)?;
            let mut key = [0u8; 32];
            f.read_exact(&mut key)?;
            Ok(key)
        };
        match read(&path) {
            Ok(key) => return Ok(key),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::io(&path, e));
            }
            Err(_) => {}
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| Error::io(&path, std::io::Error::other(e.to_string())))?;
        let mut tmp = self.temp_file()?;
        tmp.write_all(&key).map_err(|e| Error::io(&path, e))?;
        tmp.as_file().sync_data().map_err(|e| Error::io(&path, e))?;
        // Another process may have made one meanwhile: then both use that one.
        match tmp.persist_noclobber(&path) {
            Ok(_) => Ok(key),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                read(&path).map_err(|e| Error::io(&path, e))
            }
            Err(e) => Err(Error::io(&path, e.error)),
        }
    }

    /// Where the package with this SHA256 lives. Paths are made only from checked
    /// digests: a hash from a hostile lockfile such as `../../x` names no file.
    pub fn deb_path(&self, sha256: &str) -> Result<PathBuf, Error> {
        Ok(self
            .root
            .join("debs")
            .join(format!("{}.deb", checked(sha256)?)))
    }

    /// Where the verified dists file (a Packages or Contents file) with this SHA256 lives.
    pub fn dists_path(&self, sha256: &str) -> Result<PathBuf, Error> {
        Ok(self.root.join("dists").join(checked(sha256)?))
    }

    /// Where the parsed index of the compressed file with this SHA256 lives.
    pub fn index_path(&self, sha256: &str) -> Result<PathBuf, Error> {
        Ok(self
            .root
            .join("indexes")
            .join(format!("{}.idx", checked(sha256)?)))
    }

    /// Where the last verified InRelease of a source URL lives.
    pub fn release_path(&self, inrelease_url: &str) -> PathBuf {
        self.root
            .join("releases")
            .join(format!("{}.InRelease", short_hash(inrelease_url)))
    }

    /// Where the newest `Date` seen in a verified InRelease of a source URL is kept: a
    /// mirror that later serves an older one is replaying it.
    pub fn newest_release_path(&self, inrelease_url: &str) -> PathBuf {
        self.root
            .join("releases")
            .join(format!("{}.newest", short_hash(inrelease_url)))
    }

    /// Where the verification result of an InRelease file (by its SHA256) against a
    /// keyring (by its id) lives.
    pub fn verified_path(&self, inrelease_sha256: &str, keyring_id: &str) -> PathBuf {
        self.root
            .join("verified")
            .join(format!("{inrelease_sha256}-{keyring_id}.txt"))
    }

    /// Where the record of which Release vouched for the Contents file served in place of
    /// the one with this SHA256 lives.
    pub fn vouch_path(&self, listed_sha256: &str) -> Result<PathBuf, Error> {
        Ok(self
            .root
            .join("vouches")
            .join(format!("{}.txt", checked(listed_sha256)?)))
    }

    /// Where records of compressed layers live (see `bareboat_oci::layer::LayerWriter`).
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// Where compressed layer blobs are kept for other layouts, by digest (see
    /// `bareboat_oci::layer::LayerWriter`).
    pub fn layer_blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// Where assembled package layers are kept (see `bareboat_rootfs::treecache`).
    pub fn trees_dir(&self) -> PathBuf {
        self.root.join("trees")
    }

    /// Where debugging toolboxes are kept, a directory each, touched on use (see
    /// `bareboat_debug::toolbox`).
    pub fn toolboxes_dir(&self) -> PathBuf {
        self.root.join("toolboxes")
    }

    /// A new temporary file inside the cache, on the same filesystem as its entries.
    pub fn temp_file(&self) -> Result<NamedTempFile, Error> {
        let tmp = self.root.join("tmp");
        NamedTempFile::new_in(&tmp).map_err(|e| Error::io(&tmp, e))
    }

    /// Renames a completed temporary file into place.
    pub fn commit(&self, tmp: NamedTempFile, dest: &Path) -> Result<(), Error> {
        tmp.as_file().sync_data().map_err(|e| Error::io(dest, e))?;
        tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
        Ok(())
    }

    /// Writes `bytes` to `dest` atomically.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), Error> {
        let mut tmp = self.temp_file()?;
        tmp.write_all(bytes).map_err(|e| Error::io(dest, e))?;
        self.commit(tmp, dest)
    }

    /// Marks an entry as used now, so `prune` keeps it.
    pub fn touch(&self, path: &Path) {
        if let Ok(f) = File::options().write(true).open(path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }

    /// Whether the package is cached at the right size. Its SHA256 was checked when it was
    /// stored and is checked again when it is read ([`Cache::open_deb`]), so a build whose
    /// unpacked layers are cached does not hash packages it never opens. An entry of the
    /// wrong size is removed, so the caller fetches it again.
    pub fn has_deb(&self, sha256: &str, size: u64) -> Result<bool, Error> {
        let path = self.deb_path(sha256)?;
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(false);
        };
        if meta.len() == size {
            return Ok(true);
        }
        tracing::warn!(path = %path.display(), "removing a partial cache entry");
        let _ = std::fs::remove_file(&path);
        Ok(false)
    }

    /// Opens a cached package after checking its SHA256. A corrupt entry is removed, and
    /// the error says to run again, which downloads it afresh.
    pub fn open_deb(&self, sha256: &str) -> Result<Deb<BufReader<File>>, Error> {
        let path = self.deb_path(sha256)?;
        if sha256_file(&path)? != sha256 {
            let _ = std::fs::remove_file(&path);
            return Err(Error::CorruptCacheEntry { path });
        }
        Deb::open_file(&path)
    }

    /// Records that the lockfile at `lock_path` uses these packages, for `prune`.
    pub fn record_use(&self, lock_path: &Path, sha256s: &[String]) -> Result<(), Error> {
        let abs = std::path::absolute(lock_path).unwrap_or_else(|_| lock_path.to_path_buf());
        let dest = self
            .root
            .join("uses")
            .join(format!("{}.txt", short_hash(&abs.to_string_lossy())));
        let mut text = format!("# {}\n", abs.display());
        for s in sha256s {
            text.push_str(s);
            text.push('\n');
        }
        self.write_atomic(&dest, text.as_bytes())
    }

    /// Removes packages that no lockfile used within `max_age`, indexes and releases not
    /// read within it, and leftover temporary files. Call it on a cache opened with
    /// [`Cache::open_exclusive`].
    pub fn prune(&self, max_age: Duration) -> Result<PruneReport, Error> {
        let now = SystemTime::now();
        let recent = |p: &Path| {
            std::fs::metadata(p)
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() <= max_age)
                .unwrap_or(false)
        };
        let mut keep = std::collections::HashSet::new();
        let mut report = PruneReport::default();
        for entry in read_dir(&self.root.join("uses"))? {
            if recent(&entry) {
                let text = std::fs::read_to_string(&entry).map_err(|e| Error::io(&entry, e))?;
                keep.extend(
                    text.lines()
                        .filter(|l| !l.starts_with('#'))
                        .map(String::from),
                );
            } else {
                remove(&entry, &mut report);
            }
        }
        for entry in read_dir(&self.root.join("debs"))? {
            let stem = entry
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            if keep.contains(stem) {
                report.kept_files += 1;
            } else {
                remove(&entry, &mut report);
            }
        }
        // Readers touch these on use, so their age is the time since last use.
        for dir in [
            "indexes", "releases", "verified", "vouches", "layers", "blobs", "trees",
        ] {
            for entry in read_dir(&self.root.join(dir))? {
                if recent(&entry) {
                    report.kept_files += 1;
                } else {
                    remove(&entry, &mut report);
                }
            }
        }
        for toolbox in read_dir(&self.toolboxes_dir())? {
            if recent(&toolbox) {
                report.kept_files += 1;
            } else if !toolbox.is_symlink() && std::fs::remove_dir_all(&toolbox).is_ok() {
                report.removed_files += 1;
            }
        }
        self.remove_temporaries(&mut report);
        Ok(report)
    }

    /// Removes what is in `tmp/`: files, and the staging directories of builds that were
    /// killed. Only with the lock held exclusively: then no other process is writing there.
    fn remove_temporaries(&self, report: &mut PruneReport) {
        for entry in read_dir(&self.root.join("tmp")).unwrap_or_default() {
            if entry.is_dir() && !entry.is_symlink() {
                if std::fs::remove_dir_all(&entry).is_ok() {
                    report.removed_files += 1;
                }
            } else {
                remove(&entry, report);
            }
        }
    }

    /// Writes the cache's packages, index files and InRelease files into a tar archive, for
    /// moving to an offline machine. With `only`, just those packages are exported. Index
    /// files go as the archive served them, not parsed: what imports them checks each
    /// against the SHA256 a signed Release gives it before parsing it again.
    pub fn export(&self, out: &Path, only: Option<&[String]>) -> Result<u64, Error> {
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = NamedTempFile::new_in(parent).map_err(|e| Error::io(parent, e))?;
        let mut tar = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
        tar.mode(tar::HeaderMode::Deterministic);
        let mut count = 0;
        for dir in EXPORTED {
            let mut entries = read_dir(&self.root.join(dir))?;
            entries.sort();
            for path in entries {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                let stem = name.trim_end_matches(".deb");
                if dir == "debs" && only.is_some_and(|only| !only.iter().any(|s| s == stem)) {
                    continue;
                }
                // Only what an import takes: this cache's own records (the newest Release
                // dates it has seen) stay with it.
                if self.import_destination(&format!("{dir}/{name}")).is_none() {
                    continue;
                }
                tar.append_path_with_name(&path, format!("{dir}/{name}"))
                    .map_err(|e| Error::io(&path, e))?;
                count += 1;
            }
        }
        tar.into_inner()
            .and_then(|mut w| w.flush())
            .map_err(|e| Error::io(out, e))?;
        tmp.persist(out).map_err(|e| Error::io(out, e.error))?;
        Ok(count)
    }

    /// Reads an archive written by [`Cache::export`]. Every entry is checked: only packages,
    /// index files and InRelease files are accepted, and each package and index file must
    /// hash to its name. Parsed indexes are refused: nothing could check them. InRelease
    /// files are verified when a build reads them, like a download.
    pub fn import(&self, archive: &Path) -> Result<u64, Error> {
        let bad = |reason: String| Error::BadCacheArchive {
            path: archive.to_path_buf(),
            reason,
        };
        let file = File::open(archive).map_err(|e| Error::io(archive, e))?;
        let mut tar = tar::Archive::new(std::io::BufReader::new(file));
        let mut count = 0;
        for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let name = entry
                .path()
                .map_err(|e| bad(e.to_string()))?
                .to_string_lossy()
                .into_owned();
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(bad(format!("{name:?} is not a regular file")));
            }
            let dest = self.import_destination(&name).ok_or_else(|| {
                bad(format!(
                    "unexpected entry {name:?}: only debs/, dists/ and releases/ files belong in a cache archive{}",
                    if name.starts_with("indexes/") {
                        " (parsed indexes cannot be checked against a signature, so they are not imported: export the cache again with this version of bareboat)"
                    } else {
                        ""
                    }
                ))
            })?;
            let mut tmp = self.temp_file()?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = entry
                    .read(&mut buf)
                    .map_err(|e| bad(format!("{name}: {e}")))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                tmp.write_all(&buf[..n]).map_err(|e| Error::io(&dest, e))?;
            }
            let named = name
                .strip_prefix("debs/")
                .and_then(|n| n.strip_suffix(".deb"))
                .or_else(|| name.strip_prefix("dists/"));
            if let Some(expected) = named {
                let actual = hex::encode(hasher.finalize());
                if actual != expected {
                    return Err(bad(format!(
                        "{name}: content hashes to {actual}, not to its name"
                    )));
                }
            }
            self.commit(tmp, &dest)?;
            count += 1;
        }
        Ok(count)
    }

    fn import_destination(&self, name: &str) -> Option<PathBuf> {
        let (dir, file) = name.split_once('/')?;
        if dir == "dists" {
            return is_sha256(file).then(|| self.root.join(dir).join(file));
        }
        let (stem, ext) = file.split_once('.')?;
        let ok = match (dir, ext) {
            ("debs", "deb") => is_sha256(stem),
            ("releases", "InRelease") => {
                stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_hexdigit())
            }
            _ => false,
        };
        ok.then(|| self.root.join(dir).join(file))
    }
}

/// What `export` writes and `import` reads.
const EXPORTED: [&str; 3] = ["debs", "dists", "releases"];

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    Ok(read.filter_map(|e| e.ok().map(|e| e.path())).collect())
}

fn remove(path: &Path, report: &mut PruneReport) {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if std::fs::remove_file(path).is_ok() {
        report.removed_files += 1;
        report.removed_bytes += size;
    }
}

/// `sha256`, if it is one: the only thing the cache makes entry names of.
fn checked(sha256: &str) -> Result<&str, Error> {
    if is_sha256(sha256) {
        Ok(sha256)
    } else {
        Err(Error::NotADigest(sha256.to_string()))
    }
}

/// A short, stable file name for an arbitrary key.
fn short_hash(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The SHA256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher).map_err(|e| Error::io(path, e))?;
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[test]
    fn corrupt_entries_are_detected_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let h = sha(b"package");
        cache
            .write_atomic(&cache.deb_path(&h).unwrap(), b"package")
            .unwrap();
        assert!(cache.has_deb(&h, 7).unwrap());
        std::fs::write(cache.deb_path(&h).unwrap(), b"packagX").unwrap();
        let e = cache
            .open_deb(&h)
            .err()
            .expect("a corrupt entry is refused");
        assert!(matches!(e, Error::CorruptCacheEntry { .. }), "{e}");
        assert!(e.to_string().contains("run the same command again"), "{e}");
        assert!(
            !cache.deb_path(&h).unwrap().exists(),
            "corrupt entry removed"
        );
        assert!(
            !cache.has_deb(&h, 7).unwrap(),
            "so the next fetch downloads it"
        );
        std::fs::write(cache.deb_path(&h).unwrap(), b"pack").unwrap();
        assert!(!cache.has_deb(&h, 7).unwrap(), "partial entry detected");
        assert!(
            !cache.deb_path(&h).unwrap().exists(),
            "partial entry removed"
        );
    }

    #[test]
    fn entries_are_named_only_by_checked_digests() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let victim = dir.path().join("victim.deb");
        std::fs::write(&victim, b"important").unwrap();
        for hostile in [
            "../victim",
            "../../../../tmp/victim/important",
            &"A".repeat(64),
        ] {
            assert!(matches!(cache.deb_path(hostile), Err(Error::NotADigest(_))));
            let refusals = [
                cache.has_deb(hostile, 1).err(),
                cache.open_deb(hostile).err(),
                cache.dists_path(hostile).err(),
                cache.index_path(hostile).err(),
                cache.vouch_path(hostile).err(),
            ];
            for err in refusals {
                let err = format!("{:#}", err.expect("a hostile name is refused"));
                assert!(err.contains("so it names no cache entry"), "{err}");
            }
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"important");
    }

    #[test]
    fn the_seal_key_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = cache.seal_key().unwrap();
        assert_eq!(Cache::open(dir.path()).unwrap().seal_key().unwrap(), key);
        let mode = std::fs::metadata(dir.path().join("key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the owner reads it");
        let other = tempfile::tempdir().unwrap();
        assert_ne!(Cache::open(other.path()).unwrap().seal_key().unwrap(), key);
    }

    #[test]
    fn prune_keeps_what_recent_locks_use() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (a, b) = (sha(b"a"), sha(b"b"));
        cache
            .write_atomic(&cache.deb_path(&a).unwrap(), b"a")
            .unwrap();
        cache
            .write_atomic(&cache.deb_path(&b).unwrap(), b"b")
            .unwrap();
        cache
            .record_use(Path::new("x/bareboat.lock"), std::slice::from_ref(&a))
            .unwrap();
        let report = cache.prune(Duration::from_secs(3600)).unwrap();
        assert_eq!(report.removed_files, 1);
        assert!(cache.deb_path(&a).unwrap().exists());
        assert!(!cache.deb_path(&b).unwrap().exists());
        // What a killed process left in tmp/ goes when the cache is next opened by a
        // process alone, or at a prune.
        std::fs::write(cache.root().join("tmp/left"), b"x").unwrap();
        let second = Cache::open(dir.path()).unwrap();
        assert!(
            cache.root().join("tmp/left").exists(),
            "another user is alive"
        );
        drop((cache, second));
        let cache = Cache::open(dir.path()).unwrap();
        assert!(!cache.root().join("tmp/left").exists());
        // What a killed build left in tmp/, files and directories, goes.
        std::fs::create_dir_all(cache.root().join("tmp/staging-1/sub")).unwrap();
        std::fs::write(cache.root().join("tmp/staging-1/sub/f"), b"x").unwrap();
        std::fs::write(cache.root().join("tmp/partial"), b"x").unwrap();
        cache.prune(Duration::from_secs(3600)).unwrap();
        assert_eq!(
            read_dir(&cache.root().join("tmp")).unwrap(),
            Vec::<PathBuf>::new()
        );
        // Once the lock's use is older than the window, its packages go too.
        let report = cache.prune(Duration::ZERO).unwrap();
        assert!(report.removed_files >= 2);
        assert!(!cache.deb_path(&a).unwrap().exists());
    }

    #[test]
    fn export_import_round_trip_and_hostile_archives() {
        let src_dir = tempfile::tempdir().unwrap();
        let src = Cache::open(src_dir.path()).unwrap();
        let h = sha(b"deb bytes");
        src.write_atomic(&src.deb_path(&h).unwrap(), b"deb bytes")
            .unwrap();
        let p = sha(b"Packages");
        src.write_atomic(&src.dists_path(&p).unwrap(), b"Packages")
            .unwrap();
        src.write_atomic(&src.index_path(&p).unwrap(), b"parsed")
            .unwrap();
        let out = src_dir.path().join("cache.tar");
        assert_eq!(
            src.export(&out, None).unwrap(),
            2,
            "parsed indexes stay behind"
        );

        let dst_dir = tempfile::tempdir().unwrap();
        let dst = Cache::open(dst_dir.path()).unwrap();
        assert_eq!(dst.import(&out).unwrap(), 2);
        assert!(dst.has_deb(&h, 9).unwrap());
        assert_eq!(
            std::fs::read(dst.dists_path(&p).unwrap()).unwrap(),
            b"Packages"
        );
        assert!(!dst.index_path(&p).unwrap().exists());

        let evil = |name: &str, body: &[u8]| {
            let path = src_dir.path().join("evil.tar");
            let mut b = tar::Builder::new(File::create(&path).unwrap());
            let mut hdr = tar::Header::new_gnu();
            hdr.set_size(body.len() as u64);
            hdr.set_mode(0o644);
            hdr.set_entry_type(tar::EntryType::Regular);
            // Write the raw name so that `..` survives into the archive.
            hdr.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            hdr.set_cksum();
            b.append(&hdr, body).unwrap();
            b.finish().unwrap();
            path
        };
        let e = dst
            .import(&evil("../escape.deb", b"x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unexpected entry"), "{e}");
        let e = dst
            .import(&evil(&format!("debs/{}.deb", sha(b"other")), b"x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not to its name"), "{e}");
        assert!(!dst.deb_path(&sha(b"other")).unwrap().exists());
        let e = dst
            .import(&evil(&format!("dists/{}", sha(b"other")), b"x"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not to its name"), "{e}");
        let e = dst
            .import(&evil(&format!("indexes/{p}.idx"), b"forged"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("parsed indexes cannot be checked"), "{e}");
        assert!(!dst.index_path(&p).unwrap().exists());
        assert!(!dst_dir.path().parent().unwrap().join("escape.deb").exists());
    }
}
