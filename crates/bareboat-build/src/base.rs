//! Building on an image bareboat did not make in this build: a company base, or a
//! catalogue image published once to a registry.
//!
//! The base's layers are kept byte for byte and bareboat's layers go on top. The tree reads
//! them, so that it knows what the base holds (its accounts, its CA bundle, the files a
//! package would overwrite) and which Debian packages it has installed: the solver counts
//! those as installed instead of adding them again.

use std::io::{self, Read};
use std::path::Path;

use bareboat_apt::dpkg::{self, Database};
use bareboat_apt::index::PackageIndex;
use bareboat_oci::blob::Layer;
use bareboat_oci::image::BaseLayers;
use bareboat_oci::layout::Layout;
use bareboat_oci::model::Image;
use bareboat_oci::overlay::{self, Kind as EntryKind, Limits};
use bareboat_oci::reference::ImageRef;
use bareboat_oci::source::BlobSource;
use bareboat_oci::stack::{Keep, Stack, Store};
use oci_spec::image::{Descriptor, ImageConfiguration, MediaType};

use bareboat_rootfs::rootfs::Rootfs;

use crate::Error;

/// The annotations that let base-image update tools follow an image to its base.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// The annotation that names the base image's digest, beside its name.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// The name a build records of its base in [`BASE_NAME`]: a registry name (with the
/// digest it was named by), `oci:DIR:TAG`, or an archive's path.
pub fn recorded_name(image: &ImageRef) -> String {
    match image {
        ImageRef::Docker { name, digest } => match digest {
            Some(d) => format!("{}@{d}", name.full()),
            None => name.full(),
        },
        ImageRef::Oci { dir, tag } => format!("oci:{}:{tag}", dir.display()),
        ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. } => {
            file.display().to_string()
        }
    }
}

/// A name [`recorded_name`] made, as a reference to open; a registry name without the
/// digest it was named by, so that its tag is followed.
pub fn recorded_reference(recorded: &str) -> String {
    if recorded.starts_with("oci:") {
        recorded.to_string()
    } else if Path::new(recorded).is_file() {
        format!("oci-archive:{recorded}")
    } else {
        format!(
            "docker://{}",
            recorded.split('@').next().unwrap_or(recorded)
        )
    }
}

/// A base image, opened: an image or an index in a source.
pub struct Base<'a> {
    /// The reference it was named by.
    pub name: String,
    /// Where its blobs are read from.
    pub source: &'a dyn BlobSource,
    /// Its image or index.
    pub top: Descriptor,
}

impl<'a> Base<'a> {
    /// The base's image for Debian architecture `arch`.
    pub fn image(&self, arch: &str) -> Result<BaseImage<'a>, Error> {
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
    /// Its config, whose settings the new image inherits.
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
    ) -> Result<BaseImage<'a>, Error> {
        let bad = |reason: String| Error::Base {
            name: name.to_string(),
            reason,
        };
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
    pub fn unpack(&self, tree: &mut Rootfs) -> Result<(), Error> {
        let again = self.listed_again();
        for (l, again) in self.layers.iter().zip(again) {
            let origin = format!("base image {} layer {}", self.name, l.descriptor.digest());
            let layer = tree.push_layer();
            if again.is_some() {
                continue;
            }
            let mut reader = self.source.open_layer(l)?.ahead();
            let unpacked = tree
                .add_image_layer(layer, &origin, &mut reader)
                .map_err(Error::from)
                .and_then(|()| {
                    // Read to the end, so the blob's digest and diff_id are checked.
                    io::copy(&mut reader, &mut io::sink())
                        .map_err(|e| self.refused(format!("layer {}: {e}", l.descriptor.digest())))
                });
            if let Err(e) = unpacked {
                let damage = reader.into_inner().damage();
                return Err(damage.map_or(e, |damage| self.refused(damage)));
            }
        }
        tree.seal()?;
        Ok(())
    }

    /// The Debian packages the base has installed, read from its layers as they stream and
    /// stack: only the dpkg database is kept, on disk, within dpkg's caps.
    pub fn installed(&self) -> Result<PackageIndex, Error> {
        let store = Store::new(&std::env::temp_dir(), dpkg::MAX_DATABASES)
            .map_err(|e| self.refused(format!("keeping its dpkg database: {e}")))?;
        let mut stack = Stack::keeping(store);
        let again = self.listed_again();
        for (i, l) in self.layers.iter().enumerate() {
            if again[i].is_some() {
                continue;
            }
            let mut reader = self.source.open_layer(l)?.ahead();
            let read = stack_database(&mut stack, &mut reader, i)
                .map_err(|e| {
                    format!(
                        "layer {}: entry {:?}: {}",
                        l.descriptor.digest(),
                        e.entry,
                        e.reason
                    )
                })
                .and_then(|_| {
                    // Read to the end, so the blob's digest and diff_id are checked.
                    io::copy(&mut reader, &mut io::sink()).map_err(|e| e.to_string())
                });
            if let Err(e) = read {
                let damage = reader.into_inner().damage();
                return Err(self.refused(damage.map_or(e, |d| d.to_string())));
            }
        }
        let files = database_files(&stack).map_err(|e| self.refused(e))?;
        Database::read(files.iter().map(|(p, b)| (p.as_str(), b.as_slice())))
            .index("the base image's dpkg database")
            .map_err(Into::into)
    }

    /// For each layer, where the manifest lists its blob again: only the last listing is
    /// read (see [`overlay::listed_again`]).
    fn listed_again(&self) -> Vec<Option<usize>> {
        let digests: Vec<_> = self.layers.iter().map(|l| l.descriptor.digest()).collect();
        overlay::listed_again(&digests)
    }

    /// Copies the base's layer blobs into `to`, where the new image's manifest names them,
    /// each checked as it is copied.
    pub fn copy_layers(&self, to: &Layout) -> Result<(), Error> {
        let again = self.listed_again();
        for (l, _) in self.layers.iter().zip(again).filter(|(_, a)| a.is_none()) {
            to.copy_blob_from(self.source, &l.into())
                .map_err(|e| self.refused(e))?;
        }
        Ok(())
    }

    /// `e`, said of this base.
    fn refused(&self, e: impl std::fmt::Display) -> Error {
        Error::Base {
            name: self.name.clone(),
            reason: e.to_string(),
        }
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

/// Stacks `layer` as layer `index` of `stack`, keeping the dpkg database files it puts
/// (each within [`dpkg::MAX_DATABASE`]), with the caps the build's tree applies to the same
/// layers when it unpacks them.
fn stack_database(
    stack: &mut Stack,
    layer: impl Read,
    index: usize,
) -> Result<overlay::Stats, overlay::Refusal> {
    let mut keep =
        Keep(|path: &str, size: u64| dpkg::is_database(path) && size <= dpkg::MAX_DATABASE);
    stack.apply(layer, index, &Limits::BUILD, &mut keep)
}

/// The dpkg database files the stacked layers show, read back from where they are kept.
fn database_files(stack: &Stack) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (path, node) in stack.iter() {
        let (EntryKind::File, Some(stored)) = (&node.kind, &node.content) else {
            continue;
        };
        let mut bytes = Vec::with_capacity(stored.size as usize);
        stack.open(stored)?.read_to_end(&mut bytes)?;
        out.push((path.clone(), bytes));
    }
    Ok(out)
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
    use bareboat_testkit::tar_of;

    #[test]
    fn only_the_database_files_the_stacked_layers_show_are_kept() {
        let a = b"Package: a\nVersion: 1\nArchitecture: amd64\n";
        let b = b"Package: b\nVersion: 1\nArchitecture: amd64\n";
        let c = b"Package: c\nVersion: 1\nArchitecture: amd64\n";
        let lower = tar_of(&[
            ("var/lib/dpkg/status.d/a", a),
            ("var/lib/dpkg/status.d/b", b),
            ("var/lib/dpkg/status.d/c", c),
            ("usr/bin/x", b"not a database"),
        ]);
        // b is deleted, and c replaced by a directory.
        let upper = tar_of(&[
            ("var/lib/dpkg/status.d/.wh.b", b""),
            ("var/lib/dpkg/status.d/c/", b""),
            // An opaque whiteout empties what the layers below put there, not what this
            // layer put there before it.
            ("var/lib/dpkg/status.d/d", b"Package: d\nVersion: 1\n"),
            ("var/lib/dpkg/status.d/.wh..wh..opq", b""),
        ]);
        let store = Store::new(&std::env::temp_dir(), 1 << 20).unwrap();
        let mut stack = Stack::keeping(store);
        for (i, l) in [lower, upper].iter().enumerate() {
            stack_database(&mut stack, &l[..], i).unwrap();
        }
        let files = database_files(&stack).unwrap();
        assert_eq!(
            files,
            [(
                "var/lib/dpkg/status.d/d".to_string(),
                b"Package: d\nVersion: 1\n".to_vec()
            )]
        );
    }

    #[test]
    fn docker_layer_types_become_oci_ones() {
        assert_eq!(
            oci_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            MediaType::ImageLayerGzip
        );
    }
}
