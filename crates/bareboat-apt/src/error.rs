//! Errors of the archive client. Each names the thing at fault and, where the user can act,
//! what to do next.

use std::path::{Path, PathBuf};

use crate::download::{Mismatch, Served};
use crate::relation::RelationError;

/// Errors of the archive client: from reading its configuration to solving and caching.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },

    /// Sources were wanted from the default mirrors, and none is configured.
    #[error(
        "no Debian mirror configured for {release}: the host's apt configuration names none.\n\
         hint: pass --mirror URL (for example the URL of your Debian mirror), set BAREBOAT_MIRROR, \
         or add a [[source]] to the spec"
    )]
    NoMirror {
        /// The release's codename.
        release: String,
    },

    /// A release name that is not one bareboat builds from (its codename or major version).
    #[error("unknown release {0:?}: bareboat supports trixie (Debian 13) and bookworm (Debian 12)")]
    UnknownRelease(String),

    /// A file of the host's apt sources that does not parse.
    #[error("cannot read apt configuration {}: {reason}", path.display())]
    AptConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A proxy setting that is not a proxy's URL.
    #[error(
        "{value:?}, set by {from}, is not a proxy URL: write http://HOST:PORT (or https://), or DIRECT for none"
    )]
    BadProxy {
        /// The value set.
        value: String,
        /// The setting and file, or the environment variable, that set it.
        from: String,
    },

    /// An OpenPGP keyring that does not parse, or holds no usable key.
    #[error("invalid keyring {origin}: {reason}")]
    BadKeyring {
        /// Where the keys came from, such as the keyring file's path.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A Release file whose signature does not parse, or is not a valid one by a key of the
    /// keyring.
    #[error(
        "{url}: signature check failed: {reason}\n\
         hint: if this archive is signed by another key, pass its public key with --keyring FILE"
    )]
    BadSignature {
        /// The signed file's URL.
        url: String,
        /// Why the check failed.
        reason: String,
    },

    /// A Release file that is not UTF-8 text, does not parse, or lacks a field bareboat needs.
    #[error("{url}: malformed Release file: {reason}")]
    BadRelease {
        /// The Release file's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A Release file older than one already relied on: a mirror replaying old, validly
    /// signed metadata to move packages back to older versions.
    #[error(
        "{url}: the mirror serves a Release dated {date}, older than the one dated {newer} that \
         {by} relied on: a mirror replaying an old, validly signed InRelease could move packages \
         back to older versions, so it is refused.\n\
         hint: use an up-to-date mirror; for a snapshot mirror that serves an older date on \
         purpose, pass --allow-older-release"
    )]
    OlderRelease {
        /// The InRelease file's URL.
        url: String,
        /// Its `Date`.
        date: String,
        /// The newer `Date` already relied on.
        newer: String,
        /// Who relied on it: the lockfile, or the cache.
        by: &'static str,
    },

    /// A Release file whose `Valid-Until` has passed.
    #[error(
        "{url}: the Release file expired at {valid_until} (Valid-Until), so the mirror may be serving \
         stale or replayed data.\n\
         hint: use an up-to-date mirror; for a snapshot mirror that serves a fixed date, pass \
         --no-check-valid-until"
    )]
    ReleaseExpired {
        /// The Release file's URL.
        url: String,
        /// When it expired, as a date.
        valid_until: String,
    },

    /// A Release file that lists no `Packages` index for a component and architecture.
    #[error("{url}: the Release file lists no {what}; is the component or architecture right?")]
    IndexMissing {
        /// The `InRelease` file's URL.
        url: String,
        /// The index it should list, such as `main/binary-amd64/Packages`.
        what: String,
    },

    /// A complete download that is not the size or SHA256 the signed metadata gives for it,
    /// even when asked for again.
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
        /// The URL downloaded.
        url: String,
        /// What the file should be, and what was served.
        mismatch: Box<Mismatch>,
        /// What was being fetched, such as a package's name.
        context: Option<String>,
    },

    /// An index file that is not the one its InRelease lists: the mirror serves files of
    /// different dates.
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
        /// The index file's URL.
        url: String,
        /// Its path as the Release file lists it.
        path: String,
        /// The InRelease's `Date`.
        release_date: String,
        /// What the file should be, and what was served.
        mismatch: Box<Mismatch>,
    },

    /// A server that answered 404 or 410.
    #[error("{url}: not found (HTTP 404){}", context_suffix(.context))]
    NotFound {
        /// The URL asked for.
        url: String,
        /// What was being fetched, such as a package's name.
        context: Option<String>,
    },

    /// A package file that a signed index or a lockfile names and the mirror does not serve.
    #[error(
        "{url}: not found (HTTP 404): the mirror lacks {package} ({architecture})\n  hint: a mirror can lack an architecture's files: use a complete one with --mirror URL; if a lockfile names a version the archive has since removed, run `bareboat lock --upgrade`"
    )]
    MirrorGap {
        /// The URL asked for.
        url: String,
        /// The package and version.
        package: String,
        /// Its architecture (`all` for an architecture-independent package).
        architecture: String,
    },

    /// A server that answered with an HTTP status that retrying does not help.
    #[error("{url}: HTTP {status}{}", context_suffix(.context))]
    Http {
        /// The URL asked for.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// What was being fetched, such as a package's name.
        context: Option<String>,
    },

    /// A download that failed on every attempt (connection errors, server errors, cut-off
    /// bodies), or in a way no retry mends, such as a body over its size limit.
    #[error("{url}: {reason} (after {attempts} attempts){}", context_suffix(.context))]
    Network {
        /// The URL asked for (empty when the HTTP client could not be made).
        url: String,
        /// The last failure.
        reason: String,
        /// How many requests were sent.
        attempts: u32,
        /// What was being fetched, such as a package's name.
        context: Option<String>,
    },

    /// A URL the HTTP client cannot request.
    #[error("{url}: invalid URL: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why it cannot be requested.
        reason: String,
    },

    /// A file of an installed system's dpkg database that does not parse.
    #[error("{what}: {reason}")]
    BadDatabase {
        /// The file, as its image names it.
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A `Packages` or Contents index, or its parsed form in the cache, that does not parse.
    #[error("{what}: {reason}")]
    BadIndex {
        /// The index: its URL or cache path.
        what: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A package whose relation field (`Depends`, `Provides`...) or `Source` does not parse.
    #[error("package {package}: {source}")]
    Relation {
        /// The package's name.
        package: String,
        /// What is wrong with the field.
        source: RelationError,
    },

    /// A request no install set satisfies, or one that cannot be asked: the message says why.
    #[error("{0}")]
    Unsolvable(String),

    /// A file that `--offline` needs and the cache does not hold.
    #[error(
        "{what} is not in the cache, and --offline forbids downloading it.\n\
         hint: run the same command once without --offline on a machine that reaches the mirror, \
         or import a cache with `bareboat cache import`"
    )]
    NotCached {
        /// The file, such as `the index URL`.
        what: String,
    },

    /// A cached package whose content no longer matches the SHA256 it is stored under.
    #[error(
        "{}: the cached package does not match its SHA256 (corrupted on disk); it has been removed.\n\
         hint: run the same command again to download it afresh",
        path.display()
    )]
    CorruptCacheEntry {
        /// The removed entry.
        path: PathBuf,
    },

    /// A `.deb` that is not a well-formed Debian package.
    #[error("{}: invalid .deb: {reason}", path.display())]
    BadDeb {
        /// The package file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A hash that was to name a cache entry and is not a SHA256 in lowercase hex.
    #[error("{0:?} is not a SHA256 (64 lowercase hex digits), so it names no cache entry")]
    NotADigest(String),

    /// A lockfile that does not parse, or has a format version this build does not read.
    #[error("{}: invalid lockfile: {reason}", path.display())]
    BadLock {
        /// The lockfile.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A cache archive to import that does not parse, or holds an entry `import` refuses.
    #[error("{}: invalid cache archive: {reason}", path.display())]
    BadCacheArchive {
        /// The archive.
        path: PathBuf,
        /// What is wrong with it, or with which entry.
        reason: String,
    },
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

/// A result whose error is the archive client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
