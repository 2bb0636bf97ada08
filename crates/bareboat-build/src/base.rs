//! Building on an image bareboat did not make in this build: a company base, or a
//! catalogue image published once to a registry.
//!
//! The base's layers are kept byte for byte and bareboat's layers go on top. The tree reads
//! them, so that it knows what the base holds (its accounts, its CA bundle, the files a
//! package would overwrite) and which Debian packages it has installed: the solver counts
//! those as installed instead of adding them again.

use std::collections::BTreeMap;
use std::io;

use bareboat_apt::dpkg::Database;
use bareboat_apt::index::PackageIndex;
use bareboat_oci::blob::Layer;
use bareboat_oci::image::BaseLayers;
use bareboat_oci::layout::Layout;
use bareboat_oci::model::Image;
use bareboat_oci::source::BlobSource;
use oci_spec::image::{Descriptor, ImageConfiguration, MediaType};

use bareboat_inspect::filesystem;

use crate::build::BuildError;
use crate::rootfs::Rootfs;

/// The annotations that let base-image update tools follow an image to its base.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// A base image, opened: an image or an index in a source.
pub struct Base<'a> {
    /// The reference it was named by.
    pub name: String,
    pub source: &'a dyn BlobSource,
    pub top: Descriptor,
}

impl<'a> Base<'a> {
    /// The base's image for Debian architecture `arch`.
    pub fn image(&self, arch: &str) -> Result<BaseImage<'a>, BuildError> {
        BaseImage::open(self.source, &self.top, arch, &self.name)
    }

    /// What a lockfile records of the base: its digest.
    pub fn digest(&self) -> String {
        self.top.digest().to_string()
    }
}

/// One platform's image of the base.
pub struct BaseImage<'a> {
    /// The reference the base was named by.
    pub name: String,
    /// This platform's manifest.
    pub manifest: Descriptor,
    /// Its layers, with OCI media types and the diff_ids its config gives them.
    pub layers: Vec<Layer>,
    pub config: ImageConfiguration,
    source: &'a dyn BlobSource,
}

impl<'a> BaseImage<'a> {
    /// The image for Debian architecture `arch` of the image (or index) `top` in `source`.
    /// Every document's digest is checked as it is read.
    pub fn open(
        source: &'a dyn BlobSource,
        top: &Descriptor,
        arch: &str,
        name: &str,
    ) -> Result<BaseImage<'a>, BuildError> {
        let bad = |reason: String| BuildError::Spec(format!("base image {name}: {reason}"));
        let image = Image::open(source, top, arch).map_err(|e| bad(e.to_string()))?;
        let (want, _) = bareboat_oci::image::platform(arch);
        if *image.config.architecture() != want {
            return Err(bad(format!(
                "it is a {} image, and this build is for {arch}\n  hint: name an index that has {arch}, or build for {}",
                image.config.architecture(),
                image.config.architecture()
            )));
        }
        let mut layers = image.layers;
        for l in &mut layers {
            let media_type = oci_media_type(l.descriptor.media_type().as_ref());
            l.descriptor.set_media_type(media_type);
        }
        Ok(BaseImage {
            name: name.to_string(),
            manifest: image.descriptor,
            layers,
            config: image.config,
            source,
        })
    }

    /// Reads the base's layers into `tree`, one tree layer each, checking each blob's
    /// digest and diff_id.
    pub fn unpack(&self, tree: &mut Rootfs) -> Result<(), BuildError> {
        for l in &self.layers {
            let origin = format!("base image {} layer {}", self.name, l.descriptor.digest());
            let layer = tree.push_layer();
            let mut reader = self.source.open_layer(l)?;
            let mut archive = tar::Archive::new(&mut reader);
            let unpacked = tree
                .add_image_layer(layer, &origin, &mut archive)
                .map_err(BuildError::from)
                .and_then(|()| {
                    // Read to the end, so the blob's digest and diff_id are checked.
                    io::copy(&mut archive.into_inner(), &mut io::sink())
                        .map_err(|e| BuildError::Spec(format!("{origin}: {e}")))
                });
            if let Err(e) = unpacked {
                return Err(reader.damage().map_or(e, |damage| self.refused(damage)));
            }
        }
        tree.seal()?;
        Ok(())
    }

    /// The Debian packages the base has installed, read from its layers as they stream:
    /// only the dpkg database is kept.
    pub fn installed(&self) -> Result<PackageIndex, BuildError> {
        let fs = filesystem::read(self.source, &self.layers, filesystem::Limits::default())
            .map_err(|e| self.refused(e))?;
        installed_packages(&fs.metadata)
    }

    /// Copies the base's layer blobs into `to`, where the new image's manifest names them,
    /// each checked as it is copied.
    pub fn copy_layers(&self, to: &Layout) -> Result<(), BuildError> {
        for l in &self.layers {
            to.copy_blob_from(self.source, &l.into())
                .map_err(|e| self.refused(e))?;
        }
        Ok(())
    }

    /// `e`, said of this base.
    fn refused(&self, e: impl std::fmt::Display) -> BuildError {
        BuildError::Spec(format!("base image {}: {e}", self.name))
    }

    /// What the new image's manifest and config keep of the base.
    pub fn inherited(&self) -> BaseLayers {
        BaseLayers {
            layers: self.layers.iter().map(|l| l.descriptor.clone()).collect(),
            diff_ids: self.config.rootfs().diff_ids().clone(),
            history: self.config.history().clone().unwrap_or_default(),
        }
    }

    /// The annotations naming the base.
    pub fn annotations(&self) -> Vec<(String, String)> {
        vec![
            (BASE_NAME.to_string(), self.name.clone()),
            (BASE_DIGEST.to_string(), self.manifest.digest().to_string()),
        ]
    }
}

/// The packages a dpkg database lists as installed, from the database files among
/// `metadata` (path to content, as [`filesystem::read`] keeps them).
fn installed_packages(metadata: &BTreeMap<String, Vec<u8>>) -> Result<PackageIndex, BuildError> {
    let files = metadata.iter().map(|(p, b)| (p.as_str(), b.as_slice()));
    Database::read(files)
        .index("the base image's dpkg database")
        .map_err(Into::into)
}

/// The OCI media type of a layer, for Docker's names of the same bytes.
fn oci_media_type(media_type: &str) -> MediaType {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => MediaType::ImageLayerGzip,
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => MediaType::ImageLayerZstd,
        "application/vnd.docker.image.rootfs.diff.tar" => MediaType::ImageLayer,
        other => MediaType::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_layer_types_become_oci_ones() {
        assert_eq!(
            oci_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            MediaType::ImageLayerGzip
        );
    }
}
