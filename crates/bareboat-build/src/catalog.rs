//! The built-in catalogue: distroless's images as specs, per Debian release.
//!
//! Images stack (`static` → `base-nossl` → `base` → `cc`): each adds packages to its
//! parent's, so their lower layers can be shared. The solver's full closure of these sets is
//! not distroless, so each image lists excludes; each is a dependency that no program in the
//! image reads at run time:
//!
//! - `awk` (mawk): base-files' Pre-Depends, used only by its maintainer scripts;
//! - `debconf`, `openssl`: configuration and the CLI that ca-certificates' scripts call;
//!   bareboat generates the CA bundle itself;
//! - `libgcc-s1` in `base-nossl` and `base`: libc6 loads it only for thread cancellation
//!   unwinding, as in distroless; `cc` installs it;
//! - `openssl-provider-legacy` in `base` (trixie): the legacy algorithms module, loaded only
//!   when configured.

use bareboat_apt::solver::Request;
use bareboat_apt::sources::Distribution;

use crate::spec::{Level, Spec};

/// A catalogue image.
pub struct Image {
    pub name: &'static str,
    pub parent: Option<&'static str>,
    pub summary: &'static str,
    trixie: &'static [&'static str],
    bookworm: &'static [&'static str],
    exclude: &'static [&'static str],
}

impl Image {
    /// The packages this image adds to its parent's, for a release.
    pub fn own_packages(&self, release: Distribution) -> &'static [&'static str] {
        match release {
            Distribution::Trixie => self.trixie,
            Distribution::Bookworm => self.bookworm,
        }
    }
}

pub const IMAGES: &[Image] = &[
    Image {
        name: "static",
        parent: None,
        summary: "CA certificates, time zones, /etc files: for statically linked programs",
        trixie: &[
            "base-files",
            "netbase",
            "tzdata",
            "tzdata-legacy",
            "media-types",
            "ca-certificates",
        ],
        bookworm: &[
            "base-files",
            "netbase",
            "tzdata",
            "media-types",
            "ca-certificates",
        ],
        exclude: &["awk", "debconf", "openssl"],
    },
    Image {
        name: "base-nossl",
        parent: Some("static"),
        summary: "static + glibc: for dynamically linked C programs without TLS",
        trixie: &["libc6"],
        bookworm: &["libc6"],
        exclude: &["libgcc-s1"],
    },
    Image {
        name: "base",
        parent: Some("base-nossl"),
        summary: "base-nossl + OpenSSL and compression libraries",
        trixie: &["libssl3t64", "libzstd1", "zlib1g"],
        bookworm: &["libssl3"],
        exclude: &["openssl-provider-legacy"],
    },
    Image {
        name: "cc",
        parent: Some("base"),
        summary: "base + the C++ runtime and OpenMP: for C++ and Rust programs",
        trixie: &["libgcc-s1", "libstdc++6", "libgomp1", "gcc-14-base"],
        bookworm: &["libgcc-s1", "libstdc++6", "libgomp1", "gcc-12-base"],
        exclude: &[],
    },
];

/// An image flavour: who it runs as, and whether it carries a busybox shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Nonroot,
    Root,
    Debug,
    DebugRoot,
}

impl Variant {
    pub const ALL: [Variant; 4] = [
        Variant::Nonroot,
        Variant::Root,
        Variant::Debug,
        Variant::DebugRoot,
    ];

    /// Parses a variant name, accepting distroless's names (`latest` is `root`,
    /// `debug-nonroot` is `debug`).
    pub fn parse(s: &str) -> Option<Variant> {
        Some(match s {
            "nonroot" => Variant::Nonroot,
            "root" | "latest" => Variant::Root,
            "debug" | "debug-nonroot" => Variant::Debug,
            "debug-root" => Variant::DebugRoot,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Variant::Nonroot => "nonroot",
            Variant::Root => "root",
            Variant::Debug => "debug",
            Variant::DebugRoot => "debug-root",
        }
    }

    pub fn is_debug(self) -> bool {
        matches!(self, Variant::Debug | Variant::DebugRoot)
    }
}

/// An unknown catalogue name or variant.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown catalogue image {0:?}; available: {list}", list = names().join(", "))]
    UnknownImage(String),
    #[error(
        "unknown variant {0:?}; available: nonroot, root, debug, debug-root (and distroless's latest, debug-nonroot)"
    )]
    UnknownVariant(String),
}

/// The names of all catalogue images.
pub fn names() -> Vec<&'static str> {
    IMAGES.iter().map(|i| i.name).collect()
}

/// Looks up an image by name.
pub fn image(name: &str) -> Result<&'static Image, CatalogError> {
    IMAGES
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| CatalogError::UnknownImage(name.to_string()))
}

/// The chain of images from the root of the stack down to `name`.
pub fn stack(name: &str) -> Result<Vec<&'static Image>, CatalogError> {
    let mut chain = vec![image(name)?];
    while let Some(parent) = chain.last().and_then(|i| i.parent) {
        chain.push(image(parent)?);
    }
    chain.reverse();
    Ok(chain)
}

/// The spec of a catalogue image for a release and architectures.
pub fn spec(
    name: &str,
    variant: Option<&str>,
    release: Distribution,
    arch: Vec<String>,
) -> Result<Spec, CatalogError> {
    let variant = match variant {
        Some(v) => Variant::parse(v).ok_or_else(|| CatalogError::UnknownVariant(v.to_string()))?,
        None => Variant::Nonroot,
    };
    let chain = stack(name)?;
    let mut packages: Vec<String> = chain
        .iter()
        .flat_map(|i| i.own_packages(release))
        .map(|p| p.to_string())
        .collect();
    if variant.is_debug() {
        packages.push("busybox-static".into());
    }
    // A child's own packages override an ancestor's exclusion of them.
    let exclude = chain
        .iter()
        .flat_map(|i| i.exclude)
        .filter(|x| !packages.iter().any(|p| p == *x))
        .map(|x| x.to_string())
        .collect();
    let mut levels: Vec<Level> = chain
        .iter()
        .enumerate()
        .map(|(k, i)| Level {
            name: i.name.to_string(),
            roots: i
                .own_packages(release)
                .iter()
                .map(|p| p.to_string())
                .collect(),
            exclude: chain[..=k]
                .iter()
                .flat_map(|i| i.exclude)
                .map(|x| x.to_string())
                .collect(),
        })
        .collect();
    if variant.is_debug() {
        levels.push(Level {
            name: "busybox".into(),
            roots: vec!["busybox-static".into()],
            exclude: Vec::new(),
        });
    }
    Ok(Spec {
        release,
        arch,
        packages: packages.iter().map(|p| Request::parse(p)).collect(),
        exclude,
        sources: Vec::new(),
        levels,
        variant,
        run: Default::default(),
        files: Vec::new(),
        auto_deps: true,
        ca_certs: Vec::new(),
        users: Vec::new(),
        groups: Vec::new(),
        slice: Default::default(),
        keep_setuid: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_stack_and_children_override_exclusions() {
        let cc = spec("cc", None, Distribution::Trixie, vec!["amd64".into()]).unwrap();
        let names: Vec<&str> = cc.packages.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            &names[..6],
            [
                "base-files",
                "netbase",
                "tzdata",
                "tzdata-legacy",
                "media-types",
                "ca-certificates"
            ]
        );
        assert!(
            names.contains(&"libc6")
                && names.contains(&"libssl3t64")
                && names.contains(&"libgcc-s1")
        );
        assert!(!cc.exclude.contains(&"libgcc-s1".to_string()));
        let base = spec("base", None, Distribution::Bookworm, vec!["amd64".into()]).unwrap();
        assert!(base.exclude.contains(&"libgcc-s1".to_string()));
        assert!(base.packages.iter().any(|r| r.name == "libssl3"));
    }

    #[test]
    fn variants_and_aliases() {
        let d = spec(
            "static",
            Some("debug-nonroot"),
            Distribution::Trixie,
            vec!["amd64".into()],
        )
        .unwrap();
        assert!(d.packages.iter().any(|r| r.name == "busybox-static"));
        assert_eq!(Variant::parse("latest"), Some(Variant::Root));
        let e = spec("static", Some("slim"), Distribution::Trixie, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("debug-root"), "{e}");
        let e = spec("alpine", None, Distribution::Trixie, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("static, base-nossl, base, cc"), "{e}");
    }
}
