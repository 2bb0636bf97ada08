//! The packages an image's databases list: dpkg's `status` (installed entries) and
//! `status.d` (one file a package, as distroless and bareboat write them), and apk's
//! `installed`. An image without any is one whose packages scanners cannot see.

use std::collections::BTreeMap;

use serde::Serialize;

/// A package an image's database lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// The source package, when the database names one (dpkg `Source:`, apk origin).
    pub source: Option<String>,
    /// `dpkg` or `apk`.
    pub manager: &'static str,
    /// The database file that lists it.
    pub database: String,
}

/// The packages that `databases` (path to content, as [`crate::filesystem`] keeps them)
/// list, sorted by name.
pub fn packages(databases: &BTreeMap<String, Vec<u8>>) -> Vec<Package> {
    let mut out = Vec::new();
    for (path, bytes) in databases {
        let text = String::from_utf8_lossy(bytes);
        if path.ends_with("apk/db/installed") {
            out.extend(apk(&text, path));
        } else {
            let installed_only = path == "var/lib/dpkg/status";
            out.extend(dpkg(&text, path, installed_only));
        }
    }
    out.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    out.dedup_by(|a, b| a.name == b.name && a.architecture == b.architecture);
    out
}

fn dpkg(text: &str, path: &str, installed_only: bool) -> Vec<Package> {
    let mut out = Vec::new();
    for para in text.split("\n\n") {
        let field = |name: &str| {
            para.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        };
        let (Some(name), Some(version)) = (field("Package"), field("Version")) else {
            continue;
        };
        if installed_only && !field("Status").is_some_and(|s| s.ends_with(" installed")) {
            continue;
        }
        out.push(Package {
            name,
            version,
            architecture: field("Architecture").unwrap_or_default(),
            // `Source: NAME (VERSION)` names the source and its version.
            source: field("Source").map(|s| s.split(' ').next().unwrap_or_default().to_string()),
            manager: "dpkg",
            database: format!("/{path}"),
        });
    }
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
            manager: "apk",
            database: format!("/{path}"),
        });
    }
    out
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
        ]);
        let found: Vec<(String, String, Option<String>)> = packages(&databases)
            .into_iter()
            .map(|p| (p.name, p.version, p.source))
            .collect();
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
}
