//! The packages an image's databases list: dpkg's `status` (installed entries) and
//! `status.d` (one file a package, as distroless and bareboat write them), and apk's
//! `installed`. An image without any is one whose packages scanners cannot see. And the
//! distribution its `os-release` names, which says what the packages belong to.

use std::collections::BTreeMap;

use serde::Serialize;

use bareboat_apt::dpkg::Database;

use crate::filesystem::APK_INSTALLED;

/// A package an image's database lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    /// The package's name.
    pub name: String,
    /// Its version, as the database gives it.
    pub version: String,
    /// Its architecture, as the database names it (`amd64`, `all`, `x86_64`).
    pub architecture: String,
    /// The source package, when the database names one (dpkg `Source:`, apk origin).
    pub source: Option<String>,
    /// The source's version, when dpkg's `Source: NAME (VERSION)` gives one that differs
    /// from the package's (a binNMU's `+bN`).
    pub source_version: Option<String>,
    /// `dpkg` or `apk`.
    pub manager: &'static str,
    /// The database file that lists it.
    pub database: String,
}

impl Package {
    /// The source package it was built from: dpkg names it when it differs.
    pub fn source_name(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.name)
    }

    /// The source package's version.
    pub fn source_version(&self) -> &str {
        self.source_version.as_deref().unwrap_or(&self.version)
    }
}

/// The packages that the database files among `metadata` (path to content, as
/// [`crate::filesystem`] keeps them) list, sorted by name.
pub fn packages(metadata: &BTreeMap<String, Vec<u8>>) -> Vec<Package> {
    let files = metadata.iter().map(|(p, b)| (p.as_str(), b.as_slice()));
    let mut out: Vec<Package> = Database::read(files)
        .packages
        .into_iter()
        .map(|p| Package {
            name: p.name,
            version: p.version,
            architecture: p.architecture,
            source: p.source,
            source_version: p.source_version,
            manager: "dpkg",
            database: p.database,
        })
        .collect();
    if let Some(bytes) = metadata.get(APK_INSTALLED) {
        out.extend(apk(&String::from_utf8_lossy(bytes), APK_INSTALLED));
    }
    out.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    out.dedup_by(|a, b| a.name == b.name && a.architecture == b.architecture);
    out
}

fn apk(text: &str, path: &str) -> Vec<Package> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let field = |key: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
                .map(str::to_string)
        };
        let (Some(name), Some(version)) = (field("P"), field("V")) else {
            continue;
        };
        out.push(Package {
            name,
            version,
            architecture: field("A").unwrap_or_default(),
            source: field("o"),
            source_version: None,
            manager: "apk",
            database: format!("/{path}"),
        });
    }
    out
}

/// The distribution an image's `os-release` names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Distribution {
    /// `ID`: `debian`, `ubuntu`, `alpine`.
    pub id: String,
    /// `VERSION_ID`: `13`; empty for Debian testing and unstable.
    pub version_id: String,
    /// `VERSION_CODENAME`: `trixie`.
    pub codename: String,
    /// `PRETTY_NAME`: `Debian GNU/Linux 13 (trixie)`.
    pub pretty_name: String,
}

/// The distribution of `/etc/os-release`, or the `/usr/lib/os-release` it usually links
/// to, among `metadata`.
pub fn distribution(metadata: &BTreeMap<String, Vec<u8>>) -> Option<Distribution> {
    let text = metadata
        .get("etc/os-release")
        .or_else(|| metadata.get("usr/lib/os-release"))?;
    let text = String::from_utf8_lossy(text);
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').trim_matches('\'').to_string())
            .unwrap_or_default()
    };
    let mut codename = field("VERSION_CODENAME");
    if codename.is_empty() {
        // Debian before 9 named it only in VERSION: `8 (jessie)`.
        let version = field("VERSION");
        if let Some((_, name)) = version.split_once('(') {
            codename = name.trim_end_matches(')').to_string();
        }
    }
    Some(Distribution {
        id: field("ID"),
        version_id: field("VERSION_ID"),
        codename,
        pretty_name: field("PRETTY_NAME"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_database_is_read() {
        let databases = BTreeMap::from([
            (
                "var/lib/dpkg/status".to_string(),
                b"Package: bash\nStatus: install ok installed\nVersion: 5.2-1\nArchitecture: amd64\n\n\
Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"
                    .to_vec(),
            ),
            (
                "var/lib/dpkg/status.d/busybox-static".to_string(),
                b"Package: busybox-static\nSource: busybox (1:1.37.0-6)\nVersion: 1:1.37.0-6+b9\nArchitecture: amd64\n".to_vec(),
            ),
            (
                "lib/apk/db/installed".to_string(),
                b"C:Q1x=\nP:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\nP:zlib\nV:1.3.1-r1\nA:x86_64\n".to_vec(),
            ),
            // Metadata that is not a database is not read as one.
            (
                "usr/share/doc/bash/copyright".to_string(),
                b"Package: not-a-package\nVersion: 1\n".to_vec(),
            ),
        ]);
        let found: Vec<(String, String, Option<String>)> = packages(&databases)
            .into_iter()
            .map(|p| (p.name, p.version, p.source))
            .collect();
        let busybox = &packages(&databases)[1];
        assert_eq!(
            (busybox.source_name(), busybox.source_version()),
            ("busybox", "1:1.37.0-6")
        );
        assert_eq!(
            found,
            [
                ("bash".into(), "5.2-1".into(), None),
                (
                    "busybox-static".into(),
                    "1:1.37.0-6+b9".into(),
                    Some("busybox".into())
                ),
                ("musl".into(), "1.2.5-r0".into(), Some("musl".into())),
                ("zlib".into(), "1.3.1-r1".into(), None),
            ]
        );
    }

    #[test]
    fn os_release_names_the_distribution() {
        let metadata = BTreeMap::from([(
            "usr/lib/os-release".to_string(),
            b"PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nID=debian\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n".to_vec(),
        )]);
        let d = distribution(&metadata).unwrap();
        assert_eq!(
            (d.id.as_str(), d.version_id.as_str(), d.codename.as_str()),
            ("debian", "13", "trixie")
        );
        assert_eq!(distribution(&BTreeMap::new()), None);
    }
}
