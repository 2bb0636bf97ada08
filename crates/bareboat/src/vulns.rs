//! `bareboat scan` and `bareboat db`: vulnerabilities offline, from the Debian Security
//! Tracker's JSON data, which `db update` downloads into the cache (or `--db FILE` names).

use crate::terminal::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use bareboat_apt::cache::Cache;
use bareboat_inspect::Severity;
use bareboat_inspect::filesystem::Filesystem;
use bareboat_inspect::inspect::Report;
use bareboat_inspect::scan::{Scan, ScanReport, Tracker};
use bareboat_inspect::vex;
use bareboat_inspect::vulndb::{self, DEFAULT_URL, DbReport};
use bareboat_oci::layout::write_atomic;
use bareboat_oci::reference::ImageRef;
use clap::{Args, Subcommand};

use crate::analysis::{EXIT_FINDINGS, ImageArgs};
use crate::args::archive_client;
use crate::output::{human_bytes, print_json};
use crate::progress;
use crate::signing::repository_of;

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

/// The tracker's data an image is matched against, and the release it is matched in.
#[derive(Args)]
pub struct TrackerArgs {
    /// Use this copy of the tracker's JSON data instead of the cache's
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// The Debian release codename to match, when the image's os-release names none
    #[arg(long, value_name = "CODENAME")]
    release: Option<String>,
}

impl TrackerArgs {
    /// The data file: `--db`, or the cache's.
    fn file(&self, cache_root: &Path) -> Result<PathBuf> {
        Ok(vulndb::data_file(
            self.db.as_deref(),
            &Cache::open(cache_root)?,
        )?)
    }
}

#[derive(Args)]
pub struct ScanArgs {
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    data: TrackerArgs,
    /// Exit with status 4 when a vulnerability is at least this severe (5 when the packages
    /// cannot be seen)
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low", "negligible", "unknown"])]
    fail_on: Option<String>,
    /// Put aside what this OpenVEX document says is not_affected or fixed in this image
    /// (matched by its digest) and package (name, version, arch)
    #[arg(long, value_name = "FILE")]
    vex: Option<PathBuf>,
}

#[derive(Args)]
pub struct VexArgs {
    #[command(flatten)]
    image: ImageArgs,
    #[command(flatten)]
    data: TrackerArgs,
    /// Rules (TOML, `[[rule]]` with `cve`, `source`, `paths`, `reason`) naming the paths
    /// a CVE's vulnerable code is in: none of them in the image makes it not_affected
    #[arg(long, value_name = "FILE")]
    rules: Option<PathBuf>,
    /// The repository the image is published in (REGISTRY/REPO), for the product's purl
    /// [default: the image's own, when it is named by one]
    #[arg(long, value_name = "REPOSITORY")]
    repository: Option<String>,
    /// Who states it
    #[arg(long, default_value = "bareboat")]
    author: String,
    /// When it is stated, in seconds since the epoch [default: now]
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    /// Write the document here instead of to standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `bareboat vex`: the image's OpenVEX document.
pub async fn cmd_vex(args: VexArgs, cache_root: &Path) -> Result<ExitCode> {
    let data = args.data.file(cache_root)?;
    let (report, files) = args.image.read(cache_root).await?;
    let rules = match &args.rules {
        Some(path) => vex::Rules::read(path)?.rules,
        None => Vec::new(),
    };
    let named = args.image.reference().parse::<ImageRef>().ok();
    let repository = (args.repository.clone()).or_else(|| repository_of(named.as_ref()?));
    let stating = Stating {
        data,
        release: args.data.release.clone(),
        rules,
        repository,
        author: args.author.clone(),
        source_date_epoch: args.source_date_epoch,
    };
    let document = stating.document(&report, &files)?;
    let mut text = serde_json::to_vec_pretty(&document)?;
    text.push(b'\n');
    match &args.output {
        Some(path) => write_atomic(path, &text)?,
        None => std::io::stdout().write_all(&text)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What an OpenVEX document is stated from, besides the image.
pub struct Stating {
    /// The tracker's data.
    pub data: PathBuf,
    /// The release to match, when the image's os-release names none.
    pub release: Option<String>,
    /// The rules naming the paths of CVEs' code.
    pub rules: Vec<vex::Rule>,
    /// The repository the image is published in.
    pub repository: Option<String>,
    /// Who states it.
    pub author: String,
    /// When, in seconds since the epoch; now, when not given.
    pub source_date_epoch: Option<u64>,
}

impl Stating {
    /// The OpenVEX document of the image `report` and `files` describe: `bareboat vex`'s,
    /// and what `build --vex` attests.
    pub fn document(&self, report: &Report, files: &Filesystem) -> Result<vex::Document> {
        let release = match &self.release {
            Some(r) => r.clone(),
            None => (report.distribution.as_ref())
                .map(|d| d.codename.clone())
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: its os-release names no release: give --release CODENAME",
                        report.image
                    )
                })?,
        };
        let wanted = vex::wanted_sources(report, files);
        let file = std::fs::File::open(&self.data)
            .with_context(|| format!("reading {}", self.data.display()))?;
        let tracker = Tracker::read(file, &wanted, &self.data.display().to_string())?;
        let when = match self.source_date_epoch {
            Some(s) => UNIX_EPOCH + Duration::from_secs(s),
            None => SystemTime::now(),
        };
        Ok(vex::document(&vex::Inputs {
            report,
            files,
            tracker: &tracker,
            release: &release,
            rules: &self.rules,
            product: vex::image_purl(self.repository.as_deref(), &report.image),
            author: self.author.clone(),
            timestamp: humantime::format_rfc3339_seconds(when).to_string(),
        })?)
    }
}

/// `db update` downloads the tracker's data from `--url` (or `BAREBOAT_VULNDB_URL`: a
/// mirror of it, or a file a proxy serves); `db status` says what the cache has.
pub async fn cmd_db(command: DbCommand, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let cache = Cache::open(cache_root)?;
    let (report, updated) = match &command {
        DbCommand::Update { url } => {
            let bar = progress::Bar::new("vulnerability data");
            (
                vulndb::update(&cache, url, &archive_client()?, &bar).await?,
                true,
            )
        }
        DbCommand::Status => (vulndb::status(&cache)?, false),
    };
    if json {
        print_json(&report)?;
    } else if updated {
        let DbReport { file, source } = &report;
        say!(
            "Updated {} from {}: {} source packages, {}",
            file.display(),
            source.url,
            source.sources,
            human_bytes(source.size)
        );
    } else {
        let DbReport { file, source } = &report;
        let age = vulndb::unix_now().saturating_sub(source.updated);
        say!(
            "{}: {} source packages from {}, updated {} hours ago",
            file.display(),
            source.sources,
            source.url,
            age / 3600
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cmd_scan(args: ScanArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let data = args.data.file(cache_root)?;
    let (report, _) = args.image.read(cache_root).await?;
    let mut scan = vulndb::scan_image(&report, &data, args.data.release.as_deref())?;
    let suppressed = match &args.vex {
        Some(path) => {
            let text =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let claims = vex::read_claims(&text, &path.display().to_string())?;
            vex::suppress(&mut scan, &claims, &report.image, &report.packages)
        }
        None => Vec::new(),
    };
    let threshold = args.fail_on.as_deref().and_then(Severity::parse);
    let code = match threshold {
        Some(_) if scan.scanned == 0 => ExitCode::from(EXIT_UNSEEN),
        Some(t) if scan.vulnerabilities.iter().any(|v| v.severity >= t) => {
            ExitCode::from(EXIT_FINDINGS)
        }
        _ => ExitCode::SUCCESS,
    };
    if json {
        print_json(&ScanReport {
            image: report.image.clone(),
            data,
            total: scan.vulnerabilities.len(),
            counts: scan.counts(),
            scan,
            suppressed,
        })?;
    } else {
        print_scan(&report, &scan);
        if args.vex.is_some() {
            say!("Put aside by the VEX document: {}", suppressed.len());
            for s in &suppressed {
                let why = s
                    .justification
                    .as_deref()
                    .map(|j| format!(" ({j})"))
                    .unwrap_or_default();
                say!("  {} {}: {}{why}", s.cve, s.package, s.status);
            }
        }
    }
    Ok(code)
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
