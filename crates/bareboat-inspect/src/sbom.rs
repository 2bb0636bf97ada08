//! The SBOM of any image, from what its package database and `os-release` say.

use std::collections::BTreeMap;

use bareboat_sbom::{Sbom, SbomPackage, files_star_license};

use crate::filesystem::Filesystem;
use crate::inspect::Report;
use crate::packages::Package;

/// The SBOM of the image `report` describes, whose filesystem is `fs`.
pub fn of_image(report: &Report, fs: &Filesystem) -> Sbom {
    let distribution = report.distribution.clone().unwrap_or_default();
    let os_version = if distribution.version_id.is_empty() {
        distribution.codename
    } else {
        distribution.version_id
    };
    Sbom {
        digest: report.image.clone(),
        arch: report.architecture.clone(),
        os: if distribution.id.is_empty() {
            "unknown".to_string()
        } else {
            distribution.id
        },
        os_version,
        created: report
            .created
            .clone()
            .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string()),
        packages: report
            .packages
            .iter()
            .map(|p| listed(p, &fs.metadata))
            .collect(),
        files: Vec::new(),
    }
}

/// A package an image's database lists, with the licence of its copyright file among the
/// image's `metadata`.
fn listed(p: &Package, metadata: &BTreeMap<String, Vec<u8>>) -> SbomPackage {
    let copyright = metadata.get(&format!("usr/share/doc/{}/copyright", p.name));
    SbomPackage {
        name: p.name.clone(),
        version: p.version.clone(),
        architecture: p.architecture.clone(),
        source: p.source_name().to_string(),
        source_version: p.source_version().to_string(),
        purl_type: if p.manager == "apk" { "apk" } else { "deb" },
        deb_sha256: None,
        license: copyright.and_then(|c| files_star_license(&String::from_utf8_lossy(c))),
    }
}
