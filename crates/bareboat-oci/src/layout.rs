//! An OCI image layout directory: `oci-layout`, `index.json` and `blobs/sha256/`.
//!
//! Blobs are written to a temporary file inside the layout and renamed into place, so a
//! reader never sees a partial blob; a blob that is already present is kept. `index.json`
//! is rewritten the same way, under a lock, so concurrent builds into one layout each add
//! their tags.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};
use tempfile::NamedTempFile;

use crate::Error;
use crate::digest::Digest;

/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

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
        let lock_path = self.root.join(".index.lock");
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        lock.lock().map_err(|e| Error::io(&lock_path, e))?;
        let mut index = self.index()?;
        let mut manifests: Vec<Descriptor> = index
            .manifests()
            .iter()
            .filter(|d| {
                let name = d.annotations().as_ref().and_then(|a| a.get(REF_NAME));
                !name.is_some_and(|n| tags.contains(n))
            })
            .cloned()
            .collect();
        for tag in tags {
            let mut d = descriptor.clone();
            let mut annotations = d.annotations().clone().unwrap_or_default();
            annotations.insert(REF_NAME.to_string(), tag.clone());
            d.set_annotations(Some(annotations));
            manifests.push(d);
        }
        index.set_manifests(manifests);
        let bytes = crate::image::canonical_json(&index)?;
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// Copies the image (or index) `top` and every blob it reaches into `to`, keeping digests.
    pub fn copy_image(&self, to: &Layout, top: &Descriptor) -> Result<(), Error> {
        let mut pending = vec![(top.digest().to_string(), top.media_type().to_string())];
        while let Some((digest, media_type)) = pending.pop() {
            let digest: Digest = digest.parse().map_err(|reason| Error::BadLayout {
                path: self.root.clone(),
                reason,
            })?;
            let src = self.blob_path(&digest);
            if !to.blob_path(&digest).is_file() {
                let tmp = to.temp_blob()?;
                std::fs::copy(&src, tmp.path()).map_err(|e| Error::io(&src, e))?;
                to.commit_blob(tmp, &digest)?;
            }
            // Only manifests and indexes point at other blobs.
            if media_type.ends_with("manifest.v1+json") || media_type.ends_with("index.v1+json") {
                let doc: serde_json::Value = serde_json::from_slice(&self.read_blob(&digest)?)
                    .map_err(|e| Error::BadLayout {
                        path: self.root.clone(),
                        reason: format!("{digest}: {e}"),
                    })?;
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
        }
        Ok(())
    }
}

/// Writes `bytes` to `dest` through a temporary file beside it, so readers see all or nothing.
pub(crate) fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<(), Error> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    tmp.write_all(bytes).map_err(|e| Error::io(dest, e))?;
    tmp.as_file().sync_data().map_err(|e| Error::io(dest, e))?;
    tmp.persist(dest).map_err(|e| Error::io(dest, e.error))?;
    Ok(())
}
