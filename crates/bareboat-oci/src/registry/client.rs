//! The HTTP side of the distribution API: requests carrying the registry's authentication,
//! and responses read within bounds.
//!
//! A registry is as untrusted as any other input. A manifest, index or token is read up to
//! a cap and within a deadline; a blob up to its descriptor's size, checked against its
//! digest as it streams, and no slower than a minimum rate (a fixed deadline would kill large
//! transfers on slow links); an error body up to a few KiB. Authentication follows the
//! registry's challenge to `GET /v2/`: none, Basic, or Bearer tokens from the realm it names,
//! one per scope.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use reqwest::header::{self, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::layout::MAX_DOCUMENT;

/// A token response larger than this is refused; real ones are a few KiB.
const MAX_TOKEN: u64 = 1 << 20;
/// How much of an error response is read, for its message.
const MAX_ERROR_BODY: u64 = 16 << 10;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The slowest a blob may move: below `bytes_per_second`, averaged over each `window`, the
/// transfer is stopped (and tried again). A manifest, token or other small request must be
/// done, body and all, within one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinRate {
    pub bytes_per_second: u64,
    pub window: Duration,
}

impl Default for MinRate {
    fn default() -> MinRate {
        MinRate {
            bytes_per_second: 32_000,
            window: Duration::from_secs(60),
        }
    }
}

impl std::str::FromStr for MinRate {
    type Err = String;

    /// `BYTES_PER_SECOND/WINDOW_SECONDS`, as in `32000/60`.
    fn from_str(s: &str) -> Result<MinRate, String> {
        let parsed = s.split_once('/').and_then(|(rate, window)| {
            let bytes_per_second = rate.trim().parse().ok()?;
            let window: u64 = window.trim().parse().ok()?;
            (window > 0).then(|| MinRate {
                bytes_per_second,
                window: Duration::from_secs(window),
            })
        });
        parsed.ok_or_else(|| {
            format!("{s:?}: expected BYTES_PER_SECOND/WINDOW_SECONDS, as in 32000/60")
        })
    }
}

/// Why a request failed; [`Failure::transient`] tells whether trying again may help.
#[derive(Debug)]
pub(crate) enum Failure {
    /// An answer other than the one expected, with the start of its body and the wait its
    /// `Retry-After` asks for.
    Status {
        code: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    Http(reqwest::Error),
    /// A response longer than it may be.
    TooLarge {
        what: String,
        limit: u64,
    },
    /// A blob that arrived slower than the minimum rate.
    TooSlow {
        rate: MinRate,
        got: u64,
    },
    /// A small request that took longer than its deadline.
    Deadline {
        what: String,
        after: Duration,
    },
    /// A blob whose body ended before its size.
    Truncated {
        got: u64,
        size: u64,
    },
    /// A body whose content is not the digest it was asked for.
    Mismatch {
        expected: String,
        actual: String,
    },
    /// An answer that breaks the protocol: no upload location, a token that is not JSON.
    Protocol(String),
    Io(std::io::Error),
    /// A failure on this side, such as a layout blob that no longer verifies.
    Local(crate::Error),
}

impl Failure {
    /// How long the registry asked to be left alone, at most a minute.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => {
                retry_after.map(|d| d.min(Duration::from_secs(60)))
            }
            _ => None,
        }
    }

    pub(crate) fn transient(&self) -> bool {
        match self {
            Failure::Status { code, .. } => *code >= 500 || *code == 429 || *code == 408,
            Failure::Http(e) => {
                e.is_connect()
                    || e.is_timeout()
                    || e.is_request()
                    || e.is_body()
                    || e.status()
                        .is_some_and(|s| s.is_server_error() || s.as_u16() == 429)
            }
            Failure::TooSlow { .. } | Failure::Truncated { .. } | Failure::Io(_) => true,
            Failure::Deadline { .. } => true,
            _ => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { code, message, .. } => {
                let reason = StatusCode::from_u16(*code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "{code} {reason}")?;
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Failure::Http(e) => {
                // reqwest keeps the cause (a refused certificate, a refused connection) in
                // its sources.
                write!(f, "{e}")?;
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    write!(f, ": {s}")?;
                    source = s.source();
                }
                Ok(())
            }
            Failure::TooLarge { what, limit } => {
                write!(f, "{what} is larger than the {limit}-byte limit")
            }
            Failure::TooSlow { rate, got } => write!(
                f,
                "the transfer moved {got} bytes in {}s, below the minimum of {} bytes a second",
                rate.window.as_secs(),
                rate.bytes_per_second
            ),
            Failure::Deadline { what, after } => {
                write!(f, "{what} took longer than {}s", after.as_secs())
            }
            Failure::Truncated { got, size } => {
                write!(f, "the body ended after {got} of its {size} bytes")
            }
            Failure::Mismatch { expected, actual } => {
                write!(f, "the content hashes to {actual}, not {expected}")
            }
            Failure::Protocol(what) => write!(f, "{what}"),
            Failure::Io(e) => write!(f, "{e}"),
            Failure::Local(e) => write!(f, "{e}"),
        }
    }
}

impl From<reqwest::Error> for Failure {
    fn from(e: reqwest::Error) -> Failure {
        Failure::Http(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Io(e)
    }
}

/// How the registry asks to be authenticated, as its answer to `GET /v2/` says.
#[derive(Clone, Debug)]
enum Challenge {
    Open,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
}

/// An HTTP client for one registry.
pub(crate) struct Client {
    http: reqwest::Client,
    /// `https://HOST` (or `http://`), where `/v2/` is.
    base: String,
    creds: Option<Credentials>,
    auth: tokio::sync::Mutex<AuthState>,
    min_rate: MinRate,
}

/// The scope that pulls from `repository`.
pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The scope that pushes to `repository`.
pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

impl Client {
    /// A client for `registry` (a host, with its port if any); Docker Hub's API is on
    /// another host than its name.
    pub(crate) fn new(
        registry: &str,
        insecure: bool,
        ca_certs: &[Vec<u8>],
        creds: Option<Credentials>,
        min_rate: MinRate,
    ) -> Result<Client, crate::Error> {
        // One process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certs = ca_certs
            .iter()
            .map(|pem| reqwest::Certificate::from_pem(pem))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crate::Error::Spec(format!("a --ca-cert certificate: {e}")))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("bareboat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .tls_certs_merge(certs)
            .build()
            .map_err(|e| crate::Error::Registry {
                registry: registry.to_string(),
                reason: Failure::Http(e).to_string(),
            })?;
        let host = if registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        let scheme = if insecure { "http" } else { "https" };
        Ok(Client {
            http,
            base: format!("{scheme}://{host}"),
            creds,
            auth: tokio::sync::Mutex::new(AuthState::default()),
            min_rate,
        })
    }

    /// `work`, stopped after one window of the minimum rate.
    async fn within_deadline<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let after = self.min_rate.window;
        tokio::time::timeout(after, work).await.unwrap_or_else(|_| {
            Err(Failure::Deadline {
                what: what.to_string(),
                after,
            })
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    /// The `Authorization` header for `scope`, once the registry's challenge is known.
    async fn authorization(&self, scope: &str) -> Result<Option<HeaderValue>, Failure> {
        let mut state = self.auth.lock().await;
        let challenge = match &state.challenge {
            Some(c) => c.clone(),
            None => {
                let c = self.challenge().await?;
                state.challenge = Some(c.clone());
                c
            }
        };
        match challenge {
            Challenge::Open => Ok(None),
            Challenge::Basic => Ok(self.basic()),
            Challenge::Bearer { realm, service } => {
                if let Some(token) = state.tokens.get(scope) {
                    return Ok(Some(bearer(token)?));
                }
                let token = self.token(&realm, service.as_deref(), scope).await?;
                let value = bearer(&token)?;
                state.tokens.insert(scope.to_string(), token);
                Ok(Some(value))
            }
        }
    }

    fn basic(&self) -> Option<HeaderValue> {
        let (user, password) = self.creds.as_ref()?;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).ok()
    }

    /// Asks `GET /v2/` how to authenticate.
    async fn challenge(&self) -> Result<Challenge, Failure> {
        let url = self.url("");
        let resp = self
            .within_deadline("the API check", async {
                Ok(self.http.get(&url).send().await?)
            })
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(Challenge::Open),
            StatusCode::UNAUTHORIZED => {
                let header = resp
                    .headers()
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                parse_challenge(&header).ok_or_else(|| {
                    Failure::Protocol(format!(
                        "{url} answered 401 Unauthorized with no usable challenge ({header:?})"
                    ))
                })
            }
            _ => Err(status_failure(resp).await),
        }
    }

    /// A Bearer token for `scope` from `realm`, with the credentials when there are some.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<String, Failure> {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(Failure::Protocol(format!(
                "the token realm {realm:?} is not an HTTP URL"
            )));
        }
        let mut query = vec![("scope", scope)];
        query.extend(service.map(|s| ("service", s)));
        let mut request = self.http.get(with_query(realm, &query)?);
        if let Some(basic) = self.basic() {
            request = request.header(header::AUTHORIZATION, basic);
        }
        let body = self
            .within_deadline("the token request", async {
                let resp = request.send().await?;
                if !resp.status().is_success() {
                    return Err(status_failure(resp).await);
                }
                read_capped(resp, MAX_TOKEN, "the token response").await
            })
            .await?;
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let parsed: Token = serde_json::from_slice(&body)
            .map_err(|e| Failure::Protocol(format!("the token response from {realm}: {e}")))?;
        parsed
            .token
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                Failure::Protocol(format!("the token response from {realm} has no token"))
            })
    }

    /// Sends the request `build` makes, authenticated for `scope`. A 401 (an expired token,
    /// say) fetches a new token and sends once more.
    async fn send(
        &self,
        scope: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let resp = self.send_once(scope, &build).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        self.auth.lock().await.tokens.remove(scope);
        self.send_once(scope, &build).await
    }

    async fn send_once(
        &self,
        scope: &str,
        build: &impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let mut request = build(&self.http);
        if let Some(auth) = self.authorization(scope).await? {
            request = request.header(header::AUTHORIZATION, auth);
        }
        Ok(request.send().await?)
    }

    /// Whether the repository has the blob.
    pub(crate) async fn blob_exists(
        &self,
        scope: &str,
        repository: &str,
        digest: &str,
    ) -> Result<bool, Failure> {
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let resp = self
            .within_deadline("a blob check", self.send(scope, |c| c.head(&url)))
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(status_failure(resp).await),
        }
    }

    /// Mounts the blob from `from` into `repository`; false when the registry would not.
    pub(crate) async fn mount(
        &self,
        scope: &str,
        repository: &str,
        from: &str,
        digest: &str,
    ) -> Result<bool, Failure> {
        let url = self.url(&format!("{repository}/blobs/uploads/"));
        let url = with_query(&url, &[("mount", digest), ("from", from)])?;
        let resp = self
            .within_deadline(
                "a blob mount",
                self.send(scope, |c| {
                    c.post(url.clone()).header(header::CONTENT_LENGTH, 0)
                }),
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            // An upload session instead: the registry did not mount it.
            StatusCode::ACCEPTED => Ok(false),
            _ => Err(status_failure(resp).await),
        }
    }

    /// Uploads a blob of `size` bytes: a session, its body in one streamed PATCH, then the
    /// closing PUT with the digest. The PATCH may take a minute plus the time the minimum
    /// rate allows for `size`.
    pub(crate) async fn upload(
        &self,
        scope: &str,
        repository: &str,
        digest: &str,
        size: u64,
        body: impl Fn() -> reqwest::Body,
    ) -> Result<(), Failure> {
        let start = self.url(&format!("{repository}/blobs/uploads/"));
        let resp = self
            .within_deadline(
                "starting an upload",
                self.send(scope, |c| c.post(&start).header(header::CONTENT_LENGTH, 0)),
            )
            .await?;
        let location = self.location(resp, StatusCode::ACCEPTED).await?;
        let allowed = self.min_rate.window
            + Duration::from_secs(size / self.min_rate.bytes_per_second.max(1));
        let resp = self
            .send(scope, |c| {
                c.patch(&location)
                    .timeout(allowed)
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_LENGTH, size)
                    .body(body())
            })
            .await?;
        let location = self.location(resp, StatusCode::ACCEPTED).await?;
        let close = with_query(&location, &[("digest", digest)])?;
        let resp = self
            .within_deadline(
                "closing an upload",
                self.send(scope, |c| {
                    c.put(close.clone()).header(header::CONTENT_LENGTH, 0)
                }),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_failure(resp).await);
        }
        Ok(())
    }

    /// The absolute `Location` of an answer with status `expected`.
    async fn location(&self, resp: Response, expected: StatusCode) -> Result<String, Failure> {
        if resp.status() != expected {
            return Err(status_failure(resp).await);
        }
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| Failure::Protocol("an upload answer has no Location".into()))?;
        resp.url()
            .join(location)
            .map(String::from)
            .map_err(|e| Failure::Protocol(format!("an upload Location {location:?}: {e}")))
    }

    /// Fetches the manifest or index at `reference` (a tag or digest), at most
    /// [`MAX_DOCUMENT`] bytes. `None` when the registry has none.
    pub(crate) async fn manifest(
        &self,
        scope: &str,
        repository: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<Option<Bytes>, Failure> {
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let accept = accept.join(", ");
        self.document(scope, &url, &accept, "a manifest").await
    }

    /// What the referrers API lists for `digest`; `None` when the registry has no such API.
    pub(crate) async fn referrers(
        &self,
        scope: &str,
        repository: &str,
        digest: &str,
    ) -> Result<Option<Bytes>, Failure> {
        let url = self.url(&format!("{repository}/referrers/{digest}"));
        self.document(
            scope,
            &url,
            "application/vnd.oci.image.index.v1+json",
            "a referrers index",
        )
        .await
    }

    async fn document(
        &self,
        scope: &str,
        url: &str,
        accept: &str,
        what: &str,
    ) -> Result<Option<Bytes>, Failure> {
        self.within_deadline(what, async {
            let resp = self
                .send(scope, |c| c.get(url).header(header::ACCEPT, accept))
                .await?;
            match resp.status() {
                StatusCode::OK => read_capped(resp, MAX_DOCUMENT, what).await.map(Some),
                StatusCode::NOT_FOUND => Ok(None),
                _ => Err(status_failure(resp).await),
            }
        })
        .await
    }

    /// Stores the manifest or index `bytes` at `reference` (a tag or digest).
    pub(crate) async fn put_manifest(
        &self,
        scope: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<(), Failure> {
        let url = self.url(&format!("{repository}/manifests/{reference}"));
        let resp = self
            .within_deadline(
                "a manifest upload",
                self.send(scope, |c| {
                    c.put(&url)
                        .header(header::CONTENT_TYPE, media_type)
                        .body(bytes.clone())
                }),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_failure(resp).await);
        }
        Ok(())
    }

    /// Downloads blob `digest` of `size` bytes into `out`, checking it as it streams: no
    /// byte past `size`, no rate below the minimum, and the digest at the end. `advance` is
    /// told of each chunk written.
    pub(crate) async fn download(
        &self,
        scope: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        out: &mut impl ChunkSink,
        advance: impl Fn(u64),
    ) -> Result<(), Failure> {
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let mut resp = self
            .within_deadline("a blob request", self.send(scope, |c| c.get(&url)))
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(status_failure(resp).await);
        }
        let too_large = || Failure::TooLarge {
            what: format!("blob {digest}"),
            limit: size,
        };
        if resp.content_length().is_some_and(|n| n > size) {
            return Err(too_large());
        }
        let mut floor = RateFloor::new(self.min_rate);
        let mut hasher = sha2::Sha256::new();
        let mut got = 0u64;
        loop {
            let chunk = match tokio::time::timeout_at(floor.deadline(), resp.chunk()).await {
                Ok(chunk) => chunk?,
                Err(_) => {
                    floor.check()?;
                    continue;
                }
            };
            let Some(chunk) = chunk else { break };
            got += chunk.len() as u64;
            if got > size {
                return Err(too_large());
            }
            hasher.update(&chunk);
            let n = chunk.len() as u64;
            out.put(chunk).await?;
            advance(n);
            floor.add(n);
            floor.check()?;
        }
        if got < size {
            return Err(Failure::Truncated { got, size });
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest.to_string() {
            return Err(Failure::Mismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(())
    }
}

/// Where a download's chunks go, as they arrive.
pub(crate) trait ChunkSink: Send {
    fn put(&mut self, chunk: Bytes) -> impl Future<Output = std::io::Result<()>> + Send;
}

impl ChunkSink for tokio::fs::File {
    async fn put(&mut self, chunk: Bytes) -> std::io::Result<()> {
        self.write_all(&chunk).await
    }
}

/// The minimum rate, checked over consecutive windows.
struct RateFloor {
    rate: MinRate,
    started: Instant,
    moved: u64,
}

impl RateFloor {
    fn new(rate: MinRate) -> RateFloor {
        RateFloor {
            rate,
            started: Instant::now(),
            moved: 0,
        }
    }

    fn deadline(&self) -> Instant {
        self.started + self.rate.window
    }

    fn add(&mut self, n: u64) {
        self.moved += n;
    }

    /// At the end of a window, fails if it moved too little, else starts the next.
    fn check(&mut self) -> Result<(), Failure> {
        let now = Instant::now();
        if now < self.deadline() {
            return Ok(());
        }
        if self.moved < self.rate.bytes_per_second * self.rate.window.as_secs() {
            return Err(Failure::TooSlow {
                rate: self.rate,
                got: self.moved,
            });
        }
        self.started = now;
        self.moved = 0;
        Ok(())
    }
}

/// `url` with `pairs` added to its query.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> Result<reqwest::Url, Failure> {
    let mut url =
        reqwest::Url::parse(url).map_err(|e| Failure::Protocol(format!("the URL {url:?}: {e}")))?;
    url.query_pairs_mut().extend_pairs(pairs);
    Ok(url)
}

/// `resp`'s body, refused past `limit` bytes.
async fn read_capped(mut resp: Response, limit: u64, what: &str) -> Result<Bytes, Failure> {
    let too_large = || Failure::TooLarge {
        what: what.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The failure an unexpected answer stands for, with the start of its body: the registry's
/// own error message when it sent one.
async fn status_failure(mut resp: Response) -> Failure {
    let code = resp.status().as_u16();
    // Only the seconds form: registries send no other.
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = MAX_ERROR_BODY as usize - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() as u64 >= MAX_ERROR_BODY {
            break;
        }
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
    }
    let message = match serde_json::from_slice::<Envelope>(&body) {
        Ok(envelope) => envelope
            .errors
            .iter()
            .map(|e| {
                let code = e.code.as_deref().unwrap_or_default();
                match e.message.as_deref() {
                    Some(m) => format!("{code}: {m}"),
                    None => code.to_string(),
                }
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(&body).trim().to_string(),
    };
    Failure::Status {
        code,
        message,
        retry_after,
    }
}

fn bearer(token: &str) -> Result<HeaderValue, Failure> {
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| Failure::Protocol("the registry's token is not a valid header".into()))
}

/// A `WWW-Authenticate` challenge: `Basic realm=...` or `Bearer realm=...,service=...`.
fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut realm = None;
    let mut service = None;
    for (key, value) in challenge_params(params) {
        match key.to_ascii_lowercase().as_str() {
            "realm" => realm = Some(value),
            "service" => service = Some(value),
            _ => {}
        }
    }
    Some(Challenge::Bearer {
        realm: realm?,
        service,
    })
}

/// The `key=value` and `key="quoted, value"` pairs of a challenge.
fn challenge_params(mut rest: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        let Some((key, after)) = rest.split_once('=') else {
            return pairs;
        };
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        pairs.push((key.trim().to_string(), value.to_string()));
        rest = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_parsed_as_registries_send_them() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull""#,
        );
        match c {
            Some(Challenge::Bearer { realm, service }) => {
                assert_eq!(realm, "https://auth.example/token");
                assert_eq!(service.as_deref(), Some("registry.example"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        ));
        assert!(parse_challenge("Bearer service=x").is_none(), "no realm");
        assert!(parse_challenge("Negotiate abc").is_none());
    }

    #[test]
    fn minimum_rates_parse() {
        assert_eq!(
            "1000/5".parse::<MinRate>(),
            Ok(MinRate {
                bytes_per_second: 1000,
                window: Duration::from_secs(5)
            })
        );
        assert!("1000".parse::<MinRate>().is_err());
        assert!("1000/0".parse::<MinRate>().is_err());
    }
}
