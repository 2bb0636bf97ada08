//! `bareboat catalog`, `bareboat deps` and `bareboat cache`: what the catalogue holds, what
//! files need, and the cache's upkeep.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use bareboat_apt::cache::Cache;
use bareboat_apt::lockfile::Lockfile;
use bareboat_apt::sources::Distribution;
use bareboat_build::deps::FileKind;
use bareboat_build::pipeline::{self, CatalogImage, DepsReport};
use bareboat_spec::spec::SpecRef;
use clap::{Args, Subcommand};
use serde::Serialize;

use crate::args::{AppArgs, ArchiveArgs, Machinery, SpecArgs};
use crate::output::{human_bytes, print_auto, print_json};

#[derive(Args)]
pub struct CatalogArgs {
    /// Release whose package sets to show: trixie (13) or bookworm (12)
    #[arg(long, default_value = "trixie")]
    release: String,
    /// Architecture to size the images for
    #[arg(long, default_value = "amd64")]
    arch: String,
    #[command(flatten)]
    archive: ArchiveArgs,
}

pub async fn cmd_catalog(args: CatalogArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let release = Distribution::parse(&args.release)?;
    let machinery = Machinery::new(cache_root, &args.archive, None)?;
    let images = pipeline::catalogue(release, &args.arch, &machinery.context()).await?;
    if json {
        print_json(&images)?;
    } else {
        print_catalogue(&images, release, &args.arch);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_catalogue(images: &[CatalogImage], release: Distribution, arch: &str) {
    let variants = images
        .first()
        .map(|i| i.variants.join(", "))
        .unwrap_or_default();
    println!(
        "Catalogue images for Debian {} ({release}, {arch}); variants: {variants}",
        release.version(),
    );
    println!(
        "  {:<20} {:>8} {:>10} {:>10}  summary",
        "image", "packages", "debs", "installed"
    );
    for i in images {
        println!(
            "  {:<20} {:>8} {:>10} {:>10}  {}",
            format!("catalog:{}", i.name),
            i.packages.len(),
            human_bytes(i.download_size),
            human_bytes(i.installed_size),
            i.summary
        );
        let parent = i.parent.map(|p| format!("{p} + ")).unwrap_or_default();
        println!("  {:20} requests: {parent}{}", "", i.own.join(" "));
        for d in &i.dropped {
            println!("  {:20} drops {}: {}", "", d.package, d.why);
        }
    }
    println!("  debug variants add busybox-static; installed sizes are before slicing");
}

#[derive(Args)]
pub struct DepsArgs {
    /// Files to analyse, each FILE or FILE:DST
    #[arg(required = true, value_name = "FILE[:DST]")]
    files: Vec<String>,
    /// The base image whose packages count as installed
    #[arg(long, default_value = "catalog:static", value_name = "IMAGE")]
    from: String,
    /// Release: trixie (13) or bookworm (12)
    #[arg(long)]
    release: Option<String>,
    /// Architectures, comma-separated
    #[arg(long, value_delimiter = ',')]
    arch: Vec<String>,
    #[command(flatten)]
    archive: ArchiveArgs,
}

pub async fn cmd_deps(args: DepsArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    if !matches!(SpecRef::parse(&args.from), SpecRef::Catalog { .. }) {
        bail!("--from {:?}: expected catalog:NAME[:VARIANT]", args.from);
    }
    let spec_args = SpecArgs {
        spec: args.from.clone(),
        release: args.release.clone(),
        arch: args.arch.clone(),
    };
    let (mut spec, _) = spec_args.load()?;
    // A file given without DST is analysed as if added at /app/NAME.
    let add = args
        .files
        .iter()
        .map(|f| match f.rsplit_once(':') {
            Some((_, dst)) if dst.starts_with('/') => f.clone(),
            _ => {
                let name = Path::new(f).file_name().unwrap_or_default();
                format!("{f}:/app/{}", name.to_string_lossy())
            }
        })
        .collect();
    AppArgs {
        add,
        ..AppArgs::default()
    }
    .apply(&mut spec)?;
    let machinery = Machinery::new(cache_root, &args.archive, None)?;
    let report = pipeline::deps(&spec, &args.from, &machinery.context()).await?;
    if json {
        print_json(&report)?;
    } else {
        print_deps(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_deps(report: &DepsReport) {
    for a in &report.files {
        match &a.kind {
            FileKind::Static { arch } => println!("{}: static {arch} ELF", a.path),
            FileKind::Dynamic {
                arch,
                interpreter,
                needed,
                search,
                ..
            } => {
                println!("{}: dynamic {arch} ELF", a.path);
                if let Some(i) = interpreter {
                    println!("  interpreter {i}");
                }
                println!("  needs {}", needed.join(" "));
                if !search.is_empty() {
                    println!("  searches {}", search.join(":"));
                }
            }
            FileKind::Script {
                interpreter,
                via_env,
            } => match via_env {
                Some(p) => println!("{}: script run by {interpreter} {p}", a.path),
                None => println!("{}: script run by {interpreter}", a.path),
            },
            FileKind::Data => println!("{}: data, needs nothing", a.path),
        }
    }
    for (arch, found) in &report.auto_deps {
        let met = found
            .already_installed
            .iter()
            .chain(&found.satisfied_by_added);
        for line in met {
            println!("  [{arch}] {line}");
        }
    }
    print_auto(&report.auto_deps);
    if !report.abi.is_empty() {
        println!("{}", bareboat_build::abi::describe(&report.abi));
    }
}

#[derive(Subcommand)]
pub enum CacheCommand {
    /// Print the cache directory
    Dir,
    /// Remove packages no lockfile used recently, and indexes not read recently
    Prune {
        /// Keep what was used within this many days
        #[arg(long, default_value_t = 30)]
        max_age_days: u64,
    },
    /// Write the cache (or one lockfile's packages) into a tar file for an offline machine
    #[command(
        after_help = "Example:\n  bareboat cache export cache.tar --lockfile bareboat.lock\n  (then, offline) bareboat cache import cache.tar && bareboat fetch --offline"
    )]
    Export {
        file: PathBuf,
        /// Export only the packages this lockfile names (indexes and releases always go)
        #[arg(long)]
        lockfile: Option<PathBuf>,
    },
    /// Read a tar file written by `cache export`, verifying every package
    Import { file: PathBuf },
}

/// Where the cache is: `cache dir --json`.
#[derive(Serialize)]
struct CacheDir<'a> {
    /// The cache's directory.
    dir: &'a Path,
}

/// What `cache export` and `cache import` moved.
#[derive(Serialize)]
struct Transfer<'a> {
    /// The tar file.
    file: &'a Path,
    /// How many cache entries it carried.
    entries: u64,
}

pub fn cmd_cache(command: CacheCommand, root: &Path, json: bool) -> Result<ExitCode> {
    let (file, entries, text) = match command {
        CacheCommand::Dir if json => {
            print_json(&CacheDir { dir: root })?;
            return Ok(ExitCode::SUCCESS);
        }
        CacheCommand::Dir => {
            println!("{}", root.display());
            return Ok(ExitCode::SUCCESS);
        }
        CacheCommand::Prune { max_age_days } => {
            let cache = Cache::open_exclusive(root)?;
            let report = cache.prune(Duration::from_secs(max_age_days * 86400))?;
            if json {
                print_json(&report)?;
            } else {
                println!(
                    "Removed {} files ({}); kept {}",
                    report.removed_files,
                    human_bytes(report.removed_bytes),
                    report.kept_files
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        CacheCommand::Export { file, lockfile } => {
            let cache = Cache::open(root)?;
            let only = match &lockfile {
                Some(l) => Some(Lockfile::read(l)?.sha256s()),
                None => None,
            };
            let entries = cache.export(&file, only.as_deref())?;
            let text = format!("Exported {entries} cache entries to {}", file.display());
            (file, entries, text)
        }
        CacheCommand::Import { file } => {
            let entries = Cache::open_exclusive(root)?.import(&file)?;
            let text = format!("Imported {entries} cache entries into {}", root.display());
            (file, entries, text)
        }
    };
    if json {
        print_json(&Transfer {
            file: &file,
            entries,
        })?;
    } else {
        println!("{text}");
    }
    Ok(ExitCode::SUCCESS)
}
