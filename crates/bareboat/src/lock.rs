//! `bareboat lock` and `bareboat fetch`: the arguments, and the reports printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bareboat_apt::lockfile::Lockfile;
use bareboat_build::lock::Upgrade;
use bareboat_build::pipeline::{self, CheckReport, Lock, LockReport};
use clap::Args;

use crate::args::{ArchiveArgs, Machinery, RegistryArgs, SpecArgs};
use crate::output::{human_bytes, print_auto, print_changes, print_json};

/// Exit status when `lock --check` finds the lockfile out of date.
const EXIT_STALE: u8 = 3;

#[derive(Args)]
pub struct LockArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Lockfile to write [default: bareboat.lock beside the spec, or in the current directory]
    #[arg(long)]
    lockfile: Option<PathBuf>,
    /// Only check whether the lockfile is current; write nothing
    #[arg(long, conflicts_with = "upgrade")]
    check: bool,
    /// Move to the newest versions: all packages, or only those named
    #[arg(long, num_args = 0.., value_name = "PKG")]
    upgrade: Option<Vec<String>>,
    /// Write the lockfile without downloading its packages
    #[arg(long)]
    no_fetch: bool,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

#[derive(Args)]
pub struct FetchArgs {
    /// The lockfile whose packages to fetch
    #[arg(long, default_value = "bareboat.lock")]
    lockfile: PathBuf,
    #[command(flatten)]
    archive: ArchiveArgs,
}

pub async fn cmd_lock(args: LockArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let (spec, default_lock) = args.spec.load()?;
    let lock = Lock {
        spec,
        spec_name: args.spec.spec.clone(),
        lockfile: args.lockfile.clone().unwrap_or(default_lock),
        upgrade: match &args.upgrade {
            None => Upgrade::Nothing,
            Some(names) if names.is_empty() => Upgrade::All,
            Some(names) => Upgrade::Only(names.clone()),
        },
        fetch: !args.no_fetch,
    };
    // Registry options are read only for a spec that builds on an image.
    let registry = lock.spec.base_image.is_some().then_some(&args.registry);
    let machinery = Machinery::new(cache_root, &args.archive, registry)?;
    let cx = machinery.context();
    if args.check {
        let report = lock.check(&cx).await?;
        if json {
            print_json(&report)?;
        } else {
            print_check(&report, &lock.spec_name);
        }
        return Ok(match report.current {
            true => ExitCode::SUCCESS,
            false => ExitCode::from(EXIT_STALE),
        });
    }
    let report = lock.run(&cx).await?;
    if json {
        print_json(&report)?;
    } else {
        print_lock(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_check(report: &CheckReport, spec: &str) {
    let path = report.lockfile.display();
    if report.current {
        println!("{path} is current ({} packages)", report.packages);
    } else if !report.exists {
        println!("{path} does not exist; run `bareboat lock {spec}`");
    } else {
        println!("{path} is out of date; `bareboat lock {spec}` would change:");
        print_changes(&report.changes, report.inputs_changed);
    }
}

fn print_lock(report: &LockReport) {
    println!(
        "Locked {} packages for {} {} in {:.2}s -> {}",
        report.packages.len(),
        report.release,
        report.arch.join(","),
        report.seconds,
        report.lockfile.display()
    );
    let width = report
        .packages
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &report.packages {
        let target = match report.arch.len() {
            1 => String::new(),
            _ => format!(" [{}]", p.target),
        };
        println!(
            "  {:width$}  {}{target}  ({})",
            p.name,
            p.version,
            p.reasons.join(", ")
        );
    }
    print_auto(&report.auto_deps);
    if !report.excluded.is_empty() {
        println!("Excluded:");
        for x in &report.excluded {
            println!("  {}: dropped {}", x.name, x.dropped.join("; "));
        }
    }
    if report.had_previous {
        print_changes(&report.changes, false);
    }
    if let Some(r) = &report.fetch {
        println!(
            "Fetched {} packages: {} downloaded ({}), {} already cached",
            r.packages,
            r.downloaded,
            human_bytes(r.downloaded_bytes),
            r.cached
        );
    }
}

pub async fn cmd_fetch(args: FetchArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let lock =
        Lockfile::read(&args.lockfile).with_context(|| "hint: create it with `bareboat lock`")?;
    let machinery = Machinery::new(cache_root, &args.archive, None)?;
    let report = pipeline::fetch(&lock, &args.lockfile, &machinery.context()).await?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "{} packages ready in {}: {} downloaded ({}), {} already cached",
            report.packages,
            machinery.cache().root().display(),
            report.downloaded,
            human_bytes(report.downloaded_bytes),
            report.cached
        );
    }
    Ok(ExitCode::SUCCESS)
}
