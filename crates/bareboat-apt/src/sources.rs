//! Where packages come from: archive sources, and the default mirrors read from the host's
//! apt configuration (deb822 `*.sources` and one-line `sources.list`).

use std::fmt;
use std::path::{Path, PathBuf};

use deb822_fast::borrowed::iter_paragraphs_borrowed;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The Debian releases bareboat builds from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// Debian 12.
    Bookworm,
    /// Debian 13.
    Trixie,
}

impl Distribution {
    /// The default release.
    pub const DEFAULT: Distribution = Distribution::Trixie;

    /// Accepts a codename or a major version (`trixie`, `13`).
    pub fn parse(s: &str) -> Result<Distribution, Error> {
        match s {
            "trixie" | "13" | "debian-13" => Ok(Distribution::Trixie),
            "bookworm" | "12" | "debian-12" => Ok(Distribution::Bookworm),
            _ => Err(Error::UnknownRelease(s.to_string())),
        }
    }

    /// The release's major version, as os-release's VERSION_ID gives it.
    pub fn version_id(self) -> &'static str {
        match self {
            Distribution::Bookworm => "12",
            Distribution::Trixie => "13",
        }
    }

    /// The release's codename, as suites and lockfiles name it (`trixie`).
    pub fn codename(self) -> &'static str {
        match self {
            Distribution::Bookworm => "bookworm",
            Distribution::Trixie => "trixie",
        }
    }

    /// The major version, as in `VERSION_ID`.
    pub fn version(self) -> &'static str {
        match self {
            Distribution::Bookworm => "12",
            Distribution::Trixie => "13",
        }
    }

    /// The architectures Debian releases it for: what `--arch all` means. Its Release file
    /// lists more (i386, and bookworm's mips64el and mipsel), which Debian no longer
    /// releases images of.
    pub const fn architectures(self) -> &'static [&'static str] {
        const TRIXIE: &[&str] = &[
            "amd64", "arm64", "armel", "armhf", "ppc64el", "riscv64", "s390x",
        ];
        match self {
            Distribution::Trixie => TRIXIE,
            // The same, without riscv64, which became a release architecture in trixie.
            Distribution::Bookworm => &["amd64", "arm64", "armel", "armhf", "ppc64el", "s390x"],
        }
    }
}

impl fmt::Display for Distribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.codename())
    }
}

/// One apt source: a mirror URL, a suite and its components.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The archive's URL, without a trailing slash.
    pub url: String,
    /// The suite, such as `trixie` or `trixie-security`.
    pub suite: String,
    /// The components to load, `main` unless given.
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// A keyring to trust instead of Debian's archive keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyring: Option<PathBuf>,
    /// `false` accepts a Release file past its `Valid-Until`, for snapshot mirrors.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub check_valid_until: bool,
}

fn default_components() -> Vec<String> {
    vec!["main".into()]
}
fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

impl Source {
    /// A source for `suite` at `url` with the `main` component.
    pub fn new(url: &str, suite: &str) -> Source {
        Source {
            url: url.trim_end_matches('/').to_string(),
            suite: suite.to_string(),
            components: default_components(),
            keyring: None,
            check_valid_until: true,
        }
    }

    /// The URL of a file under this suite's `dists/` directory.
    pub fn dists_url(&self, path: &str) -> String {
        format!(
            "{}/dists/{}/{}",
            self.url.trim_end_matches('/'),
            self.suite,
            path
        )
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.url,
            self.suite,
            self.components.join(" ")
        )
    }
}

/// The Debian archive and security mirrors to use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirrors {
    /// The archive mirror's URL, without a trailing slash.
    pub archive: Option<String>,
    /// The security mirror's URL, without a trailing slash.
    pub security: Option<String>,
}

const DEBIAN_SUITES: &[&str] = &[
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "duke",
    "sid",
    "stable",
    "oldstable",
    "oldoldstable",
    "testing",
    "unstable",
];

impl Mirrors {
    /// Reads the Debian mirrors from apt's configuration below `root` (normally `/`).
    ///
    /// A `deb` entry whose suite is a Debian release names the archive mirror; one whose
    /// suite ends in `-security` names the security mirror. Other repositories are ignored.
    pub fn from_host(root: &Path) -> Result<Mirrors, Error> {
        let mut entries = Vec::new();
        let list = root.join("etc/apt/sources.list");
        if list.is_file() {
            entries.extend(read_one_line(&list)?);
        }
        let dir = root.join("etc/apt/sources.list.d");
        if let Ok(read) = std::fs::read_dir(&dir) {
            let mut paths: Vec<PathBuf> = read.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                match path.extension().and_then(|e| e.to_str()) {
                    Some("sources") => entries.extend(read_deb822(&path)?),
                    Some("list") => entries.extend(read_one_line(&path)?),
                    _ => {}
                }
            }
        }
        let mut mirrors = Mirrors::default();
        for (uri, suite) in entries {
            let base = suite
                .split_once('/')
                .map(|(b, _)| b)
                .unwrap_or(&suite)
                .split('-')
                .next()
                .unwrap_or_default();
            if !DEBIAN_SUITES.contains(&base) {
                continue;
            }
            let slot = if suite.ends_with("-security") || suite.ends_with("/updates") {
                &mut mirrors.security
            } else {
                &mut mirrors.archive
            };
            slot.get_or_insert_with(|| uri.trim_end_matches('/').to_string());
        }
        Ok(mirrors)
    }

    /// The sources for `dist`: the release and its `-updates` from the archive mirror, and
    /// `-security` from the security mirror when there is one.
    pub fn sources(&self, dist: Distribution) -> Result<Vec<Source>, Error> {
        let archive = self.archive.as_deref().ok_or_else(|| Error::NoMirror {
            release: dist.codename().to_string(),
        })?;
        let codename = dist.codename();
        let mut sources = vec![
            Source::new(archive, codename),
            Source::new(archive, &format!("{codename}-updates")),
        ];
        if let Some(security) = &self.security {
            sources.push(Source::new(security, &format!("{codename}-security")));
        }
        Ok(sources)
    }
}

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

/// `(uri, suite)` of each enabled `deb` entry of a deb822 `.sources` file.
fn read_deb822(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let text = read_text(path)?;
    // apt allows comment lines inside stanzas; the deb822 parser does not.
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut out = Vec::new();
    for para in iter_paragraphs_borrowed(&text) {
        let para = para.map_err(|e| Error::AptConfig {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let words = |name: &str| -> Vec<String> {
            para.get(name)
                .map(|lines| {
                    lines
                        .iter()
                        .flat_map(|l| l.split_whitespace())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let enabled = para
            .get_single("Enabled")
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("no"));
        if !enabled || !words("Types").iter().any(|t| t == "deb") {
            continue;
        }
        for uri in words("URIs") {
            for suite in words("Suites") {
                out.push((uri.clone(), suite));
            }
        }
    }
    Ok(out)
}

/// `(uri, suite)` of each `deb` line of a one-line `sources.list` file.
fn read_one_line(path: &Path) -> Result<Vec<(String, String)>, Error> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            let Some(end) = rest.find(']') else {
                return Err(Error::AptConfig {
                    path: path.to_path_buf(),
                    reason: format!("unclosed '[' in {line:?}"),
                });
            };
            rest = &rest[end + 1..];
        }
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push((uri.to_string(), suite.to_string()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn reads_deb822_sources_for_another_release() {
        let d = host(&[
            (
                "etc/apt/sources.list.d/debian.sources",
                "Types: deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n\
Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security/\n\
Suites: bookworm-security\nComponents: main\n",
            ),
            (
                "etc/apt/sources.list.d/other.sources",
                "Types: deb\nURIs: https://vendor.example/apt\nSuites: nodistro\nComponents: main\n",
            ),
        ]);
        let m = Mirrors::from_host(d.path()).unwrap();
        assert_eq!(m.archive.as_deref(), Some("http://mirror.example/debian"));
        assert_eq!(
            m.security.as_deref(),
            Some("http://mirror.example/debian-security")
        );
        let s = m.sources(Distribution::Trixie).unwrap();
        let suites: Vec<_> = s.iter().map(|s| s.suite.as_str()).collect();
        assert_eq!(suites, ["trixie", "trixie-updates", "trixie-security"]);
        assert_eq!(
            s[2].dists_url("InRelease"),
            "http://mirror.example/debian-security/dists/trixie-security/InRelease"
        );
    }

    #[test]
    fn reads_one_line_sources_and_skips_disabled_entries() {
        let d = host(&[
            (
                "etc/apt/sources.list",
                "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian trixie main\n\
deb-src http://src.example/debian trixie main\ndeb http://m.example/debian-security trixie-security main\n",
            ),
            (
                "etc/apt/sources.list.d/off.sources",
                "Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: trixie\n",
            ),
        ]);
        let m = Mirrors::from_host(d.path()).unwrap();
        assert_eq!(m.archive.as_deref(), Some("http://m.example/debian"));
        assert_eq!(
            m.security.as_deref(),
            Some("http://m.example/debian-security")
        );
    }

    #[test]
    fn no_mirror_says_how_to_give_one() {
        let d = host(&[]);
        let m = Mirrors::from_host(d.path()).unwrap();
        let e = m.sources(Distribution::Trixie).unwrap_err().to_string();
        assert!(e.contains("--mirror"), "{e}");
    }

    #[test]
    fn release_names_and_numbers() {
        assert_eq!(Distribution::parse("13").unwrap(), Distribution::Trixie);
        assert_eq!(Distribution::parse("bookworm").unwrap().version(), "12");
        let err = Distribution::parse("jessie").unwrap_err().to_string();
        assert!(err.contains("unknown release \"jessie\""), "{err}");
    }
}
