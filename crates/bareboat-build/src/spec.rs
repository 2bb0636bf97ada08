//! `bareboat.toml`: what an image is made of.
//!
//! ```toml
//! release = "trixie"          # or "bookworm"; the default is trixie
//! arch = ["amd64", "arm64"]   # or a single string; the default is amd64
//! packages = ["python3"]      # NAME or NAME=VERSION
//! exclude = ["dpkg"]          # dependencies not needed at run time
//!
//! [[source]]                  # optional; replaces the default Debian mirrors
//! url = "http://mirror.example/debian"
//! suite = "trixie"
//! components = ["main"]
//! keyring = "archive-key.asc" # optional, relative to the spec
//! check_valid_until = true
//! ```

use std::path::{Path, PathBuf};

use bareboat_apt::relation::is_package_name;
use bareboat_apt::solver::Request;
use bareboat_apt::sources::{Distribution, Source};
use serde::Deserialize;
use toml::Spanned;

/// Architectures a spec may name.
pub const ARCHES: &[&str] = &["amd64", "arm64"];

/// A spec error, naming the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{origin}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SpecError {
    pub origin: String,
    pub line: Option<usize>,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    release: Option<Spanned<String>>,
    arch: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    packages: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default, rename = "source")]
    sources: Vec<Spanned<Source>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A validated spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub release: Distribution,
    pub arch: Vec<String>,
    pub packages: Vec<Request>,
    pub exclude: Vec<String>,
    /// Explicit sources; empty means the default Debian mirrors.
    pub sources: Vec<Source>,
}

impl Spec {
    /// Reads and validates a spec file. Relative keyring paths are taken from its directory.
    pub fn read(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            origin: path.display().to_string(),
            line: None,
            reason: e.to_string(),
        })?;
        let mut spec = Spec::parse(&text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for s in &mut spec.sources {
            if let Some(k) = &s.keyring {
                s.keyring = Some(dir.join(k));
            }
        }
        Ok(spec)
    }

    /// Parses and validates spec text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec, SpecError> {
        let err = |span: Option<std::ops::Range<usize>>, reason: String| SpecError {
            origin: origin.to_string(),
            line: span.map(|s| line_of(text, s.start)),
            reason,
        };
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let reason = e.message().to_string();
            err(e.span(), reason)
        })?;
        let release = match &raw.release {
            Some(r) => {
                Distribution::parse(r.get_ref()).map_err(|e| err(Some(r.span()), e.to_string()))?
            }
            None => Distribution::DEFAULT,
        };
        let arch = match raw.arch {
            None => vec!["amd64".to_string()],
            Some(a) => {
                let span = a.span();
                let list = match a.into_inner() {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                };
                if list.is_empty() {
                    return Err(err(
                        Some(span),
                        "arch must name at least one architecture".into(),
                    ));
                }
                for a in &list {
                    if !ARCHES.contains(&a.as_str()) {
                        return Err(err(
                            Some(span),
                            format!(
                                "unsupported architecture {a:?}; use one of {}",
                                ARCHES.join(", ")
                            ),
                        ));
                    }
                }
                list
            }
        };
        if raw.packages.is_empty() {
            return Err(err(
                None,
                "packages is empty: name at least one package to install".into(),
            ));
        }
        let mut packages = Vec::new();
        for p in &raw.packages {
            let r = Request::parse(p.get_ref());
            if !is_package_name(&r.name) || r.version.as_deref() == Some("") {
                return Err(err(
                    Some(p.span()),
                    format!(
                        "invalid package {:?}: expected NAME or NAME=VERSION",
                        p.get_ref()
                    ),
                ));
            }
            packages.push(r);
        }
        let mut exclude = Vec::new();
        for x in &raw.exclude {
            if !is_package_name(x.get_ref()) {
                return Err(err(
                    Some(x.span()),
                    format!("invalid package name {:?} in exclude", x.get_ref()),
                ));
            }
            exclude.push(x.get_ref().clone());
        }
        let mut sources = Vec::new();
        for s in raw.sources {
            let span = s.span();
            let mut source = s.into_inner();
            if !(source.url.starts_with("http://") || source.url.starts_with("https://")) {
                return Err(err(
                    Some(span),
                    format!(
                        "source url {:?} must start with http:// or https://",
                        source.url
                    ),
                ));
            }
            source.url = source.url.trim_end_matches('/').to_string();
            sources.push(source);
        }
        Ok(Spec {
            release,
            arch,
            packages,
            exclude,
            sources,
        })
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where a spec comes from: a file, or the built-in catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecRef {
    File(PathBuf),
    Catalog {
        name: String,
        variant: Option<String>,
    },
}

impl SpecRef {
    /// `catalog:NAME[:VARIANT]` or a path.
    pub fn parse(s: &str) -> SpecRef {
        match s.strip_prefix("catalog:") {
            Some(rest) => {
                let (name, variant) = match rest.split_once(':') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (rest.to_string(), None),
                };
                SpecRef::Catalog { name, variant }
            }
            None => SpecRef::File(PathBuf::from(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_spec() {
        let s = Spec::parse(
            "release = \"bookworm\"\narch = [\"amd64\", \"arm64\"]\npackages = [\"python3\", \"libc6=2.36-9\"]\n\
exclude = [\"dpkg\"]\n[[source]]\nurl = \"http://127.0.0.1:1/debian/\"\nsuite = \"bookworm\"\ncheck_valid_until = false\n",
            "t",
        )
        .unwrap();
        assert_eq!(s.release, Distribution::Bookworm);
        assert_eq!(s.arch, ["amd64", "arm64"]);
        assert_eq!(s.packages[1].version.as_deref(), Some("2.36-9"));
        assert_eq!(s.sources[0].url, "http://127.0.0.1:1/debian");
        assert_eq!(s.sources[0].components, ["main"]);
        assert!(!s.sources[0].check_valid_until);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, needle) in [
            (
                "packages = [\"a0\"]\nrelaese = \"trixie\"\n",
                2,
                "unknown field `relaese`",
            ),
            (
                "packages = [\"a0\"]\n\nrelease = \"jessie\"\n",
                3,
                "unknown release",
            ),
            (
                "arch = \"s390\"\npackages = [\"a0\"]\n",
                1,
                "unsupported architecture",
            ),
            (
                "packages = [\n  \"ok\",\n  \"Bad Name\",\n]\n",
                3,
                "invalid package",
            ),
            (
                "packages = [\"a0\"]\nexclude = [\"x\"]\n",
                2,
                "invalid package name",
            ),
            (
                "packages = [\"a0\"]\n[[source]]\nurl = \"ftp://x\"\nsuite = \"s\"\n",
                2,
                "http://",
            ),
            (
                "packages = [\"a0\"]\n[[source]]\nurl = \"http://x\"\nsuite = \"s\"\nextra = 1\n",
                5,
                "unknown field `extra`",
            ),
        ] {
            let e = Spec::parse(text, "bareboat.toml").unwrap_err();
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("bareboat.toml:{line}: ")),
                "{e}"
            );
        }
        assert!(
            Spec::parse("", "t")
                .unwrap_err()
                .to_string()
                .contains("packages is empty")
        );
    }

    #[test]
    fn spec_references() {
        assert_eq!(
            SpecRef::parse("catalog:cc:debug"),
            SpecRef::Catalog {
                name: "cc".into(),
                variant: Some("debug".into())
            }
        );
        assert_eq!(
            SpecRef::parse("x/bareboat.toml"),
            SpecRef::File("x/bareboat.toml".into())
        );
    }
}
