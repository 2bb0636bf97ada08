//! bareboat-inspect: looking inside any image, whoever built it.
//!
//! - [`filesystem`] reads an image's layers once each, as a stream, into the files each
//!   layer holds and the filesystem they stack to, with what later layers overwrite or
//!   delete;
//! - [`packages`] reads the package databases a filesystem carries (dpkg's `status` and
//!   `status.d`, apk's `installed`);
//! - [`secrets`] recognises private keys and tokens in a file's bytes;
//! - [`inspect`] puts them together into the report `bareboat inspect` prints;
//! - [`audit`] finds what a distroless image must not have, and what makes any image
//!   riskier.
//!
//! ```no_run
//! # fn run() -> Result<(), bareboat_inspect::Error> {
//! use bareboat_oci::layout::Layout;
//! let layout = Layout::create(std::path::Path::new("out"))?;
//! let top = layout.resolve("static")?;
//! let report = bareboat_inspect::inspect::inspect(&layout, &top, "amd64")?;
//! println!("{} packages, {} bytes wasted", report.packages.len(), report.wasted_bytes);
//! # Ok(()) }
//! ```

pub mod audit;
pub mod filesystem;
pub mod inspect;
pub mod packages;
pub mod secrets;

/// A failure to read an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Oci(#[from] bareboat_oci::Error),
    #[error("layer {layer}: {reason}")]
    Layer { layer: String, reason: String },
    #[error("{0}")]
    Image(String),
}
