//! Pushing an image and its referrers from a layout.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder, MediaType};

use super::bounds::Failure;
use super::client;
use super::{BlobProgress, PushReport, Registry};
use crate::Error;
use crate::blob::{Blob, BlobReader};
use crate::digest::Digest;
use crate::media::Kind;
use crate::reference::DockerName;
use crate::referrer::Referrer;
use crate::source::{BlobSource, reachable};

/// Upload chunks are this large: a layer is never held in memory whole.
const CHUNK: usize = 4 << 20;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What became of one blob in a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlobPush {
    Present,
    Mounted,
    Uploaded,
}

impl Registry {
    /// Pushes the image (or index) `top` of `source` to `name`: blobs, then manifests by
    /// digest, the index last, then (with `tag`) the tag.
    pub async fn push(
        &self,
        source: &dyn BlobSource,
        top: &Descriptor,
        name: &DockerName,
        tag: bool,
    ) -> Result<PushReport, Error> {
        let mut documents = Vec::new();
        let mut blobs = Vec::new();
        let mut base = None;
        for blob in reachable(source, top)? {
            if Kind::of(blob.descriptor.media_type().as_ref()).is_document() {
                let bytes = source.read_described(&blob.descriptor)?;
                base = base.or(base_repository(&bytes, name));
                documents.push((blob.descriptor, Bytes::from(bytes)));
            } else {
                blobs.push(blob);
            }
        }
        blobs.sort_by(|a, b| {
            let digest = |b: &Blob| b.descriptor.digest().digest().to_string();
            digest(a).cmp(&digest(b))
        });
        // Where each blob can be mounted from: the repository of this registry the source
        // has it in, then the base's.
        let mounts: Vec<Vec<DockerName>> = (blobs.iter())
            .map(|b| {
                let origin = source.origin(&b.descriptor);
                (origin.into_iter().chain(base.clone()))
                    .filter(|m| m.registry == name.registry && m.repository != name.repository)
                    .collect()
            })
            .collect();
        let mut scope = client::push_scope(&name.repository);
        let mut pulled: Vec<&String> = mounts.iter().flatten().map(|m| &m.repository).collect();
        pulled.sort();
        pulled.dedup();
        for repository in pulled {
            scope = format!("{scope} {}", client::pull_scope(repository));
        }
        // What the registry has, or mounts from where it has it, is not read at all.
        let placed = futures::stream::iter(blobs.iter().zip(&mounts))
            .map(|(b, from)| self.place_blob(name, &scope, &b.descriptor, from))
            .buffered(self.jobs)
            .try_collect::<Vec<Option<BlobPush>>>()
            .await?;
        // The rest is checked whole (size, digest, a layer's diff_id) before the registry
        // sees a byte of any.
        let to_upload: Vec<&Blob> = (blobs.iter().zip(&placed))
            .filter(|(_, p)| p.is_none())
            .map(|(b, _)| b)
            .collect();
        for blob in &to_upload {
            source.verify(blob)?;
        }
        let uploaded_bytes = AtomicU64::new(0);
        let uploaded = futures::stream::iter(to_upload)
            .map(|b| self.upload_blob(source, name, &scope, &b.descriptor, &uploaded_bytes))
            .buffer_unordered(self.jobs)
            .try_collect::<Vec<BlobPush>>()
            .await?;
        let outcomes: Vec<BlobPush> = placed.into_iter().flatten().chain(uploaded).collect();
        // `blobs` lists a document before the documents it points at: push in reverse, so
        // the index goes last.
        for (d, bytes) in documents.iter().rev() {
            let digest = d.digest().to_string();
            let media_type = d.media_type().to_string();
            self.retrying(name, &format!("pushing manifest {digest}"), || {
                self.client
                    .put_manifest(&scope, &name.repository, &digest, &media_type, bytes)
            })
            .await?;
        }
        if tag {
            let top_bytes = Bytes::from(source.read_described(top)?);
            let media_type = top.media_type().to_string();
            self.retrying(name, "tagging", || {
                self.client.put_manifest(
                    &scope,
                    &name.repository,
                    &name.tag,
                    &media_type,
                    &top_bytes,
                )
            })
            .await?;
        }
        let count = |o: BlobPush| outcomes.iter().filter(|x| **x == o).count();
        Ok(PushReport {
            digest: top.digest().to_string(),
            uploaded_blobs: count(BlobPush::Uploaded),
            uploaded_bytes: uploaded_bytes.into_inner(),
            skipped_blobs: count(BlobPush::Present),
            mounted_blobs: count(BlobPush::Mounted),
            referrers: 0,
        })
    }

    /// Pushes `referrers` of an image already pushed to `name`, read from `source` (as
    /// [`crate::referrer::of_image`] found them). A registry with the referrers API lists
    /// them itself; for one without, each joins the index under the tag
    /// `sha256-<hex of its subject>`.
    pub async fn push_referrers(
        &self,
        source: &dyn BlobSource,
        referrers: &[Referrer],
        name: &DockerName,
    ) -> Result<(), Error> {
        for Referrer { subject, artifact } in referrers {
            let subject = Digest::named(subject)?;
            self.push(source, artifact, name, false).await?;
            let listed = self.referrers(name, &subject).await?;
            if !listed.iter().any(|d| d.digest() == artifact.digest()) {
                self.add_to_referrers_tag(name, &subject, artifact).await?;
            }
        }
        Ok(())
    }

    /// Adds `artifact` to the index under the referrers tag of `subject`, read back to
    /// check that no other writer's update dropped it (see [`super::attach`]).
    async fn add_to_referrers_tag(
        &self,
        name: &DockerName,
        subject: &Digest,
        artifact: &Descriptor,
    ) -> Result<(), Error> {
        let tag = referrers_tag(subject);
        let scope = client::push_scope(&name.repository);
        let listed = |index: &Option<ImageIndex>| {
            (index.iter()).any(|i| {
                i.manifests()
                    .iter()
                    .any(|d| d.digest() == artifact.digest())
            })
        };
        let write = async || {
            let index = self.referrers_tag_index(name, subject, &scope).await?;
            if listed(&index) {
                return Ok(false);
            }
            let mut index = match index {
                Some(index) => index,
                None => ImageIndexBuilder::default()
                    .schema_version(2u32)
                    .media_type(MediaType::ImageIndex)
                    .manifests(Vec::new())
                    .build()?,
            };
            let mut manifests = index.manifests().clone();
            manifests.push(artifact.clone());
            index.set_manifests(manifests);
            let bytes = Bytes::from(crate::image::canonical_json(&index)?);
            self.retrying(name, "writing the referrers tag", || {
                self.client
                    .put_manifest(&scope, &name.repository, &tag, INDEX, &bytes)
            })
            .await?;
            Ok(true)
        };
        let holds = async || {
            Ok(listed(
                &self.referrers_tag_index(name, subject, &scope).await?,
            ))
        };
        self.settled(name, &tag, write, holds).await?;
        Ok(())
    }

    /// The index under the referrers tag of `subject`, if there is one.
    pub(super) async fn referrers_tag_index(
        &self,
        name: &DockerName,
        subject: &Digest,
        scope: &str,
    ) -> Result<Option<ImageIndex>, Error> {
        let tag = referrers_tag(subject);
        let bytes = self
            .retrying(name, "reading the referrers tag", || {
                self.client
                    .manifest(scope, &name.repository, &tag, &[INDEX])
            })
            .await?;
        bytes
            .map(|b| {
                serde_json::from_slice(&b).map_err(|error| Error::BadDocument {
                    what: format!("the referrers index of {subject}"),
                    error,
                })
            })
            .transpose()
    }

    /// Whether the registry has blob `blob` already, or mounts it from one of `mounts`
    /// (repositories of the same registry the blob is in); `None` when it must be uploaded.
    async fn place_blob(
        &self,
        name: &DockerName,
        scope: &str,
        blob: &Descriptor,
        mounts: &[DockerName],
    ) -> Result<Option<BlobPush>, Error> {
        let digest = blob.digest().to_string();
        let repository = &name.repository;
        let placed = self
            .retrying(name, &format!("looking for blob {digest}"), || async {
                if self.client.blob_exists(scope, repository, &digest).await? {
                    return Ok(Some(BlobPush::Present));
                }
                for from in mounts.iter().map(|m| &m.repository) {
                    // Asking first spares an upload session for a blob the repository lacks;
                    // a registry that cannot mount (no permission, say) gets it uploaded.
                    let there = self.client.blob_exists(scope, from, &digest).await;
                    if there.unwrap_or(false) {
                        match self.client.mount(scope, repository, from, &digest).await {
                            Ok(true) => return Ok(Some(BlobPush::Mounted)),
                            Ok(false) => tracing::debug!("{digest} was not mounted from {from}"),
                            Err(e) => tracing::debug!("mounting {digest} from {from}: {e}"),
                        }
                    }
                }
                Ok(None)
            })
            .await?;
        if let (Some(p), Some(outcome)) = (&self.progress, placed) {
            p.finish(
                &digest,
                if outcome == BlobPush::Mounted {
                    "mounted"
                } else {
                    "exists"
                },
            );
        }
        Ok(placed)
    }

    /// Uploads one blob, unless the registry has it by now.
    async fn upload_blob(
        &self,
        source: &dyn BlobSource,
        name: &DockerName,
        scope: &str,
        blob: &Descriptor,
        uploaded: &AtomicU64,
    ) -> Result<BlobPush, Error> {
        let size = blob.size();
        let digest = blob.digest().to_string();
        let repository = &name.repository;
        // Each attempt asks again, then uploads the whole blob in a new session.
        let pushed = self
            .retrying(name, &format!("uploading blob {digest}"), || async {
                if self.client.blob_exists(scope, repository, &digest).await? {
                    return Ok(BlobPush::Present);
                }
                // A local failure (the file changed since it was checked) is kept aside:
                // the HTTP layer only sees the body end early.
                let local = Arc::new(Mutex::new(None));
                let body = || {
                    if let Some(p) = &self.progress {
                        p.start(&digest, size);
                    }
                    // Checked again as it streams, in case the file changed since.
                    let content = source.open_blob(&Blob::of(blob));
                    chunks(
                        content,
                        digest.clone(),
                        self.progress.clone(),
                        local.clone(),
                    )
                };
                let sent = self
                    .client
                    .upload(scope, repository, &digest, size, body)
                    .await;
                match local.lock().expect("not poisoned").take() {
                    Some(e) => Err(Failure::Local(e)),
                    None => sent.map(|()| BlobPush::Uploaded),
                }
            })
            .await?;
        if let Some(p) = &self.progress {
            p.finish(
                &digest,
                if pushed == BlobPush::Uploaded {
                    "uploaded"
                } else {
                    "exists"
                },
            );
        }
        if pushed == BlobPush::Uploaded {
            uploaded.fetch_add(size, Ordering::Relaxed);
        }
        Ok(pushed)
    }
}

/// The tag an index of `subject`'s referrers goes under on a registry without the API.
fn referrers_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// A layout blob as a request body, read (off the async threads) a chunk at a time as it is
/// sent. A failure to read or verify it goes to `local`.
fn chunks(
    content: Result<BlobReader, Error>,
    digest: String,
    progress: Option<Arc<dyn BlobProgress>>,
    local: Arc<Mutex<Option<Error>>>,
) -> reqwest::Body {
    let stream = futures::stream::try_unfold(Some(content), move |content| {
        let (digest, progress, local) = (digest.clone(), progress.clone(), local.clone());
        async move {
            let Some(content) = content else {
                return Ok(None);
            };
            let reading = digest.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut content = content?;
                let mut buf = Vec::with_capacity(CHUNK);
                (&mut content)
                    .take(CHUNK as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::from_stream(reading, e))?;
                Ok::<_, Error>((buf, content))
            })
            .await
            .map_err(std::io::Error::other)?;
            let (buf, content) = match read {
                Ok(read) => read,
                Err(e) => {
                    let said = e.to_string();
                    *local.lock().expect("not poisoned") = Some(e);
                    return Err(std::io::Error::other(said));
                }
            };
            if buf.is_empty() {
                return Ok(None);
            }
            if let Some(p) = &progress {
                p.advance(&digest, buf.len() as u64);
            }
            // A short chunk is the last: the blob's end has been read, and checked.
            let more = (buf.len() == CHUNK).then_some(Ok(content));
            Ok::<_, std::io::Error>(Some((Bytes::from(buf), more)))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// The repository of the base a manifest names, when it is another repository of the
/// registry `name` is on: its layers can be mounted from there.
fn base_repository(manifest: &[u8], name: &DockerName) -> Option<DockerName> {
    let doc: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    let base: DockerName = doc["annotations"]["org.opencontainers.image.base.name"]
        .as_str()?
        .split('@')
        .next()?
        .parse()
        .ok()?;
    (base.registry == name.registry && base.repository != name.repository).then_some(base)
}
