//! Where an image is written: one trait for layouts, both kinds of archive and registries,
//! so that copying, a build's outputs and a push all write alike. Every sink takes any
//! [`BlobSource`], writes the image with the artifacts (SBOMs, signatures) that refer to it
//! that the caller follows, in both of cosign's schemes, and checks every blob as it reads
//! it; and every sink attaches artifacts to an image it already holds
//! ([`Sink::attach`]). A layout or an archive is written beside its path and renamed into
//! place; a push sends the blobs first and the tag last, so a failed one leaves only blobs
//! that nothing names.
//!
//! Where each sink keeps what refers to an image:
//! - a layout lists artifacts in `index.json` without a tag, and legacy images under their
//!   tags;
//! - an archive lists them in an index of its own ([`crate::archive`]), so that its
//!   `index.json` still lists one image, as podman, skopeo and `docker load` need;
//! - a registry lists artifacts through the referrers API, else under the tag
//!   `sha256-<hex>`, and legacy images under their tags.

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::LocalBoxFuture;
use oci_spec::image::Descriptor;

use crate::Error;
use crate::archive;
use crate::attach::{Attachment, Outcome};
use crate::digest::Digest;
use crate::layout::Layout;
use crate::reference::DockerName;
use crate::referrer::{self, Follow, Referrer, Referrers};
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

    /// Attaches each of `attachments` to the image (or platform manifest) it names, which
    /// the sink must hold, and says of each whether it was written or there already.
    fn attach<'a>(
        &'a self,
        attachments: &'a [Attachment],
    ) -> LocalBoxFuture<'a, Result<Vec<Outcome>, Error>>;
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

    fn attach<'a>(
        &'a self,
        attachments: &'a [Attachment],
    ) -> LocalBoxFuture<'a, Result<Vec<Outcome>, Error>> {
        Box::pin(async move {
            if !self.dir.join("oci-layout").is_file() {
                return Err(Error::NotLayout {
                    path: self.dir.clone(),
                });
            }
            let pending = Layout::pending(&self.dir)?;
            let outcomes = pending.layout().attach(attachments)?;
            pending.commit()?;
            Ok(outcomes)
        })
    }
}

/// An OCI archive: a tar file of a layout.
pub struct OciArchiveSink {
    /// The archive file.
    pub file: PathBuf,
    /// The tag the image is put under (`latest` when none), and the image attached to.
    pub tag: Option<String>,
}

impl Sink for OciArchiveSink {
    fn write<'a>(
        &'a self,
        source: &'a dyn BlobSource,
        top: &'a Descriptor,
        follow: Follow<'a>,
    ) -> LocalBoxFuture<'a, Result<Written, Error>> {
        Box::pin(async move {
            let tag = self.tag.as_deref().unwrap_or("latest");
            archived(source, top, follow, |referrers| {
                archive::write_oci(source, top, tag, referrers, &self.file)
            })
        })
    }

    fn attach<'a>(
        &'a self,
        attachments: &'a [Attachment],
    ) -> LocalBoxFuture<'a, Result<Vec<Outcome>, Error>> {
        Box::pin(async move { archive::attach(&self.file, self.tag.as_deref(), attachments) })
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
        follow: Follow<'a>,
    ) -> LocalBoxFuture<'a, Result<Written, Error>> {
        Box::pin(async move {
            archived(source, top, follow, |referrers| {
                archive::write_docker(source, top, self.name.as_ref(), referrers, &self.file)
            })
        })
    }

    fn attach<'a>(
        &'a self,
        attachments: &'a [Attachment],
    ) -> LocalBoxFuture<'a, Result<Vec<Outcome>, Error>> {
        Box::pin(async move {
            let name = self.name.as_ref().map(DockerName::full);
            archive::attach(&self.file, name.as_deref(), attachments)
        })
    }
}

/// A repository in a registry, the image pushed to its tag or to its own digest.
pub struct RegistrySink {
    /// The client for the repository's registry.
    pub registry: Arc<Registry>,
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
            registry
                .push_legacy(source, &referrers.legacy, &self.name)
                .await?;
            report.referrers = referrers.followed.len() + referrers.legacy.len();
            Ok(Written {
                top: top.clone(),
                push: Some(report),
                left_behind: referrers.left_behind,
            })
        })
    }

    fn attach<'a>(
        &'a self,
        attachments: &'a [Attachment],
    ) -> LocalBoxFuture<'a, Result<Vec<Outcome>, Error>> {
        Box::pin(async move { self.registry.attach(attachments, &self.name).await })
    }
}

/// Writes an archive of `top` with `write`, given the referrers of it that `follow` asks
/// for.
fn archived(
    source: &dyn BlobSource,
    top: &Descriptor,
    follow: Follow,
    write: impl FnOnce(&Referrers) -> Result<(), Error>,
) -> Result<Written, Error> {
    let referrers = referrer::of_image(source, top, follow)?;
    write(&referrers)?;
    Ok(Written {
        left_behind: referrers.left_behind,
        ..written(top)
    })
}

fn written(top: &Descriptor) -> Written {
    Written {
        top: top.clone(),
        push: None,
        left_behind: Vec::new(),
    }
}
