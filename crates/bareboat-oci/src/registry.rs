//! Pushing images to and pulling them from registries (the OCI distribution spec), on
//! `oci-client`.
//!
//! A push uploads blobs first, several at once, each after a HEAD that skips what the
//! registry already has, streamed from the layout in chunks; then each manifest by digest,
//! an index last, and the tag only at the very end. So an interrupted push, run again,
//! completes, and a tag never points at a manifest whose blobs are missing. A layer that
//! the image's base (its `org.opencontainers.image.base.name` annotation) has in another
//! repository of the same registry is mounted from there instead of uploaded. Before any of
//! that, every blob is read whole and checked (see [`crate::blob`]), each layer against its
//! diff_id too, so a registry never sees a byte of an image that does not verify. A pull
//! checks every blob against its digest on the way into a layout.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{StreamExt, TryStreamExt};
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use oci_spec::image::{Descriptor, MediaType};
use serde::Serialize;

use crate::Error;
use crate::blob::{Blob, BlobReader};
use crate::credentials::{self, Credentials};
use crate::digest::Digest;
use crate::layout::Layout;
use crate::reference::DockerName;
use crate::referrer;

/// The media types a pull accepts for the top document.
const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// Upload chunks are this large: a layer is never held in memory whole.
const CHUNK: usize = 4 << 20;

/// How many times a request is tried before its failure is reported.
const ATTEMPTS: u32 = 5;

/// Told how each blob of a push or pull moves, for progress bars.
pub trait BlobProgress: Send + Sync + std::fmt::Debug {
    /// A transfer of `size` bytes starts (again, after a failed attempt).
    fn start(&self, digest: &str, size: u64);
    fn advance(&self, digest: &str, bytes: u64);
    /// The blob is done: `uploaded`, `downloaded`, `mounted` or `exists`.
    fn finish(&self, digest: &str, outcome: &str);
}

/// How to reach a registry.
#[derive(Clone, Debug, Default)]
pub struct RegistryOptions {
    /// Plain HTTP instead of TLS, for a local test registry.
    pub insecure: bool,
    /// Certificates (PEM) trusted besides the system's, for a private CA.
    pub ca_certs: Vec<Vec<u8>>,
    /// User name and password (or token); when `None`, those stored for the registry
    /// (see [`credentials`](crate::credentials)), else anonymous.
    pub creds: Option<Credentials>,
    /// How many blobs move at once.
    pub jobs: usize,
    pub progress: Option<Arc<dyn BlobProgress>>,
}

/// What a push did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PushReport {
    pub digest: String,
    pub uploaded_blobs: usize,
    pub uploaded_bytes: u64,
    pub skipped_blobs: usize,
    /// Blobs mounted from the base image's repository.
    pub mounted_blobs: usize,
    /// Artifacts (SBOMs) pushed as referrers of the image.
    pub referrers: usize,
}

/// What became of one blob in a push.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlobPush {
    Present,
    Mounted,
    Uploaded,
}

/// A client for one registry.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    jobs: usize,
    progress: Option<Arc<dyn BlobProgress>>,
    /// The wait before the first retry; it doubles with each.
    backoff: std::time::Duration,
}

impl Registry {
    /// A client for `registry` (a host, with its port if any).
    pub fn new(opts: &RegistryOptions, registry: &str) -> Result<Registry, Error> {
        // One process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if opts.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates: opts
                .ca_certs
                .iter()
                .map(|pem| Certificate {
                    encoding: CertificateEncoding::Pem,
                    data: pem.clone(),
                })
                .collect(),
            // A registry that stops answering ends in an error (and a retry), not a hang.
            connect_timeout: Some(std::time::Duration::from_secs(30)),
            read_timeout: Some(std::time::Duration::from_secs(300)),
            ..ClientConfig::default()
        };
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => credentials::lookup(registry)?,
        };
        let auth = match creds {
            Some((user, password)) => RegistryAuth::Basic(user, password),
            None => RegistryAuth::Anonymous,
        };
        Ok(Registry {
            client: Client::new(config),
            auth,
            jobs: opts.jobs.max(1),
            progress: opts.progress.clone(),
            backoff: std::time::Duration::from_millis(250),
        })
    }

    /// Checks that the credentials are accepted, as `docker login` does.
    pub async fn check_login(&self, registry: &str) -> Result<(), Error> {
        let name: DockerName = format!("{registry}/bareboat/login-check").parse()?;
        let image = reference(&name, None);
        self.client
            .auth(&image, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| remote(&name, "logging in", e))?;
        // A registry with basic auth only refuses wrong credentials on a real request.
        self.client
            .blob_exists(&image, &format!("sha256:{}", "0".repeat(64)))
            .await
            .map_err(|e| remote(&name, "logging in", e))?;
        Ok(())
    }

    /// Pushes the image (or index) `top` of `layout` to `name`: blobs, then manifests by
    /// digest, the index last, then (with `tag`) the tag.
    pub async fn push(
        &self,
        layout: &Layout,
        top: &Descriptor,
        name: &DockerName,
        tag: bool,
    ) -> Result<PushReport, Error> {
        let tagged = reference(name, None);
        self.retrying(name, "authenticating", || {
            self.client
                .auth(&tagged, &self.auth, RegistryOperation::Push)
        })
        .await?;
        let mut documents = Vec::new();
        let mut blobs = Vec::new();
        let mut mount_from = None;
        for blob in layout.blobs(top)? {
            if is_document(blob.descriptor.media_type().as_ref()) {
                let bytes = layout.read_described(&blob.descriptor)?;
                mount_from = mount_from.or(base_repository(&bytes, name));
                documents.push((blob.descriptor, bytes));
            } else {
                // Every blob is checked whole before the registry sees a byte of any, and
                // a layer against its diff_id even when the registry has it already.
                layout.verify(&blob)?;
                blobs.push(blob.descriptor);
            }
        }
        blobs.sort_by(|a, b| a.digest().digest().cmp(b.digest().digest()));
        let uploaded_bytes = AtomicU64::new(0);
        let outcomes = futures::stream::iter(blobs.iter())
            .map(|d| self.push_blob(layout, name, d, mount_from.as_ref(), &uploaded_bytes))
            .buffer_unordered(self.jobs)
            .try_collect::<Vec<BlobPush>>()
            .await?;
        // `blobs` lists a document before the documents it points at: push in reverse, so
        // the index goes last.
        for (d, bytes) in documents.iter().rev() {
            let digest: Digest = d.digest().to_string().parse().map_err(Error::Spec)?;
            let by_digest = reference(name, Some(&digest));
            let media_type = header(d.media_type().as_ref())?;
            self.retrying(name, &format!("pushing manifest {digest}"), || {
                self.client
                    .push_manifest_raw(&by_digest, bytes.clone(), media_type.clone())
            })
            .await?;
        }
        if tag {
            let top_bytes = layout.read_described(top)?;
            let media_type = header(top.media_type().as_ref())?;
            self.retrying(name, "tagging", || {
                self.client
                    .push_manifest_raw(&tagged, top_bytes.clone(), media_type.clone())
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

    /// Pushes the artifacts `layout` lists as referring to `top` (or to its platform
    /// manifests), already pushed to `name`, and returns how many. A registry with the
    /// referrers API lists them itself; for one without, each joins the index under the
    /// tag `sha256-<hex of its subject>`.
    pub async fn push_referrers(
        &self,
        layout: &Layout,
        top: &Descriptor,
        name: &DockerName,
    ) -> Result<usize, Error> {
        let artifacts = referrer::of_image(layout, top)?;
        for (subject, artifact) in &artifacts {
            let subject: Digest = subject.parse().map_err(Error::Spec)?;
            self.push(layout, artifact, name, false).await?;
            let listed = self.referrers(name, &subject).await?;
            if !listed.iter().any(|d| d.digest() == artifact.digest()) {
                self.add_to_referrers_tag(name, &subject, artifact).await?;
            }
        }
        Ok(artifacts.len())
    }

    /// Adds `artifact` to the index under the referrers tag of `subject`.
    async fn add_to_referrers_tag(
        &self,
        name: &DockerName,
        subject: &Digest,
        artifact: &Descriptor,
    ) -> Result<(), Error> {
        let tagged = Reference::with_tag(
            name.registry.clone(),
            name.repository.clone(),
            format!("sha256-{}", subject.hex()),
        );
        const INDEX: &str = "application/vnd.oci.image.index.v1+json";
        let mut index = match self
            .client
            .pull_manifest_raw(&tagged, &self.auth, &[INDEX])
            .await
        {
            Ok((bytes, _)) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::Spec(format!("the referrers index of {subject}: {e}")))?,
            Err(
                OciDistributionError::ImageManifestNotFoundError(_)
                | OciDistributionError::RegistryError { .. }
                | OciDistributionError::ServerError { code: 404, .. },
            ) => serde_json::json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": []}),
            Err(e) => return Err(remote(name, "reading the referrers tag", e)),
        };
        let listed = index["manifests"].as_array_mut().ok_or_else(|| {
            Error::Spec(format!(
                "the referrers index of {subject} lists no manifests"
            ))
        })?;
        let entry = serde_json::to_value(artifact).map_err(|e| Error::Spec(e.to_string()))?;
        if !listed.iter().any(|d| d["digest"] == entry["digest"]) {
            listed.push(entry);
        }
        let bytes = crate::image::canonical_json(&index)?;
        self.retrying(name, "writing the referrers tag", || {
            self.client.push_manifest_raw(
                &tagged,
                bytes.clone(),
                http::HeaderValue::from_static(INDEX),
            )
        })
        .await?;
        Ok(())
    }

    /// The artifacts the registry lists as referring to `subject` in `name`'s repository,
    /// through the referrers API or, where there is none, the referrers tag.
    pub async fn referrers(
        &self,
        name: &DockerName,
        subject: &Digest,
    ) -> Result<Vec<Descriptor>, Error> {
        let image = reference(name, Some(subject));
        self.retrying(name, "authenticating", || {
            self.client
                .auth(&image, &self.auth, RegistryOperation::Pull)
        })
        .await?;
        let index = self
            .retrying(name, "listing referrers", || {
                self.client.pull_referrers(&image, None)
            })
            .await?;
        let json =
            serde_json::to_value(&index.manifests).map_err(|e| Error::Spec(e.to_string()))?;
        serde_json::from_value(json)
            .map_err(|e| Error::Spec(format!("the referrers of {subject}: {e}")))
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

    /// Uploads one blob unless the registry has it, or mounts it from `mount_from` when
    /// that repository has it.
    async fn push_blob(
        &self,
        layout: &Layout,
        name: &DockerName,
        blob: &Descriptor,
        mount_from: Option<&DockerName>,
        uploaded: &AtomicU64,
    ) -> Result<BlobPush, Error> {
        let image = reference(name, None);
        let size = blob.size();
        let digest = blob.digest().to_string();
        // Each attempt asks again, then uploads the whole blob in a new session.
        let pushed = self
            .retrying(name, &format!("uploading blob {digest}"), || async {
                if self.client.blob_exists(&image, &digest).await? {
                    return Ok(BlobPush::Present);
                }
                if let Some(source) = mount_from {
                    let source = reference(source, None);
                    // Asking first spares an upload session for each of the image's own
                    // blobs; a registry that cannot mount (no permission, say) gets the
                    // blob uploaded instead.
                    if self
                        .client
                        .blob_exists(&source, &digest)
                        .await
                        .unwrap_or(false)
                    {
                        match self.client.mount_blob(&image, &source, &digest).await {
                            Ok(()) => return Ok(BlobPush::Mounted),
                            Err(e) => tracing::debug!("mounting {digest}: {e}"),
                        }
                    }
                }
                if let Some(p) = &self.progress {
                    p.start(&digest, size);
                }
                // Checked again as it streams, in case the file changed since.
                let content = layout
                    .open_blob(&Blob::of(blob))
                    .map_err(|e| OciDistributionError::GenericError(Some(e.to_string())))?;
                let (progress, sending) = (self.progress.clone(), digest.clone());
                let sent = chunks(content).inspect_ok(move |chunk| {
                    if let Some(p) = &progress {
                        p.advance(&sending, chunk.len() as u64);
                    }
                });
                self.client
                    .push_blob_stream(&image, sent, &digest, Some(size))
                    .await?;
                Ok(BlobPush::Uploaded)
            })
            .await?;
        if let Some(p) = &self.progress {
            let outcome = match pushed {
                BlobPush::Present => "exists",
                BlobPush::Mounted => "mounted",
                BlobPush::Uploaded => "uploaded",
            };
            p.finish(&digest, outcome);
        }
        if pushed == BlobPush::Uploaded {
            uploaded.fetch_add(size, Ordering::Relaxed);
        }
        Ok(pushed)
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts run out; transient
    /// failures (5xx, 429, dropped connections) are retried with exponential backoff.
    async fn retrying<T, F, Fut>(
        &self,
        name: &DockerName,
        what: &str,
        mut op: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        let mut delay = self.backoff;
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if attempt < ATTEMPTS && transient(&e) => {
                    tracing::warn!("{what} for {}: {e}; retrying in {delay:?}", name.full());
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(e) => return Err(remote(name, what, e)),
            }
        }
    }

    /// Fetches the manifest or index `name` (at `digest` when given) names into `layout`,
    /// checking its digest, without what it points at; returns its descriptor.
    pub async fn pull_top(
        &self,
        name: &DockerName,
        digest: Option<&Digest>,
        layout: &Layout,
    ) -> Result<Descriptor, Error> {
        let image = reference(name, digest);
        let (bytes, got) = self
            .retrying(name, "pulling the manifest", || {
                self.client
                    .pull_manifest_raw(&image, &self.auth, MANIFEST_TYPES)
            })
            .await?;
        let actual = Digest::of(&bytes);
        if digest.is_some_and(|d| *d != actual) || got != actual.to_string() {
            return Err(Error::BadLayout {
                path: name.full().into(),
                reason: format!(
                    "the registry sent a manifest whose content hashes to {actual}, not {}",
                    digest.map_or(got, |d| d.to_string())
                ),
            });
        }
        self.store_document(layout, name, &bytes)
    }

    /// Pulls `name` (at `digest` when given) into `layout`, checking every blob, and
    /// returns the top descriptor.
    pub async fn pull(
        &self,
        name: &DockerName,
        digest: Option<&Digest>,
        layout: &Layout,
    ) -> Result<Descriptor, Error> {
        let top = self.pull_top(name, digest, layout).await?;
        let mut pending = vec![top.clone()];
        while let Some(doc) = pending.pop() {
            let json: serde_json::Value = serde_json::from_slice(&layout.read_described(&doc)?)
                .map_err(|e| Error::Spec(format!("{}: {e}", doc.digest())))?;
            for child in json["manifests"].as_array().into_iter().flatten() {
                let d: Digest = child["digest"]
                    .as_str()
                    .unwrap_or_default()
                    .parse()
                    .map_err(Error::Spec)?;
                let child = reference(name, Some(&d));
                let (bytes, _) = self
                    .retrying(name, &format!("pulling manifest {d}"), || {
                        self.client
                            .pull_manifest_raw(&child, &self.auth, MANIFEST_TYPES)
                    })
                    .await?;
                if Digest::of(&bytes) != d {
                    return Err(Error::Spec(format!(
                        "manifest {d} from {} does not match its digest",
                        name.full()
                    )));
                }
                pending.push(self.store_document(layout, name, &bytes)?);
            }
            let blobs = json["layers"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(std::iter::once(&json["config"]))
                .filter_map(|b| Some((b["digest"].as_str()?, b["size"].as_u64().unwrap_or(0))))
                .map(|(d, size)| Ok((d.parse::<Digest>().map_err(Error::Spec)?, size)))
                .collect::<Result<Vec<_>, Error>>()?;
            futures::stream::iter(blobs.iter())
                .map(|(d, size)| self.pull_blob(layout, name, d, *size))
                .buffer_unordered(self.jobs)
                .try_collect::<Vec<()>>()
                .await?;
        }
        Ok(top)
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
        let image = reference(name, None);
        let hex = digest.to_string();
        // oci-client checks the content against the digest as it arrives; each attempt
        // starts the file afresh.
        self.retrying(name, &format!("pulling blob {digest}"), || async {
            let file = tokio::fs::File::create(tmp.path()).await?;
            if let Some(p) = &self.progress {
                p.start(&hex, size);
            }
            let counted = Counted {
                inner: file,
                digest: &hex,
                progress: self.progress.as_deref(),
            };
            self.client.pull_blob(&image, hex.as_str(), counted).await
        })
        .await?;
        if let Some(p) = &self.progress {
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
        let json: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::Spec(format!("a manifest from {}: {e}", name.full())))?;
        let media_type = match json["mediaType"].as_str() {
            Some(m) => MediaType::from(m),
            None if json.get("manifests").is_some() => MediaType::ImageIndex,
            None => MediaType::ImageManifest,
        };
        layout.put_json(media_type, bytes)
    }
}

/// A file being pulled into, telling the progress what it writes.
struct Counted<'a> {
    inner: tokio::fs::File,
    digest: &'a str,
    progress: Option<&'a dyn BlobProgress>,
}

impl tokio::io::AsyncWrite for Counted<'_> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        if let (std::task::Poll::Ready(Ok(n)), Some(p)) = (&polled, self.progress) {
            p.advance(self.digest, *n as u64);
        }
        polled
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A layout blob as a stream of chunks, read (off the async threads) as they are sent. A
/// failed check is not one a retry could pass.
fn chunks(
    content: BlobReader,
) -> impl futures::Stream<Item = Result<bytes::Bytes, OciDistributionError>> + Send + 'static {
    futures::stream::try_unfold(Some(content), |content| async move {
        let Some(mut content) = content else {
            return Ok(None);
        };
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::with_capacity(CHUNK);
            (&mut content).take(CHUNK as u64).read_to_end(&mut buf)?;
            Ok::<_, std::io::Error>((buf, content))
        });
        let (buf, content) = read
            .await
            .map_err(|e| OciDistributionError::GenericError(Some(e.to_string())))?
            .map_err(|e| OciDistributionError::GenericError(Some(e.to_string())))?;
        if buf.is_empty() {
            return Ok(None);
        }
        // A short chunk is the last: the blob's end has been read, and checked.
        let more = (buf.len() == CHUNK).then_some(content);
        Ok(Some((bytes::Bytes::from(buf), more)))
    })
}

/// Whether a failure may pass on its own: a server error, throttling, or a connection
/// that dropped or timed out.
fn transient(e: &OciDistributionError) -> bool {
    match e {
        OciDistributionError::ServerError { code, .. } => {
            *code >= 500 || *code == 429 || *code == 408
        }
        OciDistributionError::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, OciErrorCode::Toomanyrequests)),
        OciDistributionError::RequestError(e) => {
            e.is_connect()
                || e.is_timeout()
                || e.is_request()
                || e.is_body()
                || e.status()
                    .is_some_and(|s| s.is_server_error() || s.as_u16() == 429)
        }
        OciDistributionError::IoError(_) => true,
        _ => false,
    }
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

fn is_document(media_type: &str) -> bool {
    crate::layout::is_index(media_type) || crate::layout::is_manifest(media_type)
}

fn header(media_type: &str) -> Result<http::HeaderValue, Error> {
    http::HeaderValue::from_str(media_type).map_err(|e| Error::Spec(e.to_string()))
}

fn reference(name: &DockerName, digest: Option<&Digest>) -> Reference {
    match digest {
        Some(d) => Reference::with_digest(
            name.registry.clone(),
            name.repository.clone(),
            d.to_string(),
        ),
        None => Reference::with_tag(
            name.registry.clone(),
            name.repository.clone(),
            name.tag.clone(),
        ),
    }
}

fn remote(name: &DockerName, what: &str, e: OciDistributionError) -> Error {
    // reqwest keeps the cause (a refused certificate, a refused connection) in its sources.
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    let lower = reason.to_lowercase();
    let hint = if lower.contains("401")
        || lower.contains("unauthorized")
        || lower.contains("authentication failure")
    {
        format!(
            "\n  hint: log in with `bareboat login {}`, or pass --creds USER:PASSWORD",
            name.registry
        )
    } else if lower.contains("certificate") || lower.contains("unknownissuer") {
        "\n  hint: trust the registry's CA with --ca-cert FILE (or --insecure for plain HTTP)"
            .to_string()
    } else if lower.contains("connect") {
        "\n  hint: check the registry's address, and --insecure for a plain-HTTP registry"
            .to_string()
    } else {
        String::new()
    };
    Error::Registry {
        registry: name.registry.clone(),
        reason: format!("{what} for {}: {reason}{hint}", name.full()),
    }
}
