//! Where an image's blobs are read from: one trait for layouts, archives read in place and
//! registries.
//!
//! A source only hands over a blob's stored bytes. Every check on them (no more than the
//! descriptor's size, the digest, a layer's diff_id, the cap on documents) is made by the
//! provided methods and [`crate::blob`], once for all sources, and so is the walk of an
//! image's graph, which visits each digest once and nests at most
//! [`MAX_NESTING`](crate::layout::MAX_NESTING) levels deep.

use std::collections::HashMap;
use std::io::{self, Read};

use oci_spec::image::{Descriptor, ImageManifest};

use crate::Error;
use crate::blob::{self, Blob, BlobReader, Layer, LayerReader};
use crate::digest::Digest;
use crate::layout::{MAX_DOCUMENT, MAX_NESTING};
use crate::media::Kind;
use crate::model::Index;
use crate::referrer::Referrer;

/// Somewhere blobs are kept: a layout, an archive, a registry.
pub trait BlobSource: Send + Sync {
    /// The source, as errors name it: a layout's directory, an archive's file, a
    /// repository.
    fn name(&self) -> String;

    /// The stored bytes of the blob `d` describes, not yet checked. A source that knows
    /// how many bytes it stores refuses a blob unlike its descriptor here, and one it lacks
    /// is an error naming it.
    fn stored(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error>;

    /// Checks that the blob `d` describes can be read, before anything is written; by
    /// default, by opening it.
    fn check_present(&self, d: &Descriptor) -> Result<(), Error> {
        self.stored(d).map(drop)
    }

    /// How many blobs are best read at once: more than one where reading waits on a
    /// network.
    fn concurrency(&self) -> usize {
        1
    }

    /// The artifacts (SBOMs, say) the source lists as referring to one of `subjects`: a
    /// registry's referrers of each, a layout's or archive's artifacts that name one.
    /// Listed, not checked: [`crate::referrer::of_image`] checks those it follows.
    fn referrers(&self, _subjects: &[Descriptor]) -> Result<Vec<Referrer>, Error> {
        Ok(Vec::new())
    }

    /// The repository of a registry this source holds the blob `d` in, where a push to
    /// another repository of that registry can mount it from instead of uploading it.
    fn origin(&self, _d: &Descriptor) -> Option<crate::reference::DockerName> {
        None
    }

    /// The manifest under `tag`, for cosign's legacy signatures (`sha256-<hex>.sig`), which
    /// are found by tag; `None` when the source has none. Not checked: see
    /// [`crate::referrer::of_image`].
    fn tagged(&self, _tag: &str) -> Result<Option<Descriptor>, Error> {
        Ok(None)
    }

    /// Streams a blob as it is stored, checked as it goes (see [`crate::blob`]): the read
    /// that reaches its end fails unless it matched its size, its digest and, for a layer,
    /// its diff_id.
    fn open_blob(&self, blob: &Blob) -> Result<BlobReader, Error> {
        blob::verified(self.stored(&blob.descriptor)?, blob)
    }

    /// Streams a layer uncompressed, checking its size, digest and diff_id as it goes: the
    /// read that reaches the end of the tar stream fails unless they all match.
    fn open_layer(&self, layer: &Layer) -> Result<LayerReader, Error> {
        blob::layer_of(self.stored(&layer.descriptor)?, layer)
    }

    /// Reads the manifest, index or config a descriptor names, whole and checked; it may
    /// be at most [`MAX_DOCUMENT`] bytes.
    fn read_described(&self, d: &Descriptor) -> Result<Vec<u8>, Error> {
        if d.size() > MAX_DOCUMENT {
            return Err(Error::Image {
                what: format!("document {}", d.digest()),
                reason: format!(
                    "its descriptor says {} bytes; a manifest, index or config may have at most {MAX_DOCUMENT}",
                    d.size()
                ),
            });
        }
        let mut bytes = Vec::new();
        self.open_blob(&Blob::of(d))?
            .read_to_end(&mut bytes)
            .map_err(|e| Error::from_stream(self.name(), e))?;
        Ok(bytes)
    }

    /// Reads a blob through to its end, so that every check of
    /// [`open_blob`](BlobSource::open_blob) is made.
    fn verify(&self, blob: &Blob) -> Result<(), Error> {
        io::copy(&mut self.open_blob(blob)?, &mut io::sink())
            .map_err(|e| Error::from_stream(self.name(), e))?;
        Ok(())
    }
}

/// Every blob the image (or index) `top` of `source` reaches, itself included, once each
/// and documents before the blobs they point at. Each layer of an image comes with the
/// diff_id its config gives it, and an image whose config lists another number of diff_ids
/// than its manifest lists layers is refused. The documents are read and checked on the
/// way, and every other blob checked to be there.
pub fn reachable(source: &dyn BlobSource, top: &Descriptor) -> Result<Vec<Blob>, Error> {
    let bad = |reason: String| Error::BadLayout {
        path: source.name().into(),
        reason,
    };
    let mut out: Vec<Blob> = Vec::new();
    let mut seen: HashMap<Digest, usize> = HashMap::new();
    // Each blob with its level: a layout's index.json is the first, `top` the second.
    let mut pending = vec![(Blob::of(top), 2)];
    while let Some((blob, level)) = pending.pop() {
        let d = &blob.descriptor;
        let digest: Digest = d.digest().to_string().parse().map_err(bad)?;
        if let Some(&i) = seen.get(&digest) {
            // The same bytes cannot have two uncompressed digests.
            if out[i].diff_id != blob.diff_id {
                let claim = |b: &Blob| b.diff_id.as_ref().map_or("none".into(), |d| d.to_string());
                return Err(Error::Image {
                    what: format!("layer {digest}"),
                    reason: format!(
                        "the image gives it two diff_ids, {} and {}",
                        claim(&out[i]),
                        claim(&blob)
                    ),
                });
            }
            continue;
        }
        let media_type = d.media_type().to_string();
        if Kind::of(&media_type).is_document() && level > MAX_NESTING {
            return Err(bad(format!(
                "{digest} is nested {level} levels deep (index.json counting as the first); images nest at most {MAX_NESTING}"
            )));
        }
        if Kind::of(&media_type) == Kind::Index {
            let index = Index::open(source, d)?;
            pending.extend(index.manifests().iter().map(|m| (Blob::of(m), level + 1)));
        } else if Kind::of(&media_type) == Kind::Manifest {
            let manifest: ImageManifest = serde_json::from_slice(&source.read_described(d)?)
                .map_err(|e| bad(format!("manifest {digest}: {e}")))?;
            let config = manifest.config();
            pending.push((Blob::of(config), level + 1));
            // An image's layers are tars with diff_ids; cosign's legacy signature image has
            // an image config over layers none of which is a tar, read as an artifact's
            // are. An image with one tar layer among others is an image, each layer
            // checked against its diff_id (and refused where it cannot be).
            let is_image = Kind::of(config.media_type().as_ref()) == Kind::Config
                && (manifest.layers().is_empty()
                    || manifest
                        .layers()
                        .iter()
                        .any(|l| matches!(Kind::of(l.media_type().as_ref()), Kind::Layer(_))));
            if is_image {
                #[derive(serde::Deserialize)]
                struct Rootfs {
                    diff_ids: Vec<String>,
                }
                #[derive(serde::Deserialize)]
                struct Config {
                    rootfs: Rootfs,
                }
                let parsed: Config = serde_json::from_slice(&source.read_described(config)?)
                    .map_err(|e| bad(format!("config {}: {e}", config.digest())))?;
                let what = format!("image {}", d.digest());
                let layers =
                    crate::image::layers(&what, manifest.layers(), &parsed.rootfs.diff_ids)?;
                pending.extend(layers.iter().map(|l| (Blob::from(l), level + 1)));
            } else {
                // An artifact (an SBOM, say): its layers are plain blobs.
                pending.extend(manifest.layers().iter().map(|l| (Blob::of(l), level + 1)));
            }
        } else {
            // So that a blob that could never be read is refused before anything is
            // written.
            source.check_present(d)?;
        }
        seen.insert(digest, out.len());
        out.push(blob);
    }
    Ok(out)
}
