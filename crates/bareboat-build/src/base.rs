//! Building on an image bareboat did not make in this build: a company base, or a
//! catalogue image published once to a registry.
//!
//! The base's layers are kept byte for byte and bareboat's layers go on top. The tree reads
//! them, so that it knows what the base holds (its accounts, its CA bundle, the files a
//! package would overwrite) and which Debian packages it has installed: the solver counts
//! those as installed instead of adding them again.

use std::collections::BTreeMap;
use std::io::{self, Read};

use bareboat_apt::dpkg::{self, Database};
use bareboat_apt::index::PackageIndex;
use bareboat_oci::blob::Layer;
use bareboat_oci::image::BaseLayers;
use bareboat_oci::layout::Layout;
use bareboat_oci::model::Image;
use bareboat_oci::overlay::{self, Change, Kind as EntryKind, Limits};
use bareboat_oci::source::BlobSource;
use oci_spec::image::{Descriptor, ImageConfiguration, MediaType};

use bareboat_rootfs::rootfs::Rootfs;

use crate::Error;

/// The annotations that let base-image update tools follow an image to its base.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// The annotation that names the base image's digest, beside its name.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

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
            let mut reader = self.source.open_layer(l)?;
            let unpacked = tree
                .add_image_layer(layer, &origin, &mut reader)
                .map_err(Error::from)
                .and_then(|()| {
                    // Read to the end, so the blob's digest and diff_id are checked.
                    io::copy(&mut reader, &mut io::sink())
                        .map_err(|e| self.refused(format!("layer {}: {e}", l.descriptor.digest())))
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
    pub fn installed(&self) -> Result<PackageIndex, Error> {
        let mut database = DatabaseFiles::default();
        let again = self.listed_again();
        for (i, l) in self.layers.iter().enumerate() {
            if again[i].is_some() {
                continue;
            }
            database.layer = i;
            let mut reader = self.source.open_layer(l)?;
            // The caps the tree applies to the same layers when it unpacks them.
            let read = overlay::apply(&mut reader, &Limits::BUILD, &mut database)
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
                return Err(self.refused(reader.damage().map_or(e, |d| d.to_string())));
            }
        }
        let files = database
            .files
            .iter()
            .map(|(p, (_, b))| (p.as_str(), b.as_slice()));
        Database::read(files)
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

/// The overlay engine's visitor that keeps only the dpkg database files of the layers it
/// reads, as the layers stack: a later layer's whiteout, or another entry at a file's
/// path or above it, takes the file away.
#[derive(Default)]
struct DatabaseFiles {
    /// Each file, with the layer that wrote it.
    files: BTreeMap<String, (usize, Vec<u8>)>,
    kept: u64,
    /// The layer being read.
    layer: usize,
}

impl DatabaseFiles {
    /// Forgets what is under `path` (and `path` itself, `with_self`) that the layers below
    /// wrote, or (`this_layer`) this layer too.
    fn forget(&mut self, path: &str, with_self: bool, this_layer: bool) {
        let under = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let current = self.layer;
        let below = |(p, (layer, _)): (&String, &(usize, Vec<u8>))| {
            (this_layer || *layer < current).then(|| p.clone())
        };
        let mut gone: Vec<String> = self
            .files
            .range(under.clone()..)
            .take_while(|(p, _)| p.starts_with(&under))
            .filter_map(below)
            .collect();
        gone.extend(
            self.files
                .get_key_value(path)
                .filter(|_| with_self)
                .and_then(below),
        );
        for p in gone {
            self.kept -= self.files.remove(&p).map_or(0, |(_, b)| b.len() as u64);
        }
    }
}

impl overlay::Visitor for DatabaseFiles {
    type Error = overlay::Refusal;

    fn visit(&mut self, change: Change<'_>) -> Result<(), overlay::Refusal> {
        let entry = match change {
            Change::Delete { path, .. } => {
                self.forget(&path, true, false);
                return Ok(());
            }
            Change::Empty { dir, .. } => {
                self.forget(&dir, false, false);
                return Ok(());
            }
            Change::Put(entry) => entry,
        };
        // A directory replaces a file, and merges with a directory; anything else replaces
        // all that was at its path.
        if entry.kind == EntryKind::Dir {
            let file = self.files.remove(&entry.path);
            self.kept -= file.map_or(0, |(_, b)| b.len() as u64);
            return Ok(());
        }
        self.forget(&entry.path, true, true);
        let wanted =
            entry.kind == EntryKind::File && !entry.sparse && dpkg::is_database(&entry.path);
        if !wanted || entry.size > dpkg::MAX_DATABASE {
            return Ok(());
        }
        let refuse = |reason: String| overlay::Refusal {
            entry: entry.raw.clone(),
            reason,
        };
        if self.kept + entry.size > dpkg::MAX_DATABASES {
            return Err(refuse(format!(
                "the dpkg database files pass {} bytes: refused",
                dpkg::MAX_DATABASES
            )));
        }
        // The header gave the size, which is bounded: the buffer is made for it.
        let mut bytes = Vec::with_capacity(entry.size as usize);
        entry
            .content
            .take(entry.size)
            .read_to_end(&mut bytes)
            .map_err(|e| refuse(e.to_string()))?;
        self.kept += bytes.len() as u64;
        self.files.insert(entry.path, (self.layer, bytes));
        Ok(())
    }
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
        let mut db = DatabaseFiles::default();
        for (i, l) in [lower, upper].iter().enumerate() {
            db.layer = i;
            overlay::apply(&l[..], &Limits::BUILD, &mut db).unwrap();
        }
        assert_eq!(
            db.files.keys().collect::<Vec<_>>(),
            ["var/lib/dpkg/status.d/d"]
        );
        assert_eq!(db.kept, 22);
    }

    #[test]
    fn docker_layer_types_become_oci_ones() {
        assert_eq!(
            oci_media_type("application/vnd.docker.image.rootfs.diff.tar.gzip"),
            MediaType::ImageLayerGzip
        );
    }
}
