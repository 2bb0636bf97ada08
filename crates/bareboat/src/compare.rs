//! `bareboat compare`: images side by side, as a text table, JSON, or a self-contained HTML
//! report with bar charts.

mod html;

use crate::terminal::say;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bareboat_apt::cache::Cache;
use bareboat_inspect::Severity;
use bareboat_inspect::compare::{Column, CompareReport};
use bareboat_inspect::vulndb;
use bareboat_oci::layout::write_atomic;
use clap::Args;

use crate::analysis;
use crate::args::RegistryArgs;
use crate::output::{human_bytes, print_json};

#[derive(Args)]
pub struct CompareArgs {
    /// The images: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or
    /// docker://REGISTRY/REPO[:TAG|@DIGEST]
    #[arg(required = true, num_args = 2.., value_name = "IMAGE")]
    images: Vec<String>,
    /// Also write a self-contained HTML report with charts here
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// The tracker's JSON data to count vulnerabilities with [default: the cache's, if
    /// `bareboat db update` fetched it]
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// The platform, for multi-platform images
    #[arg(long, default_value = "amd64")]
    arch: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub async fn cmd_compare(args: CompareArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let data = counting_data(args.db.as_deref(), cache_root)?;
    let options = args.registry.options()?;
    let mut columns = Vec::new();
    for image in &args.images {
        let (report, fs) = analysis::read_image(image, &args.arch, &options, cache_root).await?;
        let column = Column::of(image, &report, &fs, data.as_deref())
            .with_context(|| format!("scanning {image}"))?;
        columns.push(column);
    }
    if let Some(path) = &args.html {
        let page = html::report(&columns, data.is_some());
        write_atomic(path, page.as_bytes())?;
    }
    let report = CompareReport {
        images: columns,
        html: args.html.clone(),
    };
    if json {
        print_json(&report)?;
    } else {
        print_table(&report.images, data.is_some());
        if let Some(path) = &args.html {
            say!();
            say!("Wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The tracker's data to count vulnerabilities with: `db` (which must be data), else the
/// cache's when `bareboat db update` fetched it, else none: they are counted when there is
/// data, and only then.
pub fn counting_data(db: Option<&Path>, cache_root: &Path) -> Result<Option<PathBuf>> {
    let cache = Cache::open(cache_root)?;
    Ok(match db {
        Some(_) => Some(vulndb::data_file(db, &cache)?),
        None => vulndb::data_file(None, &cache).ok(),
    })
}

/// Counts per severity, the non-zero ones, most severe first: `3 (1 critical, 2 high)`.
pub fn severity_summary(counts: &BTreeMap<&'static str, usize>) -> String {
    let total: usize = counts.values().sum();
    let parts: Vec<String> = Severity::ALL
        .iter()
        .filter_map(|s| {
            let n = counts.get(s.name()).copied().unwrap_or_default();
            (n > 0).then(|| format!("{n} {}", s.name()))
        })
        .collect();
    if parts.is_empty() {
        total.to_string()
    } else {
        format!("{total} ({})", parts.join(", "))
    }
}

/// What the vulnerability row says of a column.
pub fn vulnerability_cell(c: &Column) -> String {
    match &c.vulnerabilities {
        Some(counts) => severity_summary(counts),
        None => c.not_scanned.unwrap_or_default().to_string(),
    }
}

/// The table's rows: a name, and a cell per image.
pub fn rows(columns: &[Column]) -> Vec<(&'static str, Vec<String>)> {
    type Cell = fn(&Column) -> String;
    let rows: [(&str, Cell); 9] = [
        ("image", |c| short_digest(&c.image)),
        ("compressed", |c| human_bytes(c.size)),
        ("uncompressed", |c| human_bytes(c.uncompressed_size)),
        ("layers", |c| c.layers.to_string()),
        ("packages", |c| c.packages.to_string()),
        ("files", |c| {
            format!("{} ({})", c.files, human_bytes(c.file_bytes))
        }),
        ("wasted", |c| human_bytes(c.wasted_bytes)),
        ("audit findings", |c| severity_summary(&c.findings)),
        ("vulnerabilities", vulnerability_cell),
    ];
    rows.iter()
        .map(|(name, cell)| (*name, columns.iter().map(cell).collect()))
        .collect()
}

pub fn print_table(columns: &[Column], have_data: bool) {
    let rows = rows(columns);
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            let label = columns[i].label.chars().count();
            rows.iter()
                .map(|(_, cells)| cells[i].chars().count())
                .fold(label, usize::max)
        })
        .collect();
    let head = 16;
    let mut line = format!("{:<head$}", "");
    for (c, w) in columns.iter().zip(&widths) {
        line.push_str(&format!("  {:<w$}", c.label));
    }
    say!("{}", line.trim_end());
    for (name, cells) in &rows {
        let mut line = format!("{name:<head$}");
        for (cell, w) in cells.iter().zip(&widths) {
            line.push_str(&format!("  {cell:<w$}"));
        }
        say!("{}", line.trim_end());
    }
    if !have_data {
        say!();
        say!("Vulnerabilities are not counted: run `bareboat db update`, or pass --db FILE");
    }
}

/// `sha256:0123456789ab`.
pub fn short_digest(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}
