//! Pulling an image, and the artifacts that refer to it, into a layout.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use tokio::io::AsyncWriteExt;

use super::Registry;
use super::client;
use crate::Error;
use crate::digest::Digest;
use crate::layout::{Layout, MAX_NESTING};
use crate::media::Kind;
use crate::reference::DockerName;
use crate::referrer;
use crate::source::BlobSource;

/// The descriptor of a manifest or index from `name`: its media type is the one it gives
/// itself, or, for an old one that gives none, told by whether it lists manifests.
fn describe(name: &DockerName, bytes: &[u8]) -> Result<Descriptor, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Kind {
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
    }
    let kind: Kind = serde_json::from_slice(bytes)
        .map_err(|e| Error::Spec(format!("a manifest from {}: {e}", name.full())))?;
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
    /// Fetches the manifest or index `name` (at `digest` when given) names into `layout`,
    /// checking its digest, without what it points at; returns its descriptor.
    pub async fn pull_top(
        &self,
        name: &DockerName,
        digest: Option<&Digest>,
        layout: &Layout,
    ) -> Result<Descriptor, Error> {
        let (bytes, top) = self.fetch_top(name, digest).await?;
        layout.put_json(top.media_type().clone(), &bytes)
    }

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
        let scope = client::pull_scope(&name.repository);
        let what = format!("pulling manifest {reference}");
        let bytes = self
            .retrying(name, &what, || {
                self.client
                    .manifest(&scope, &name.repository, reference, MANIFEST_TYPES)
            })
            .await?;
        bytes.map(Vec::from).ok_or_else(|| Error::Registry {
            registry: name.registry.clone(),
            reason: format!(
                "{what} for {}: the registry has no such manifest\n  hint: check the tag or digest, for instance with `skopeo list-tags docker://{}/{}`",
                name.full(),
                name.registry,
                name.repository
            ),
        })
    }

    /// Pulls `name` (at `digest` when given) into `layout`, checking every blob, and
    /// returns the top descriptor. Each document and blob is fetched once, however often
    /// the graph lists it.
    pub async fn pull(
        &self,
        name: &DockerName,
        digest: Option<&Digest>,
        layout: &Layout,
    ) -> Result<Descriptor, Error> {
        let top = self.pull_top(name, digest, layout).await?;
        let mut seen: HashSet<String> = HashSet::from([top.digest().to_string()]);
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        // Levels count as in a layout, where index.json is the first.
        let mut pending = vec![(top.clone(), 2)];
        while let Some((doc, level)) = pending.pop() {
            let bytes = layout.read_described(&doc)?;
            let described = |e: serde_json::Error| Error::Spec(format!("{}: {e}", doc.digest()));
            if Kind::of(doc.media_type().as_ref()) == Kind::Index {
                let index: ImageIndex = serde_json::from_slice(&bytes).map_err(described)?;
                // Refused before any of the children is fetched.
                if level + 1 > MAX_NESTING && !index.manifests().is_empty() {
                    return Err(Error::Spec(format!(
                        "{} from {}: its manifests are nested {} levels deep; images nest at most {MAX_NESTING}",
                        doc.digest(),
                        name.full(),
                        level + 1
                    )));
                }
                for child in index.manifests() {
                    if seen.insert(child.digest().to_string()) {
                        let stored = self.pull_child(name, child, layout).await?;
                        pending.push((stored, level + 1));
                    }
                }
            } else {
                let manifest: ImageManifest = serde_json::from_slice(&bytes).map_err(described)?;
                for blob in std::iter::once(manifest.config()).chain(manifest.layers()) {
                    if seen.insert(blob.digest().to_string()) {
                        let d: Digest = blob.digest().to_string().parse().map_err(Error::Spec)?;
                        blobs.push((d, blob.size()));
                    }
                }
            }
        }
        futures::stream::iter(blobs.iter())
            .map(|(d, size)| self.pull_blob(layout, name, d, *size))
            .buffer_unordered(self.jobs)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(top)
    }

    /// Fetches the manifest or index an index lists, checked against its descriptor.
    async fn pull_child(
        &self,
        name: &DockerName,
        child: &Descriptor,
        layout: &Layout,
    ) -> Result<Descriptor, Error> {
        let d: Digest = child.digest().to_string().parse().map_err(Error::Spec)?;
        let bytes = self.fetch_manifest(name, &d.to_string()).await?;
        if Digest::of(&bytes) != d || bytes.len() as u64 != child.size() {
            return Err(Error::Spec(format!(
                "manifest {d} from {} does not match its digest and size",
                name.full()
            )));
        }
        self.store_document(layout, name, &bytes)
    }

    async fn pull_blob(
        &self,
        layout: &Layout,
        name: &DockerName,
        digest: &Digest,
        size: u64,
    ) -> Result<(), Error> {
        if layout.blob_path(digest).is_file() {
            return Ok(());
        }
        let tmp = layout.temp_blob()?;
        let scope = client::pull_scope(&name.repository);
        let hex = digest.to_string();
        let progress = self.progress.as_deref();
        // Each attempt starts the file afresh.
        self.retrying(name, &format!("pulling blob {digest}"), || async {
            let mut file = tokio::fs::File::create(tmp.path()).await?;
            if let Some(p) = progress {
                p.start(&hex, size);
            }
            let advance = |n| {
                if let Some(p) = progress {
                    p.advance(&hex, n);
                }
            };
            self.client
                .download(&scope, &name.repository, digest, size, &mut file, advance)
                .await?;
            file.flush().await?;
            Ok(())
        })
        .await?;
        if let Some(p) = progress {
            p.finish(&hex, "downloaded");
        }
        layout.commit_blob(tmp, digest)
    }

    /// Stores a pulled manifest or index and describes it.
    fn store_document(
        &self,
        layout: &Layout,
        name: &DockerName,
        bytes: &[u8],
    ) -> Result<Descriptor, Error> {
        layout.put_json(describe(name, bytes)?.media_type().clone(), bytes)
    }

    /// The artifacts the registry lists as referring to `subject` in `name`'s repository,
    /// through the referrers API or, where there is none, the referrers tag.
    pub async fn referrers(
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
            Some(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Spec(format!("the referrers of {subject}: {e}")))?,
            ),
            None => self.referrers_tag_index(name, subject, &scope).await?,
        };
        Ok(index.map(|i| i.manifests().clone()).unwrap_or_default())
    }

    /// Pulls the artifacts referring to `top` (or to its platform manifests) from `name`
    /// into `layout`, listed in its `index.json`; returns how many.
    pub async fn pull_referrers(
        &self,
        name: &DockerName,
        layout: &Layout,
        top: &Descriptor,
    ) -> Result<usize, Error> {
        let mut pulled = 0;
        for subject in referrer::subjects(layout, top)? {
            let subject: Digest = subject.digest().to_string().parse().map_err(Error::Spec)?;
            for artifact in self.referrers(name, &subject).await? {
                let digest: Digest = artifact.digest().to_string().parse().map_err(Error::Spec)?;
                self.pull(name, Some(&digest), layout).await?;
                layout.add_untagged(&artifact)?;
                pulled += 1;
            }
        }
        Ok(pulled)
    }
}
