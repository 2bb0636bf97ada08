//! Images and indexes as bareboat reads them, from any [`BlobSource`]: an [`Image`] is one
//! platform's manifest, config and layers, decoded once and checked against each other; an
//! [`Index`] lists several platforms' images and picks one.

use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest};

use crate::Error;
use crate::blob::{Layer, LayerReader};
use crate::media::Kind;
use crate::source::BlobSource;

/// One platform's image, read from a source.
pub struct Image<'a> {
    /// The source its blobs are read from.
    pub source: &'a dyn BlobSource,
    /// The manifest's descriptor.
    pub descriptor: Descriptor,
    /// The manifest, decoded.
    pub manifest: ImageManifest,
    /// The config, decoded.
    pub config: ImageConfiguration,
    /// The layers, bottom first, each with the diff_id the config gives it.
    pub layers: Vec<Layer>,
}

impl<'a> Image<'a> {
    /// The image for Debian architecture `arch` of `top` (an image, or an index) in
    /// `source`. Every document is checked against its digest as it is read, and the
    /// config must give each layer a diff_id.
    pub fn open(
        source: &'a dyn BlobSource,
        top: &Descriptor,
        arch: &str,
    ) -> Result<Image<'a>, Error> {
        let descriptor = Index::pick(source, top, arch)?;
        let manifest: ImageManifest = serde_json::from_slice(&source.read_described(&descriptor)?)
            .map_err(|error| Error::BadDocument {
                what: format!("manifest {}", descriptor.digest()),
                error,
            })?;
        let config: ImageConfiguration = serde_json::from_slice(
            &source.read_described(manifest.config())?,
        )
        .map_err(|error| Error::BadDocument {
            what: format!("config {}", manifest.config().digest()),
            error,
        })?;
        let layers = crate::image::layers(
            &format!("image {}", descriptor.digest()),
            manifest.layers(),
            config.rootfs().diff_ids(),
        )?;
        Ok(Image {
            source,
            descriptor,
            manifest,
            config,
            layers,
        })
    }

    /// Layer `i`'s uncompressed content, checked as it streams.
    pub fn open_layer(&self, i: usize) -> Result<LayerReader, Error> {
        self.source.open_layer(&self.layers[i])
    }
}

/// An image index (OCI's, or Docker's manifest list): the images of several platforms.
pub struct Index {
    /// The index's descriptor.
    pub descriptor: Descriptor,
    /// The index, decoded.
    pub index: ImageIndex,
}

impl Index {
    /// Reads the index `d` describes, checked against its digest.
    pub fn open(source: &dyn BlobSource, d: &Descriptor) -> Result<Index, Error> {
        let index = serde_json::from_slice(&source.read_described(d)?).map_err(|error| {
            Error::BadDocument {
                what: format!("image index {}", d.digest()),
                error,
            }
        })?;
        Ok(Index {
            descriptor: d.clone(),
            index,
        })
    }

    /// The manifests it lists, in its order.
    pub fn manifests(&self) -> &[Descriptor] {
        self.index.manifests()
    }

    /// The manifest for Debian architecture `arch`. An entry that leaves the variant out
    /// means the usual one.
    pub fn platform(&self, arch: &str) -> Result<Descriptor, Error> {
        let (want, variant) = crate::image::platform(arch);
        let found = self.manifests().iter().find(|m| {
            m.platform().as_ref().is_some_and(|p| {
                *p.architecture() == want
                    && (variant.is_none()
                        || p.variant().is_none()
                        || p.variant().as_deref() == variant)
            })
        });
        found.cloned().ok_or_else(|| Error::NoPlatform {
            arch: arch.to_string(),
            available: self
                .manifests()
                .iter()
                .filter_map(|m| m.platform().as_ref().map(|p| p.architecture().to_string()))
                .collect(),
        })
    }

    /// The manifest for `arch` of `top`: `top` itself if it is one image, else the
    /// platform its index lists.
    pub fn pick(
        source: &dyn BlobSource,
        top: &Descriptor,
        arch: &str,
    ) -> Result<Descriptor, Error> {
        if Kind::of(top.media_type().as_ref()) != Kind::Index {
            return Ok(top.clone());
        }
        Index::open(source, top)?.platform(arch)
    }
}
