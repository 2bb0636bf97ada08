//! HTTP downloads with retries, streaming size and SHA256 checks, and progress reporting.

use std::io::Write;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::Error;
use crate::proxy::{Chosen, Proxies};

/// Receives download progress. The CLI draws bars with it; libraries stay silent.
pub trait Progress: Send + Sync {
    /// Bytes arrived for the download named `what`.
    fn advance(&self, _what: &str, _bytes: u64) {}
    /// A download finished or was served from the cache.
    fn done(&self, _what: &str) {}
}

/// Progress that reports nothing.
pub struct Silent;
impl Progress for Silent {}

/// What a download must be: its size and SHA256, from a signed index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The size in bytes.
    pub size: u64,
    /// The SHA256, in lowercase hex.
    pub sha256: String,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} bytes with SHA256 {}", self.size, self.sha256)
    }
}

/// A complete response that other than it should be is read on, up to this many times the
/// expected size, so that its own size and SHA256 can be reported (and, for a Contents
/// index, checked against another signed Release).
const OVERSIZE_FACTOR: u64 = 2;

/// An HTTP client that retries transient failures with backoff.
#[derive(Clone)]
pub struct Client {
    /// Made on first use: loading the system's roots costs a build that downloads nothing.
    http: std::sync::Arc<std::sync::OnceLock<reqwest::Client>>,
    /// Where each request goes: straight to the server unless these name a proxy.
    proxies: std::sync::Arc<Proxies>,
    attempts: u32,
    backoff: Duration,
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    /// A client with TLS verified against the system's roots, which asks each server
    /// directly.
    pub fn new() -> Client {
        Client {
            http: Default::default(),
            proxies: Default::default(),
            attempts: 4,
            backoff: Duration::from_millis(250),
        }
    }

    /// The same client, sending each request through the proxy `proxies` choose for it, as
    /// apt would (see [`Proxies::from_host`]).
    pub fn through(proxies: Proxies) -> Client {
        Client {
            proxies: std::sync::Arc::new(proxies),
            ..Client::new()
        }
    }

    fn http(&self) -> Result<&reqwest::Client, Error> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        // One process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let proxies = self.proxies.clone();
        let proxy = reqwest::Proxy::custom(move |url| {
            let chosen = proxies.for_request(url.scheme(), url.host_str()?)?;
            Some(chosen.url)
        });
        let http = reqwest::Client::builder()
            .no_proxy()
            .proxy(proxy)
            .user_agent(concat!("bareboat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(20))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Network {
                url: String::new(),
                reason: format!("cannot create HTTP client: {e}"),
                attempts: 0,
                context: None,
            })?;
        Ok(self.http.get_or_init(|| http))
    }

    /// The proxy a request for `url` goes through, if any.
    fn proxy_for(&self, url: &str) -> Option<Chosen> {
        let url = reqwest::Url::parse(url).ok()?;
        self.proxies.for_request(url.scheme(), url.host_str()?)
    }

    /// Fetches a small file whole (an `InRelease`).
    pub async fn get_small(&self, url: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let mut body = Whole {
            buf: Vec::new(),
            limit,
        };
        self.with_retries(url, &mut body).await?;
        Ok(body.buf)
    }

    /// The size the server gives for `url` in answer to one HEAD request, if it does.
    pub async fn head_size(&self, url: &str) -> Option<u64> {
        let resp = self.http().ok()?.head(url).send().await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.headers()
            .get(reqwest::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// Streams `url` into `out`, checking size and SHA256 on the way. On failure the caller
    /// discards `out`, so nothing unverified is ever kept.
    pub async fn download(
        &self,
        url: &str,
        expected: &Expected,
        out: &mut std::fs::File,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        self.to_file(url, Check::Exact(expected), out, what, progress)
            .await
    }

    /// Streams `url` into `out`, which nothing signed describes, refusing more than `limit`
    /// bytes. The caller checks the content before it keeps it.
    pub async fn download_unsigned(
        &self,
        url: &str,
        limit: u64,
        out: &mut std::fs::File,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        self.to_file(url, Check::AtMost(limit), out, what, progress)
            .await
    }

    async fn to_file(
        &self,
        url: &str,
        check: Check<'_>,
        out: &mut std::fs::File,
        what: &str,
        progress: &dyn Progress,
    ) -> Result<(), Error> {
        let mut body = ToFile {
            out,
            check,
            what,
            progress,
        };
        self.with_retries(url, &mut body)
            .await
            .map_err(|e| e.with_context(what.to_string()))
    }

    /// Sends GET requests until `body` succeeds, a permanent error occurs, or the attempts
    /// run out. 5xx, 429 (honouring `Retry-After`), dropped connections and truncated bodies
    /// are retried. A complete body that does not match its signed size and SHA256 is
    /// retried once: a second identical answer means the mirror serves another file.
    async fn with_retries(&self, url: &str, body: &mut impl Body) -> Result<(), Error> {
        let http = self.http()?;
        let mut last = String::new();
        let mut mismatches = 0;
        for attempt in 1..=self.attempts {
            let mut wait = self.backoff * 2u32.pow(attempt - 1);
            match http.get(url).send().await {
                Err(e) if e.is_builder() => {
                    return Err(Error::BadUrl {
                        url: url.to_string(),
                        reason: e.to_string(),
                    });
                }
                Err(e) => {
                    last = describe(&e);
                    if let Some(chosen) = self.proxy_for(url) {
                        last.push_str(&format!(", through {chosen}"));
                    }
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        match body.read(resp).await {
                            Ok(()) => return Ok(()),
                            Err(Failure::Retry(why)) => last = why,
                            Err(Failure::Fatal(why)) => {
                                return Err(Error::Network {
                                    url: url.to_string(),
                                    reason: why,
                                    attempts: attempt,
                                    context: None,
                                });
                            }
                            Err(Failure::Mismatch(mismatch)) => {
                                mismatches += 1;
                                if mismatches > 1 || attempt == self.attempts {
                                    return Err(Error::HashMismatch {
                                        url: url.to_string(),
                                        mismatch,
                                        context: None,
                                    });
                                }
                                last = format!(
                                    "served {}, not {}",
                                    mismatch.served, mismatch.expected
                                );
                            }
                        }
                    } else if status.as_u16() == 404 || status.as_u16() == 410 {
                        return Err(Error::NotFound {
                            url: url.to_string(),
                            context: None,
                        });
                    } else if status.is_server_error() || status.as_u16() == 429 {
                        if let Some(after) = retry_after(&resp) {
                            wait = after.min(Duration::from_secs(60));
                        }
                        last = format!("HTTP {status}");
                    } else {
                        return Err(Error::Http {
                            url: url.to_string(),
                            status: status.as_u16(),
                            context: None,
                        });
                    }
                }
            }
            if attempt < self.attempts {
                tracing::debug!(url, attempt, reason = %last, "retrying");
                tokio::time::sleep(wait).await;
            }
        }
        Err(Error::Network {
            url: url.to_string(),
            reason: last,
            attempts: self.attempts,
            context: None,
        })
    }
}

/// Reads a response body; called again from scratch on each retry.
trait Body {
    async fn read(&mut self, resp: reqwest::Response) -> Result<(), Failure>;
}

/// A small body kept in memory.
struct Whole {
    buf: Vec<u8>,
    limit: u64,
}

impl Body for Whole {
    async fn read(&mut self, mut resp: reqwest::Response) -> Result<(), Failure> {
        self.buf.clear();
        while let Some(chunk) = resp.chunk().await.map_err(Failure::retry)? {
            self.buf.extend_from_slice(&chunk);
            if self.buf.len() as u64 > self.limit {
                return Err(Failure::Fatal(format!(
                    "larger than the {}-byte limit",
                    self.limit
                )));
            }
        }
        Ok(())
    }
}

/// What a body streamed to a file must be.
enum Check<'a> {
    /// The size and SHA256 a signed index gives.
    Exact(&'a Expected),
    /// No larger than this.
    AtMost(u64),
}

/// A body streamed to a file and checked as it arrives.
struct ToFile<'a> {
    out: &'a mut std::fs::File,
    check: Check<'a>,
    what: &'a str,
    progress: &'a dyn Progress,
}

impl Body for ToFile<'_> {
    async fn read(&mut self, mut resp: reqwest::Response) -> Result<(), Failure> {
        let fatal = |e: std::io::Error| Failure::Fatal(e.to_string());
        self.out.set_len(0).map_err(fatal)?;
        std::io::Seek::rewind(self.out).map_err(fatal)?;
        let mut hasher = Sha256::new();
        let mut got = 0u64;
        let limit = match self.check {
            Check::Exact(expected) => expected.size.saturating_mul(OVERSIZE_FACTOR).max(1 << 20),
            Check::AtMost(limit) => limit,
        };
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                // The connection dropped, or the server sent less than its Content-Length.
                Err(e) => {
                    let of = match self.check {
                        Check::Exact(expected) => format!(" of {}", expected.size),
                        Check::AtMost(_) => String::new(),
                    };
                    return Err(Failure::Retry(format!(
                        "download truncated: received {got}{of} bytes ({})",
                        describe(&e)
                    )));
                }
            };
            got += chunk.len() as u64;
            if got > limit {
                return Err(match self.check {
                    Check::Exact(expected) => Failure::Mismatch(Box::new(Mismatch {
                        expected: expected.clone(),
                        served: Served::MoreThan(limit),
                    })),
                    Check::AtMost(_) => {
                        Failure::Fatal(format!("larger than the {limit}-byte limit"))
                    }
                });
            }
            hasher.update(&chunk);
            self.out.write_all(&chunk).map_err(fatal)?;
            self.progress.advance(self.what, chunk.len() as u64);
        }
        self.out.flush().map_err(fatal)?;
        let Check::Exact(expected) = self.check else {
            return Ok(());
        };
        // The body ended cleanly: whatever arrived is the whole of what the server has.
        let served = Expected {
            size: got,
            sha256: hex::encode(hasher.finalize()),
        };
        if served != *expected {
            return Err(Failure::Mismatch(Box::new(Mismatch {
                expected: expected.clone(),
                served: Served::Complete(served),
            })));
        }
        Ok(())
    }
}

/// A complete download that is not the file it should be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// What the signed metadata says the file is.
    pub expected: Expected,
    /// What the server sent instead.
    pub served: Served,
}

/// What a server answered in place of the expected file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// A complete file, of this size and SHA256, now in the output file.
    Complete(Expected),
    /// More bytes than this, which were not all read.
    MoreThan(u64),
}

impl std::fmt::Display for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Served::Complete(file) => file.fmt(f),
            Served::MoreThan(limit) => write!(f, "more than {limit} bytes"),
        }
    }
}

/// How one attempt at reading a body failed.
enum Failure {
    /// Transient: try again.
    Retry(String),
    /// Permanent, not about the content.
    Fatal(String),
    /// The content is not what the signed index says.
    Mismatch(Box<Mismatch>),
}

impl Failure {
    fn retry(e: reqwest::Error) -> Failure {
        Failure::Retry(describe(&e))
    }
}

fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}
