//! bareboat-spec: what an image is made of, before anything is fetched.
//!
//! - [`model`] is what a spec says, once checked: `Spec` and its parts;
//! - [`spec`] reads `bareboat.toml` and validates it, naming the line of any error;
//! - [`catalog`] holds the built-in images (`catalog:static`, `catalog:cc`, ...) and variants;
//! - [`accounts`] are the users and groups every image has, and the rules for the spec's;
//! - [`health`] says what the health probe may check.
//!
//! ```
//! use bareboat_spec::catalog;
//! use bareboat_apt::sources::Distribution;
//! let spec = catalog::spec("static", None, Distribution::Trixie, vec!["amd64".into()]).unwrap();
//! assert!(spec.exclude.contains(&"debconf".to_string()));
//! ```

#![deny(missing_docs)]

pub mod accounts;
pub mod catalog;
pub mod health;
pub mod model;
pub mod spec;

/// Why a spec, a catalogue name or an architecture is refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec does not parse or breaks a rule; `line` is where, when known.
    #[error("{origin}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        /// The file, or the command-line option, the spec came from.
        origin: String,
        /// The line of the file at fault.
        line: Option<usize>,
        /// What is wrong, and what to write instead.
        reason: String,
    },
    /// `catalog:NAME` names no catalogue image.
    #[error("unknown catalogue image {0:?}; available: {list}", list = catalog::names().join(", "))]
    UnknownImage(String),
    /// `catalog:NAME:VARIANT` names no variant.
    #[error(
        "unknown variant {0:?}; available: nonroot, root, debug, debug-root (and distroless's latest, debug-nonroot)"
    )]
    UnknownVariant(String),
    /// The catalogue image is not made for the release asked for.
    #[error(
        "catalog:{0} is made for Debian 13 (trixie) only\n  hint: drop --release, or set release = \"trixie\""
    )]
    NotInRelease(&'static str),
    /// An architecture the release is not released for.
    #[error(
        "unsupported architecture {arch:?}{why}: Debian {} ({release}) releases {}; --arch all builds them all",
        release.version(),
        release.architectures().join(", "),
        why = retired(arch, *release)
    )]
    UnsupportedArch {
        /// The architecture named.
        arch: String,
        /// The release it was named for.
        release: bareboat_apt::sources::Distribution,
    },
    /// The spec file does not exist.
    #[error(
        "spec {} not found.\nhint: write a bareboat.toml (see `bareboat lock --help`), or lock a built-in image: `bareboat lock catalog:static`",
        .0.display()
    )]
    NotFound(std::path::PathBuf),
    /// `--release` or `--arch` given with a spec file, which sets its own.
    #[error(
        "--release and --arch apply to catalog: specs; set `release` and `arch` in {} instead",
        .0.display()
    )]
    OptionsOnFile(std::path::PathBuf),
    /// The release is not one bareboat supports.
    #[error(transparent)]
    Release(#[from] bareboat_apt::Error),
}

impl Error {
    /// The line of the spec file at fault, when the error has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Invalid { line, .. } => *line,
            _ => None,
        }
    }
}

/// Why a known Debian architecture is not one bareboat builds for a release, if it is one.
fn retired(arch: &str, release: bareboat_apt::sources::Distribution) -> &'static str {
    match arch {
        "i386" | "mips64el" | "mipsel" => ", which Debian no longer releases",
        "riscv64" if !release.architectures().contains(&"riscv64") => {
            ", a release architecture from Debian 13 (trixie) on"
        }
        _ => "",
    }
}
