//! An OCI image layout directory: `oci-layout`, `index.json` and `blobs/sha256/`.
//!
//! Blobs are written to a temporary file inside the layout and renamed into place, so a
//! reader never sees a partial blob; a blob that is already present is kept. `index.json`
//! is rewritten the same way, under a lock, so concurrent builds into one layout each add
//! their tags.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use tempfile::NamedTempFile;

use crate::Error;
use crate::digest::{Digest, VerifyingReader};

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A layout being written; see [`Layout::pending`].
pub struct Pending {
    layout: Layout,
    /// The temporary directory and the path it becomes, for a new layout.
    staged: Option<(tempfile::TempDir, PathBuf)>,
}

impl Pending {
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Puts a new layout at its path and returns it there.
    pub fn commit(self) -> Result<Layout, Error> {
        let Some((tmp, root)) = self.staged else {
            return Ok(self.layout);
        };
        let staged = tmp.keep();
        // A rename onto a directory that appeared meanwhile fails unless it is empty.
        if let Err(e) = std::fs::rename(&staged, &root) {
            let _ = std::fs::remove_dir_all(&staged);
            return Err(Error::io(&root, e));
        }
        Ok(Layout { root })
    }
}

/// An open layout directory.
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// Opens a layout, creating an empty one if `root` does not exist or is empty.
    pub fn create(root: &Path) -> Result<Layout, Error> {
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| Error::io(&blobs, e))?;
        let marker = root.join("oci-layout");
        match std::fs::read_to_string(&marker) {
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
        })
    }

    /// A layout that appears at `root` only when committed. When `root` does not exist,
    /// the layout is written in a temporary directory beside it and renamed into place by
    /// [`Pending::commit`], so a failed build leaves nothing behind. An existing layout is
    /// written in place: its blobs and index change atomically, so it never reads as broken.
    pub fn pending(root: &Path) -> Result<Pending, Error> {
        if root.exists() {
            return Ok(Pending {
                layout: Layout::create(root)?,
                staged: None,
            });
        }
        let parent = root
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".bareboat-layout-")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        Ok(Pending {
            layout: Layout::create(tmp.path())?,
            staged: Some((tmp, root.to_path_buf())),
        })
    }

    /// Where the blob with `digest` is stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs").join("sha256").join(digest.hex())
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
        if dest.is_file() {
            return Ok(());
        }
        tmp.as_file().sync_data().map_err(|e| Error::io(&dest, e))?;
        tmp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok(())
    }

    /// Stores a JSON document as a blob and returns its descriptor.
    pub fn put_json(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, Error> {
        let digest = Digest::of(bytes);
        if !self.blob_path(&digest).is_file() {
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

    /// Reads a blob whole; for small documents such as manifests and configs.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(digest);
        std::fs::read(&path).map_err(|e| Error::io(path, e))
    }

    /// Reads the blob a descriptor names, whole, and checks its digest; for manifests,
    /// configs and indexes.
    pub fn read_described(&self, d: &Descriptor) -> Result<Vec<u8>, Error> {
        let digest = self.digest_of(d)?;
        let bytes = self.read_blob(&digest)?;
        if Digest::of(&bytes) != digest {
            return Err(Error::BadLayout {
                path: self.blob_path(&digest),
                reason: format!(
                    "the blob does not match its digest {digest}: it was damaged or tampered with"
                ),
            });
        }
        Ok(bytes)
    }

    fn digest_of(&self, d: &Descriptor) -> Result<Digest, Error> {
        d.digest()
            .to_string()
            .parse()
            .map_err(|reason| Error::BadLayout {
                path: self.root.clone(),
                reason,
            })
    }

    /// Checks that the blob a descriptor names has its digest and size.
    pub fn verify_blob(&self, d: &Descriptor) -> Result<(), Error> {
        let (path, mut verified) = self.verifying_reader(d)?;
        std::io::copy(&mut verified, &mut std::io::sink()).map_err(|e| Error::BadLayout {
            path,
            reason: format!("{e}: it was damaged or tampered with"),
        })?;
        Ok(())
    }

    fn verifying_reader(
        &self,
        d: &Descriptor,
    ) -> Result<(PathBuf, VerifyingReader<std::io::BufReader<File>>), Error> {
        let digest = self.digest_of(d)?;
        let path = self.blob_path(&digest);
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let reader = VerifyingReader::new(std::io::BufReader::new(file), digest, d.size());
        Ok((path, reader))
    }

    /// Streams the layer blob a descriptor names, uncompressed, checking its digest and
    /// size as it goes: the reader fails at the end if they do not match.
    pub fn open_layer(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
        let (path, verified) = self.verifying_reader(d)?;
        let media_type = d.media_type().to_string();
        Ok(if media_type.ends_with("gzip") {
            Box::new(flate2::read::MultiGzDecoder::new(verified))
        } else if media_type.ends_with("zstd") {
            Box::new(zstd::stream::read::Decoder::new(verified).map_err(|e| Error::io(&path, e))?)
        } else if media_type.ends_with(".tar") || media_type.ends_with("layer.v1.tar") {
            Box::new(verified)
        } else {
            return Err(Error::BadLayout {
                path,
                reason: format!("layer media type {media_type} is not a tar, gzip or zstd layer"),
            });
        })
    }

    /// Copies one blob into `to`, unless it is there already.
    pub fn copy_blob(&self, to: &Layout, digest: &Digest) -> Result<(), Error> {
        if !to.blob_path(digest).is_file() {
            let src = self.blob_path(digest);
            let tmp = to.temp_blob()?;
            std::fs::copy(&src, tmp.path()).map_err(|e| Error::io(&src, e))?;
            to.commit_blob(tmp, digest)?;
        }
        Ok(())
    }

    /// The manifest for Debian architecture `arch` in the index `top` (or `top` itself,
    /// if it is one image).
    pub fn platform_manifest(&self, top: &Descriptor, arch: &str) -> Result<Descriptor, Error> {
        if !top.media_type().to_string().ends_with("index.v1+json") {
            return Ok(top.clone());
        }
        let index: ImageIndex = serde_json::from_slice(&self.read_described(top)?)
            .map_err(|e| Error::Spec(format!("image index {}: {e}", top.digest())))?;
        let (want, variant) = crate::image::platform(arch);
        let found = index.manifests().iter().find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                // An index that leaves the variant out means the usual one.
                *p.architecture() == want
                    && (variant.is_none()
                        || p.variant().is_none()
                        || p.variant().as_deref() == variant)
            })
        });
        let available: Vec<String> = index
            .manifests()
            .iter()
            .filter_map(|m| m.platform().as_ref().map(|p| p.architecture().to_string()))
            .collect();
        found.cloned().ok_or_else(|| {
            Error::Spec(format!(
                "the image has no {arch} platform; it has {}",
                available.join(", ")
            ))
        })
    }

    /// The layout's `index.json`, or an empty index.
    pub fn index(&self) -> Result<ImageIndex, Error> {
        let path = self.root.join("index.json");
        match std::fs::read(&path) {
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
            manifests.retain(|d| {
                let name = d.annotations().as_ref().and_then(|a| a.get(REF_NAME));
                !name.is_some_and(|n| tags.contains(n))
            });
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
            .filter(|d| {
                d.annotations()
                    .as_ref()
                    .is_none_or(|a| !a.contains_key(REF_NAME))
            })
            .cloned()
            .collect())
    }

    /// Rewrites `index.json` under the layout's lock.
    fn update_index(&self, change: impl FnOnce(&mut Vec<Descriptor>)) -> Result<(), Error> {
        let lock_path = self.root.join(".index.lock");
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let mut index = self.index()?;
        let mut manifests = index.manifests().clone();
        change(&mut manifests);
        index.set_manifests(manifests);
        let bytes = crate::image::canonical_json(&index)?;
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Copies the image (or index) `top` and every blob it reaches into `to`, keeping digests.
    pub fn copy_image(&self, to: &Layout, top: &Descriptor) -> Result<(), Error> {
        for digest in self.reachable(top)? {
            self.copy_blob(to, &digest)?;
        }
        Ok(())
    }

    /// Every blob the image (or index) `top` reaches, itself included; an error names a
    /// blob the layout lacks.
    pub fn reachable(&self, top: &Descriptor) -> Result<Vec<Digest>, Error> {
        Ok(self
            .reachable_with_types(top)?
            .into_iter()
            .map(|(d, _)| d)
            .collect())
    }

    /// [`Layout::reachable`] with each blob's media type, documents before the blobs they
    /// point at.
    pub fn reachable_with_types(&self, top: &Descriptor) -> Result<Vec<(Digest, String)>, Error> {
        let bad = |reason: String| Error::BadLayout {
            path: self.root.clone(),
            reason,
        };
        let mut out = Vec::new();
        let mut pending = vec![(top.digest().to_string(), top.media_type().to_string())];
        while let Some((digest, media_type)) = pending.pop() {
            let digest: Digest = digest.parse().map_err(bad)?;
            if !self.blob_path(&digest).is_file() {
                return Err(bad(format!("blob {digest} is missing")));
            }
            // Only manifests and indexes point at other blobs.
            if media_type.ends_with("manifest.v1+json") || media_type.ends_with("index.v1+json") {
                let doc: serde_json::Value = serde_json::from_slice(&self.read_blob(&digest)?)
                    .map_err(|e| bad(format!("{digest}: {e}")))?;
                let children = ["manifests", "layers"]
                    .iter()
                    .flat_map(|k| doc[k].as_array().into_iter().flatten())
                    .chain(std::iter::once(&doc["config"]));
                for child in children {
                    if let (Some(d), Some(m)) =
                        (child["digest"].as_str(), child["mediaType"].as_str())
                    {
                        pending.push((d.to_string(), m.to_string()));
                    }
                }
            }
            out.push((digest, media_type));
        }
        Ok(out)
    }

    /// The descriptor `tag` names in `index.json`.
    pub fn resolve(&self, tag: &str) -> Result<Descriptor, Error> {
        let index = self.index()?;
        let found = index.manifests().iter().find(|d| {
            let name = d.annotations().as_ref().and_then(|a| a.get(REF_NAME));
            name.is_some_and(|n| n == tag)
        });
        found.cloned().ok_or_else(|| Error::BadLayout {
            path: self.root.clone(),
            reason: format!("no image is tagged {tag:?}"),
        })
    }
}

/// `d` with the annotation `key` set to `value`.
pub(crate) fn annotated(d: &Descriptor, key: &str, value: &str) -> Descriptor {
    let mut d = d.clone();
    let mut annotations = d.annotations().clone().unwrap_or_default();
    annotations.insert(key.to_string(), value.to_string());
    d.set_annotations(Some(annotations));
    d
}

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
}
