//! Vulnerabilities, offline, from the Debian Security Tracker's JSON data.
//!
//! The data maps each source package to its CVEs, and each CVE to its state in every
//! release: `open`, `undetermined`, or `resolved` in a `fixed_version` (`"0"` when the
//! release was never affected), with the security team's urgency. A package is matched by
//! its source package and the image's release codename, and its source version is compared
//! with the fix in dpkg's order, epochs included.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::Read;

use debversion::Version;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::packages::{Distribution, Package};
use crate::{Error, Severity, severity_counts};

/// What the tracker says of one CVE in one release.
#[derive(Clone, Debug, Deserialize)]
pub struct ReleaseState {
    /// `open`, `undetermined` or `resolved`.
    pub status: String,
    /// The first fixed source version; `"0"` when the release was never affected.
    #[serde(default)]
    pub fixed_version: Option<String>,
    /// The security team's urgency, such as `low`, `high`, `unimportant` or
    /// `end-of-life`.
    #[serde(default)]
    pub urgency: String,
}

/// A CVE of one source package, as the tracker has it.
#[derive(Clone, Debug, Deserialize)]
pub struct Advisory {
    /// What the CVE is, in a line.
    #[serde(default)]
    pub description: Option<String>,
    /// Its state in each release, by codename.
    #[serde(default)]
    pub releases: BTreeMap<String, ReleaseState>,
}

/// What `bareboat scan` reports.
#[derive(Debug, Serialize)]
pub struct ScanReport {
    /// The image's manifest digest.
    pub image: String,
    /// The tracker's data scanned with.
    pub data: std::path::PathBuf,
    /// How many vulnerabilities were found.
    pub total: usize,
    /// Vulnerabilities per severity name.
    pub counts: BTreeMap<&'static str, usize>,
    /// The scan.
    pub scan: Scan,
    /// What a VEX document put aside (`scan --vex`).
    pub suppressed: Vec<crate::vex::Suppressed>,
}

/// The part of the tracker's data a scan needs: the advisories of some source packages.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Source package -> CVE id -> advisory.
    pub sources: BTreeMap<String, BTreeMap<String, Advisory>>,
    /// How many source packages the data covers in all.
    pub sources_total: usize,
}

impl Tracker {
    /// Reads the tracker's JSON as it streams, keeping only the source packages `wanted`
    /// names: the whole data is tens of megabytes, and a scan needs a few dozen packages
    /// of it. With nothing wanted, it checks that the data has the tracker's shape.
    /// `origin` names the data in errors.
    pub fn read(
        reader: impl Read,
        wanted: &BTreeSet<String>,
        origin: &str,
    ) -> Result<Tracker, Error> {
        let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
        let tracker = Wanted(wanted)
            .deserialize(&mut de)
            .and_then(|t| de.end().map(|()| t))
            .map_err(|e| Error::NotTrackerData {
                origin: origin.to_string(),
                reason: e.to_string(),
            })?;
        Ok(tracker)
    }
}

/// Deserializes the top-level map, keeping the wanted sources' entries.
struct Wanted<'a>(&'a BTreeSet<String>);

impl<'de> DeserializeSeed<'de> for Wanted<'_> {
    type Value = Tracker;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tracker, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Wanted<'_> {
    type Value = Tracker;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of source packages")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tracker, A::Error> {
        let mut tracker = Tracker::default();
        while let Some(source) = map.next_key::<String>()? {
            tracker.sources_total += 1;
            if self.0.contains(&source) {
                let advisories = map.next_value()?;
                tracker.sources.insert(source, advisories);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(tracker)
    }
}

/// One vulnerability of one package of the image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Vulnerability {
    /// The CVE id.
    pub cve: String,
    /// The image's package that has it.
    pub package: String,
    /// That package's version.
    pub version: String,
    /// The source package the tracker lists it under.
    pub source: String,
    /// The source version compared with the fix.
    pub source_version: String,
    /// The urgency as a severity.
    pub severity: Severity,
    /// The tracker's urgency, as it gives it.
    pub urgency: String,
    /// `open` (no fix in the release yet), `fixed` (in `fixed_version`, later than what
    /// the image has), `undetermined`, or `end-of-life` (no longer supported).
    pub status: &'static str,
    /// The first fixed source version, when the release has one.
    pub fixed_version: Option<String>,
    /// What the CVE is, in a line; empty when the tracker gives none.
    pub description: String,
}

/// What a scan found.
#[derive(Clone, Debug, Serialize)]
pub struct Scan {
    /// The release codename matched.
    pub release: String,
    /// Whether the image lists its packages at all; when not, no finding means nothing.
    pub packages_visible: bool,
    /// The packages matched against the data.
    pub scanned: usize,
    /// Packages the data cannot cover (another distribution's), by name.
    pub not_covered: Vec<String>,
    /// Every vulnerability found, package by package.
    pub vulnerabilities: Vec<Vulnerability>,
}

impl Scan {
    /// Vulnerabilities per severity name.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        severity_counts(self.vulnerabilities.iter().map(|v| v.severity))
    }

    /// The vulnerabilities package by package, the most severe first in each.
    pub fn by_package(&self) -> Vec<&Vulnerability> {
        let mut out: Vec<&Vulnerability> = self.vulnerabilities.iter().collect();
        out.sort_by(|a, b| (&a.package, b.severity, &a.cve).cmp(&(&b.package, a.severity, &b.cve)));
        out
    }
}

/// The source packages of the dpkg packages among `packages`: what a scan reads of the data.
pub fn sources(packages: &[Package]) -> BTreeSet<String> {
    packages
        .iter()
        .filter(|p| p.manager == "dpkg")
        .map(|p| p.source_name().to_string())
        .collect()
}

/// The tracker's urgency as a severity. `**` or `*` after it marks an urgency taken from
/// NVD rather than set by the security team.
pub fn severity(urgency: &str) -> Severity {
    match urgency.trim_end_matches('*') {
        "unimportant" => Severity::Negligible,
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        _ => Severity::Unknown,
    }
}

/// Matches `packages` of an image of `distribution`, release `release`, against `tracker`.
pub fn scan(
    packages: &[Package],
    distribution: Option<&Distribution>,
    release: &str,
    tracker: &Tracker,
) -> Scan {
    let debian = distribution.is_none_or(|d| d.id == "debian");
    let (covered, not_covered): (Vec<&Package>, Vec<&Package>) =
        packages.iter().partition(|p| debian && p.manager == "dpkg");
    let mut vulnerabilities = Vec::new();
    for p in &covered {
        let Some(advisories) = tracker.sources.get(p.source_name()) else {
            continue;
        };
        for (cve, advisory) in advisories {
            let Some(state) = advisory.releases.get(release) else {
                continue;
            };
            if let Some(v) = vulnerability(p, cve, advisory, state) {
                vulnerabilities.push(v);
            }
        }
    }
    vulnerabilities
        .sort_by(|a, b| (b.severity, &a.package, &a.cve).cmp(&(a.severity, &b.package, &b.cve)));
    Scan {
        release: release.to_string(),
        packages_visible: !packages.is_empty(),
        scanned: covered.len(),
        not_covered: not_covered.iter().map(|p| p.name.clone()).collect(),
        vulnerabilities,
    }
}

/// What `state` means for package `p`, if it is affected.
fn vulnerability(
    p: &Package,
    cve: &str,
    advisory: &Advisory,
    state: &ReleaseState,
) -> Option<Vulnerability> {
    let fixed = state.fixed_version.as_deref().filter(|v| !v.is_empty());
    let status = match (state.status.as_str(), fixed) {
        // Never affected.
        (_, Some("0")) => return None,
        ("resolved", Some(fix)) => {
            let (Ok(have), Ok(fix)) = (
                p.source_version().parse::<Version>(),
                fix.parse::<Version>(),
            ) else {
                // A version dpkg could not order either: say so rather than guess.
                return Some(entry(p, cve, advisory, state, "undetermined", fixed));
            };
            if have >= fix {
                return None;
            }
            "fixed"
        }
        ("resolved", None) => return None,
        ("undetermined", _) => "undetermined",
        _ if state.urgency == "end-of-life" => "end-of-life",
        _ => "open",
    };
    Some(entry(p, cve, advisory, state, status, fixed))
}

fn entry(
    p: &Package,
    cve: &str,
    advisory: &Advisory,
    state: &ReleaseState,
    status: &'static str,
    fixed: Option<&str>,
) -> Vulnerability {
    Vulnerability {
        cve: cve.to_string(),
        package: p.name.clone(),
        version: p.version.clone(),
        source: p.source_name().to_string(),
        source_version: p.source_version().to_string(),
        severity: severity(&state.urgency),
        urgency: state.urgency.clone(),
        status,
        fixed_version: fixed.filter(|_| status == "fixed").map(str::to_string),
        description: advisory.description.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str, version: &str, source: Option<(&str, &str)>) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source: source.map(|(s, _)| s.into()),
            source_version: source.map(|(_, v)| v.into()),
            manager: "dpkg",
            database: "/var/lib/dpkg/status".into(),
        }
    }

    const DATA: &str = r#"{
      "zlib": {
        "CVE-1": {"description": "open one", "releases": {
          "trixie": {"status": "open", "repositories": {"trixie": "1:1.3-2"}, "urgency": "low**"}}},
        "CVE-2": {"releases": {
          "trixie": {"status": "resolved", "fixed_version": "1:1.3-3", "urgency": "high"},
          "bookworm": {"status": "resolved", "fixed_version": "1:1.2-9", "urgency": "high"}}},
        "CVE-3": {"releases": {
          "trixie": {"status": "resolved", "fixed_version": "1:1.3-1", "urgency": "medium"}}},
        "CVE-4": {"releases": {
          "trixie": {"status": "resolved", "fixed_version": "0", "urgency": "unimportant"}}},
        "CVE-5": {"releases": {
          "trixie": {"status": "open", "urgency": "unimportant"}}},
        "CVE-6": {"releases": {
          "trixie": {"status": "resolved", "fixed_version": "1.9-1", "urgency": "high"}}}
      },
      "unrelated": {"CVE-9": {"releases": {"trixie": {"status": "open", "urgency": "high"}}}}
    }"#;

    #[test]
    fn each_state_gives_its_result() {
        let packages = [package("zlib1g", "1:1.3-2+b1", Some(("zlib", "1:1.3-2")))];
        let wanted = sources(&packages);
        let tracker = Tracker::read(DATA.as_bytes(), &wanted, "t").unwrap();
        assert_eq!(tracker.sources_total, 2);
        assert_eq!(tracker.sources.len(), 1);
        let scan = scan(&packages, None, "trixie", &tracker);
        let found: Vec<(&str, Severity, &str, Option<&str>)> = scan
            .vulnerabilities
            .iter()
            .map(|v| {
                (
                    v.cve.as_str(),
                    v.severity,
                    v.status,
                    v.fixed_version.as_deref(),
                )
            })
            .collect();
        // CVE-3 is fixed in an earlier version, CVE-4 never affected trixie, and CVE-6's
        // fix has no epoch, so 1:1.3-2 is later than it.
        assert_eq!(
            found,
            [
                ("CVE-2", Severity::High, "fixed", Some("1:1.3-3")),
                ("CVE-1", Severity::Low, "open", None),
                ("CVE-5", Severity::Negligible, "open", None),
            ]
        );
        assert_eq!(scan.scanned, 1);
        // The same data in another release.
        let bookworm = super::scan(&packages, None, "bookworm", &tracker);
        assert!(bookworm.vulnerabilities.is_empty());
    }

    #[test]
    fn other_distributions_and_other_data_are_not_mistaken() {
        let mut apk = package("musl", "1.2.5-r0", None);
        apk.manager = "apk";
        let alpine = Distribution {
            id: "alpine".into(),
            ..Distribution::default()
        };
        let s = scan(&[apk], Some(&alpine), "", &Tracker::default());
        assert_eq!((s.scanned, s.not_covered.len()), (0, 1));
        assert!(!scan(&[], None, "trixie", &Tracker::default()).packages_visible);
        let e = Tracker::read(&b"[1, 2]"[..], &BTreeSet::new(), "t").unwrap_err();
        assert!(
            e.to_string().contains("not the Debian Security Tracker"),
            "{e}"
        );
        let err = Tracker::read(&b"{\"a\": {}} trailing"[..], &BTreeSet::new(), "t").unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("not the Debian Security Tracker's JSON data"),
            "{err}"
        );
    }
}
