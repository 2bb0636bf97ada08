//! Fetching manifests and indexes, checked against the digest asked for, and the lists of
//! artifacts that refer to them. Blobs are streamed by [`super::Remote`].

use oci_spec::image::{Descriptor, ImageIndex, MediaType};

use super::Registry;
use super::client;
use crate::Error;
use crate::digest::Digest;
use crate::reference::DockerName;

/// The descriptor of a manifest or index from `name`: its media type is the one it gives
/// itself, or, for an old one that gives none, told by whether it lists manifests.
fn describe(name: &DockerName, bytes: &[u8]) -> Result<Descriptor, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Kind {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let kind: Kind = serde_json::from_slice(bytes).map_err(|error| Error::BadDocument {
        what: format!("a manifest from {}", name.full()),
        error,
    })?;
    let media_type = match kind.media_type {
        Some(m) => MediaType::from(m.as_str()),
        None if kind.manifests.is_some() => MediaType::ImageIndex,
        None => MediaType::ImageManifest,
    };
    let digest = oci_spec::image::Digest::try_from(Digest::of(bytes).to_string())?;
    Ok(Descriptor::new(media_type, bytes.len() as u64, digest))
}

/// The media types a pull accepts for a manifest or index.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

impl Registry {
    /// The manifest or index `name` (at `digest` when given) names, checked against
    /// `digest`, and its descriptor.
    pub(super) async fn fetch_top(
        &self,
        name: &DockerName,
        digest: Option<&Digest>,
    ) -> Result<(Vec<u8>, Descriptor), Error> {
        let reference = digest.map_or_else(|| name.tag.clone(), ToString::to_string);
        let bytes = self.fetch_manifest(name, &reference).await?;
        let actual = Digest::of(&bytes);
        if let Some(d) = digest.filter(|d| **d != actual) {
            return Err(Error::BadLayout {
                path: name.full().into(),
                reason: format!(
                    "the registry sent a manifest whose content hashes to {actual}, not {d}"
                ),
            });
        }
        let top = describe(name, &bytes)?;
        Ok((bytes, top))
    }

    /// The manifest or index at `reference` (a tag or digest); one the registry lacks is
    /// an error.
    pub(super) async fn fetch_manifest(
        &self,
        name: &DockerName,
        reference: &str,
    ) -> Result<Vec<u8>, Error> {
        let what = format!("pulling manifest {reference}");
        let bytes = self.manifest_if_any(name, reference).await?;
        bytes.ok_or_else(|| Error::Registry {
            registry: name.registry.clone(),
            reason: format!(
                "{what} for {}: the registry has no such manifest\n  hint: check the tag or digest, for instance with `skopeo list-tags docker://{}/{}`",
                name.full(),
                name.registry,
                name.repository
            ),
        })
    }

    /// The manifest or index at `reference` (a tag or digest), with its descriptor; `None`
    /// when the registry has none.
    pub(super) async fn manifest_at(
        &self,
        name: &DockerName,
        reference: &str,
    ) -> Result<Option<(Vec<u8>, Descriptor)>, Error> {
        let Some(bytes) = self.manifest_if_any(name, reference).await? else {
            return Ok(None);
        };
        let d = describe(name, &bytes)?;
        Ok(Some((bytes, d)))
    }

    /// The bytes at `reference`, if the registry has any.
    async fn manifest_if_any(
        &self,
        name: &DockerName,
        reference: &str,
    ) -> Result<Option<Vec<u8>>, Error> {
        let scope = client::pull_scope(&name.repository);
        let what = format!("pulling manifest {reference}");
        let bytes = self
            .retrying(name, &what, || {
                self.client
                    .manifest(&scope, &name.repository, reference, MANIFEST_TYPES)
            })
            .await?;
        Ok(bytes.map(Vec::from))
    }

    /// The artifacts the registry lists as referring to `subject` in `name`'s repository,
    /// through the referrers API or, where there is none, the referrers tag.
    pub(crate) async fn referrers(
        &self,
        name: &DockerName,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>, Error> {
        let scope = client::pull_scope(&name.repository);
        let subject_digest = subject.to_string();
        let listed = self
            .retrying(name, "listing referrers", || {
                self.client
                    .referrers(&scope, &name.repository, &subject_digest)
            })
            .await?;
        let index: Option<ImageIndex> = match listed {
            Some(bytes) => {
                Some(
                    serde_json::from_slice(&bytes).map_err(|error| Error::BadDocument {
                        what: format!("the referrers of {subject}"),
                        error,
                    })?,
                )
            }
            None => self.referrers_tag_index(name, subject, &scope).await?,
        };
        Ok(index.map(|i| i.manifests().clone()).unwrap_or_default())
    }
}
