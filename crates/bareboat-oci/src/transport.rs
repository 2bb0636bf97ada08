//! Opening an image by reference and writing one to a reference, whatever the transport:
//! `oci:` layouts and both kinds of archive are read in place; a registry image is streamed
//! blob by blob as it is read, or pulled whole (every blob checked) into a scratch layout;
//! any source writes to any [`Sink`].

use std::path::Path;

use oci_spec::image::Descriptor;

use crate::Error;
use crate::archive::Archive;
use crate::digest::Digest;
use crate::layout::Layout;
use crate::media::Kind;
use crate::model::Index;
use crate::reference::ImageRef;
use crate::referrer::{Follow, Referrer};
use crate::registry::{Registry, RegistryOptions, Remote};
use crate::sink::{DockerArchiveSink, LayoutSink, OciArchiveSink, RegistrySink, Sink, Written};
use crate::source::BlobSource;

/// An image to read: where its blobs are, and the descriptor of the image (or index).
pub struct Source {
    /// Where the image's blobs are read from.
    pub blobs: Box<dyn BlobSource>,
    /// The descriptor of the image, or of its index.
    pub top: Descriptor,
    /// The referrers a registry image listed that were not pulled with it, for their type.
    pub left_behind: Vec<Referrer>,
    /// The scratch layout a registry image was pulled into, removed with this.
    _pulled: Option<tempfile::TempDir>,
}

/// How a registry image is fetched when it is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetch {
    /// Each blob when it is read, streamed, with nothing written to disk: for reading an
    /// image once, as inspect, audit, sbom, scan and compare do.
    OnDemand,
    /// Every blob at once, several in parallel, with the referrers the [`Follow`] asks
    /// for, into a scratch layout: for copying an image and building on it, which read
    /// blobs more than once.
    Whole(Follow<'static>),
}

/// Opens `reference`. An image from a registry is fetched as `fetch` says, a whole one
/// into a scratch layout under `scratch`.
pub async fn open(
    reference: &ImageRef,
    scratch: &Path,
    registry: &RegistryOptions,
    fetch: Fetch,
) -> Result<Source, Error> {
    let in_place = |blobs: Box<dyn BlobSource>, top| Source {
        blobs,
        top,
        left_behind: Vec::new(),
        _pulled: None,
    };
    match reference {
        ImageRef::Docker { name, digest } => {
            let client = Registry::new(registry, &name.registry)?;
            let (remote, top) = Remote::open(client, name, digest.as_ref()).await?;
            let Fetch::Whole(follow) = fetch else {
                return Ok(in_place(Box::new(remote), top));
            };
            let dir = tempfile::Builder::new()
                .prefix("bareboat-source-")
                .tempdir_in(scratch)
                .map_err(|e| Error::io(scratch, e))?;
            let layout = Layout::create(dir.path())?;
            layout.copy_image_from(&remote, &top)?;
            let referrers = layout.copy_artifacts_from(&remote, &top, follow)?;
            Ok(Source {
                blobs: Box::new(layout),
                top,
                left_behind: referrers.left_behind,
                _pulled: Some(dir),
            })
        }
        ImageRef::Oci { dir, tag } => {
            if !dir.join("oci-layout").is_file() {
                return Err(Error::NotLayout { path: dir.clone() });
            }
            let layout = Layout::create(dir)?;
            let top = layout.resolve(tag)?;
            Ok(in_place(Box::new(layout), top))
        }
        ImageRef::OciArchive { file, tag } => {
            let (archive, top) = Archive::open(file, tag.as_deref())?;
            Ok(in_place(Box::new(archive), top))
        }
        ImageRef::DockerArchive { file, name } => {
            let name = name.as_ref().map(|n| n.full());
            let (archive, top) = Archive::open(file, name.as_deref())?;
            Ok(in_place(Box::new(archive), top))
        }
    }
}

/// Opens the image `reference` names at `digest` (a manifest or index digest), where the
/// tag may have moved on since: a registry's by digest, a layout's by its blob; an archive,
/// which keeps no other image, as it is, refused unless it is still that image.
pub async fn open_at(
    reference: &ImageRef,
    digest: &Digest,
    scratch: &Path,
    registry: &RegistryOptions,
    fetch: Fetch,
) -> Result<Source, Error> {
    let pinned = match reference {
        ImageRef::Docker { name, .. } => ImageRef::Docker {
            name: name.clone(),
            digest: Some(digest.clone()),
        },
        ImageRef::Oci { dir, .. } => {
            // Opened, never made: the directory comes from what an image says.
            if !dir.join("oci-layout").is_file() {
                return Err(Error::NotLayout { path: dir.clone() });
            }
            let layout = Layout::create(dir)?;
            let size = std::fs::symlink_metadata(layout.blob_path(digest))
                .map_err(|e| Error::io(layout.blob_path(digest), e))?
                .len();
            let probe = Descriptor::new(
                oci_spec::image::MediaType::ImageManifest,
                size,
                oci_spec::image::Digest::try_from(digest.to_string())?,
            );
            // Told an index from a manifest by what it lists, as a registry's is.
            let bytes = layout.read_described(&probe)?;
            let is_index = serde_json::from_slice::<serde_json::Value>(&bytes)
                .is_ok_and(|v| v.get("manifests").is_some());
            let mut top = probe;
            if is_index {
                top.set_media_type(oci_spec::image::MediaType::ImageIndex);
            }
            return Ok(Source {
                blobs: Box::new(layout),
                top,
                left_behind: Vec::new(),
                _pulled: None,
            });
        }
        other => other.clone(),
    };
    let source = open(&pinned, scratch, registry, fetch).await?;
    if source.top.digest().as_ref() != digest.to_string() {
        return Err(Error::Image {
            what: format!("the image at {}", source.blobs.name()),
            reason: format!(
                "it is {}, no longer {digest}, and an archive keeps no other",
                source.top.digest()
            ),
        });
    }
    Ok(source)
}

/// The sink `output` names.
pub fn sink(output: &ImageRef, registry: &RegistryOptions) -> Result<Box<dyn Sink>, Error> {
    Ok(match output {
        ImageRef::Oci { dir, tag } => Box::new(LayoutSink {
            dir: dir.clone(),
            tag: tag.clone(),
        }),
        ImageRef::OciArchive { file, tag } => Box::new(OciArchiveSink {
            file: file.clone(),
            tag: tag.clone(),
        }),
        ImageRef::DockerArchive { file, name } => Box::new(DockerArchiveSink {
            file: file.clone(),
            name: name.clone(),
        }),
        ImageRef::Docker { name, digest } => Box::new(RegistrySink {
            registry: std::sync::Arc::new(Registry::new(registry, &name.registry)?),
            name: name.clone(),
            digest: digest.clone(),
        }),
    })
}

/// Writes the image (or index) `top` of `source`, with the artifacts that refer to it that
/// `follow` asks for, to `sink`. `arch` picks one platform out of an index, which a docker
/// archive needs.
pub async fn write(
    source: &dyn BlobSource,
    top: &Descriptor,
    sink: &dyn Sink,
    arch: Option<&str>,
    follow: Follow<'_>,
) -> Result<Written, Error> {
    let top = match arch {
        Some(arch) => Index::pick(source, top, arch)?,
        None => top.clone(),
    };
    if !sink.holds_several_platforms() && Kind::of(top.media_type().as_ref()) == Kind::Index {
        return Err(Error::SeveralPlatforms {
            index: top.digest().to_string(),
        });
    }
    sink.write(source, &top, follow).await
}
