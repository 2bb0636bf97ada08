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
//! - [`scan`] matches the packages against the Debian Security Tracker's data, which
//!   [`vulndb`] downloads into the cache and finds there;
//! - [`compare`] puts images' figures side by side;
//! - [`sbom`] describes any image's packages as an SBOM;
//! - [`vex`] states what the tracker's data means for an image, as OpenVEX, with evidence
//!   for what cannot apply, and puts aside the findings a VEX document rules out.
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

#![deny(missing_docs)]

pub mod audit;
pub mod compare;
pub mod filesystem;
pub mod inspect;
pub mod packages;
pub mod sbom;
pub mod scan;
pub mod secrets;
pub mod vex;
pub mod vulndb;

use std::collections::BTreeMap;

use serde::Serialize;

/// A failure to read an image, or the vulnerability data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image could not be read, or failed a check.
    #[error(transparent)]
    Oci(#[from] bareboat_oci::Error),
    /// A layer holds what no image may.
    #[error("layer {layer}: {reason}")]
    Layer {
        /// The layer's digest.
        layer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The cache, or a download of the vulnerability data, failed.
    #[error(transparent)]
    Apt(#[from] bareboat_apt::Error),
    /// A file is not the Debian Security Tracker's JSON data.
    #[error("{origin}: not the Debian Security Tracker's JSON data: {reason}")]
    NotTrackerData {
        /// Where the data came from.
        origin: String,
        /// What does not parse.
        reason: String,
    },
    /// The tracker's data lists no source packages.
    #[error("{origin}: the data lists no source packages; nothing was changed in the cache")]
    EmptyTrackerData {
        /// Where the data came from.
        origin: String,
    },
    /// A VEX document, or a rules file, is not one.
    #[error("{origin}: {reason}")]
    BadVex {
        /// Where it came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A VEX document would have no statement.
    #[error(
        "{image}: nothing to state: the tracker's data has no vulnerability of its packages in its release, and no rule applies (an OpenVEX document needs a statement)"
    )]
    NothingToState {
        /// The image's digest.
        image: String,
    },
    /// There is no vulnerability data to scan with.
    #[error(
        "no vulnerability data in the cache\n  hint: run `bareboat db update`, or pass --db FILE with the tracker's JSON data"
    )]
    NoData,
    /// `--db FILE` names no file.
    #[error("--db {}: no such file", .0.display())]
    NoDataFile(std::path::PathBuf),
    /// The image names no release to match its packages against.
    #[error(
        "{image}: its os-release names no release codename to match\n  hint: pass --release CODENAME, e.g. --release trixie"
    )]
    NoRelease {
        /// The image's digest.
        image: String,
    },
    /// A file could not be read or written.
    // The cause is in the message, not a `source`: a chain printed whole would say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The record of where the cache's vulnerability data came from does not parse.
    #[error(
        "{}: not a record of the vulnerability data: {reason}\n  hint: run `bareboat db update` to download the data and its record again",
        path.display()
    )]
    BadRecord {
        /// The record file.
        path: std::path::PathBuf,
        /// What does not parse.
        reason: String,
    },
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
    /// The tracker's "low"; for audit, weight or a declared debug shell.
    Low,
    /// The tracker's "medium"; for audit, running as root or a world-writable path.
    Medium,
    /// The tracker's "high"; for audit, what a distroless image must not have (a shell,
    /// a package manager, a setuid file, a device node).
    High,
    /// A secret that ships in the image; the tracker rates nothing this high.
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

    /// Its name in reports, JSON and `--fail-on`: `unknown` to `critical`.
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

    /// The severity [`Severity::name`] gives as `s`, if any.
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
