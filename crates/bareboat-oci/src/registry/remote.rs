//! An image in a registry as a [`BlobSource`]: each document is fetched when it is read
//! and kept a while (at most [`KEPT`] bytes of them), each blob streamed from the registry
//! when it is opened, and nothing written to disk. What streams is checked by the source's
//! readers like any other blob; the download checks it too, and keeps to the minimum rate.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use oci_spec::image::Descriptor;
use tokio::sync::mpsc;

use super::Registry;
use super::client::{ChunkSink, Partial};
use crate::Error;
use crate::digest::Digest;
use crate::layout::MAX_DOCUMENT;
use crate::media::Kind;
use crate::reference::DockerName;
use crate::referrer::Referrer;
use crate::source::BlobSource;

/// How many chunks may wait between a download and its reader.
const QUEUED: usize = 16;

/// The most bytes of documents a [`Remote`] keeps. A document is read again soon after it
/// is first read (a copy walks an image's documents, then copies them), so room for an
/// index, a manifest and a config at their cap saves those fetches; a source that reads
/// many documents (an index of many platforms, an image's referrers) holds no more, and
/// fetches again what it dropped.
const KEPT: u64 = 4 * MAX_DOCUMENT;

/// The documents a [`Remote`] keeps, by digest, the oldest dropped first.
#[derive(Default)]
struct Kept {
    by_digest: HashMap<String, Bytes>,
    oldest_first: VecDeque<String>,
    bytes: u64,
}

impl Kept {
    fn get(&self, digest: &str) -> Option<Bytes> {
        self.by_digest.get(digest).cloned()
    }

    /// Keeps `bytes` as `digest`, dropping the oldest documents to stay within [`KEPT`].
    fn keep(&mut self, digest: String, bytes: Bytes) {
        if self.by_digest.contains_key(&digest) {
            return;
        }
        self.bytes += bytes.len() as u64;
        while self.bytes > KEPT {
            let Some(oldest) = self.oldest_first.pop_front() else {
                break;
            };
            let dropped = self.by_digest.remove(&oldest).map_or(0, |b| b.len());
            self.bytes -= dropped as u64;
        }
        self.oldest_first.push_back(digest.clone());
        self.by_digest.insert(digest, bytes);
    }
}

/// An image (or index) in a registry, read on demand.
pub struct Remote {
    registry: Arc<Registry>,
    name: DockerName,
    runtime: tokio::runtime::Handle,
    /// The manifests, indexes and configs read lately.
    documents: Mutex<Kept>,
}

impl Remote {
    /// Opens the image `name` (at `digest` when given) names, fetching its top manifest
    /// or index, checked against `digest`.
    pub async fn open(
        registry: Registry,
        name: &DockerName,
        digest: Option<&Digest>,
    ) -> Result<(Remote, Descriptor), Error> {
        let (bytes, top) = registry.fetch_top(name, digest).await?;
        Ok((Remote::holding(Arc::new(registry), name, &top, bytes), top))
    }

    /// Opens the manifest or index `name`'s tag names, or `None` when the registry has no
    /// such tag (a cache nobody has published to yet, say).
    pub async fn open_if_any(
        registry: Registry,
        name: &DockerName,
    ) -> Result<Option<(Remote, Descriptor)>, Error> {
        let Some((bytes, top)) = registry.manifest_at(name, &name.tag).await? else {
            return Ok(None);
        };
        Ok(Some((
            Remote::holding(Arc::new(registry), name, &top, bytes),
            top,
        )))
    }

    /// Whether the repository still holds the blob `digest` (asked with a HEAD request):
    /// a registry may have deleted it since a document named it.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, Error> {
        let (registry, name, digest) = (self.registry.clone(), self.name.clone(), digest.clone());
        self.wait(async move { registry.has_blob(&name, &digest).await })
    }

    /// The image `name` names, whose top manifest or index `top`, of `bytes`, has been
    /// fetched and checked.
    pub(super) fn holding(
        registry: Arc<Registry>,
        name: &DockerName,
        top: &Descriptor,
        bytes: Vec<u8>,
    ) -> Remote {
        let mut documents = Kept::default();
        documents.keep(top.digest().to_string(), bytes.into());
        Remote {
            registry,
            name: name.clone(),
            runtime: tokio::runtime::Handle::current(),
            documents: Mutex::new(documents),
        }
    }

    /// Runs `work` on the runtime and waits for it: the source's readers are synchronous.
    fn wait<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        block_on(self.runtime.spawn(work)).map_err(|e| Error::Registry {
            registry: self.name.registry.clone(),
            reason: format!("a request stopped: {e}"),
        })?
    }

    /// The manifest, index or config `d` describes, unless kept fetched: a manifest from
    /// the manifests endpoint, a config as a blob, read whole since it is small.
    fn document(&self, d: &Descriptor) -> Result<Bytes, Error> {
        let key = d.digest().to_string();
        if let Some(bytes) = self.documents.lock().expect("not poisoned").get(&key) {
            return Ok(bytes);
        }
        let bytes = if Kind::of(d.media_type().as_ref()) == Kind::Config {
            let mut bytes = Vec::new();
            self.stream(d)?
                .read_to_end(&mut bytes)
                .map_err(|e| Error::from_stream(self.name(), e))?;
            bytes
        } else {
            let (registry, name) = (self.registry.clone(), self.name.clone());
            let reference = key.clone();
            self.wait(async move { registry.fetch_manifest(&name, &reference).await })?
        };
        let bytes = Bytes::from(bytes);
        self.documents
            .lock()
            .expect("not poisoned")
            .keep(key, bytes.clone());
        Ok(bytes)
    }

    /// The blob `d` describes, streamed from the registry as it is read.
    fn stream(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
        let digest = Digest::named(d.digest().as_ref())?;
        let size = d.size();
        let (tx, rx) = mpsc::channel(QUEUED);
        let (registry, name) = (self.registry.clone(), self.name.clone());
        self.runtime.spawn(async move {
            let sink = Queue(tx.clone());
            if let Err(e) = registry.stream_blob(&name, &digest, size, sink).await {
                let _ = tx.send(Err(io::Error::other(e))).await;
            }
        });
        Ok(Box::new(Received {
            rx,
            current: Bytes::new(),
        }))
    }
}

impl BlobSource for Remote {
    fn name(&self) -> String {
        self.name.full()
    }

    fn stored(&self, d: &Descriptor) -> Result<Box<dyn Read + Send>, Error> {
        let kind = Kind::of(d.media_type().as_ref());
        // A config is kept only when it is as small as a document may be; a larger one is
        // streamed, to be refused by its reader.
        if kind.is_document() || (kind == Kind::Config && d.size() <= MAX_DOCUMENT) {
            return Ok(Box::new(io::Cursor::new(self.document(d)?)));
        }
        self.stream(d)
    }

    fn concurrency(&self) -> usize {
        self.registry.jobs
    }

    /// A blob is asked for when it is read, not before: a request now would cost as much.
    fn check_present(&self, _: &Descriptor) -> Result<(), Error> {
        Ok(())
    }

    fn origin(&self, _d: &Descriptor) -> Option<DockerName> {
        Some(self.name.clone())
    }

    fn tagged(&self, tag: &str) -> Result<Option<Descriptor>, Error> {
        let (registry, name) = (self.registry.clone(), self.name.clone());
        let tag = tag.to_string();
        let found = self.wait(async move { registry.manifest_at(&name, &tag).await })?;
        Ok(found.map(|(bytes, d)| {
            (self.documents.lock().expect("not poisoned"))
                .keep(d.digest().to_string(), bytes.into());
            d
        }))
    }

    /// The artifacts the registry lists as referring to each of `subjects`.
    fn referrers(&self, subjects: &[Descriptor]) -> Result<Vec<Referrer>, Error> {
        let mut found = Vec::new();
        for subject in subjects {
            let digest = Digest::named(subject.digest().as_ref())?;
            let (registry, name) = (self.registry.clone(), self.name.clone());
            let listed = self.wait(async move { registry.referrers(&name, &digest).await })?;
            found.extend(listed.into_iter().map(|artifact| Referrer {
                subject: subject.digest().to_string(),
                artifact,
            }));
        }
        Ok(found)
    }
}

/// Waits for `work` on this thread, which must not be one of the runtime's workers (a
/// `Remote` is read from the thread that runs `Runtime::block_on`, as the command line
/// does, or from a blocking thread). That thread is inside the runtime's context, whose
/// cooperative budget would run out and never be renewed, since the thread waits instead of
/// yielding: hence `unconstrained`.
fn block_on<F: Future>(work: F) -> F::Output {
    futures::executor::block_on(tokio::task::unconstrained(work))
}

/// A download's chunks, queued for the reader.
struct Queue(mpsc::Sender<io::Result<Bytes>>);

impl ChunkSink for Queue {
    async fn put(&mut self, chunk: Bytes) -> io::Result<()> {
        self.0
            .send(Ok(chunk))
            .await
            .map_err(|_| io::Error::other("the blob's reader stopped"))
    }
}

/// The reading end of a download.
struct Received {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for Received {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match block_on(self.rx.recv()) {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

impl Registry {
    /// Whether `name`'s repository holds the blob `digest`.
    async fn has_blob(&self, name: &DockerName, digest: &Digest) -> Result<bool, Error> {
        let scope = super::client::pull_scope(&name.repository);
        let hex = digest.to_string();
        self.retrying(name, &format!("checking blob {digest}"), || {
            self.client.blob_exists(&scope, &name.repository, &hex)
        })
        .await
    }

    /// Streams blob `digest` of `size` bytes of `name` into `sink`. A transfer that breaks
    /// off is tried again from where it stopped, so nothing reaches the reader twice.
    async fn stream_blob(
        &self,
        name: &DockerName,
        digest: &Digest,
        size: u64,
        sink: Queue,
    ) -> Result<(), Error> {
        let hex = digest.to_string();
        let progress = self.progress.as_deref();
        if let Some(p) = progress {
            p.start(&hex, size);
        }
        let advance = |n| {
            if let Some(p) = progress {
                p.advance(&hex, n);
            }
        };
        // What the attempts so far delivered, for the next to go on from.
        let state = tokio::sync::Mutex::new((Partial::default(), sink));
        self.retrying(name, &format!("pulling blob {digest}"), || async {
            let mut state = state.lock().await;
            let (partial, sink) = &mut *state;
            self.client
                .download(&name.repository, digest, size, partial, sink, &advance)
                .await
        })
        .await?;
        if let Some(p) = progress {
            p.finish(&hex, "downloaded");
        }
        Ok(())
    }
}
