//! Pushing images to and pulling them from registries (the OCI distribution spec).
//!
//! A push places blobs first, several at once: a HEAD skips what the registry already has,
//! and a blob the source holds in another repository of the same registry (or that the
//! image's base, its `org.opencontainers.image.base.name` annotation, has there) is mounted
//! from there. What the registry has, or mounts, is not read at all. Every blob left to
//! upload is then read whole and checked (see [`crate::blob`]), each layer against its
//! diff_id too, before the registry sees a byte of any; then each manifest goes by digest,
//! an index last, and the tag only at the very end. So an interrupted push, run again,
//! completes, and a tag never points at a manifest whose blobs are missing.
//!
//! A pull visits each document once, at most [`MAX_NESTING`](crate::layout::MAX_NESTING)
//! levels deep, and checks every blob against its descriptor's size and digest on the way
//! into a layout. What the registry sends is bounded as [`client`] describes.

mod attach;
mod auth;
mod bounds;
mod client;
mod listing;
mod pull;
mod push;
mod remote;

use std::sync::Arc;

use serde::Serialize;

use bounds::Failure;
pub use bounds::MinRate;
use client::Client;
pub use remote::Remote;

use crate::Error;
use crate::credentials::{self, Credentials};
use crate::reference::DockerName;

/// How many times a request is tried before its failure is reported.
const ATTEMPTS: u32 = 5;

/// Told how each blob of a push or pull moves, for progress bars.
pub trait BlobProgress: Send + Sync + std::fmt::Debug {
    /// A transfer of `size` bytes starts (again, after a failed attempt).
    fn start(&self, digest: &str, size: u64);
    /// `bytes` more of the blob have moved.
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
    /// Told how each blob moves, for progress bars; `None` reports nothing.
    pub progress: Option<Arc<dyn BlobProgress>>,
    /// The slowest a blob may move before its transfer is stopped and tried again.
    pub min_rate: MinRate,
}

/// What a push did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PushReport {
    /// The digest of the image (or index) pushed.
    pub digest: String,
    /// Blobs uploaded.
    pub uploaded_blobs: usize,
    /// The bytes those blobs held.
    pub uploaded_bytes: u64,
    /// Blobs the registry had already.
    pub skipped_blobs: usize,
    /// Blobs mounted from another repository of the registry.
    pub mounted_blobs: usize,
    /// Artifacts (SBOMs, signatures) pushed as referrers of the image.
    pub referrers: usize,
}

/// A client for one registry.
pub struct Registry {
    client: Client,
    jobs: usize,
    progress: Option<Arc<dyn BlobProgress>>,
    /// The wait before the first retry; it doubles with each.
    backoff: std::time::Duration,
}

impl Registry {
    /// A client for `registry` (a host, with its port if any).
    pub fn new(opts: &RegistryOptions, registry: &str) -> Result<Registry, Error> {
        let creds = match &opts.creds {
            Some(c) => Some(c.clone()),
            None => credentials::lookup(registry)?,
        };
        Ok(Registry {
            client: Client::new(
                registry,
                opts.insecure,
                &opts.ca_certs,
                creds,
                opts.min_rate,
            )?,
            jobs: opts.jobs.max(1),
            progress: opts.progress.clone(),
            backoff: std::time::Duration::from_millis(250),
        })
    }

    /// Checks that the credentials are accepted, as `docker login` does.
    pub async fn check_login(&self, registry: &str) -> Result<(), Error> {
        let name: DockerName = format!("{registry}/bareboat/login-check").parse()?;
        let scope = client::pull_scope(&name.repository);
        // A registry with basic auth only refuses wrong credentials on a real request.
        let missing = format!("sha256:{}", "0".repeat(64));
        self.retrying(&name, "logging in", || {
            self.client.blob_exists(&scope, &name.repository, &missing)
        })
        .await?;
        Ok(())
    }

    /// Runs `op` until it succeeds, fails for good, or the attempts run out; transient
    /// failures (5xx, 429, dropped connections, stalled transfers) are retried with
    /// exponential backoff, or after the wait a `Retry-After` asks for when it is longer.
    async fn retrying<T, F, Fut>(
        &self,
        name: &DockerName,
        what: &str,
        mut op: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Failure>>,
    {
        let mut delay = self.backoff;
        let mut attempt = 1;
        let mut stalled = false;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                // A stall costs a whole window: it is tried again once, not until the
                // attempts run out, so a registry that stays silent holds a command for two
                // windows at most.
                Err(e) if e.stalled() && std::mem::replace(&mut stalled, true) => {
                    return Err(remote(name, what, &e));
                }
                Err(e) if attempt < ATTEMPTS && e.transient() => {
                    let wait = e.retry_after().map_or(delay, |asked| asked.max(delay));
                    tracing::warn!("{what} for {}: {e}; retrying in {wait:?}", name.full());
                    tokio::time::sleep(wait).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(Failure::Local(e)) => return Err(e),
                Err(e) => return Err(remote(name, what, &e)),
            }
        }
    }
}

/// The error a failed request stands for, with a hint where one helps.
pub(super) fn remote(name: &DockerName, what: &str, e: &Failure) -> Error {
    let reason = e.to_string();
    let lower = reason.to_lowercase();
    let hint = match e {
        Failure::Status { code: 401, .. } => format!(
            "\n  hint: log in with `bareboat login {}`, or pass --creds USER:PASSWORD",
            name.registry
        ),
        Failure::TooLarge { .. } | Failure::Oversize { .. } | Failure::Mismatch { .. } => {
            "\n  hint: the registry, or something between it and bareboat, sent what the image does not describe: do not trust it".to_string()
        }
        Failure::TooSlow { .. } | Failure::Deadline { .. } => {
            "\n  hint: --min-rate BYTES/SECONDS sets the slowest a registry may be (a small request has SECONDS): on a slow link, lower BYTES or raise SECONDS".to_string()
        }
        _ if lower.contains("certificate") || lower.contains("unknownissuer") => {
            "\n  hint: trust the registry's CA with --ca-cert FILE (or --insecure for plain HTTP)"
                .to_string()
        }
        _ if lower.contains("connect") => {
            "\n  hint: check the registry's address, and --insecure for a plain-HTTP registry"
                .to_string()
        }
        _ => String::new(),
    };
    Error::Registry {
        registry: name.registry.clone(),
        reason: format!("{what} for {}: {reason}{hint}", name.full()),
    }
}
