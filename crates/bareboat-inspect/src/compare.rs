//! `bareboat compare`: each image's figures, to put side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::filesystem::Filesystem;
use crate::inspect::Report;
use crate::{Error, audit, severity_counts, vulndb};

/// One image's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Column {
    /// The image as the command line names it.
    pub label: String,
    /// Its manifest digest.
    pub image: String,
    /// Its layers' compressed size.
    pub size: u64,
    /// Its layers' uncompressed size.
    pub uncompressed_size: u64,
    /// How many layers it has.
    pub layers: usize,
    /// How many packages its database lists.
    pub packages: usize,
    /// How many files the finished image holds.
    pub files: usize,
    /// Their bytes.
    pub file_bytes: u64,
    /// The bytes of files later layers overwrite or delete.
    pub wasted_bytes: u64,
    /// Audit findings per severity name.
    pub findings: BTreeMap<&'static str, usize>,
    /// Vulnerabilities per severity name, when there is data to count them with and the
    /// image has packages it covers.
    pub vulnerabilities: Option<BTreeMap<&'static str, usize>>,
    /// Why vulnerabilities were not counted, when they were not.
    pub not_scanned: Option<&'static str>,
}

impl Column {
    /// The figures of the image `label` names, read into `report` and `fs`, audited, and
    /// scanned against `data` when there is data.
    pub fn of(
        label: &str,
        report: &Report,
        fs: &Filesystem,
        data: Option<&Path>,
    ) -> Result<Column, Error> {
        let findings = audit::audit(report, fs);
        let (vulnerabilities, not_scanned) = match data {
            None => (None, Some("no vulnerability data")),
            Some(_) if report.packages.is_empty() => (None, Some("packages not visible")),
            Some(data) => match vulndb::scan_image(report, data, None)? {
                scan if scan.scanned == 0 => (None, Some("no Debian packages")),
                scan => (Some(scan.counts()), None),
            },
        };
        Ok(Column {
            label: label.to_string(),
            image: report.image.clone(),
            size: report.size,
            uncompressed_size: report.uncompressed_size,
            layers: report.layers.len(),
            packages: report.packages.len(),
            files: report.files,
            file_bytes: report.file_bytes,
            wasted_bytes: report.wasted_bytes,
            findings: severity_counts(findings.iter().map(|f| f.severity)),
            vulnerabilities,
            not_scanned,
        })
    }
}

/// What `bareboat compare` reports.
#[derive(Debug, Serialize)]
pub struct CompareReport {
    /// Each image's figures, in the order given.
    pub images: Vec<Column>,
    /// The HTML report written, if one was asked for.
    pub html: Option<PathBuf>,
}
