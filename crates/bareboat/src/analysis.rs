//! The commands that look inside any image: `inspect` (its report, as text or JSON) and
//! `audit` (its findings, with an exit status for CI).

use crate::terminal::say;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bareboat_apt::cache::Cache;
use bareboat_inspect::Severity;
use bareboat_inspect::audit::AuditReport;
use bareboat_inspect::filesystem::{Filesystem, Kind};
use bareboat_inspect::inspect::{Report, inspect_with_filesystem};
use bareboat_oci::reference::ImageRef;
use bareboat_oci::registry::RegistryOptions;
use clap::Args;

use crate::args::RegistryArgs;
use crate::output::{human_bytes, print_json};
use bareboat_oci::model::Image;
use bareboat_oci::transport::{self, Fetch};

/// The image a command looks at.
#[derive(Args)]
pub struct ImageArgs {
    /// The image: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG]
    /// or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: String,
    /// The platform, for a multi-platform image
    #[arg(long, default_value = "amd64")]
    arch: String,
    #[command(flatten)]
    registry: RegistryArgs,
}

impl ImageArgs {
    /// The image as the command line names it.
    pub fn reference(&self) -> &str {
        &self.image
    }

    /// Opens the image and reads it whole.
    pub async fn read(&self, cache_root: &Path) -> Result<(Report, Filesystem)> {
        read_image(
            &self.image,
            &self.arch,
            &self.registry.options()?,
            cache_root,
        )
        .await
    }
}

/// Opens `image` (any source `transport` opens) and reads `arch`'s image whole.
pub async fn read_image(
    image: &str,
    arch: &str,
    registry: &RegistryOptions,
    cache_root: &Path,
) -> Result<(Report, Filesystem)> {
    let reference: ImageRef = image.parse()?;
    let cache = Cache::open(cache_root)?;
    let scratch = cache.root().join("tmp");
    let source = transport::open(&reference, &scratch, registry, Fetch::OnDemand)
        .await
        .with_context(|| format!("opening {image}"))?;
    let image_of = Image::open(&*source.blobs, &source.top, arch)
        .with_context(|| format!("reading {image}"))?;
    inspect_with_filesystem(&image_of).with_context(|| format!("reading {image}"))
}

#[derive(Args)]
pub struct InspectArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// List this directory as the finished image shows it
    #[arg(long, value_name = "PATH")]
    tree: Option<PathBuf>,
}

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    image: ImageArgs,
    /// Exit with status 4 when a finding is at least this severe
    #[arg(long, value_name = "SEVERITY", value_parser = ["critical", "high", "medium", "low", "negligible", "unknown"])]
    fail_on: Option<String>,
}

/// The exit status of an audit with findings at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 4;

pub async fn cmd_audit(args: AuditArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let (report, fs) = args.image.read(cache_root).await?;
    let audit = AuditReport::of(&report, &fs);
    if json {
        print_json(&audit)?;
    } else {
        let summary: Vec<String> = Severity::ALL
            .iter()
            .map(|s| format!("{} {}", s.name(), audit.counts[s.name()]))
            .collect();
        say!(
            "{}: {} findings ({})",
            audit.image,
            audit.findings.len(),
            summary.join(", ")
        );
        for f in &audit.findings {
            say!(
                "  {:<8} {:<20} {}  {}",
                f.severity.name().to_uppercase(),
                f.id,
                f.path.as_deref().unwrap_or("-"),
                f.message
            );
        }
    }
    let threshold = args.fail_on.as_deref().and_then(Severity::parse);
    let failed = threshold.is_some_and(|t| audit.findings.iter().any(|f| f.severity >= t));
    Ok(if failed {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn cmd_inspect(args: InspectArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let (report, fs) = args.image.read(cache_root).await?;
    if let Some(dir) = &args.tree {
        let dir = dir.to_string_lossy();
        let dir = bareboat_oci::overlay::normalize(&dir)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--tree {dir}: a path inside the image, such as /etc"))?;
        if !dir.is_empty() && !fs.view.get(&dir).is_some_and(|n| n.kind == Kind::Dir) {
            bail!("--tree /{dir}: the image has no directory there");
        }
        return print_tree(&fs, &dir, json);
    }
    if json {
        print_json(&report)?;
    } else {
        print_report(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_tree(fs: &Filesystem, dir: &str, json: bool) -> Result<ExitCode> {
    if json {
        print_json(&fs.tree(dir))?;
        return Ok(ExitCode::SUCCESS);
    }
    for (path, n) in fs.children(dir) {
        let name = path.rsplit('/').next().unwrap_or(path);
        let (kind, suffix) = match &n.kind {
            Kind::Dir => ('d', "/".to_string()),
            Kind::File => ('-', String::new()),
            Kind::Symlink(t) => ('l', format!(" -> {t}")),
            Kind::Hardlink(t) => ('h', format!(" => /{t}")),
            Kind::CharDevice => ('c', String::new()),
            Kind::BlockDevice => ('b', String::new()),
            Kind::Fifo => ('p', String::new()),
            Kind::Other => ('?', String::new()),
        };
        say!(
            "{kind}{:04o} {:>5}:{:<5} {:>10}  layer {:<2} {name}{suffix}",
            n.mode,
            n.uid,
            n.gid,
            human_bytes(n.size),
            n.layer
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How many wasted files the text report lists.
const SHOWN: usize = 10;

fn print_report(r: &Report) {
    say!(
        "Image {} ({}/{}){}",
        r.image,
        r.os,
        r.architecture,
        r.created
            .as_ref()
            .map(|c| format!(", created {c}"))
            .unwrap_or_default()
    );
    let c = &r.config;
    let user = if c.user.is_empty() {
        "0 (root, unset)"
    } else {
        &c.user
    };
    say!("  user {user}, workdir {}", or_none(&c.workdir));
    say!("  entrypoint {:?}, cmd {:?}", c.entrypoint, c.cmd);
    for e in &c.env {
        say!("  env {e}");
    }
    if !c.exposed_ports.is_empty() {
        say!("  ports {}", c.exposed_ports.join(", "));
    }
    print_sizes(r);
    print_packages(r);
    print_waste(r);
}

/// The image's sizes, its layers, and its largest directories and files.
fn print_sizes(r: &Report) {
    say!(
        "Size: {} compressed, {} uncompressed; {} files, {}",
        human_bytes(r.size),
        human_bytes(r.uncompressed_size),
        r.files,
        human_bytes(r.file_bytes)
    );
    say!("Layers:");
    for (i, l) in r.layers.iter().enumerate() {
        say!(
            "  {i:>2} {:>10} {:>10} {:>6} entries  {}",
            human_bytes(l.read.size),
            human_bytes(l.read.uncompressed_size),
            l.read.entries,
            l.created_by.as_deref().unwrap_or("(no history)")
        );
    }
    say!("Largest directories:");
    for d in &r.largest_dirs {
        say!("  {:>10}  {}", human_bytes(d.size), d.path);
    }
    say!("Largest files:");
    for f in &r.largest_files {
        say!("  {:>10}  {}", human_bytes(f.size), f.path);
    }
}

/// The packages its database lists.
fn print_packages(r: &Report) {
    if r.packages.is_empty() {
        say!(
            "Packages: none listed (no dpkg status, status.d or apk database): scanners cannot see what this image holds"
        );
    } else {
        say!("Packages ({}):", r.packages.len());
        for p in &r.packages {
            let source = p
                .source
                .as_ref()
                .filter(|s| **s != p.name)
                .map(|s| format!(" (source {s})"))
                .unwrap_or_default();
            say!("  {} {} {}{source}", p.name, p.version, p.architecture);
        }
    }
}

/// What later layers overwrite or delete, and content repeated across layers.
fn print_waste(r: &Report) {
    say!(
        "Wasted: {} in {} files that later layers overwrite or delete",
        human_bytes(r.wasted_bytes),
        r.waste.len()
    );
    // The biggest first; the JSON report has them all.
    let mut waste: Vec<_> = r.waste.iter().collect();
    waste.sort_by(|a, b| b.size.cmp(&a.size).then(a.path.cmp(&b.path)));
    if waste.len() > SHOWN {
        say!(
            "  (the {SHOWN} largest of {}; --json lists them all)",
            waste.len()
        );
    }
    for w in waste.into_iter().take(SHOWN) {
        say!(
            "  {:>10}  /{} (layer {}, {} by layer {})",
            human_bytes(w.size),
            w.path,
            w.layer,
            w.how,
            w.by_layer
        );
    }
    if !r.repeated.is_empty() {
        say!("Repeated content across layers:");
        for rep in &r.repeated {
            let copies: Vec<String> = rep
                .copies
                .iter()
                .map(|(layer, path)| format!("{path} (layer {layer})"))
                .collect();
            say!("  {:>10}  {}", human_bytes(rep.wasted), copies.join(", "));
        }
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}
