use std::path::PathBuf;

use crate::referrer::{MAX_LISTED_ARTIFACTS, MAX_REFERRER_BYTES, MAX_REFERRERS};

/// Errors from writing and reading images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The cause is in the message, not a `source`: a chain printed whole would say it twice.
    /// A file or directory could not be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory (or, for a stream, what it was read from).
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// An image reference that does not parse.
    #[error("invalid image reference {reference:?}: {reason}")]
    BadReference {
        /// The reference, as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A layout or archive that bareboat cannot read, or that lacks what was asked of it (a
    /// tag, a blob). A credentials file that does not parse, and a manifest a registry
    /// serves under another digest, are reported as this too.
    #[error("{}: not an OCI image layout: {reason}", path.display())]
    BadLayout {
        /// The layout, archive or file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry a layer cannot hold as it is: tar cannot store its path or link, or its
    /// staged content is shorter than it says.
    #[error("layer entry {path:?}: {reason}")]
    BadEntry {
        /// The entry's path in the layer.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A registry (or a credential helper for one) that refused, failed, or broke the
    /// protocol.
    #[error("registry {registry}: {reason}")]
    Registry {
        /// The registry's host, with its port if any.
        registry: String,
        /// What went wrong, and what to do about it when the user can act.
        reason: String,
    },
    /// An image document that `oci-spec` cannot build, serialize or parse, such as a digest
    /// in a form it does not accept.
    #[error("invalid image document: {}", spec_cause(.0))]
    Spec(oci_spec::OciSpecError),
    /// A manifest, config or index that does not parse as the document it should be.
    #[error("{what}: not a valid image document: {error}")]
    BadDocument {
        /// The document, such as `manifest sha256:…`.
        what: String,
        /// Why it does not parse.
        error: serde_json::Error,
    },
    /// A descriptor whose digest is not a sha256 one, the only kind bareboat reads.
    #[error("{digest:?} is not a sha256 digest")]
    BadDigest {
        /// The digest, as the descriptor gives it.
        digest: String,
    },
    /// An index that has no image for the platform asked for.
    #[error("the image has no {arch} platform; it has {}", available.join(", "))]
    NoPlatform {
        /// The Debian architecture asked for.
        arch: String,
        /// The architectures of its images, as the index names them.
        available: Vec<String>,
    },
    /// A multi-platform index written to an output that holds one platform's image (a
    /// docker archive).
    #[error(
        "{index} is a multi-platform index, and the output holds one platform's image\n  hint: choose one with --arch, or write oci-archive: instead"
    )]
    SeveralPlatforms {
        /// The index's digest.
        index: String,
    },
    /// A push to a reference that names a digest, of an image with another digest.
    #[error(
        "{name} names {digest}, but the image is {image}\n  hint: push to a tag, or to the image's own digest"
    )]
    WrongDigest {
        /// The repository pushed to.
        name: String,
        /// The digest the reference names.
        digest: String,
        /// The image's digest.
        image: String,
    },
    /// An `oci:` reference to a directory that holds no `oci-layout` file.
    #[error(
        "{}: not an OCI layout (no oci-layout file)\n  hint: check the path, or use oci-archive: for a tar file",
        path.display()
    )]
    NotLayout {
        /// The directory.
        path: PathBuf,
    },
    /// An artifact (an SBOM) whose manifest does not have exactly one layer, its content.
    #[error("artifact {digest} has {layers} layers, not one")]
    ArtifactLayers {
        /// The artifact manifest's digest.
        digest: String,
        /// How many layers it has.
        layers: usize,
    },
    /// An artifact listed as a referrer of a manifest that is not one: its manifest names
    /// another subject, or has another artifact type than it is listed with.
    #[error(
        "{image}: artifact {artifact} is listed as a referrer of {subject}, but {reason}\n  hint: the listing does not describe the artifact: {TAMPERED}"
    )]
    NotReferrer {
        /// The image's source: a layout, an archive or a repository.
        image: String,
        /// The artifact manifest's digest.
        artifact: String,
        /// The manifest it is listed as referring to.
        subject: String,
        /// How its manifest differs from the listing.
        reason: String,
    },
    /// A manifest with more referrers to follow than bareboat follows.
    #[error(
        "{image}: {subject} has {count} referrers {which}, and bareboat follows at most {MAX_REFERRERS} per manifest\n  hint: {REFERRERS_BOUNDED}"
    )]
    TooManyReferrers {
        /// The image's source: a layout, an archive or a repository.
        image: String,
        /// The manifest they refer to.
        subject: String,
        /// How many there are.
        count: usize,
        /// Which referrers were counted, such as `of the types bareboat carries`.
        which: String,
    },
    /// A layout's or archive's index that lists more artifacts than bareboat reads.
    #[error(
        "{origin}: its index lists {count} artifacts, and bareboat reads at most {MAX_LISTED_ARTIFACTS}\n  hint: {REFERRERS_BOUNDED}"
    )]
    TooManyArtifacts {
        /// The layout or archive.
        origin: String,
        /// How many distinct artifacts it lists.
        count: usize,
    },
    /// Referrers of a manifest that hold more bytes than bareboat follows.
    #[error(
        "{image}: the referrers {which} of {subject} hold more than {} MiB, the most bareboat follows per manifest\n  hint: {REFERRERS_BOUNDED}",
        MAX_REFERRER_BYTES >> 20
    )]
    ReferrersTooLarge {
        /// The image's source: a layout, an archive or a repository.
        image: String,
        /// The manifest they refer to.
        subject: String,
        /// Which referrers were counted, such as `of the types bareboat carries`.
        which: String,
    },
    /// No place to keep registry credentials: none of `REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`,
    /// `DOCKER_CONFIG` and `HOME` is set.
    #[error("nowhere to keep credentials: set REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR or HOME")]
    NoAuthFile,
    /// A credentials file whose `credHelpers` entry or `credsStore` is not a helper's name:
    /// `docker-credential-` followed by a path would run a program of the file's choosing.
    #[error(
        "{}: the credential helper {name:?} is not a helper's name (letters, digits, '.', '_' and '-' only)\n  hint: correct or remove the entry in that file, or pass --creds USER:PASSWORD",
        file.display()
    )]
    BadHelperName {
        /// The credentials file.
        file: PathBuf,
        /// The name, as the file gives it.
        name: String,
    },
    /// A credential helper that did not answer in time, and was killed.
    #[error(
        "registry {registry}: credential helper {program} timed out: it did not answer within {after:?}, and was killed\n  hint: run `printf {registry} | {program} get` to see what it waits for (a prompt, a locked keyring), or pass --creds USER:PASSWORD"
    )]
    HelperTimedOut {
        /// The registry it was asked about.
        registry: String,
        /// The helper's program.
        program: String,
        /// How long it had.
        after: std::time::Duration,
    },
    /// A `--ca-cert` certificate that cannot be read.
    #[error("a --ca-cert certificate: {reason}")]
    BadCertificate {
        /// Why it cannot be read.
        reason: String,
    },
    /// A compressor or decompressor that could not be started.
    #[error("cannot start {what}: {error}")]
    Codec {
        /// Which one, such as `a zstd decoder`.
        what: &'static str,
        /// Why it could not.
        error: std::io::Error,
    },
    /// A blob download whose reader went away before the download ended.
    #[error("blob {digest}: its reader stopped before the download ended")]
    ReaderStopped {
        /// The blob's digest.
        digest: String,
    },
    /// A blob that is not what its descriptor says, or not a file bareboat may read.
    #[error("blob {digest}: {reason}\n  hint: {TAMPERED}")]
    Blob {
        /// The blob's digest, as its descriptor gives it.
        digest: String,
        /// How it differs, or why it may not be read.
        reason: String,
    },
    /// A layer whose uncompressed content is not what the image's config says (`what` names
    /// the layer), or an image whose config and manifest disagree about its layers.
    #[error("{what}: {reason}\n  hint: {TAMPERED}")]
    Image {
        /// The layer or the image at fault.
        what: String,
        /// How the documents and content disagree.
        reason: String,
    },
}

/// What to do about referrers past a bound.
const REFERRERS_BOUNDED: &str = "the bound is fixed: remove superseded referrers (old SBOMs, signatures and attestations) where the image is kept; without --all-referrers, copy carries only the artifact types bareboat knows";

/// What to do about a blob or an image that fails a check.
const TAMPERED: &str = "the image was damaged or tampered with: get it again from where it came from, and do not use this copy";

/// What is wrong with a document, in the words of the error underneath: an
/// [`oci_spec::OciSpecError`] that wraps one says only "serde failed" or "io operation
/// failed" itself.
fn spec_cause(e: &oci_spec::OciSpecError) -> String {
    match std::error::Error::source(e) {
        Some(cause) => cause.to_string(),
        None => e.to_string(),
    }
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// The error a verifying stream put inside `e`, or `e` as a failure to read `path`.
    pub fn from_stream(path: impl Into<PathBuf>, e: std::io::Error) -> Error {
        e.downcast::<Error>().unwrap_or_else(|e| Error::io(path, e))
    }
}

// Not `#[from]`, which would make the cause a `source` as well as part of the message.
impl From<oci_spec::OciSpecError> for Error {
    fn from(e: oci_spec::OciSpecError) -> Self {
        Error::Spec(e)
    }
}
