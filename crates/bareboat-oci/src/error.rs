use std::path::PathBuf;

/// Errors from writing and reading images.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // The cause is in the message, not a `source`: a chain printed whole would say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid image reference {reference:?}: {reason}")]
    BadReference { reference: String, reason: String },
    #[error("{}: not an OCI image layout: {reason}", path.display())]
    BadLayout { path: PathBuf, reason: String },
    #[error("layer entry {path:?}: {reason}")]
    BadEntry { path: String, reason: String },
    #[error("registry {registry}: {reason}")]
    Registry { registry: String, reason: String },
    #[error("{0}")]
    Spec(String),
    /// A blob that is not what its descriptor says, or not a file bareboat may read.
    #[error("blob {digest}: {reason}\n  hint: {TAMPERED}")]
    Blob { digest: String, reason: String },
    /// A layer whose uncompressed content is not what the image's config says (`what` names
    /// the layer), or an image whose config and manifest disagree about its layers.
    #[error("{what}: {reason}\n  hint: {TAMPERED}")]
    Image { what: String, reason: String },
}

/// What to do about a blob or an image that fails a check.
const TAMPERED: &str = "the image was damaged or tampered with: get it again from where it came from, and do not use this copy";

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// The error a verifying stream put inside `e`, or `e` as a failure to read `path`.
    pub(crate) fn from_stream(path: impl Into<PathBuf>, e: std::io::Error) -> Error {
        e.downcast::<Error>().unwrap_or_else(|e| Error::io(path, e))
    }
}

impl From<oci_spec::OciSpecError> for Error {
    fn from(e: oci_spec::OciSpecError) -> Self {
        Error::Spec(e.to_string())
    }
}
