//! The built-in catalogue: distroless's images and the language runtimes as specs, per
//! Debian release.
//!
//! Images stack (`static` → `base-nossl` → `base` → `cc` → each runtime): each adds
//! packages to its parent's, so their lower layers are shared byte for byte. The solver's
//! full closure of these sets is not distroless, so each image lists excludes, each a
//! dependency that no program in the image reads at run time, with the reason
//! (`bareboat catalog` prints them). What the excluded packages' maintainer scripts would
//! have made (the CA bundle, the Java keystore, alternatives links) bareboat writes itself.
//! Of a few packages an image keeps only the part that it needs, as distroless does.

use bareboat_apt::solver::Request;
use bareboat_apt::sources::Distribution;

use crate::Error;
pub use crate::model::Variant;
use crate::model::{Level, RunSpec, Spec};

/// A catalogue image.
pub struct Image {
    /// Its name, as in `catalog:NAME`.
    pub name: &'static str,
    /// The image it builds on.
    pub parent: Option<&'static str>,
    /// What it is for.
    pub summary: &'static str,
    trixie: &'static [&'static str],
    /// `None` where the image is made for Debian 13 only.
    bookworm: Option<&'static [&'static str]>,
    /// Dependencies dropped, each with why nothing needs it at run time.
    pub exclude: &'static [(&'static str, &'static str)],
    /// Packages of which the image keeps only these paths (see [`Spec::keep_only`]).
    keep_only: &'static [(&'static str, &'static [&'static str])],
    /// The image's entrypoint; children inherit it.
    entrypoint: &'static [&'static str],
}

impl Image {
    /// The packages this image adds to its parent's, for a release.
    pub fn own_packages(&self, release: Distribution) -> Option<&'static [&'static str]> {
        match release {
            Distribution::Trixie => Some(self.trixie),
            Distribution::Bookworm => self.bookworm,
        }
    }
}

const DEBCONF: (&str, &str) = (
    "debconf",
    "configuration questions, asked only by maintainer scripts",
);

/// The catalogue, each image after its parent.
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
        bookworm: Some(&[
            "base-files",
            "netbase",
            "tzdata",
            "media-types",
            "ca-certificates",
        ]),
        exclude: &[
            (
                "awk",
                "base-files' Pre-Depends, used only by its maintainer scripts",
            ),
            DEBCONF,
            (
                "openssl",
                "the CLI ca-certificates' scripts call; bareboat writes the CA bundle itself",
            ),
        ],
        // The bundle bareboat makes from the package's certificates holds every one of
        // them; update-ca-certificates, which reads them, needs a shell.
        keep_only: &[(
            "ca-certificates",
            &["usr/share/doc/ca-certificates/copyright"],
        )],
        entrypoint: &[],
    },
    Image {
        name: "base-nossl",
        parent: Some("static"),
        summary: "static + glibc and its C.UTF-8 locale: for dynamically linked C programs without TLS",
        trixie: &["libc6", "libc-bin"],
        bookworm: Some(&["libc6", "libc-bin"]),
        exclude: &[(
            "libgcc-s1",
            "libc6 loads it only to unwind at thread cancellation, as in distroless; cc has it",
        )],
        // glibc has no built-in C.UTF-8: without these files setlocale fails, and Java and
        // Ruby fall back to ASCII file names and text. The rest of libc-bin (ldconfig,
        // iconv, getent, locale) is tools.
        keep_only: &[(
            "libc-bin",
            &["usr/lib/locale/C.utf8", "usr/share/doc/libc-bin/copyright"],
        )],
        entrypoint: &[],
    },
    Image {
        name: "base",
        parent: Some("base-nossl"),
        summary: "base-nossl + OpenSSL and compression libraries",
        trixie: &["libssl3t64", "libzstd1", "zlib1g"],
        bookworm: Some(&["libssl3"]),
        exclude: &[(
            "openssl-provider-legacy",
            "OpenSSL's legacy algorithms module, loaded only when configured",
        )],
        keep_only: &[],
        entrypoint: &[],
    },
    Image {
        name: "cc",
        parent: Some("base"),
        summary: "base + the C++ runtime and OpenMP: for C++ and Rust programs",
        trixie: &["libgcc-s1", "libstdc++6", "libgomp1", "gcc-14-base"],
        bookworm: Some(&["libgcc-s1", "libstdc++6", "libgomp1", "gcc-12-base"]),
        exclude: &[],
        keep_only: &[],
        entrypoint: &[],
    },
    Image {
        name: "python3",
        parent: Some("cc"),
        summary: "cc + Python 3.13 and its standard library",
        trixie: &["python3"],
        bookworm: None,
        exclude: &[(
            "dpkg",
            "python3-minimal's maintainer scripts compare versions with it",
        )],
        keep_only: &[],
        entrypoint: &["/usr/bin/python3"],
    },
    Image {
        name: "java21",
        parent: Some("cc"),
        summary: "cc + OpenJDK 21 headless JRE",
        trixie: &["openjdk-21-jre-headless"],
        bookworm: None,
        exclude: JAVA_EXCLUDES,
        keep_only: &[],
        entrypoint: &["/usr/bin/java", "-jar"],
    },
    Image {
        name: "java25",
        parent: Some("cc"),
        summary: "cc + OpenJDK 25 headless JRE",
        trixie: &["openjdk-25-jre-headless"],
        bookworm: None,
        exclude: JAVA_EXCLUDES,
        keep_only: &[],
        entrypoint: &["/usr/bin/java", "-jar"],
    },
    Image {
        name: "nodejs",
        parent: Some("cc"),
        summary: "cc + Node.js 20",
        trixie: &["nodejs"],
        bookworm: None,
        exclude: &[(
            "node-corepack",
            "a downloader of package managers (yarn, pnpm), not the runtime",
        )],
        keep_only: &[],
        entrypoint: &["/usr/bin/node"],
    },
    Image {
        name: "ruby",
        parent: Some("cc"),
        summary: "cc + Ruby 3.3",
        trixie: &["ruby"],
        bookworm: None,
        exclude: &[
            ("rake", "a build tool"),
            (
                "ruby-rubygems",
                "the gem package manager; bundle gems with your application instead",
            ),
        ],
        keep_only: &[],
        entrypoint: &["/usr/bin/ruby"],
    },
    Image {
        name: "php",
        parent: Some("cc"),
        summary: "cc + PHP 8.4 CLI with Debian's default extensions enabled",
        trixie: &["php8.4-cli"],
        bookworm: None,
        exclude: &[
            (
                "ucf",
                "copies configuration in maintainer scripts (and brings perl); bareboat links it",
            ),
            (
                "psmisc",
                "killall and fuser, for php-common's session cleanup cron job",
            ),
        ],
        keep_only: &[],
        entrypoint: &["/usr/bin/php"],
    },
];

const JAVA_EXCLUDES: &[(&str, &str)] = &[
    (
        "ca-certificates-java",
        "builds the keystore with keytool at install time; bareboat writes it",
    ),
    (
        "java-common",
        "update-java-alternatives and a java wrapper; bareboat links /usr/bin/java",
    ),
    (
        "util-linux",
        "the JRE's maintainer scripts use it; it brings PAM and systemd libraries",
    ),
];

/// The names of all catalogue images.
pub fn names() -> Vec<&'static str> {
    IMAGES.iter().map(|i| i.name).collect()
}

/// Looks up an image by name.
pub fn image(name: &str) -> Result<&'static Image, Error> {
    IMAGES
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| Error::UnknownImage(name.to_string()))
}

/// The chain of images from the root of the stack down to `name`.
pub fn stack(name: &str) -> Result<Vec<&'static Image>, Error> {
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
) -> Result<Spec, Error> {
    let variant = match variant {
        Some(v) => Variant::parse(v).ok_or_else(|| Error::UnknownVariant(v.to_string()))?,
        None => Variant::Nonroot,
    };
    let chain = stack(name)?;
    let own = |i: &Image| i.own_packages(release).ok_or(Error::NotInRelease(i.name));
    let mut packages: Vec<String> = Vec::new();
    for i in &chain {
        packages.extend(own(i)?.iter().map(|p| p.to_string()));
    }
    if variant.is_debug() {
        packages.push("busybox-static".into());
    }
    let excludes = |images: &[&Image]| -> Vec<String> {
        images
            .iter()
            .flat_map(|i| i.exclude)
            .map(|(x, _)| x.to_string())
            .collect()
    };
    // A child's own packages override an ancestor's exclusion of them.
    let exclude = excludes(&chain)
        .into_iter()
        .filter(|x| !packages.contains(x))
        .collect();
    let mut levels = Vec::new();
    let mut installed: Vec<String> = Vec::new();
    for (k, i) in chain.iter().enumerate() {
        let roots: Vec<String> = own(i)?.iter().map(|p| p.to_string()).collect();
        installed.extend(roots.iter().cloned());
        // As for the whole image: what this level or a lower one installs is not excluded
        // (cc installs the libgcc-s1 that base-nossl leaves out), so each level's layer
        // holds the same packages in every image stacked on it.
        let exclude = excludes(&chain[..=k])
            .into_iter()
            .filter(|x| !installed.contains(x))
            .collect();
        levels.push(Level {
            name: i.name.to_string(),
            roots,
            exclude,
        });
    }
    if variant.is_debug() {
        levels.push(Level {
            name: "busybox".into(),
            roots: vec!["busybox-static".into()],
            exclude: Vec::new(),
        });
    }
    let keep_only = chain
        .iter()
        .flat_map(|i| i.keep_only)
        .map(|(p, paths)| (p.to_string(), paths.iter().map(|x| x.to_string()).collect()))
        .collect();
    let entrypoint = chain
        .iter()
        .rev()
        .find(|i| !i.entrypoint.is_empty())
        .map(|i| i.entrypoint.iter().map(|a| a.to_string()).collect());
    Ok(Spec {
        release,
        arch,
        packages: packages.iter().map(|p| Request::parse(p)).collect(),
        exclude,
        sources: Vec::new(),
        levels,
        variant,
        run: RunSpec {
            entrypoint,
            ..Default::default()
        },
        files: Vec::new(),
        auto_deps: true,
        ca_certs: Vec::new(),
        users: Vec::new(),
        groups: Vec::new(),
        slice: Default::default(),
        keep_setuid: Vec::new(),
        base_image: None,
        remove: Vec::new(),
        keep_only,
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
        // In every image on cc, cc's level installs libgcc-s1, so the cc layer is the same.
        let python3 = spec("python3", None, Distribution::Trixie, vec!["amd64".into()]).unwrap();
        let level = |s: &Spec, name: &str| s.levels.iter().find(|l| l.name == name).cloned();
        assert_eq!(level(&python3, "cc"), level(&cc, "cc"));
        let nossl = level(&python3, "base-nossl").unwrap();
        assert!(nossl.exclude.contains(&"libgcc-s1".to_string()));
        // Of ca-certificates static keeps only the copyright (the bundle is bareboat's), and
        // of libc-bin base-nossl keeps only the C.UTF-8 locale, for every image on them.
        let kept = |s: &Spec| -> Vec<(String, usize)> {
            s.keep_only
                .iter()
                .map(|(p, paths)| (p.clone(), paths.len()))
                .collect()
        };
        let st = spec("static", None, Distribution::Trixie, vec![]).unwrap();
        assert_eq!(kept(&st), [("ca-certificates".to_string(), 1)]);
        assert_eq!(
            kept(&python3),
            [
                ("ca-certificates".to_string(), 1),
                ("libc-bin".to_string(), 2)
            ]
        );
        assert!(nossl.roots.contains(&"libc-bin".to_string()));
        let base = spec("base", None, Distribution::Bookworm, vec!["amd64".into()]).unwrap();
        assert!(base.packages.iter().any(|r| r.name == "libc-bin"));
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
        assert!(e.contains("static, base-nossl, base, cc, python3"), "{e}");
        let e = spec("ruby", None, Distribution::Bookworm, vec![])
            .unwrap_err()
            .to_string();
        assert!(e.contains("Debian 13"), "{e}");
    }
}
