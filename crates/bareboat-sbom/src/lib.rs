//! Software bills of materials: SPDX 2.3 and CycloneDX 1.6 JSON, for an image bareboat
//! builds or for any image, from the package database it carries.
//!
//! Every package is listed with the purl scanners match on (`pkg:deb/debian/NAME@VERSION`
//! with `arch`, `distro=debian-13` and `upstream=SOURCE`; `pkg:apk/alpine/...` for apk's),
//! the SHA256 of its `.deb` when the build knows it, and the licence its machine-readable
//! copyright file declares for `Files: *`, as an SPDX expression when every Debian licence
//! name in it has an SPDX identifier. Files the user added are listed with their digests,
//! and the OS as an operating-system component. Documents are deterministic: times and ids
//! derive from the image.

#![deny(missing_docs)]

use std::io::Read;
use std::path::Path;

use bareboat_apt::lockfile::LockedPackage;
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

/// What an SBOM says about one image.
#[derive(Clone, Debug)]
pub struct Sbom {
    /// The image's manifest digest.
    pub digest: String,
    /// Its Debian architecture.
    pub arch: String,
    /// The distribution's id, e.g. `debian`.
    pub os: String,
    /// The release's version, e.g. `13`.
    pub os_version: String,
    /// The image's creation time, RFC 3339.
    pub created: String,
    /// Every package its database lists.
    pub packages: Vec<SbomPackage>,
    /// The files a user added, each hashed.
    pub files: Vec<SbomFile>,
}

/// An SBOM document format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// SPDX 2.3 JSON.
    Spdx,
    /// CycloneDX 1.6 JSON.
    Cyclonedx,
}

impl Format {
    /// What a file of this format ends with.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Spdx => "spdx.json",
            Format::Cyclonedx => "cdx.json",
        }
    }

    /// The artifact type an SBOM of this format is attached under.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Spdx => "application/spdx+json",
            Format::Cyclonedx => "application/vnd.cyclonedx+json",
        }
    }

    /// `sbom` as a document of this format, pretty-printed JSON.
    pub fn document(self, sbom: &Sbom) -> Vec<u8> {
        let document = match self {
            Format::Spdx => sbom.spdx(),
            Format::Cyclonedx => sbom.cyclonedx(),
        };
        serde_json::to_vec_pretty(&document).expect("a JSON value always serialises")
    }
}

/// A package, as an SBOM lists it.
#[derive(Clone, Debug)]
pub struct SbomPackage {
    #[allow(missing_docs)]
    pub name: String,
    #[allow(missing_docs)]
    pub version: String,
    #[allow(missing_docs)]
    pub architecture: String,
    /// The source package it was built from.
    pub source: String,
    /// The source package's version.
    pub source_version: String,
    /// The purl type: `deb` or `apk`.
    pub purl_type: &'static str,
    /// The `.deb`'s SHA256, when the build fetched it.
    pub deb_sha256: Option<String>,
    /// The Debian licence expression of `Files: *`, if the copyright file is
    /// machine-readable.
    pub license: Option<String>,
}

/// A file a user added to the image.
#[derive(Clone, Debug)]
pub struct SbomFile {
    /// Absolute path in the image.
    pub path: String,
    /// Its content's SHA256, in hex.
    pub sha256: String,
    /// Its content's SHA1, in hex, which SPDX requires of a file.
    pub sha1: String,
}

impl SbomPackage {
    /// A package a build installed from its lockfile, with the licence of its copyright
    /// file, when the image has one.
    pub fn locked(p: &LockedPackage, copyright: Option<&[u8]>) -> SbomPackage {
        SbomPackage {
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            source: p.source.clone(),
            source_version: p.source_version.clone(),
            purl_type: "deb",
            deb_sha256: Some(p.sha256.clone()),
            license: copyright.and_then(|c| files_star_license(&String::from_utf8_lossy(c))),
        }
    }

    fn purl(&self, os: &str, os_version: &str) -> String {
        let enc = purl_version;
        let mut purl = format!(
            "pkg:{}/{os}/{}@{}?arch={}&distro={os}-{os_version}",
            self.purl_type,
            self.name,
            enc(&self.version),
            self.architecture
        );
        // As syft writes it: the source's version only when it differs.
        if self.source_version != self.version {
            let v = enc(&self.source_version);
            purl.push_str(&format!("&upstream={}%40{v}", self.source));
        } else if self.source != self.name {
            purl.push_str(&format!("&upstream={}", self.source));
        }
        purl
    }

    /// The licence as an SPDX expression, when every name in it has an SPDX identifier.
    fn spdx_license(&self) -> Option<String> {
        spdx_expression(self.license.as_deref()?)
    }
}

impl SbomFile {
    /// The file at `path` in the image, hashed from `host`, where its content is, as it
    /// streams.
    pub fn hashed(path: &str, host: &Path) -> std::io::Result<SbomFile> {
        let (sha256, sha1) = hash_file(host)?;
        Ok(SbomFile {
            path: format!("/{path}"),
            sha256,
            sha1,
        })
    }
}

fn hash_file(path: &Path) -> std::io::Result<(String, String)> {
    let mut f = std::fs::File::open(path)?;
    let (mut sha256, mut sha1) = (Sha256::new(), Sha1::new());
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sha256.update(&buf[..n]);
        sha1.update(&buf[..n]);
    }
    Ok((hex::encode(sha256.finalize()), hex::encode(sha1.finalize())))
}

/// A Debian version as a purl carries it: `+` and `:` (and `%`) percent-encoded, as the
/// purl spec asks.
pub fn purl_version(version: &str) -> String {
    version
        .replace('%', "%25")
        .replace('+', "%2B")
        .replace(':', "%3A")
}

/// The `License:` of the `Files: *` paragraph of a machine-readable copyright file.
pub fn files_star_license(copyright: &str) -> Option<String> {
    if !copyright.starts_with("Format:") {
        return None;
    }
    copyright.split("\n\n").find_map(|paragraph| {
        let field = |name: &str| {
            paragraph
                .lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        (field("Files:")? == "*")
            .then(|| field("License:"))
            .flatten()
            .filter(|l| !l.is_empty())
    })
}

/// Debian's licence short names with an SPDX identifier.
const SPDX_NAMES: &[(&str, &str)] = &[
    ("GPL-1+", "GPL-1.0-or-later"),
    ("GPL-2", "GPL-2.0-only"),
    ("GPL-2+", "GPL-2.0-or-later"),
    ("GPL-3", "GPL-3.0-only"),
    ("GPL-3+", "GPL-3.0-or-later"),
    ("LGPL-2", "LGPL-2.0-only"),
    ("LGPL-2+", "LGPL-2.0-or-later"),
    ("LGPL-2.1", "LGPL-2.1-only"),
    ("LGPL-2.1+", "LGPL-2.1-or-later"),
    ("LGPL-3", "LGPL-3.0-only"),
    ("LGPL-3+", "LGPL-3.0-or-later"),
    ("GFDL-1.3+", "GFDL-1.3-or-later"),
    ("Apache-2.0", "Apache-2.0"),
    ("Artistic", "Artistic-1.0-Perl"),
    ("Expat", "MIT"),
    ("MIT", "MIT"),
    ("BSD-2-clause", "BSD-2-Clause"),
    ("BSD-3-clause", "BSD-3-Clause"),
    ("BSD-4-clause", "BSD-4-Clause"),
    ("ISC", "ISC"),
    ("MPL-2.0", "MPL-2.0"),
    ("Zlib", "Zlib"),
    ("zlib", "Zlib"),
    ("PSF-2", "PSF-2.0"),
    ("OpenSSL", "OpenSSL"),
    ("CC0-1.0", "CC0-1.0"),
    ("Unicode-DFS-2016", "Unicode-DFS-2016"),
];

/// `GPL-2+ or Artistic` as `GPL-2.0-or-later OR Artistic-1.0-Perl`; `None` when a name
/// has no SPDX identifier.
pub fn spdx_expression(debian: &str) -> Option<String> {
    let terms: Option<Vec<String>> = debian
        .split_whitespace()
        .map(|t| match t.to_ascii_lowercase().as_str() {
            "or" => Some("OR".to_string()),
            "and" => Some("AND".to_string()),
            _ => SPDX_NAMES
                .iter()
                .find(|(d, _)| d.eq_ignore_ascii_case(t.trim_end_matches(',')))
                .map(|(_, s)| s.to_string()),
        })
        .collect();
    terms.filter(|t| !t.is_empty()).map(|t| t.join(" "))
}

impl Sbom {
    /// The organisation that ships the distribution's packages, as SPDX names a supplier.
    fn supplier(&self) -> String {
        let mut name = self.os.clone();
        if let Some(first) = name.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        format!("Organization: {name}")
    }

    fn name(&self) -> String {
        format!("bareboat image {} ({})", self.digest, self.arch)
    }

    /// The SPDX 2.3 JSON document.
    pub fn spdx(&self) -> Value {
        let image_id = "SPDXRef-Image";
        let os_id = "SPDXRef-OperatingSystem";
        let mut packages = vec![
            json!({
                "SPDXID": image_id,
                "name": self.name(),
                "versionInfo": self.digest,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "CONTAINER",
            }),
            json!({
                "SPDXID": os_id,
                "name": self.os,
                "versionInfo": self.os_version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "OPERATING_SYSTEM",
            }),
        ];
        let mut relationships = vec![
            json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id}),
            json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": os_id}),
        ];
        for p in &self.packages {
            let id = format!("SPDXRef-Package-{}", spdx_id(&p.name));
            let mut package = json!({
                "SPDXID": id,
                "name": p.name,
                "versionInfo": p.version,
                "supplier": self.supplier(),
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": p.spdx_license().unwrap_or_else(|| "NOASSERTION".into()),
                "copyrightText": "NOASSERTION",
                "sourceInfo": format!("built from source package {} {}", p.source, p.source_version),
                "externalRefs": [{
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": p.purl(&self.os, &self.os_version),
                }],
                "primaryPackagePurpose": "LIBRARY",
            });
            if let Some(sha256) = &p.deb_sha256 {
                package["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sha256}]);
            }
            if let (Some(debian), None) = (&p.license, p.spdx_license()) {
                package["licenseComments"] = json!(format!("Debian copyright file: {debian}"));
            }
            packages.push(package);
            relationships.push(json!({"spdxElementId": image_id, "relationshipType": "CONTAINS", "relatedSpdxElement": id}));
        }
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| {
                let id = format!("SPDXRef-File-{}", spdx_id(&f.path));
                // A package whose files were not analysed may not contain files in SPDX,
                // so the document describes the added files directly.
                relationships.push(json!({"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": id}));
                json!({
                    "SPDXID": id,
                    "fileName": format!(".{}", f.path),
                    "checksums": [
                        {"algorithm": "SHA1", "checksumValue": f.sha1},
                        {"algorithm": "SHA256", "checksumValue": f.sha256},
                    ],
                    "licenseConcluded": "NOASSERTION",
                    "copyrightText": "NOASSERTION",
                })
            })
            .collect();
        json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": self.name(),
            "documentNamespace": format!("https://spdx.org/spdxdocs/bareboat-{}-{}", self.digest.trim_start_matches("sha256:"), self.arch),
            "creationInfo": {
                "created": self.created,
                "creators": [format!("Tool: bareboat-{}", env!("CARGO_PKG_VERSION"))],
            },
            "packages": packages,
            "files": files,
            "relationships": relationships,
        })
    }

    /// The CycloneDX 1.6 JSON document.
    pub fn cyclonedx(&self) -> Value {
        let hex = self.digest.trim_start_matches("sha256:");
        let serial = format!(
            "urn:uuid:{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        );
        let mut components = vec![json!({
            "type": "operating-system",
            "bom-ref": format!("os:{}", self.os),
            "name": self.os,
            "version": self.os_version,
        })];
        for p in &self.packages {
            let licenses = match (p.spdx_license(), &p.license) {
                (Some(expr), _) => json!([{"expression": expr}]),
                (None, Some(debian)) => json!([{"license": {"name": debian}}]),
                (None, None) => json!([]),
            };
            let purl = p.purl(&self.os, &self.os_version);
            let hashes: Vec<Value> = p
                .deb_sha256
                .iter()
                .map(|h| json!({"alg": "SHA-256", "content": h}))
                .collect();
            components.push(json!({
                "type": "library",
                "bom-ref": purl,
                "name": p.name,
                "version": p.version,
                "purl": purl,
                "hashes": hashes,
                "licenses": licenses,
                "properties": [
                    {"name": "bareboat:source", "value": p.source},
                    {"name": "bareboat:source_version", "value": p.source_version},
                ],
            }));
        }
        for f in &self.files {
            components.push(json!({
                "type": "file",
                "bom-ref": format!("file:{}", f.path),
                "name": f.path,
                "hashes": [
                    {"alg": "SHA-1", "content": f.sha1},
                    {"alg": "SHA-256", "content": f.sha256},
                ],
            }));
        }
        json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "serialNumber": serial,
            "version": 1,
            "metadata": {
                "timestamp": self.created,
                "tools": {"components": [{"type": "application", "name": "bareboat", "version": env!("CARGO_PKG_VERSION")}]},
                "component": {
                    "type": "container",
                    "bom-ref": format!("image:{}", self.digest),
                    "name": self.name(),
                    "version": self.digest,
                },
            },
            "components": components,
        })
    }
}

/// An SPDX id part: letters, digits, `.` and `-` only.
fn spdx_id(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn licences_come_from_files_star_and_map_to_spdx() {
        let copyright = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
            Upstream-Name: x\n\nFiles: *\nCopyright: someone\nLicense: GPL-2+ or Artistic\n\n\
            Files: debian/*\nLicense: BSD-3-clause\n";
        let l = files_star_license(copyright).unwrap();
        assert_eq!(l, "GPL-2+ or Artistic");
        assert_eq!(
            spdx_expression(&l).unwrap(),
            "GPL-2.0-or-later OR Artistic-1.0-Perl"
        );
        assert_eq!(spdx_expression("Expat").unwrap(), "MIT");
        assert_eq!(spdx_expression("public-domain"), None);
        assert_eq!(files_star_license("This is not machine-readable."), None);
    }

    #[test]
    fn purls_carry_the_distro_and_upstream() {
        let p = SbomPackage {
            name: "libssl3t64".into(),
            version: "3.5.1-1+deb13u1".into(),
            architecture: "amd64".into(),
            source: "openssl".into(),
            source_version: "3.5.1-1+deb13u1".into(),
            purl_type: "deb",
            deb_sha256: None,
            license: None,
        };
        assert_eq!(
            p.purl("debian", "13"),
            "pkg:deb/debian/libssl3t64@3.5.1-1%2Bdeb13u1?arch=amd64&distro=debian-13&upstream=openssl"
        );
        let binnmu = SbomPackage {
            version: "1.3-1+b1".into(),
            source_version: "1.3-1".into(),
            ..p
        };
        assert!(
            binnmu
                .purl("debian", "13")
                .ends_with("&upstream=openssl%401.3-1")
        );
    }
}
