//! `bareboat scan` and `bareboat db`: vulnerabilities offline, from the Debian Security
//! Tracker's JSON data, which `db update` downloads into the cache (or `--db FILE` names).

use crate::terminal::say;
use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_apt::cache::{Cache, sha256_file};
use bareboat_apt::download::Client;
use bareboat_inspect::Severity;
use bareboat_inspect::inspect::Report;
use bareboat_inspect::scan::{self, Scan, Tracker};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::analysis::{EXIT_FINDINGS, ImageArgs};
use crate::{print_json, progress};

/// Where the tracker publishes its data; `--url` or `BAREBOAT_VULNDB_URL` names another
/// (a mirror of it, or a file a proxy serves).
const DEFAULT_URL: &str = "https://security-tracker.debian.org/tracker/data/json";

/// The most `db update` downloads: the data is about 100 MB today.
const MAX_DATA: u64 = 2 << 30;

/// The exit status of a scan with `--fail-on` that could not see the image's packages.
pub const EXIT_UNSEEN: u8 = 5;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Download the Debian Security Tracker's data into the cache
    #[command(
        after_help = "The data is downloaded to a temporary file, checked to be the tracker's JSON, and only then replaces what the cache had, so a failed update keeps the old data.\n\nExamples:\n  bareboat db update\n  bareboat db update --url https://mirror.example.com/tracker/data/json"
    )]
    Update {
        /// Where to download it from
        #[arg(long, env = "BAREBOAT_VULNDB_URL", default_value = DEFAULT_URL)]
        url: String,
    },
    /// Say where the data is, how large and how old
    Status,
}

#[derive(Args)]
pub struct ScanArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// Use this copy of the tracker's JSON data instead of the cache's
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// The Debian release codename to match, when the image's os-release names none
    #[arg(long, value_name = "CODENAME")]
    release: Option<String>,
    /// Exit with status 4 when a vulnerability is at least this severe (5 when the packages
    /// cannot be seen)
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low", "negligible", "unknown"])]
    fail_on: Option<String>,
}

/// The data in the cache, and the record of where it came from.
fn data_path(cache: &Cache) -> PathBuf {
    cache.root().join("vulndb/debian-security-tracker.json")
}

fn record_path(cache: &Cache) -> PathBuf {
    cache.root().join("vulndb/source.json")
}

pub async fn cmd_db(command: DbCommand, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let cache = Cache::open(cache_root)?;
    let data = data_path(&cache);
    match command {
        DbCommand::Update { url } => {
            let mut tmp = cache.temp_file()?;
            let bar = progress::Bar::new("vulnerability data");
            Client::new()
                .download_unsigned(
                    &url,
                    MAX_DATA,
                    tmp.as_file_mut(),
                    "the tracker's data",
                    &bar,
                )
                .await?;
            bar.finish();
            let tracker = Tracker::read(File::open(tmp.path())?, &BTreeSet::new())
                .with_context(|| format!("{url}: nothing was changed in the cache"))?;
            if tracker.sources_total == 0 {
                bail!("{url}: the data lists no source packages; nothing was changed in the cache");
            }
            let dir = data.parent().expect("data lies in a directory");
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            cache.commit(tmp, &data)?;
            let record = json!({
                "url": url,
                "updated": unix_now(),
                "size": std::fs::metadata(&data)?.len(),
                "sha256": sha256_file(&data)?,
                "sources": tracker.sources_total,
            });
            cache.write_atomic(&record_path(&cache), record.to_string().as_bytes())?;
            if json {
                print_json(&json!({ "file": data, "source": record }))?;
            } else {
                say!(
                    "Updated {} from {url}: {} source packages, {}",
                    data.display(),
                    tracker.sources_total,
                    crate::human_bytes(record["size"].as_u64().unwrap_or_default())
                );
            }
        }
        DbCommand::Status => {
            let record: serde_json::Value = match std::fs::read(record_path(&cache)) {
                Ok(bytes) => serde_json::from_slice(&bytes)?,
                Err(_) if !data.exists() => {
                    bail!("no vulnerability data in the cache\n  hint: run `bareboat db update`")
                }
                Err(e) => return Err(e).context("reading the data's record"),
            };
            if json {
                print_json(&json!({ "file": data, "source": record }))?;
            } else {
                let age = unix_now().saturating_sub(record["updated"].as_u64().unwrap_or_default());
                say!(
                    "{}: {} source packages from {}, updated {} hours ago",
                    data.display(),
                    record["sources"],
                    record["url"].as_str().unwrap_or("?"),
                    age / 3600
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The tracker's data to read: `--db FILE`, else the cache's.
pub fn data_file(db: Option<&Path>, cache_root: &Path) -> Result<PathBuf> {
    if let Some(db) = db {
        if !db.is_file() {
            bail!("--db {}: no such file", db.display());
        }
        return Ok(db.to_path_buf());
    }
    let path = data_path(&Cache::open(cache_root)?);
    if !path.is_file() {
        bail!(
            "no vulnerability data in the cache\n  hint: run `bareboat db update`, or pass --db FILE with the tracker's JSON data"
        );
    }
    Ok(path)
}

/// Scans the image `report` describes against the data in `data`.
pub fn scan_image(report: &Report, data: &Path, release: Option<&str>) -> Result<Scan> {
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
        bail!(
            "{}: its os-release names no release codename to match\n  hint: pass --release CODENAME, e.g. --release trixie",
            report.image
        );
    }
    let wanted = scan::sources(&report.packages);
    let file = File::open(data).with_context(|| format!("opening {}", data.display()))?;
    let tracker =
        Tracker::read(file, &wanted).with_context(|| format!("reading {}", data.display()))?;
    Ok(scan::scan(
        &report.packages,
        distribution,
        &release,
        &tracker,
    ))
}

pub async fn cmd_scan(args: ScanArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let data = data_file(args.db.as_deref(), cache_root)?;
    let (report, _) = args.image.read(cache_root).await?;
    let scan = scan_image(&report, &data, args.release.as_deref())?;
    if json {
        print_json(&json!({
            "image": report.image,
            "data": data,
            "total": scan.vulnerabilities.len(),
            "counts": scan.counts(),
            "scan": scan,
        }))?;
    } else {
        print_scan(&report, &scan);
    }
    let threshold = args.fail_on.as_deref().and_then(Severity::parse);
    Ok(match threshold {
        Some(_) if scan.scanned == 0 => ExitCode::from(EXIT_UNSEEN),
        Some(t) if scan.vulnerabilities.iter().any(|v| v.severity >= t) => {
            ExitCode::from(EXIT_FINDINGS)
        }
        _ => ExitCode::SUCCESS,
    })
}

fn print_scan(report: &Report, scan: &Scan) {
    let counts = scan.counts();
    let summary: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .map(|s| format!("{}: {}", s.name().to_uppercase(), counts[s.name()]))
        .collect();
    let distribution = report
        .distribution
        .as_ref()
        .map(|d| d.pretty_name.as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("no os-release");
    say!(
        "{} ({distribution}; {} packages matched against release {})",
        report.image,
        scan.scanned,
        if scan.release.is_empty() {
            "-"
        } else {
            &scan.release
        }
    );
    if !scan.packages_visible {
        say!(
            "Packages: none visible (no dpkg status, status.d or apk database): this image cannot be scanned, and no finding here does not mean it is clean"
        );
        return;
    }
    if !scan.not_covered.is_empty() {
        say!(
            "Not covered by the Debian data ({}): {}",
            scan.not_covered.len(),
            scan.not_covered.join(", ")
        );
    }
    say!(
        "Total: {} ({})",
        scan.vulnerabilities.len(),
        summary.join(", ")
    );
    let mut package = "";
    for v in &scan.by_package() {
        if v.package != package {
            package = &v.package;
            let source = if v.source == v.package {
                String::new()
            } else {
                format!(" (source {} {})", v.source, v.source_version)
            };
            say!();
            say!("{} {}{source}", v.package, v.version);
        }
        let fix = match (&v.fixed_version, v.status) {
            (Some(fix), _) => format!("fixed in {fix}"),
            (None, status) => status.to_string(),
        };
        let mut description: String = v.description.chars().take(72).collect();
        if description.len() < v.description.len() {
            description.push('…');
        }
        say!(
            "  {:<16} {:<10} {:<28} {description}",
            v.cve,
            v.severity.name().to_uppercase(),
            fix
        );
    }
}
