//! The HTTP side of the distribution API: requests carrying the registry's authentication
//! (see [`super::auth`]), and responses read within the bounds of [`super::bounds`]. A blob
//! is read no further than its descriptor's size and checked against its digest as it
//! streams.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use reqwest::header::{self, HeaderValue};
use reqwest::{RequestBuilder, Response, StatusCode};
use sha2::Digest as _;

use super::auth::{AuthState, Challenge, bearer, parse_challenge};
use super::bounds::Failure;
use super::bounds::{MAX_TOKEN, MinRate, RateFloor, Window, read_capped, status_failure};
use crate::credentials::Credentials;
use crate::digest::Digest;
use crate::layout::MAX_DOCUMENT;
use tokio::time::Instant;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const QUIET_TIMEOUT: Duration = Duration::from_secs(300);

/// An HTTP client for one registry.
pub(crate) struct Client {
    http: reqwest::Client,
    /// `https://HOST` (or `http://`), where `/v2/` is.
    base: String,
    /// `base` parsed: its scheme, host and port are the only place credentials are sent.
    origin: reqwest::Url,
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
            .map_err(|e| crate::Error::BadCertificate {
                reason: Failure::Http(e).to_string(),
            })?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("bareboat/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            // A backstop for a connection that goes quiet where no other bound is running.
            .read_timeout(QUIET_TIMEOUT)
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
        let base = format!("{scheme}://{host}");
        let origin = reqwest::Url::parse(&base).map_err(|e| crate::Error::Registry {
            registry: registry.to_string(),
            reason: format!("{base} is not a usable address: {e}"),
        })?;
        Ok(Client {
            http,
            origin,
            base,
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
        Window::new(self.min_rate).run(what, work).await
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
        if realm.starts_with("http://") && self.base.starts_with("https://") && self.creds.is_some()
        {
            return Err(Failure::Protocol(format!(
                "the registry's token realm {realm} is plain HTTP, and bareboat sends credentials over HTTPS only"
            )));
        }
        let mut query = vec![("scope", scope)];
        query.extend(service.map(|s| ("service", s)));
        let mut request = self.http.get(with_query(realm, &query)?);
        if let Some(basic) = self.basic() {
            request = request.header(header::AUTHORIZATION, basic);
        }
        // The window spans the request and its body, which is read apart to tell a slow
        // body from no answer.
        let window = Window::new(self.min_rate);
        let resp = window
            .run("the token request", async {
                let resp = request.send().await?;
                if !resp.status().is_success() {
                    return Err(status_failure(resp).await);
                }
                Ok(resp)
            })
            .await?;
        let body = read_capped(resp, MAX_TOKEN, "the token response", &window).await?;
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
        let mut request = build(&self.http).build()?;
        // Credentials go to the registry only: an upload Location may name another host.
        if request.url().origin() == self.origin.origin()
            && let Some(auth) = self.authorization(scope).await?
        {
            request.headers_mut().insert(header::AUTHORIZATION, auth);
        }
        Ok(self.http.execute(request).await?)
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
        // As for a token: one window, the body read apart.
        let window = Window::new(self.min_rate);
        let resp = window
            .run(what, async {
                let resp = self
                    .send(scope, |c| c.get(url).header(header::ACCEPT, accept))
                    .await?;
                match resp.status() {
                    StatusCode::OK | StatusCode::NOT_FOUND => Ok(resp),
                    _ => Err(status_failure(resp).await),
                }
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let claimed = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|h| h.to_str().ok())
            .filter(|h| h.starts_with("sha256:"))
            .map(str::to_string);
        let body = read_capped(resp, MAX_DOCUMENT, what, &window).await?;
        // The registry's own word on what it sent, when it gives it.
        let actual = Digest::of(&body).to_string();
        match claimed {
            Some(expected) if expected != actual => Err(Failure::Mismatch { expected, actual }),
            _ => Ok(Some(body)),
        }
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

    /// Downloads what `partial` lacks of blob `digest` of `size` bytes into `out`,
    /// checking it as it streams: no byte past `size`, no rate below the minimum, and the
    /// digest of the whole blob at the end. After an earlier attempt broke off, it asks for
    /// the rest with a `Range`; a registry that sends the whole blob again has what `out`
    /// already holds skipped. `advance` is told of each chunk written.
    pub(crate) async fn download(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        partial: &mut Partial,
        out: &mut impl ChunkSink,
        advance: impl Fn(u64),
    ) -> Result<(), Failure> {
        // An attempt that failed after the last byte leaves nothing to ask for.
        if partial.got < size {
            self.receive(repository, digest, size, partial, out, advance)
                .await?;
        }
        let actual = format!("sha256:{}", hex::encode(partial.hasher.clone().finalize()));
        if actual != digest.to_string() {
            return Err(Failure::Mismatch {
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(())
    }

    /// Receives the rest of a blob `partial` lacks, asking for it by `Range` when an
    /// earlier attempt delivered some.
    async fn receive(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        partial: &mut Partial,
        out: &mut impl ChunkSink,
        advance: impl Fn(u64),
    ) -> Result<(), Failure> {
        let url = self.url(&format!("{repository}/blobs/{digest}"));
        let from = partial.got;
        let ranged = |c: &reqwest::Client| match from {
            0 => c.get(&url),
            _ => c.get(&url).header(header::RANGE, format!("bytes={from}-")),
        };
        let mut resp = self
            .within_deadline("a blob request", self.send(&pull_scope(repository), ranged))
            .await?;
        // Where in the blob the response starts.
        let mut at = match resp.status() {
            StatusCode::OK => 0,
            StatusCode::PARTIAL_CONTENT if from > 0 => {
                let range = resp.headers().get(header::CONTENT_RANGE);
                let range = range.and_then(|v| v.to_str().ok()).unwrap_or_default();
                if !range.starts_with(&format!("bytes {from}-")) {
                    return Err(Failure::Protocol(format!(
                        "asked for blob {digest} from byte {from}, the registry sent the range {range:?}"
                    )));
                }
                from
            }
            _ => return Err(status_failure(resp).await),
        };
        if resp.content_length().is_some_and(|n| n > size - at) {
            return Err(Failure::Oversize { size });
        }
        let mut floor = RateFloor::new(self.min_rate);
        loop {
            let chunk = match tokio::time::timeout_at(floor.deadline(), resp.chunk()).await {
                Ok(chunk) => chunk?,
                Err(_) => {
                    floor.check()?;
                    continue;
                }
            };
            let Some(mut chunk) = chunk else { break };
            let received = chunk.len() as u64;
            if at + received > size {
                return Err(Failure::Oversize { size });
            }
            // What an earlier attempt delivered is not delivered twice.
            let known = partial.got.saturating_sub(at).min(received);
            at += received;
            let fresh = chunk.split_off(known as usize);
            if !fresh.is_empty() {
                partial.hasher.update(&fresh);
                partial.got += fresh.len() as u64;
                let waiting = Instant::now();
                // A reader that went away is no reason to ask the registry again.
                out.put(fresh).await.map_err(|_| {
                    Failure::Local(crate::Error::ReaderStopped {
                        digest: digest.to_string(),
                    })
                })?;
                floor.exclude(waiting.elapsed());
                advance(received - known);
            }
            floor.add(received);
            floor.check()?;
        }
        if partial.got < size {
            return Err(Failure::Truncated {
                got: partial.got,
                size,
            });
        }
        Ok(())
    }
}

/// How much of a blob the attempts so far delivered, hashed as it went.
#[derive(Default)]
pub(crate) struct Partial {
    got: u64,
    hasher: sha2::Sha256,
}

/// Where a download's chunks go, as they arrive.
pub(crate) trait ChunkSink: Send {
    fn put(&mut self, chunk: Bytes) -> impl Future<Output = std::io::Result<()>> + Send;
}

/// `url` with `pairs` added to its query.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> Result<reqwest::Url, Failure> {
    let mut url =
        reqwest::Url::parse(url).map_err(|e| Failure::Protocol(format!("the URL {url:?}: {e}")))?;
    url.query_pairs_mut().extend_pairs(pairs);
    Ok(url)
}
