//! An OCI image layout directory: `oci-layout`, `index.json` and `blobs/sha256/`.
//!
//! Blobs are written to a temporary file inside the layout and renamed into place, so a
//! reader never sees a partial blob; a blob that is already present is kept. `index.json`
//! is rewritten the same way, under a lock, so concurrent builds into one layout each add
//! their tags.
//!
//! A layout may come from anyone, so nothing in it is followed or taken on trust: blobs
//! are read through [`crate::blob`] (no symbolic links, regular files only, checked as they
//! stream), `blobs/` and `blobs/sha256/` must be directories of the layout itself, and the
//! lock and temporary files are never opened through a link or truncated.

use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use tempfile::NamedTempFile;

use crate::Error;
use crate::attach::{
    Attachment, LEGACY_SUFFIXES, LegacyLayer, Outcome, Staged, check_subjects, legacy_layers,
};
use crate::blob::{self, Blob};
use crate::digest::Digest;
use crate::referrer::{self, Follow, Referrer, Referrers};
use crate::source::{BlobSource, reachable};

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A layout being written; see [`Layout::pending`].
pub struct Pending {
    layout: Layout,
    /// The temporary directory and the path it becomes, for a new layout.
    staged: Option<(tempfile::TempDir, PathBuf)>,
}

impl Pending {
    /// The layout, to write the image into before [`Pending::commit`].
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Puts a new layout at its path and returns it there.
    pub fn commit(self) -> Result<Layout, Error> {
        let Some((tmp, root)) = self.staged else {
            return Ok(self.layout);
        };
        let staged = tmp.keep();
        // A rename onto a directory that appeared meanwhile (another build's new layout)
        // fails unless it is empty: then this layout's blobs and index entries join it.
        let result = match std::fs::rename(&staged, &root) {
            // The writers' lock moved with the directory: it is still held.
            Ok(()) => Ok(Layout {
                root,
                writing: self.layout.writing,
            }),
            Err(_) if root.is_dir() => Layout::for_writing(&root).and_then(|into| {
                Layout {
                    root: staged.clone(),
                    writing: None,
                }
                .merge_into(&into)?;
                Ok(into)
            }),
            Err(e) => Err(Error::io(&root, e)),
        };
        let _ = std::fs::remove_dir_all(&staged);
        result
    }
}

/// An open layout directory.
pub struct Layout {
    root: PathBuf,
    /// A shared lock on [`WRITERS_LOCK`], held while this process writes into the layout.
    writing: Option<std::fs::File>,
}

/// The lock every writer of a layout holds shared while it writes: when nobody holds it,
/// no writer is alive, and any temporary file in the layout was left by a killed one.
const WRITERS_LOCK: &str = ".writers.lock";

impl Layout {
    /// Opens a layout, creating an empty one if `root` does not exist or is empty. A
    /// directory that holds other things and no `oci-layout` file is refused before anything
    /// is written into it.
    pub fn create(root: &Path) -> Result<Layout, Error> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        let marker = root.join("oci-layout");
        let empty = std::fs::read_dir(root)
            .map_err(|e| Error::io(root, e))?
            .next()
            .is_none();
        if !empty && std::fs::symlink_metadata(&marker).is_err() {
            return Err(Error::BadLayout {
                path: root.to_path_buf(),
                reason: "it is a directory with other files and no oci-layout file, so not an OCI layout: nothing was written\n  hint: name a new directory, or an existing layout".into(),
            });
        }
        // Made one level at a time, so that a link in their place is refused, not followed.
        for dir in [root.join("blobs"), root.join("blobs").join("sha256")] {
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.is_dir() => {}
                Ok(meta) => {
                    let what = if meta.is_symlink() {
                        "a symbolic link"
                    } else {
                        "not a directory"
                    };
                    return Err(Error::BadLayout {
                        path: root.to_path_buf(),
                        reason: format!(
                            "{} is {what}: a layout keeps its blobs in a directory of its own, and bareboat follows no link out of it",
                            dir.display()
                        ),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&dir).map_err(|e| Error::io(&dir, e))?;
                }
                Err(e) => return Err(Error::io(&dir, e)),
            }
        }
        let text = blob::open_regular(&marker).and_then(|f| {
            let mut text = String::new();
            // The marker is a line of JSON; more is not a layout's.
            f.take(1 << 16).read_to_string(&mut text).map(|_| text)
        });
        match text {
            Ok(text) => {
                if !text.contains("\"imageLayoutVersion\"") {
                    return Err(Error::BadLayout {
                        path: root.to_path_buf(),
                        reason: "its oci-layout file has no imageLayoutVersion".into(),
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
            }
            Err(e) => return Err(Error::io(&marker, e)),
        }
        Ok(Layout {
            root: root.to_path_buf(),
            writing: None,
        })
    }

    /// Opens (creating) a layout to write into, holding its writers' lock. When no other
    /// writer holds it, the temporary blobs a killed writer left are removed first,
    /// whatever their age: nothing alive is writing them.
    fn for_writing(root: &Path) -> Result<Layout, Error> {
        let mut layout = Layout::create(root)?;
        let path = root.join(WRITERS_LOCK);
        let lock = blob::open_lock(&path).map_err(|e| Error::io(&path, e))?;
        if lock.try_lock().is_ok() {
            remove_entries(&root.join("blobs"), ".tmp-");
        }
        // Taken shared (from exclusive, where it was free), so that writers run side by side.
        lock.lock_shared().map_err(|e| Error::io(&path, e))?;
        layout.writing = Some(lock);
        Ok(layout)
    }

    /// Moves this layout's blobs into `into` and lists its manifests in `into`'s index,
    /// with their tags.
    fn merge_into(&self, into: &Layout) -> Result<(), Error> {
        let blobs = self.root.join("blobs").join("sha256");
        for entry in std::fs::read_dir(&blobs).map_err(|e| Error::io(&blobs, e))? {
            let entry = entry.map_err(|e| Error::io(&blobs, e))?;
            let to = into
                .root
                .join("blobs")
                .join("sha256")
                .join(entry.file_name());
            if std::fs::symlink_metadata(&to).is_err() {
                std::fs::rename(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
            }
        }
        for d in self.index()?.manifests() {
            match tag_of(d).cloned() {
                // Another writer's signatures under the same legacy tag are kept; this
                // layout's blobs are `into`'s by now.
                Some(tag) if is_legacy_tag(&tag) => into.copy_legacy_from(into, &tag, d)?,
                Some(tag) => into.tag(d, &[tag])?,
                None => into.add_untagged(d)?,
            }
        }
        Ok(())
    }

    /// A layout that appears at `root` only when committed. When `root` does not exist,
    /// the layout is written in a temporary directory beside it and renamed into place by
    /// [`Pending::commit`], so a failed build leaves nothing behind. An existing layout is
    /// written in place: its blobs and index change atomically, so it never reads as broken.
    pub fn pending(root: &Path) -> Result<Pending, Error> {
        if root.exists() {
            return Ok(Pending {
                layout: Layout::for_writing(root)?,
                staged: None,
            });
        }
        let parent = root
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        remove_abandoned_layouts(parent);
        let tmp = tempfile::Builder::new()
            .prefix(STAGED)
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        Ok(Pending {
            layout: Layout::for_writing(tmp.path())?,
            staged: Some((tmp, root.to_path_buf())),
        })
    }

    /// Where the blob with `digest` is stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
    }

    /// Whether the layout has the blob with `digest` as a regular file (a link in its
    /// place is not the blob).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        std::fs::symlink_metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file())
    }

    /// A temporary file on the layout's filesystem, to be committed with [`commit_blob`].
    ///
    /// [`commit_blob`]: Layout::commit_blob
    pub fn temp_blob(&self) -> Result<NamedTempFile, Error> {
        let dir = self.root.join("blobs");
        tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(&dir, e))
    }

    /// Renames a written blob into place, or drops it if the layout already has it.
    pub fn commit_blob(&self, tmp: NamedTempFile, digest: &Digest) -> Result<(), Error> {
        let dest = self.blob_path(digest);
        if self.has_blob(digest) {
            return Ok(());
        }
        tmp.as_file().sync_data().map_err(|e| Error::io(&dest, e))?;
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(())
    }

    /// Copies the blob file at `path`, which the caller has checked against `digest`, into
    /// the layout unless it has it. A copy, not a link, so that the file's stamp does not
    /// change (a link changes its inode's ctime) and this layout shares no file with it.
    pub fn copy_blob_file(&self, path: &Path, digest: &Digest) -> Result<(), Error> {
        if self.has_blob(digest) {
            return Ok(());
        }
        let mut from = blob::open_regular(path).map_err(|e| Error::io(path, e))?;
        let mut tmp = self.temp_blob()?;
        io::copy(&mut from, tmp.as_file_mut()).map_err(|e| Error::io(tmp.path(), e))?;
        self.commit_blob(tmp, digest)
    }

    /// Copies one blob of `source` into the layout, checked as it streams, unless the
    /// layout has it already; a layer it has is still checked against the diff_id this
    /// image's config gives it.
    pub fn copy_blob_from(&self, source: &dyn BlobSource, blob: &Blob) -> Result<(), Error> {
        let digest = Digest::named(blob.descriptor.digest().as_ref())?;
        if self.has_blob(&digest) {
            if blob.diff_id.is_some() {
                source.verify(blob)?;
            }
            return Ok(());
        }
        let mut reader = source.open_blob(blob)?;
        let tmp = self.temp_blob()?;
        let mut out = BufWriter::new(tmp.as_file());
        io::copy(&mut reader, &mut out)
            .and_then(|_| out.flush())
            .map_err(|e| Error::from_stream(source.name(), e))?;
        drop(out);
        self.commit_blob(tmp, &digest)
    }

    /// Copies the image (or index) `top` of `source` and every blob it reaches into the
    /// layout, keeping digests, each blob checked as it is copied, as many at once as the
    /// source reads best.
    pub fn copy_image_from(&self, source: &dyn BlobSource, top: &Descriptor) -> Result<(), Error> {
        let blobs = reachable(source, top)?;
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let copy = || {
            while !failed.load(Ordering::Relaxed) {
                let Some(blob) = blobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                if let Err(e) = self.copy_blob_from(source, blob) {
                    failed.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(())
        };
        let workers = source.concurrency().clamp(1, blobs.len().max(1));
        std::thread::scope(|s| {
            let running: Vec<_> = (0..workers).map(|_| s.spawn(copy)).collect();
            running
                .into_iter()
                .try_for_each(|w| w.join().expect("a copying thread panicked"))
        })
    }

    /// Copies the artifacts of `source` that refer to the image `top` (or its platform
    /// manifests) and that `follow` asks for, which the layout lists untagged, and the
    /// legacy tagged images it follows, under their tags. Returns the referrers found:
    /// those copied, and those left behind.
    pub fn copy_artifacts_from(
        &self,
        source: &dyn BlobSource,
        top: &Descriptor,
        follow: Follow,
    ) -> Result<Referrers, Error> {
        let found = referrer::of_image(source, top, follow)?;
        for r in &found.followed {
            self.copy_image_from(source, &r.artifact)?;
            self.add_untagged(&r.artifact)?;
        }
        for legacy in &found.legacy {
            self.copy_legacy_from(source, &legacy.tag, &legacy.image)?;
        }
        Ok(found)
    }

    /// Copies the legacy image `image` of `source` under `tag`: as it is where the layout
    /// has none, else its layers joined to those the layout's holds.
    fn copy_legacy_from(
        &self,
        source: &dyn BlobSource,
        tag: &str,
        image: &Descriptor,
    ) -> Result<(), Error> {
        let _lock = self.attach_lock()?;
        match self.tagged(tag)? {
            None => {
                self.copy_image_from(source, image)?;
                self.tag(image, &[tag.to_string()])
            }
            Some(held) if held.digest() == image.digest() => Ok(()),
            Some(held) => {
                let layers = legacy_layers(source, image)?;
                self.merge_legacy(tag, Some(&held), &layers).map(drop)
            }
        }
    }

    /// Attaches each of `attachments` to the image it names, which the layout must hold:
    /// an artifact listed untagged, a legacy layer in the image under its tag. What the
    /// layout holds already is not written again.
    pub fn attach(&self, attachments: &[Attachment]) -> Result<Vec<Outcome>, Error> {
        if attachments.is_empty() {
            return Ok(Vec::new());
        }
        check_subjects(attachments, &self.name(), |d| Ok(self.has_blob(d)))?;
        let _lock = self.attach_lock()?;
        let mut outcomes = Vec::new();
        for attachment in attachments {
            let outcome = match attachment {
                Attachment::Referrer(artifact) => {
                    let mut staged = Staged::over(None);
                    let d = staged.artifact(artifact)?;
                    if self.untagged()?.iter().any(|u| u.digest() == d.digest()) {
                        Outcome::Present
                    } else {
                        self.copy_image_from(&staged, &d)?;
                        self.add_untagged(&d)?;
                        Outcome::Written
                    }
                }
                Attachment::Tagged(t) => {
                    let held = self.tagged(&t.tag())?;
                    self.merge_legacy(&t.tag(), held.as_ref(), std::slice::from_ref(&t.layer))?
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Joins `layers` to the legacy image `held` under `tag` (a new image where there is
    /// none), unless it has them all.
    fn merge_legacy(
        &self,
        tag: &str,
        held: Option<&Descriptor>,
        layers: &[LegacyLayer],
    ) -> Result<Outcome, Error> {
        let mut staged = Staged::over(Some(self));
        let Some(d) = staged.legacy(held, layers)? else {
            return Ok(Outcome::Present);
        };
        self.copy_image_from(&staged, &d)?;
        self.tag(&d, &[tag.to_string()])?;
        Ok(Outcome::Written)
    }

    /// The lock held while a legacy tag is read and rewritten, so that two attaching at
    /// once each keep the other's layers.
    fn attach_lock(&self) -> Result<std::fs::File, Error> {
        let path = self.root.join(".attach.lock");
        let lock = blob::open_lock(&path).map_err(|e| Error::io(&path, e))?;
        lock.lock().map_err(|e| Error::io(&path, e))?;
        Ok(lock)
    }

    /// Stores a JSON document as a blob and returns its descriptor.
    pub fn put_json(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, Error> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest) {
            let mut tmp = self.temp_blob()?;
            tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
            self.commit_blob(tmp, &digest)?;
        }
        Ok(Descriptor::new(
            media_type,
            bytes.len() as u64,
            oci_spec::image::Digest::try_from(digest.to_string())?,
        ))
    }

    /// The layout's `index.json`, or an empty index.
    pub fn index(&self) -> Result<ImageIndex, Error> {
        let path = self.root.join("index.json");
        let bytes = blob::open_regular(&path).and_then(|f| {
            let mut bytes = Vec::new();
            f.take(MAX_DOCUMENT + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > MAX_DOCUMENT {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("larger than the {MAX_DOCUMENT}-byte limit of a document"),
                ));
            }
            Ok(bytes)
        });
        match bytes {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::BadLayout {
                path: self.root.clone(),
                reason: format!("index.json: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ImageIndexBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageIndex)
                .manifests(Vec::new())
                .build()?),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// Points each of `tags` at `descriptor` in `index.json`, replacing what they named.
    pub fn tag(&self, descriptor: &Descriptor, tags: &[String]) -> Result<(), Error> {
        self.update_index(|manifests| {
            manifests.retain(|d| !tag_of(d).is_some_and(|n| tags.contains(n)));
            manifests.extend(tags.iter().map(|tag| annotated(descriptor, REF_NAME, tag)));
        })
    }

    /// Lists a manifest in `index.json` without a tag, as a layout keeps the referrers of
    /// its images (an SBOM, say).
    pub fn add_untagged(&self, descriptor: &Descriptor) -> Result<(), Error> {
        self.update_index(|manifests| {
            if !manifests.iter().any(|d| d.digest() == descriptor.digest()) {
                manifests.push(descriptor.clone());
            }
        })
    }

    /// The manifests `index.json` lists without a tag.
    pub fn untagged(&self) -> Result<Vec<Descriptor>, Error> {
        let index = self.index()?;
        Ok(index
            .manifests()
            .iter()
            .filter(|d| tag_of(d).is_none())
            .cloned()
            .collect())
    }

    /// Rewrites `index.json` under the layout's lock.
    fn update_index(&self, change: impl FnOnce(&mut Vec<Descriptor>)) -> Result<(), Error> {
        let lock_path = self.root.join(".index.lock");
        let lock = blob::open_lock(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let mut index = self.index()?;
        let mut manifests = index.manifests().clone();
        change(&mut manifests);
        index.set_manifests(manifests);
        let bytes = crate::image::canonical_json(&index)?;
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// The descriptor `tag` names in `index.json`.
    pub fn resolve(&self, tag: &str) -> Result<Descriptor, Error> {
        self.tagged(tag)?.ok_or_else(|| Error::BadLayout {
            path: self.root.clone(),
            reason: format!("no image is tagged {tag:?}"),
        })
    }
}

impl BlobSource for Layout {
    fn name(&self) -> String {
        self.root.display().to_string()
    }

    fn stored(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
        let digest: Digest = d
            .digest()
            .to_string()
            .parse()
            .map_err(|reason| Error::BadLayout {
                path: self.root.clone(),
                reason,
            })?;
        blob::stored_file(&self.blob_path(&digest), d).map_err(|e| match e {
            Error::Io { error, .. } if error.kind() == io::ErrorKind::NotFound => {
                Error::BadLayout {
                    path: self.root.clone(),
                    reason: format!("blob {digest} is missing"),
                }
            }
            e => e,
        })
    }

    /// Those of the manifests `index.json` lists without a tag (where `bareboat build
    /// --sbom` and `copy` put artifacts) that name one of `subjects`.
    fn referrers(&self, subjects: &[Descriptor]) -> Result<Vec<Referrer>, Error> {
        referrer::naming(self, self.untagged()?, subjects)
    }

    fn tagged(&self, tag: &str) -> Result<Option<Descriptor>, Error> {
        let index = self.index()?;
        let found = (index.manifests().iter()).find(|d| tag_of(d).is_some_and(|n| n == tag));
        Ok(found.cloned())
    }
}

/// Whether `tag` is one of cosign's legacy tags, `sha256-<hex>.sig` or `.att`.
fn is_legacy_tag(tag: &str) -> bool {
    tag.strip_prefix("sha256-")
        .and_then(|t| t.split_once('.'))
        .is_some_and(|(hex, suffix)| {
            hex.len() == 64
                && hex.bytes().all(|b| b.is_ascii_hexdigit())
                && LEGACY_SUFFIXES.contains(&suffix)
        })
}

/// The tag an index entry is listed under, if any.
pub(crate) fn tag_of(d: &Descriptor) -> Option<&String> {
    d.annotations().as_ref()?.get(REF_NAME)
}

/// `d` with the annotation `key` set to `value`.
pub(crate) fn annotated(d: &Descriptor, key: &str, value: &str) -> Descriptor {
    let mut d = d.clone();
    let mut annotations = d.annotations().clone().unwrap_or_default();
    annotations.insert(key.to_string(), value.to_string());
    d.set_annotations(Some(annotations));
    d
}

/// How old a staged layout must be before a free writers' lock marks it abandoned: more
/// than the moment between a writer opening its lock and taking it.
const LOCK_SETTLED: std::time::Duration = std::time::Duration::from_secs(5);

/// How old a staged layout without a writers' lock must be to count as abandoned.
const UNLOCKED_STALE: std::time::Duration = std::time::Duration::from_secs(3600);

/// The prefix of a new layout's directory while it is written, beside where it goes.
const STAGED: &str = ".bareboat-layout-";

/// Removes the files of `dir` named `prefix…`.
fn remove_entries(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes the new layouts that killed builds left staged in `parent`: those whose writers'
/// lock nobody holds. One still being written (its writer holds the lock) is kept.
fn remove_abandoned_layouts(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let staged = entry.file_name().to_string_lossy().starts_with(STAGED)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if !staged {
            continue;
        }
        let lock = path.join(WRITERS_LOCK);
        let abandoned = if std::fs::symlink_metadata(&lock).is_ok_and(|m| m.is_file()) {
            // A writer opens its lock and then takes it: in between, the lock is free.
            let settled = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > LOCK_SETTLED);
            settled && blob::open_lock(&lock).is_ok_and(|l| l.try_lock().is_ok())
        } else {
            // No lock yet: just made by a writer about to take it, or left by one killed
            // in that instant, which only age tells apart.
            entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > UNLOCKED_STALE)
        };
        if abandoned {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// The largest manifest, index or config read: Docker and containerd cap manifests so.
pub const MAX_DOCUMENT: u64 = 4 << 20;

/// The deepest an index or manifest may be nested, counting `index.json` as the first
/// level: bareboat's own multi-platform layouts use three.
pub const MAX_NESTING: usize = 4;

/// Writes `bytes` to `dest` through a temporary file beside it, so readers see all or nothing.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(dest, e))?;
    tmp.as_file().sync_data().map_err(|e| Error::io(dest, e))?;
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_layout_appears_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("deeper/out");
        let abandoned = Layout::pending(&root).unwrap();
        abandoned
            .layout()
            .put_json(MediaType::ImageConfig, b"{}")
            .unwrap();
        drop(abandoned);
        assert!(!root.exists(), "a failed build leaves no layout");
        assert_eq!(
            std::fs::read_dir(dir.path().join("deeper"))
                .unwrap()
                .count(),
            0,
            "nor a temporary directory"
        );

        let pending = Layout::pending(&root).unwrap();
        let d = pending
            .layout()
            .put_json(MediaType::ImageConfig, b"{}")
            .unwrap();
        assert!(!root.exists());
        let layout = pending.commit().unwrap();
        assert_eq!(layout.read_described(&d).unwrap(), b"{}");
        assert!(root.join("oci-layout").is_file());

        // An existing layout is written in place.
        let again = Layout::pending(&root).unwrap();
        assert_eq!(again.layout().root, root);
        again.commit().unwrap();
    }

    /// An image in `layout` of the plain tar `layer`, whose config gives it `diff_id`.
    fn image(layout: &Layout, layer: &Descriptor, diff_id: &Digest) -> Descriptor {
        let config = serde_json::json!({ "rootfs": { "type": "layers", "diff_ids": [diff_id.to_string()] } });
        let config = layout
            .put_json(MediaType::ImageConfig, config.to_string().as_bytes())
            .unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": config,
            "layers": [layer],
        });
        layout
            .put_json(MediaType::ImageManifest, manifest.to_string().as_bytes())
            .unwrap()
    }

    #[test]
    fn each_blob_is_reached_once_and_a_layer_has_one_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let tar = b"a tar stream, as far as this test goes";
        let layer = layout.put_json(MediaType::ImageLayer, tar).unwrap();
        let index = |diff_ids: [Digest; 2]| {
            let manifests = diff_ids.map(|d| image(&layout, &layer, &d));
            crate::image::write_index(&layout, manifests.to_vec()).unwrap()
        };

        let shared = index([Digest::of(tar), Digest::of(tar)]);
        let blobs = reachable(&layout, &shared).unwrap();
        let layers: Vec<&Blob> = blobs
            .iter()
            .filter(|b| b.descriptor.digest() == layer.digest())
            .collect();
        assert_eq!(layers.len(), 1, "{blobs:?}");
        assert_eq!(layers[0].diff_id, Some(Digest::of(tar)));
        // The index, one manifest and one config (the two images' are the same), the layer.
        assert_eq!(blobs.len(), 4);

        let e = reachable(&layout, &index([Digest::of(tar), Digest::of(b"other")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!(
                "layer {}: the image gives it two diff_ids",
                layer.digest()
            )),
            "{e}"
        );
    }

    #[test]
    fn nesting_and_document_sizes_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let tar = b"a tar stream";
        let layer = layout.put_json(MediaType::ImageLayer, tar).unwrap();
        let manifest = image(&layout, &layer, &Digest::of(tar));
        // Each level lists the one below twice, as a graph built to blow up a walk does.
        let wrap = |inner: Descriptor| {
            crate::image::write_index(&layout, vec![inner.clone(), inner]).unwrap()
        };
        let two = wrap(wrap(manifest.clone()));
        assert_eq!(
            reachable(&layout, &two).unwrap().len(),
            5,
            "index, index, manifest, config, layer"
        );
        let three = wrap(two);
        let e = reachable(&layout, &three).unwrap_err().to_string();
        assert!(e.contains("nested 5 levels deep"), "{e}");
        let mut deep = manifest;
        for _ in 0..40 {
            deep = wrap(deep);
        }
        assert!(
            reachable(&layout, &deep).is_err(),
            "refused at once, not walked"
        );

        let mut huge = layer.clone();
        huge.set_size(MAX_DOCUMENT + 1);
        let e = layout.read_described(&huge).unwrap_err().to_string();
        assert!(e.contains("at most 4194304"), "{e}");
        std::fs::write(
            dir.path().join("index.json"),
            vec![b' '; MAX_DOCUMENT as usize + 1],
        )
        .unwrap();
        let e = layout.index().unwrap_err().to_string();
        assert!(e.contains("limit of a document"), "{e}");
    }

    /// A legacy signature layer whose signature annotation is `signature`.
    fn signature(signature: &str) -> LegacyLayer {
        LegacyLayer {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
            content: b"{}".to_vec(),
            annotations: [(
                "dev.cosignproject.cosign/signature".to_string(),
                signature.to_string(),
            )]
            .into(),
        }
    }

    #[test]
    fn an_image_with_a_tar_layer_among_others_is_checked_as_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::create(dir.path()).unwrap();
        let tar = b"a tar stream, as far as this test goes";
        let layer = layout.put_json(MediaType::ImageLayer, tar).unwrap();
        let other = layout
            .put_json(MediaType::Other("application/x-not-a-layer".into()), b"x")
            .unwrap();
        let config = serde_json::json!({ "rootfs": { "type": "layers", "diff_ids": [
            Digest::of(tar).to_string(), Digest::of(b"x").to_string()] } });
        let config =
            (layout.put_json(MediaType::ImageConfig, config.to_string().as_bytes())).unwrap();
        let manifest =
            serde_json::json!({ "schemaVersion": 2, "config": config, "layers": [layer, other] });
        let manifest =
            (layout.put_json(MediaType::ImageManifest, manifest.to_string().as_bytes())).unwrap();
        // Copied, its layers are checked against their diff_ids, and the one that is no
        // layer cannot be.
        let copy = Layout::create(&dir.path().join("copy")).unwrap();
        let e = copy
            .copy_image_from(&layout, &manifest)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a tar, gzip or zstd layer"), "{e}");
    }

    #[test]
    fn legacy_tags_are_told_apart_from_others() {
        let hex = "a".repeat(64);
        assert!(is_legacy_tag(&format!("sha256-{hex}.sig")));
        assert!(is_legacy_tag(&format!("sha256-{hex}.att")));
        assert!(!is_legacy_tag(&format!("sha256-{hex}")));
        assert!(!is_legacy_tag(&format!("sha256-{hex}.sbom")));
        assert!(!is_legacy_tag("sha256-abc.sig"));
        assert!(!is_legacy_tag("latest"));
    }

    #[test]
    fn two_new_layouts_of_one_path_keep_both_writers_signatures() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("out");
        let tar = b"a tar stream, as far as this test goes";
        let writers: Vec<(Pending, Descriptor)> = ["a", "b"]
            .iter()
            .map(|_| {
                let pending = Layout::pending(&root).unwrap();
                let layer = pending
                    .layout()
                    .put_json(MediaType::ImageLayer, tar)
                    .unwrap();
                let top = image(pending.layout(), &layer, &Digest::of(tar));
                (pending, top)
            })
            .collect();
        let mut tag = String::new();
        for ((pending, top), sig) in writers.into_iter().zip(["a", "b"]) {
            let subject = Digest::named(top.digest().as_ref()).unwrap();
            let layered = crate::attach::TaggedLayer {
                subject,
                suffix: "sig",
                layer: signature(sig),
            };
            tag = layered.tag();
            pending
                .layout()
                .attach(&[Attachment::Tagged(layered)])
                .unwrap();
            pending.commit().unwrap();
        }
        let layout = Layout::create(&root).unwrap();
        let held = layout.resolve(&tag).unwrap();
        let layers = legacy_layers(&layout, &held).unwrap();
        assert_eq!(layers, [signature("a"), signature("b")]);
    }
}
