//! Attaching to an image in a registry, and carrying cosign's legacy tagged images in a
//! push. The legacy image under `sha256-<hex>.sig` is a listing rewritten by each writer,
//! as [`super::listing`] describes.

use std::sync::Arc;

use oci_spec::image::{Descriptor, ImageManifest};

use super::{Registry, Remote};
use crate::Error;
use crate::attach::{Attachment, LegacyLayer, Outcome, Staged, legacy_layers};
use crate::digest::Digest;
use crate::reference::DockerName;
use crate::referrer::{LegacyImage, Referrer};
use crate::source::BlobSource;

impl Registry {
    /// Attaches each of `attachments` to the manifest it names in `name`'s repository, and
    /// says of each whether it was written or there already.
    pub async fn attach(
        self: &Arc<Self>,
        attachments: &[Attachment],
        name: &DockerName,
    ) -> Result<Vec<Outcome>, Error> {
        for subject in attachments.iter().map(Attachment::subject) {
            let subject = subject?.to_string();
            if self.manifest_at(name, &subject).await?.is_none() {
                return Err(Error::Registry {
                    registry: name.registry.clone(),
                    reason: format!(
                        "{} has no manifest {subject}, so nothing can be attached to it\n  hint: push the image first",
                        name.full()
                    ),
                });
            }
        }
        let mut outcomes = Vec::new();
        for attachment in attachments {
            let outcome = match attachment {
                Attachment::Referrer(artifact) => {
                    let mut staged = Staged::over(None);
                    let d = staged.artifact(artifact)?;
                    let subject = Digest::named(artifact.subject.digest().as_ref())?;
                    let listed = self.referrers(name, &subject).await?;
                    if listed.iter().any(|l| l.digest() == d.digest()) {
                        Outcome::Present
                    } else {
                        let referrer = Referrer {
                            subject: subject.to_string(),
                            artifact: d,
                        };
                        self.push_referrers(&staged, &[referrer], name).await?;
                        Outcome::Written
                    }
                }
                Attachment::Tagged(t) => {
                    let layers = std::slice::from_ref(&t.layer);
                    self.update_legacy(name, &t.tag(), layers, None).await?
                }
            };
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    /// Pushes the legacy images `legacy` of `source` to `name`'s repository under their
    /// tags: each as it is where the registry has none, else its layers joined to those of
    /// the image the registry has.
    pub async fn push_legacy(
        self: &Arc<Self>,
        source: &dyn BlobSource,
        legacy: &[LegacyImage],
        name: &DockerName,
    ) -> Result<(), Error> {
        for l in legacy {
            let layers = legacy_layers(source, &l.image)?;
            self.update_legacy(name, &l.tag, &layers, Some((source, &l.image)))
                .await?;
        }
        Ok(())
    }

    /// Makes the legacy image under `tag` hold `layers`: `image` of `source` pushed as it
    /// is when given and the tag is free, else the image there with the layers it lacks
    /// appended. Read back after a while, and done again while a race dropped a layer.
    async fn update_legacy(
        self: &Arc<Self>,
        name: &DockerName,
        tag: &str,
        layers: &[LegacyLayer],
        image: Option<(&dyn BlobSource, &Descriptor)>,
    ) -> Result<Outcome, Error> {
        let at_tag = DockerName {
            tag: tag.to_string(),
            ..name.clone()
        };
        let write = async || {
            let held = self.manifest_at(&at_tag, tag).await?;
            if let (None, Some((source, image))) = (&held, image) {
                self.push(source, image, &at_tag, true).await?;
                return Ok(true);
            }
            let held =
                held.map(|(bytes, d)| (Remote::holding(self.clone(), &at_tag, &d, bytes), d));
            let under = held.as_ref().map(|(r, _)| r as &dyn BlobSource);
            let mut staged = Staged::over(under);
            let Some(d) = staged.legacy(held.as_ref().map(|(_, d)| d), layers)? else {
                return Ok(false);
            };
            self.push(&staged, &d, &at_tag, true).await?;
            Ok(true)
        };
        let holds = async || self.legacy_holds(&at_tag, layers).await;
        let wrote = self.settled(name, tag, write, holds).await?;
        Ok(if wrote {
            Outcome::Written
        } else {
            Outcome::Present
        })
    }

    /// Whether the legacy image under `at_tag` holds every one of `layers`.
    async fn legacy_holds(
        &self,
        at_tag: &DockerName,
        layers: &[LegacyLayer],
    ) -> Result<bool, Error> {
        let Some((bytes, _)) = self.manifest_at(at_tag, &at_tag.tag).await? else {
            return Ok(false);
        };
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|error| Error::BadDocument {
                what: format!("the legacy image {}", at_tag.full()),
                error,
            })?;
        Ok(layers
            .iter()
            .all(|l| manifest.layers().iter().any(|d| l.is(d))))
    }
}
