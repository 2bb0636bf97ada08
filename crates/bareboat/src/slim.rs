//! `bareboat slim`: the arguments, and the report printed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use bareboat_build::build::BuildOptions;
use bareboat_oci::media::Compression;
use bareboat_slim::plan::{Copied, NO_LEVEL, Options};
use bareboat_slim::probe::Probe;
use bareboat_slim::slim::{Error, Probing, Slim, SlimReport};
use clap::Args;

use crate::args::{ArchiveArgs, Machinery, RegistryArgs};
use crate::compare::{counting_data, print_table};
use crate::output::print_json;
use crate::terminal::say;

/// The exit status of a slim whose probes gave another result in the slim image.
pub const EXIT_PROBE_DIFFERS: u8 = 8;

/// How many lines of each list the text report shows; `--json` gives them all.
const SHOWN: usize = 12;

#[derive(Args)]
pub struct SlimArgs {
    /// The image to slim: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:NAME:TAG] or docker://REGISTRY/REPO[:TAG|@DIGEST]
    source: String,
    /// Where to write the slim image, in the same syntax (repeat for several)
    #[arg(short, long = "output", value_name = "REF", required = true)]
    output: Vec<String>,
    /// The platform, for a multi-platform image
    #[arg(long, default_value = "amd64")]
    arch: String,
    /// Keep what this glob matches (relative to the root), with everything under it,
    /// whatever the analysis finds (repeatable)
    #[arg(long, value_name = "GLOB")]
    keep: Vec<String>,
    /// Keep setuid and setgid bits, which otherwise go
    #[arg(long)]
    keep_setuid: bool,
    /// Run as this user (numeric, or a name the image's /etc/passwd lists) [default: the
    /// source's, or 65532 for a source that runs as root]
    #[arg(long)]
    user: Option<String>,
    /// Run this command (split at spaces, no shell) in the source, as its user, in place of
    /// its entrypoint and command, and keep what it opens, executes or looks at; then run
    /// it in the slim image, which fails the slim unless its exit status is the same
    /// (repeatable; needs root)
    #[arg(long, value_name = "CMD")]
    probe: Vec<String>,
    /// Start the source's own command (a server), ask it for this URL
    /// (http://127.0.0.1:PORT/PATH) once it listens, and keep what it touched; the slim
    /// image must answer with the same status and body (repeatable; needs root)
    #[arg(long, value_name = "URL")]
    http_probe: Vec<String>,
    /// The port --http-probe waits for [default: the URL's]
    #[arg(long, value_name = "PORT")]
    probe_port: Option<u16>,
    /// Add this variable to the environment probes run with (repeatable)
    #[arg(long, value_name = "NAME=VALUE")]
    probe_env: Vec<String>,
    /// How long one probe may take
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    probe_timeout: u64,
    /// Run this command in both images and fail the slim unless its exit status is the
    /// same, keeping nothing it touches: a check of a slim made by the static pass and
    /// --keep (repeatable; needs root)
    #[arg(long, value_name = "CMD")]
    verify_probe: Vec<String>,
    /// The tracker's JSON data to count vulnerabilities with, before and after [default:
    /// the cache's, if `bareboat db update` fetched it]
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Layer compression: gzip, zstd, or none (plain tar)
    #[arg(long, default_value = "gzip")]
    compression: Compression,
    /// Clamp every file time to this (seconds since the epoch)
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

pub async fn cmd_slim(args: SlimArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let vulnerabilities = counting_data(args.db.as_deref(), cache_root)?;
    let machinery = Machinery::new(cache_root, &args.archive, Some(&args.registry))?;
    let slim = Slim {
        source: args.source,
        outputs: args.output,
        arch: args.arch,
        keep: args.keep,
        options: Options {
            keep_setuid: args.keep_setuid,
            user: args.user,
        },
        build: BuildOptions {
            compression: args.compression,
            source_date_epoch: args.source_date_epoch,
            ..BuildOptions::default()
        },
        vulnerabilities,
        probing: Probing {
            record: (args.probe.iter().map(|p| Probe::command(p)))
                .chain(
                    args.http_probe
                        .iter()
                        .map(|u| Probe::http(u, args.probe_port)),
                )
                .collect::<Result<_, _>>()?,
            verify: (args.verify_probe.iter().map(|p| Probe::command(p)))
                .collect::<Result<_, _>>()?,
            env: args.probe_env,
            timeout: Duration::from_secs(args.probe_timeout),
        },
    };
    let report = match slim.run(&machinery.context()).await {
        Err(error @ Error::Differs { .. }) => {
            eprintln!("Error: {error}");
            return Ok(ExitCode::from(EXIT_PROBE_DIFFERS));
        }
        report => report?,
    };
    for note in &report.notes {
        eprintln!("warning: {note}");
    }
    for m in &report.missing {
        eprintln!(
            "warning: {} needs {}, which the source image lacks too",
            m.by, m.need
        );
    }
    if json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &SlimReport) {
    let plan = &report.plan;
    match plan.level.as_str() {
        NO_LEVEL => say!(
            "Slimmed {} ({}, {}): its files carried as they are, on no catalogue level",
            report.source,
            report.arch,
            plan.release
        ),
        level => say!(
            "Slimmed {} ({}, Debian {}) onto catalog:{level}",
            report.source,
            report.arch,
            plan.release
        ),
    }
    say!();
    print_table(
        &[report.before.clone(), report.after.clone()],
        report.before.not_scanned != Some("no vulnerability data"),
    );
    say!();
    let (whole, sliced): (Vec<_>, Vec<_>) = plan.packages.iter().partition(|p| p.from_catalogue);
    say!(
        "Packages: {} that catalog:{} brings, {} sliced to what is needed:",
        whole.len(),
        plan.level,
        sliced.len()
    );
    for p in &sliced {
        say!("  {} {} ({} paths)", p.name, p.version, p.paths.len());
    }
    let why = |path: &str| {
        report
            .needed
            .get(path)
            .map(|w| w.join("; "))
            .unwrap_or_default()
    };
    say!("Copied from the image: {}", plan.copied.len());
    for c in plan.copied.iter().take(SHOWN) {
        let origin = match &c.origin {
            Copied::Unowned => "no package's".to_string(),
            Copied::ModifiedInImage(p) => format!("modified in image ({p}'s)"),
            Copied::Package(p) => format!("{p}'s, carried"),
        };
        say!("  {}  {origin}: {}", c.path, why(&c.path));
    }
    more(plan.copied.len());
    let mut dropped: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for d in &plan.dropped {
        dropped.entry(&d.reason).or_default().push(&d.path);
    }
    for (reason, paths) in dropped {
        say!("Left out, {reason}: {}", paths.len());
        for p in paths.iter().take(SHOWN) {
            say!("  {p}");
        }
        more(paths.len());
    }
    if !plan.setuid_stripped.is_empty() {
        say!(
            "Setuid and setgid bits removed (--keep-setuid keeps them): {}",
            plan.setuid_stripped.join(", ")
        );
    }
    for p in &report.probes {
        say!("Probe {}: {} in both", p.source.probe, p.slim.summary());
    }
    let user = &plan.user;
    match &user.note {
        Some(note) => say!("User: {} (source: {:?}): {note}", user.slim, user.source),
        None => say!("User: {} (source: {:?})", user.slim, user.source),
    }
    say!(
        "Built {} in {:.2}s -> {}",
        report.build.digest,
        report.build.seconds,
        report.build.outputs.join(", ")
    );
}

fn more(total: usize) {
    if total > SHOWN {
        say!("  ... and {} more (--json lists them all)", total - SHOWN);
    }
}
