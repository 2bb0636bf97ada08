//! What a registry's answers may be: how large, how slow, and how a failure is told and
//! classed. A registry is as untrusted as any other input: a manifest, index or token is
//! read up to a cap and within a deadline, a blob no slower than a minimum rate (a fixed
//! deadline would kill large transfers on slow links), an error body up to a few KiB.
//!
//! A transfer that is too slow is not tried again: the registry would only take as long
//! again. One that stalls, with not a byte in a whole window, is: that is how a connection
//! lost without a word looks, and a new one may do better.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header;
use reqwest::{Response, StatusCode};
use tokio::time::Instant;

/// A token response larger than this is refused; real ones are a few KiB.
pub(crate) const MAX_TOKEN: u64 = 1 << 20;
/// How much of an error response is read, for its message, and for how long.
const MAX_ERROR_BODY: u64 = 16 << 10;
const ERROR_BODY_DEADLINE: Duration = Duration::from_secs(10);
/// The longest window `--min-rate` may set.
const MAX_WINDOW: u64 = 3600;

/// The slowest a blob may move: below `bytes_per_second`, averaged over each `window`, the
/// transfer is stopped (and tried again only if it stalled). A manifest, token or other
/// small request must be done, body and all, within one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinRate {
    /// The slowest average rate allowed, in bytes a second.
    pub bytes_per_second: u64,
    /// How long each average is taken over.
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
            let bytes_per_second: u64 = rate.trim().parse().ok()?;
            let window: u64 = window.trim().parse().ok()?;
            (window > 0 && window <= MAX_WINDOW && bytes_per_second <= 1 << 40).then(|| MinRate {
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
    /// A blob body longer than the `size` its descriptor gives.
    Oversize {
        size: u64,
    },
    /// A blob that arrived slower than the minimum rate: `got` bytes in the last window.
    TooSlow {
        rate: MinRate,
        got: u64,
    },
    /// A small request that took longer than its deadline, when `got` bytes of its body
    /// had arrived.
    Deadline {
        what: String,
        after: Duration,
        got: u64,
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

    /// Whether it is a stall: not a byte in a whole window.
    pub(crate) fn stalled(&self) -> bool {
        matches!(
            self,
            Failure::TooSlow { got: 0, .. } | Failure::Deadline { got: 0, .. }
        )
    }

    pub(crate) fn transient(&self) -> bool {
        match self {
            // A manifest is put only once the registry has every blob it names: a blob
            // it does not see then is one it does not see yet. docker-registry stats a
            // repository's link to a blob while another writer of the same blob rewrites
            // it, and registries on object stores read their own writes late.
            Failure::Status { code, message, .. } if message.contains("MANIFEST_BLOB_UNKNOWN") => {
                *code == 400 || *code == 404
            }
            Failure::Status { code, .. } => *code >= 500 || *code == 429 || *code == 408,
            Failure::Http(e) => {
                e.is_connect()
                    || e.is_timeout()
                    || e.is_request()
                    || e.is_body()
                    || e.is_decode()
                    || e.status()
                        .is_some_and(|s| s.is_server_error() || s.as_u16() == 429)
            }
            Failure::Truncated { .. } | Failure::Io(_) => true,
            // A stall, not slowness: see the module's comment.
            Failure::TooSlow { .. } | Failure::Deadline { .. } => self.stalled(),
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
            Failure::Oversize { size } => write!(
                f,
                "the registry sent more than the {size} bytes its descriptor gives"
            ),
            Failure::TooSlow { rate, got: 0 } => write!(
                f,
                "the transfer stalled: not a byte arrived in {}s",
                rate.window.as_secs()
            ),
            Failure::TooSlow { rate, got } => write!(
                f,
                "the transfer is too slow: it moved {got} bytes in {}s, below the minimum of {} bytes a second",
                rate.window.as_secs(),
                rate.bytes_per_second
            ),
            Failure::Deadline {
                what,
                after,
                got: 0,
            } => {
                write!(f, "{what} took longer than {}s", after.as_secs())
            }
            Failure::Deadline { what, after, got } => write!(
                f,
                "{what} is too slow: {got} bytes of it arrived in {}s, the time it has to arrive whole",
                after.as_secs()
            ),
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

/// The minimum rate, checked over consecutive windows.
pub(crate) struct RateFloor {
    rate: MinRate,
    started: Instant,
    moved: u64,
}

impl RateFloor {
    pub(crate) fn new(rate: MinRate) -> RateFloor {
        RateFloor {
            rate,
            started: Instant::now(),
            moved: 0,
        }
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.started + self.rate.window
    }

    pub(crate) fn add(&mut self, n: u64) {
        self.moved += n;
    }

    /// Leaves out of the window a time bareboat spent waiting on its own side (a slow
    /// reader of a streamed blob), which says nothing of the registry's speed.
    pub(crate) fn exclude(&mut self, waited: Duration) {
        self.started += waited;
    }

    /// At the end of a window, fails if it moved too little, else starts the next.
    pub(crate) fn check(&mut self) -> Result<(), Failure> {
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

/// One window of the minimum rate from when it was made: the time a small request has,
/// body and all.
pub(crate) struct Window {
    end: Instant,
    length: Duration,
}

impl Window {
    pub(crate) fn new(rate: MinRate) -> Window {
        Window {
            end: Instant::now() + rate.window,
            length: rate.window,
        }
    }

    /// `work`, stopped at the window's end: `what` took too long, with `got` bytes of its
    /// body arrived.
    async fn bound<T>(
        &self,
        what: &str,
        got: u64,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let late = || Failure::Deadline {
            what: what.to_string(),
            after: self.length,
            got,
        };
        tokio::time::timeout_at(self.end, work)
            .await
            .unwrap_or_else(|_| Err(late()))
    }

    /// `work`, a request and not its body, stopped at the window's end.
    pub(crate) async fn run<T>(
        &self,
        what: &str,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        self.bound(what, 0, work).await
    }
}

/// `resp`'s body, refused past `limit` bytes or when it is not all there by the end of
/// `window`.
pub(crate) async fn read_capped(
    mut resp: Response,
    limit: u64,
    what: &str,
    window: &Window,
) -> Result<Bytes, Failure> {
    let too_large = || Failure::TooLarge {
        what: what.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        let got = body.len() as u64;
        let next = async { Ok(resp.chunk().await?) };
        let Some(chunk) = window.bound(what, got, next).await? else {
            break;
        };
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The failure an unexpected answer stands for, with the start of its body: the registry's
/// own error message when it sent one.
pub(crate) async fn status_failure(mut resp: Response) -> Failure {
    let code = resp.status().as_u16();
    // Only the seconds form: registries send no other.
    let retry_after = resp
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    // What arrives of the body within a few seconds: an error must not hang on its message.
    let _ = tokio::time::timeout(ERROR_BODY_DEADLINE, async {
        while let Ok(Some(chunk)) = resp.chunk().await {
            let room = MAX_ERROR_BODY as usize - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() as u64 >= MAX_ERROR_BODY {
                break;
            }
        }
    })
    .await;
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
        Err(_) => printable(&body),
    };
    Failure::Status {
        code,
        message,
        retry_after,
    }
}

/// The start of a body that is not the registry's JSON, as one line of text.
fn printable(body: &[u8]) -> String {
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut shown: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(SHOWN)
        .collect();
    if text.chars().count() > SHOWN {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_rates_parse() {
        assert_eq!(
            "1000/5".parse::<MinRate>(),
            Ok(MinRate {
                bytes_per_second: 1000,
                window: Duration::from_secs(5)
            })
        );
        for bad in ["1000", "1000/0"] {
            let err = bad.parse::<MinRate>().unwrap_err().to_string();
            assert!(
                err.contains("expected BYTES_PER_SECOND/WINDOW_SECONDS"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_body_that_is_no_error_document_is_shown_short_and_on_one_line() {
        assert_eq!(printable(b"  bad\r\n gateway\x07 "), "bad gateway");
        let long = printable(&[b'x'; 10_000]);
        assert_eq!(long.chars().count(), 201);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_manifest_whose_blobs_the_registry_does_not_see_yet_is_tried_again() {
        let status = |code: u16, message: &str| Failure::Status {
            code,
            message: message.into(),
            retry_after: None,
        };
        // As docker-registry answers while another writer relinks a blob the manifest names.
        let unseen = "DIGEST_INVALID: provided digest did not match uploaded content; \
                      MANIFEST_BLOB_UNKNOWN: blob unknown to registry";
        assert!(status(400, unseen).transient());
        assert!(!status(400, "MANIFEST_INVALID: manifest invalid").transient());
        assert!(!status(401, "UNAUTHORIZED: authentication required").transient());
        assert!(status(503, "").transient());
    }
}
