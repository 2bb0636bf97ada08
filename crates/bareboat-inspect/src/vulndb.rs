//! The vulnerability data `scan` reads: the Debian Security Tracker's JSON, which
//! `bareboat db update` downloads into the cache (or `--db FILE` names), and the scan of an
//! image's report against it.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use bareboat_apt::cache::{Cache, sha256_file};
use bareboat_apt::download::{Client, Progress};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::inspect::Report;
use crate::scan::{self, Scan, Tracker};

/// Where the tracker publishes its data.
pub const DEFAULT_URL: &str = "https://security-tracker.debian.org/tracker/data/json";

/// The most `db update` downloads: the data is about 100 MB today.
const MAX_DATA: u64 = 2 << 30;

/// Where the cache's data came from, and when.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The URL it was downloaded from.
    pub url: String,
    /// When, in seconds since the epoch.
    pub updated: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA256.
    pub sha256: String,
    /// How many source packages it covers.
    pub sources: usize,
}

/// What `db update` and `db status` report: the data's file and its record.
#[derive(Debug, Serialize)]
pub struct DbReport {
    /// The data in the cache.
    pub file: PathBuf,
    /// Where it came from.
    pub source: Record,
}

/// The data in the cache.
fn data_path(cache: &Cache) -> PathBuf {
    cache.root().join("vulndb/debian-security-tracker.json")
}

/// The record of where the cache's data came from.
fn record_path(cache: &Cache) -> PathBuf {
    cache.root().join("vulndb/source.json")
}

/// Downloads the tracker's data from `url` into the cache. It goes to a temporary file,
/// is checked to be the tracker's JSON, and only then replaces what the cache had, so a
/// failed update keeps the old data.
pub async fn update(
    cache: &Cache,
    url: &str,
    client: &Client,
    progress: &dyn Progress,
) -> Result<DbReport, Error> {
    let data = data_path(cache);
    let mut tmp = cache.temp_file()?;
    client
        .download_unsigned(
            url,
            MAX_DATA,
            tmp.as_file_mut(),
            "the tracker's data",
            progress,
        )
        .await?;
    let file = File::open(tmp.path()).map_err(|error| Error::Io {
        path: tmp.path().to_path_buf(),
        error,
    })?;
    let origin = format!("{url} (nothing was changed in the cache)");
    let tracker = Tracker::read(file, &BTreeSet::new(), &origin)?;
    if tracker.sources_total == 0 {
        return Err(Error::EmptyTrackerData {
            origin: url.to_string(),
        });
    }
    let dir = data.parent().expect("data lies in a directory");
    std::fs::create_dir_all(dir).map_err(|error| Error::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    cache.commit(tmp, &data)?;
    let source = Record {
        url: url.to_string(),
        updated: unix_now(),
        size: std::fs::metadata(&data)
            .map_err(|error| Error::Io {
                path: data.clone(),
                error,
            })?
            .len(),
        sha256: sha256_file(&data)?,
        sources: tracker.sources_total,
    };
    let record = serde_json::to_vec(&source).expect("a record always serialises");
    cache.write_atomic(&record_path(cache), &record)?;
    Ok(DbReport { file: data, source })
}

/// What the cache holds: the data's file and where it came from.
pub fn status(cache: &Cache) -> Result<DbReport, Error> {
    let data = data_path(cache);
    let path = record_path(cache);
    let record = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::BadRecord {
            path: path.clone(),
            reason: e.to_string(),
        })?,
        Err(_) if !data.exists() => return Err(Error::NoData),
        Err(error) => return Err(Error::Io { path, error }),
    };
    Ok(DbReport {
        file: data,
        source: record,
    })
}

/// Seconds since the epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The tracker's data to read: `db`, else the cache's.
pub fn data_file(db: Option<&Path>, cache: &Cache) -> Result<PathBuf, Error> {
    if let Some(db) = db {
        if !db.is_file() {
            return Err(Error::NoDataFile(db.to_path_buf()));
        }
        return Ok(db.to_path_buf());
    }
    let path = data_path(cache);
    match path.is_file() {
        true => Ok(path),
        false => Err(Error::NoData),
    }
}

/// Scans the image `report` describes against the data in `data`, matching `release`, or
/// else the release its os-release names.
pub fn scan_image(report: &Report, data: &Path, release: Option<&str>) -> Result<Scan, Error> {
    let distribution = report.distribution.as_ref();
    let release = match release {
        Some(r) => r.to_string(),
        None => distribution
            .map(|d| d.codename.clone())
            .filter(|c| !c.is_empty())
            .unwrap_or_default(),
    };
    let debian = distribution.is_none_or(|d| d.id == "debian");
    if release.is_empty() && debian && !report.packages.is_empty() {
        return Err(Error::NoRelease {
            image: report.image.clone(),
        });
    }
    let wanted = scan::sources(&report.packages);
    let file = File::open(data).map_err(|error| Error::Io {
        path: data.to_path_buf(),
        error,
    })?;
    let tracker = Tracker::read(file, &wanted, &data.display().to_string())?;
    Ok(scan::scan(
        &report.packages,
        distribution,
        &release,
        &tracker,
    ))
}
