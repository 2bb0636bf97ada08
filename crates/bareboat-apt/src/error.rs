//! Errors of the archive client. Each names the thing at fault and, where the user can act,
//! what to do next.

use std::path::{Path, PathBuf};

use crate::download::{Mismatch, Served};
use crate::relation::RelationError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "no Debian mirror configured for {release}: the host's apt configuration names none.\n\
         hint: pass --mirror URL (for example the URL of your Debian mirror), set BAREBOAT_MIRROR, \
         or add a [[source]] to the spec"
    )]
    NoMirror { release: String },

    #[error("unknown release {0:?}: bareboat supports trixie (Debian 13) and bookworm (Debian 12)")]
    UnknownRelease(String),

    #[error("cannot read apt configuration {}: {reason}", path.display())]
    AptConfig { path: PathBuf, reason: String },

    #[error("invalid keyring {origin}: {reason}")]
    BadKeyring { origin: String, reason: String },

    #[error(
        "{url}: signature check failed: {reason}\n\
         hint: if this archive is signed by another key, pass its public key with --keyring FILE"
    )]
    BadSignature { url: String, reason: String },

    #[error("{url}: malformed Release file: {reason}")]
    BadRelease { url: String, reason: String },

    #[error(
        "{url}: the Release file expired at {valid_until} (Valid-Until), so the mirror may be serving \
         stale or replayed data.\n\
         hint: use an up-to-date mirror; for a snapshot mirror that serves a fixed date, pass \
         --no-check-valid-until"
    )]
    ReleaseExpired { url: String, valid_until: String },

    #[error("{url}: the Release file lists no {what}; is the component or architecture right?")]
    IndexMissing { url: String, what: String },

    #[error(
        "{url}{}: {} does not match the signed archive metadata: it should be {}, \
         the server sent {}.\n\
         The file was tampered with or corrupted in transit; nothing was stored.",
        context_suffix(.context),
        mismatch_field(.mismatch),
        .mismatch.expected,
        .mismatch.served
    )]
    HashMismatch {
        url: String,
        mismatch: Box<Mismatch>,
        context: Option<String>,
    },

    #[error(
        "{url} ({path}): the mirror is out of sync: the file it serves does not match the signed \
         archive metadata. Its InRelease, dated {release_date}, lists {}; the mirror \
         served {}, a complete file. Mirrors and caching proxies that fetch files \
         at different times serve such mixtures; nothing was stored.\n\
         hint: try again later, when the mirror has finished updating, or pass --mirror URL to \
         use another mirror",
        .mismatch.expected,
        .mismatch.served
    )]
    OutOfSync {
        url: String,
        path: String,
        release_date: String,
        mismatch: Box<Mismatch>,
    },

    #[error("{url}: not found (HTTP 404){}", context_suffix(.context))]
    NotFound {
        url: String,
        context: Option<String>,
    },

    #[error("{url}: HTTP {status}{}", context_suffix(.context))]
    Http {
        url: String,
        status: u16,
        context: Option<String>,
    },

    #[error("{url}: {reason} (after {attempts} attempts){}", context_suffix(.context))]
    Network {
        url: String,
        reason: String,
        attempts: u32,
        context: Option<String>,
    },

    #[error("{url}: invalid URL: {reason}")]
    BadUrl { url: String, reason: String },

    #[error("{what}: {reason}")]
    BadIndex { what: String, reason: String },

    #[error("package {package}: {source}")]
    Relation {
        package: String,
        source: RelationError,
    },

    #[error("{0}")]
    Unsolvable(String),

    #[error(
        "{what} is not in the cache, and --offline forbids downloading it.\n\
         hint: run the same command once without --offline on a machine that reaches the mirror, \
         or import a cache with `bareboat cache import`"
    )]
    NotCached { what: String },

    #[error(
        "{}: the cached package does not match its SHA256 (corrupted on disk); it has been removed.\n\
         hint: run the same command again to download it afresh",
        path.display()
    )]
    CorruptCacheEntry { path: PathBuf },

    #[error("{}: invalid .deb: {reason}", path.display())]
    BadDeb { path: PathBuf, reason: String },

    #[error("{}: invalid lockfile: {reason}", path.display())]
    BadLock { path: PathBuf, reason: String },

    #[error("{}: invalid cache archive: {reason}", path.display())]
    BadCacheArchive { path: PathBuf, reason: String },
}

/// Which part of a download differs: its size, or only its content.
fn mismatch_field(mismatch: &Mismatch) -> &'static str {
    match &mismatch.served {
        Served::Complete(file) if file.size == mismatch.expected.size => "SHA256",
        _ => "size",
    }
}

fn context_suffix(context: &Option<String>) -> String {
    context
        .as_ref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// Attaches what was being fetched (a package name, an index) to a download error.
    pub fn with_context(self, what: impl Into<String>) -> Error {
        let what = Some(what.into());
        match self {
            Error::NotFound { url, .. } => Error::NotFound { url, context: what },
            Error::Http { url, status, .. } => Error::Http {
                url,
                status,
                context: what,
            },
            Error::Network {
                url,
                reason,
                attempts,
                ..
            } => Error::Network {
                url,
                reason,
                attempts,
                context: what,
            },
            Error::HashMismatch { url, mismatch, .. } => Error::HashMismatch {
                url,
                mismatch,
                context: what,
            },
            other => other,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
