//! VEX: what the Debian Security Tracker's data means for one image, as an OpenVEX 0.2.0
//! document that scanners read (trivy's `--vex`, grype's `--vex`), and a scan that honours
//! such a document.
//!
//! `not_affected` is stated only with evidence from the image itself, never from slicing
//! alone (the tracker does not say which files an advisory concerns):
//! `vulnerable_code_not_present` when a committed rule names the paths a CVE concerns and
//! none of them is in the image; `component_not_present` when the tracker's source package
//! has no binary in the image, though a package of the image depends on one of its
//! binaries. Otherwise the tracker's state is stated as it is: `affected` (with what to do),
//! `fixed`, or `under_investigation`.
//!
//! Products are named as trivy's `--vex oci` matches them: `pkg:oci/NAME@sha256:…` with
//! the repository, never a tag; packages with only the `arch` qualifier, since a matcher
//! wants every qualifier to match and a scanner's own `distro` is the point release.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use debversion::Version;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::filesystem::Filesystem;
use crate::inspect::Report;
use crate::packages::Package;
use crate::scan::{Scan, Tracker, Vulnerability};

/// The OpenVEX context of the documents written.
pub const CONTEXT: &str = "https://openvex.dev/ns/v0.2.0";

/// The in-toto predicate type of a VEX attestation, where `trivy --vex oci` looks.
pub const PREDICATE_TYPE: &str = "https://openvex.dev/ns";

/// What a rules file says of one CVE: the paths its vulnerable code is in.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The CVE.
    pub cve: String,
    /// The source package it concerns; any, when not given.
    pub source: Option<String>,
    /// The paths (absolute, in the image) its vulnerable code is in.
    pub paths: Vec<String>,
    /// Why these paths, for the statement's notes.
    pub reason: Option<String>,
}

/// A rules file: `[[rule]]` tables of [`Rule`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The rules.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

impl Rules {
    /// Reads a rules file (TOML).
    pub fn read(path: &Path) -> Result<Rules, Error> {
        let text = std::fs::read_to_string(path).map_err(|error| Error::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let bad = |reason: String| Error::BadVex {
            origin: path.display().to_string(),
            reason,
        };
        let rules: Rules = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        // A rule of no paths would make every image not_affected, with no evidence.
        if let Some(empty) = rules.rules.iter().find(|r| r.paths.is_empty()) {
            return Err(bad(format!("the rule for {} names no paths", empty.cve)));
        }
        Ok(rules)
    }
}

/// An OpenVEX document.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    /// [`CONTEXT`].
    #[serde(rename = "@context")]
    pub context: &'static str,
    /// The document's IRI: derived from its statements, so the same statements make the
    /// same document.
    #[serde(rename = "@id")]
    pub id: String,
    /// Who states it.
    pub author: String,
    /// When, RFC 3339.
    pub timestamp: String,
    /// The document's version: 1.
    pub version: u32,
    /// What made it.
    pub tooling: String,
    /// The statements, sorted.
    pub statements: Vec<Statement>,
}

/// One statement about one vulnerability of one package of the image.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Statement {
    /// The CVE.
    pub vulnerability: Named,
    /// The image, with the package as its subcomponent.
    pub products: Vec<Product>,
    /// `not_affected`, `affected`, `fixed` or `under_investigation`.
    pub status: &'static str,
    /// Why `not_affected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<&'static str>,
    /// What to do when `affected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_statement: Option<String>,
    /// How the status was found: the paths checked, the fixed version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_notes: Option<String>,
}

/// Something named: a vulnerability.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Named {
    /// Its name.
    pub name: String,
}

/// A product: the image, and the package in it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Product {
    /// The image's purl.
    #[serde(rename = "@id")]
    pub id: String,
    /// The package's purl.
    pub subcomponents: Vec<Subcomponent>,
}

/// A package of the image.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Subcomponent {
    /// Its purl.
    #[serde(rename = "@id")]
    pub id: String,
}

/// The image's purl, as trivy's `--vex oci` matches it: `pkg:oci/NAME@sha256%3A…`, with
/// `repository_url` when the image is known by a repository.
pub fn image_purl(repository: Option<&str>, digest: &str) -> String {
    let name = (repository.and_then(|r| r.rsplit('/').next()))
        .filter(|n| !n.is_empty())
        .unwrap_or("image")
        .to_lowercase();
    let mut purl = format!("pkg:oci/{name}@{}", digest.replace(':', "%3A"));
    if let Some(repository) = repository {
        purl.push_str(&format!("?repository_url={repository}"));
    }
    purl
}

/// A Debian package's purl with only the `arch` qualifier, as VEX matchers want it.
pub fn package_purl(name: &str, version: Option<&str>, arch: &str) -> String {
    match version {
        Some(v) => format!(
            "pkg:deb/debian/{name}@{}?arch={arch}",
            bareboat_sbom::purl_version(v)
        ),
        None => format!("pkg:deb/debian/{name}?arch={arch}"),
    }
}

/// What a VEX document is made from.
pub struct Inputs<'a> {
    /// The image's report.
    pub report: &'a Report,
    /// Its files.
    pub files: &'a Filesystem,
    /// The tracker's data for its sources, and for those of the packages its packages
    /// depend on and lack.
    pub tracker: &'a Tracker,
    /// The release matched.
    pub release: &'a str,
    /// The committed rules.
    pub rules: &'a [Rule],
    /// The image's purl.
    pub product: String,
    /// Who states it.
    pub author: String,
    /// When, RFC 3339.
    pub timestamp: String,
}

/// The source packages whose data a VEX document of `report` needs: its packages' sources,
/// and the packages its packages depend on and lack, by name (a binary named as its source,
/// such as `openssl` or `dpkg`, is the one such a statement can be about).
pub fn wanted_sources(report: &Report, files: &Filesystem) -> BTreeSet<String> {
    let mut wanted = crate::scan::sources(&report.packages);
    wanted.extend(lacked(report, files));
    wanted
}

/// The packages the image's packages depend on (first alternatives of `Depends` and
/// `Pre-Depends`) that it does not hold.
fn lacked(report: &Report, files: &Filesystem) -> BTreeSet<String> {
    let installed: BTreeSet<&str> = report.packages.iter().map(|p| p.name.as_str()).collect();
    let database = bareboat_apt::dpkg::Database::read(
        files
            .metadata
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice())),
    );
    let mut out = BTreeSet::new();
    for p in &database.packages {
        for field in ["Depends", "Pre-Depends"] {
            let value = bareboat_apt::dpkg::field(&p.paragraph, field);
            for clause in bareboat_apt::relation::parse_relations(&value).unwrap_or_default() {
                let names: Vec<&str> = clause.iter().map(|a| a.name.as_str()).collect();
                if !names.iter().any(|n| installed.contains(n))
                    && let Some(first) = names.first()
                {
                    out.insert(first.to_string());
                }
            }
        }
    }
    out
}

/// The VEX document of an image; an error when there is nothing to state (OpenVEX wants a
/// statement at least).
pub fn document(inputs: &Inputs<'_>) -> Result<Document, Error> {
    let report = inputs.report;
    let present = |path: &str| {
        let path = path.trim_start_matches('/');
        inputs
            .files
            .view
            .resolve(path)
            .is_some_and(|real| inputs.files.view.contains_key(&real))
    };
    let mut statements = BTreeSet::new();
    let arch = &report.architecture;
    let debian = report
        .distribution
        .as_ref()
        .is_none_or(|d| d.id == "debian");
    let dpkg: Vec<&Package> = (report.packages.iter())
        .filter(|p| debian && p.manager == "dpkg")
        .collect();
    for p in &dpkg {
        let Some(advisories) = inputs.tracker.sources.get(p.source_name()) else {
            continue;
        };
        let subject = Product {
            id: inputs.product.clone(),
            subcomponents: vec![Subcomponent {
                id: package_purl(&p.name, Some(&p.version), &p.architecture),
            }],
        };
        for (cve, advisory) in advisories {
            let Some(state) = advisory.releases.get(inputs.release) else {
                continue;
            };
            let rule = (inputs.rules.iter()).find(|r| {
                &r.cve == cve && r.source.as_deref().is_none_or(|s| s == p.source_name())
            });
            let statement = match rule {
                Some(rule) if !rule.paths.iter().any(|path| present(path)) => Some(Statement {
                    vulnerability: Named { name: cve.clone() },
                    products: vec![subject.clone()],
                    status: "not_affected",
                    justification: Some("vulnerable_code_not_present"),
                    action_statement: None,
                    status_notes: Some(format!(
                        "{}; none of {} is in the image",
                        rule.reason
                            .as_deref()
                            .unwrap_or("the vulnerable code is in these paths"),
                        rule.paths.join(", ")
                    )),
                }),
                _ => tracked(cve, p, state, inputs.release, &subject),
            };
            statements.extend(statement);
        }
    }
    // Sources none of whose binaries is here, though a package here depends on one.
    let sources: BTreeSet<&str> = dpkg.iter().map(|p| p.source_name()).collect();
    for name in lacked(report, inputs.files) {
        if sources.contains(name.as_str()) {
            continue;
        }
        let Some(advisories) = inputs.tracker.sources.get(&name) else {
            continue;
        };
        for (cve, advisory) in advisories {
            let affected = (advisory.releases.get(inputs.release))
                .is_some_and(|s| s.fixed_version.as_deref() != Some("0") && s.status != "resolved");
            if !affected {
                continue;
            }
            statements.insert(Statement {
                vulnerability: Named { name: cve.clone() },
                products: vec![Product {
                    id: inputs.product.clone(),
                    subcomponents: vec![Subcomponent {
                        id: package_purl(&name, None, arch),
                    }],
                }],
                status: "not_affected",
                justification: Some("component_not_present"),
                action_statement: None,
                status_notes: Some(format!(
                    "no binary package of the source package {name} is in the image, though a package in it depends on {name}"
                )),
            });
        }
    }
    if statements.is_empty() {
        return Err(Error::NothingToState {
            image: report.image.clone(),
        });
    }
    let statements: Vec<Statement> = statements.into_iter().collect();
    let canonical = serde_json::to_vec(&statements).expect("statements serialize");
    Ok(Document {
        context: CONTEXT,
        id: format!(
            "urn:bareboat:vex:sha256:{}",
            hex::encode(Sha256::digest(&canonical))
        ),
        author: inputs.author.clone(),
        timestamp: inputs.timestamp.clone(),
        version: 1,
        tooling: format!("bareboat {}", env!("CARGO_PKG_VERSION")),
        statements,
    })
}

/// The statement of the tracker's state of `cve` in `release` for package `p`: none when
/// the release was never affected.
fn tracked(
    cve: &str,
    p: &Package,
    state: &crate::scan::ReleaseState,
    release: &str,
    subject: &Product,
) -> Option<Statement> {
    let source = p.source_name();
    let have = p.source_version();
    let fixed = state.fixed_version.as_deref().filter(|v| !v.is_empty());
    let statement = |status, action: Option<String>, notes: Option<String>| Statement {
        vulnerability: Named {
            name: cve.to_string(),
        },
        products: vec![subject.clone()],
        status,
        justification: None,
        action_statement: action,
        status_notes: notes,
    };
    match (state.status.as_str(), fixed) {
        (_, Some("0")) => None,
        ("resolved", Some(fix)) => {
            let ordered = have
                .parse::<Version>()
                .ok()
                .zip(fix.parse::<Version>().ok());
            let notes = Some(format!(
                "fixed in {source} {fix}; the image has {source} {have}"
            ));
            match ordered {
                Some((have, fix_v)) if have >= fix_v => Some(statement("fixed", None, notes)),
                Some(_) => Some(statement(
                    "affected",
                    Some(format!(
                        "Update {source} to {fix} or later (bareboat lock --upgrade, then build)"
                    )),
                    notes,
                )),
                None => Some(statement("under_investigation", None, notes)),
            }
        }
        ("resolved", None) => None,
        ("undetermined", _) => Some(statement("under_investigation", None, None)),
        _ => Some(statement(
            "affected",
            Some(format!(
                "No fix is in Debian {release} yet: follow the Debian Security Tracker, and rebuild when one is"
            )),
            None,
        )),
    }
}

/// A finding a VEX document put aside.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Suppressed {
    /// The CVE.
    pub cve: String,
    /// The package.
    pub package: String,
    /// `not_affected` or `fixed`.
    pub status: String,
    /// The justification, for `not_affected`.
    pub justification: Option<String>,
}

/// What a statement of a VEX document says of one package of one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The CVE.
    pub cve: String,
    /// The product's purl.
    pub image: String,
    /// The subcomponent's purl.
    pub package: String,
    /// `not_affected` or `fixed`.
    pub status: String,
    /// Why `not_affected`.
    pub justification: Option<String>,
}

/// The claims of an OpenVEX document (`text`, named `origin` in errors) that put a finding
/// aside: its statements `not_affected` or `fixed`, one per product and subcomponent.
pub fn read_claims(text: &[u8], origin: &str) -> Result<Vec<Claim>, Error> {
    let bad = |reason: &str| Error::BadVex {
        origin: origin.to_string(),
        reason: reason.to_string(),
    };
    let doc: Value = serde_json::from_slice(text).map_err(|e| bad(&e.to_string()))?;
    if doc["@context"]
        .as_str()
        .is_none_or(|c| !c.starts_with("https://openvex.dev/ns"))
    {
        return Err(bad(
            "not an OpenVEX document (no @context of https://openvex.dev/ns)",
        ));
    }
    let statements = doc["statements"]
        .as_array()
        .ok_or_else(|| bad("no statements"))?;
    let mut out = Vec::new();
    for s in statements {
        let status = s["status"].as_str().unwrap_or_default();
        if !matches!(status, "not_affected" | "fixed") {
            continue;
        }
        let cve = s["vulnerability"]["name"]
            .as_str()
            .ok_or_else(|| bad("a statement names no vulnerability"))?;
        let justification = s["justification"].as_str().map(String::from);
        for product in s["products"].as_array().into_iter().flatten() {
            let image = product["@id"].as_str().unwrap_or_default();
            for sub in product["subcomponents"].as_array().into_iter().flatten() {
                let package = sub["@id"].as_str().unwrap_or_default();
                out.push(Claim {
                    cve: cve.to_string(),
                    image: image.to_string(),
                    package: package.to_string(),
                    status: status.to_string(),
                    justification: justification.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Puts aside the findings of `scan` (of the image whose manifest digest is `digest`) that
/// `claims` say are not affected or fixed: the product must be this image (by digest), and
/// the subcomponent this package (name, version and the `arch` qualifier).
pub fn suppress(
    scan: &mut Scan,
    claims: &[Claim],
    digest: &str,
    packages: &[Package],
) -> Vec<Suppressed> {
    // Encoded as the purl spec asks, or as other tools write it.
    let ours = [
        format!("@{}", digest.replace(':', "%3A")),
        format!("@{digest}"),
    ];
    let this_image = |purl: &str| {
        (purl.split('?').next()).is_some_and(|p| ours.iter().any(|o| p.ends_with(o.as_str())))
    };
    let arch_of: BTreeMap<&str, &str> = (packages.iter())
        .map(|p| (p.name.as_str(), p.architecture.as_str()))
        .collect();
    let matches = |v: &Vulnerability, purl: &str| {
        let arch = arch_of.get(v.package.as_str()).copied().unwrap_or_default();
        purl == package_purl(&v.package, Some(&v.version), arch)
    };
    let mut suppressed = Vec::new();
    scan.vulnerabilities.retain(|v| {
        let claim = (claims.iter())
            .find(|c| c.cve == v.cve && this_image(&c.image) && matches(v, &c.package));
        match claim {
            Some(claim) => {
                suppressed.push(Suppressed {
                    cve: v.cve.clone(),
                    package: v.package.clone(),
                    status: claim.status.clone(),
                    justification: claim.justification.clone(),
                });
                false
            }
            None => true,
        }
    });
    suppressed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_are_those_vex_matchers_compare() {
        assert_eq!(
            image_purl(Some("registry.example/team/app"), "sha256:abc"),
            "pkg:oci/app@sha256%3Aabc?repository_url=registry.example/team/app"
        );
        assert_eq!(image_purl(None, "sha256:abc"), "pkg:oci/image@sha256%3Aabc");
        assert_eq!(
            package_purl("libssl3t64", Some("3.5.1-1+deb13u1"), "amd64"),
            "pkg:deb/debian/libssl3t64@3.5.1-1%2Bdeb13u1?arch=amd64"
        );
        assert_eq!(
            package_purl("openssl", None, "arm64"),
            "pkg:deb/debian/openssl?arch=arm64"
        );
    }

    #[test]
    fn a_rules_file_is_read_and_refused_when_it_is_not_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.toml");
        std::fs::write(
            &path,
            "[[rule]]\ncve = \"CVE-2026-1\"\nsource = \"openssl\"\npaths = [\"/usr/bin/openssl\"]\nreason = \"the CLI's parser\"\n",
        )
        .unwrap();
        let rules = Rules::read(&path).unwrap();
        assert_eq!(rules.rules[0].paths, ["/usr/bin/openssl"]);
        std::fs::write(&path, "[[rule]]\ncve = \"CVE-2026-1\"\npath = \"x\"\n").unwrap();
        assert!(matches!(Rules::read(&path), Err(Error::BadVex { .. })));
        std::fs::write(&path, "[[rule]]\ncve = \"CVE-2026-1\"\npaths = []\n").unwrap();
        let empty = Rules::read(&path).unwrap_err().to_string();
        assert!(
            empty.contains("the rule for CVE-2026-1 names no paths"),
            "{empty}"
        );
    }
}
