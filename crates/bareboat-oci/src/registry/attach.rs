//! Attaching to an image in a registry, and carrying cosign's legacy tagged images in a
//! push.
//!
//! Two listings live under tags that are read, changed and written back: the referrers
//! index under `sha256-<hex>` (on a registry without the referrers API) and a legacy image
//! under `sha256-<hex>.sig`. A registry cannot do that atomically (docker-registry ignores
//! `If-Match`), so two writers at once may each read the old listing, and the later write
//! drops what the earlier added. So each writer, once it has written, waits twice as long
//! as its own read and write took (a writer that read before it wrote has written by
//! then), reads the tag again, and writes again while what it added is missing, a few
//! times. What a lost race drops is only ever dropped from the listing: the manifest stays
//! in the registry by its digest, and attaching again lists it again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oci_spec::image::{Descriptor, ImageManifest};

use super::{Registry, Remote};
use crate::Error;
use crate::attach::{Attachment, LegacyLayer, Outcome, Staged, legacy_layers};
use crate::digest::Digest;
use crate::reference::DockerName;
use crate::referrer::{Referrer, Tagged};
use crate::source::BlobSource;

/// How many times a writer writes a listing that a race keeps dropping its entry from.
const ROUNDS: usize = 5;

/// The least a writer waits before reading back what it wrote.
const LEAST_SETTLE: Duration = Duration::from_millis(50);

impl Registry {
    /// Attaches each of `attachments` to the manifest it names in `name`'s repository, and
    /// says of each whether it was written or there already.
    pub async fn attach(
        self: &Arc<Self>,
        attachments: &[Attachment],
        name: &DockerName,
    ) -> Result<Vec<Outcome>, Error> {
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

    /// Pushes the legacy images `tagged` of `source` to `name`'s repository under their
    /// tags: each as it is where the registry has none, else its layers joined to those of
    /// the image the registry has.
    pub async fn push_tagged(
        self: &Arc<Self>,
        source: &dyn BlobSource,
        tagged: &[Tagged],
        name: &DockerName,
    ) -> Result<(), Error> {
        for t in tagged {
            let layers = legacy_layers(source, &t.image)?;
            self.update_legacy(name, &t.tag, &layers, Some((source, &t.image)))
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
            let held = self.tagged(&at_tag, tag).await?;
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
        let Some((bytes, _)) = self.tagged(at_tag, &at_tag.tag).await? else {
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

    /// Writes the listing under `tag` with `update` (which says whether it wrote), then,
    /// after a while, reads it back with `holds`, and writes again while what it added is
    /// missing. Whether anything was written.
    pub(super) async fn settled(
        &self,
        name: &DockerName,
        tag: &str,
        mut update: impl AsyncFnMut() -> Result<bool, Error>,
        mut holds: impl AsyncFnMut() -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let at_tag = DockerName {
            tag: tag.to_string(),
            ..name.clone()
        };
        let mut wrote = false;
        for _ in 0..ROUNDS {
            let started = Instant::now();
            if !update().await? {
                return Ok(wrote);
            }
            wrote = true;
            tokio::time::sleep((started.elapsed() * 2).max(LEAST_SETTLE)).await;
            if holds().await? {
                return Ok(true);
            }
            tracing::warn!(
                "{}: another writer replaced it meanwhile; writing it again",
                at_tag.full()
            );
        }
        Err(raced(&at_tag))
    }
}

/// The error of a listing that other writers kept replacing.
fn raced(at_tag: &DockerName) -> Error {
    Error::Registry {
        registry: at_tag.registry.clone(),
        reason: format!(
            "{}: other writers replaced it {ROUNDS} times while bareboat added to it\n  hint: run the command again once the other writers are done",
            at_tag.full()
        ),
    }
}
