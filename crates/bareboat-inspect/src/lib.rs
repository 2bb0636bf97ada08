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
//!   riskier;
//! - [`scan`] matches the packages against the Debian Security Tracker's data;
//! - [`sbom`] describes any image's packages as an SBOM.
//!
//! ```no_run
//! # fn run() -> Result<(), bareboat_inspect::Error> {
//! use bareboat_oci::{layout::Layout, model::Image};
//! let layout = Layout::create(std::path::Path::new("out"))?;
//! let top = layout.resolve("static")?;
//! let image = Image::open(&layout, &top, "amd64")?;
//! let report = bareboat_inspect::inspect::inspect(&image)?;
//! println!("{} packages, {} bytes wasted", report.packages.len(), report.wasted_bytes);
//! # Ok(()) }
//! ```

pub mod audit;
pub mod filesystem;
pub mod inspect;
pub mod packages;
pub mod sbom;
pub mod scan;
pub mod secrets;

use std::collections::BTreeMap;

use serde::Serialize;

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

/// How much a finding or a vulnerability matters, least first: one scale for `audit` and
/// `scan`, so that `--fail-on` means the same in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not rated yet (the tracker's "not yet assigned").
    Unknown,
    /// Rated as not mattering (the tracker's "unimportant").
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Most severe first, as reports list them.
    pub const ALL: [Severity; 6] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Negligible,
        Severity::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// How many of `severities` there are of each severity, by name, with every severity
/// present: the `counts` that audit, scan and compare report.
pub fn severity_counts(
    severities: impl IntoIterator<Item = Severity>,
) -> BTreeMap<&'static str, usize> {
    let mut counts: BTreeMap<&'static str, usize> =
        Severity::ALL.iter().map(|s| (s.name(), 0)).collect();
    for s in severities {
        *counts.entry(s.name()).or_default() += 1;
    }
    counts
}
