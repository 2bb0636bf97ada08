//! Where an image is written: one trait for layouts, both kinds of archive and registries,
//! so that copying, a build's outputs and a push all write alike. Every sink takes any
//! [`BlobSource`], writes the image with the artifacts (SBOMs) that refer to it that the
//! caller follows (a layout and a registry do; an archive holds the image alone), and
//! checks every blob as it reads it. A layout or an archive is written beside its path and
//! renamed into place; a push sends the blobs first and the tag last, so a failed one
//! leaves only blobs that nothing names.

use std::path::PathBuf;

use futures::future::LocalBoxFuture;
use oci_spec::image::Descriptor;

use crate::Error;
use crate::archive;
use crate::digest::Digest;
use crate::layout::Layout;
use crate::reference::DockerName;
use crate::referrer::{self, Follow, Referrer};
use crate::registry::{PushReport, Registry};
use crate::source::BlobSource;

/// What writing an image did.
pub struct Written {
    /// The image (or index) written.
    pub top: Descriptor,
    /// For a push, what moved.
    pub push: Option<PushReport>,
    /// The referrers not written, for their artifact type.
    pub left_behind: Vec<Referrer>,
}

/// Somewhere an image can be written.
pub trait Sink: Send + Sync {
    /// Whether it can hold an index of several platforms' images.
    fn holds_several_platforms(&self) -> bool {
        true
    }

    /// Writes the image (or index) `top` of `source`, with the artifacts that refer to it
    /// that `follow` asks for, where the sink holds them. The future is driven where it is
    /// awaited (it is not `Send`): a push's holds borrowing closures.
    fn write<'a>(
        &'a self,
        source: &'a dyn BlobSource,
        top: &'a Descriptor,
        follow: Follow<'a>,
    ) -> LocalBoxFuture<'a, Result<Written, Error>>;
}

/// An OCI layout directory, made if it is not there, with the image under a tag. A new
/// layout is written beside its path and renamed into place.
pub struct LayoutSink {
    /// The layout directory.
    pub dir: PathBuf,
    /// The tag the image is put under.
    pub tag: String,
}

impl Sink for LayoutSink {
    fn write<'a>(
        &'a self,
        source: &'a dyn BlobSource,
        top: &'a Descriptor,
        follow: Follow<'a>,
    ) -> LocalBoxFuture<'a, Result<Written, Error>> {
        Box::pin(async move {
            let pending = Layout::pending(&self.dir)?;
            let layout = pending.layout();
            layout.copy_image_from(source, top)?;
            let referrers = layout.copy_artifacts_from(source, top, follow)?;
            layout.tag(top, std::slice::from_ref(&self.tag))?;
            pending.commit()?;
            Ok(Written {
                left_behind: referrers.left_behind,
                ..written(top)
            })
        })
    }
}

/// An OCI archive: a tar file of a layout.
pub struct OciArchiveSink {
    /// The archive file.
    pub file: PathBuf,
    /// The tag the image is put under.
    pub tag: String,
}

impl Sink for OciArchiveSink {
    fn write<'a>(
        &'a self,
        source: &'a dyn BlobSource,
        top: &'a Descriptor,
        _: Follow<'a>,
    ) -> LocalBoxFuture<'a, Result<Written, Error>> {
        Box::pin(async move {
            archive::write_oci(source, top, &self.tag, &self.file)?;
            Ok(written(top))
        })
    }
}

/// A docker archive, as `docker save` writes and `docker load` reads: one platform's
/// image, tagged `name` when there is one.
pub struct DockerArchiveSink {
    /// The archive file.
    pub file: PathBuf,
    /// The `REPOSITORY:TAG` that `docker load` tags the image with, if any.
    pub name: Option<DockerName>,
}

impl Sink for DockerArchiveSink {
    fn holds_several_platforms(&self) -> bool {
        false
    }

    fn write<'a>(
        &'a self,
        source: &'a dyn BlobSource,
        top: &'a Descriptor,
        _: Follow<'a>,
    ) -> LocalBoxFuture<'a, Result<Written, Error>> {
        Box::pin(async move {
            archive::write_docker(source, top, self.name.as_ref(), &self.file)?;
            Ok(written(top))
        })
    }
}

/// A repository in a registry, the image pushed to its tag or to its own digest.
pub struct RegistrySink {
    /// The client for the repository's registry.
    pub registry: Registry,
    /// The repository, and the tag pushed to when no digest is named.
    pub name: DockerName,
    /// The digest the reference names, if it names one instead of a tag.
    pub digest: Option<Digest>,
}

impl Sink for RegistrySink {
    fn write<'a>(
        &'a self,
        source: &'a dyn BlobSource,
        top: &'a Descriptor,
        follow: Follow<'a>,
    ) -> LocalBoxFuture<'a, Result<Written, Error>> {
        Box::pin(async move {
            if let Some(d) = self
                .digest
                .as_ref()
                .filter(|d| d.to_string() != top.digest().to_string())
            {
                return Err(Error::WrongDigest {
                    name: self.name.full(),
                    digest: d.to_string(),
                    image: top.digest().to_string(),
                });
            }
            // Referrers past a bound, or not what they are listed as, stop the push before
            // it begins.
            let referrers = referrer::of_image(source, top, follow)?;
            let registry = &self.registry;
            let mut report = registry
                .push(source, top, &self.name, self.digest.is_none())
                .await?;
            registry
                .push_referrers(source, &referrers.followed, &self.name)
                .await?;
            report.referrers = referrers.followed.len();
            Ok(Written {
                top: top.clone(),
                push: Some(report),
                left_behind: referrers.left_behind,
            })
        })
    }
}

fn written(top: &Descriptor) -> Written {
    Written {
        top: top.clone(),
        push: None,
        left_behind: Vec::new(),
    }
}
