//! The bareboat command line: argument parsing, progress and output. The work happens in
//! the library crates.

mod analysis;
mod compare;
mod progress;
mod terminal;
mod vulns;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bareboat_apt::cache::Cache;
use bareboat_apt::download::Client;
use bareboat_apt::lockfile::{Change, Lockfile};
use bareboat_apt::sources::{Distribution, Mirrors};
use bareboat_build::base::Base;
use bareboat_build::build::{BuildOptions, build_arch};
use bareboat_build::catalog::{self, Variant};
use bareboat_build::deps::Found;
use bareboat_build::lock::{self, Settings, Upgrade};
use bareboat_build::spec::{FileSpec, Spec, SpecRef, image_path};
use bareboat_oci::credentials;
use bareboat_oci::image::write_index;
use bareboat_oci::layout::{Layout, write_atomic};
use bareboat_oci::media::Compression;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::referrer;
use bareboat_oci::registry::{MinRate, Registry, RegistryOptions, Remote};
use bareboat_oci::transport::{self, Fetch};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

/// Exit status when `lock --check` finds the lockfile out of date.
const EXIT_STALE: u8 = 3;

#[derive(Parser)]
#[command(
    name = "bareboat",
    version,
    about = "Build distroless container images from verified Debian packages",
    long_about = "bareboat builds distroless container images straight from Debian packages: only the \
application and the runtime files it needs, no shell, no package manager, no daemon, no root.",
    after_help = "Examples:\n  bareboat build catalog:static -o oci:out:static   build an image\n  \
bareboat lock catalog:static             lock the static image's packages\n  \
bareboat lock catalog:cc --arch arm64    the same for arm64\n  bareboat lock --check                    is bareboat.lock current?\n  \
bareboat catalog                         list the built-in images\n\n\
Exit status: 0 success, 1 error, 2 usage error, 3 `lock --check` found the lock out of date, \
4 `audit` or `scan` found what --fail-on names, 5 `scan --fail-on` could not see the image's packages."
)]
struct Cli {
    /// Cache directory [default: $XDG_CACHE_HOME/bareboat]
    #[arg(long, global = true, env = "BAREBOAT_CACHE", value_name = "DIR")]
    cache: Option<PathBuf>,

    /// Print machine-readable JSON on standard output
    #[arg(long, global = true)]
    json: bool,

    /// Log more (repeat for more detail); or set RUST_LOG
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a spec or a catalogue image
    #[command(
        after_help = "Examples:\n  bareboat build catalog:static -o oci:out:static\n  \
bareboat build catalog:cc:debug -o oci:out:cc-debug\n  \
bareboat build catalog:base --release bookworm -o oci:out:base-bookworm\n  \
bareboat build bareboat.toml -o oci:out:app --compression zstd\n  \
bareboat build --from catalog:cc --add target/release/server:/app/server --entrypoint /app/server -o oci:out:server\n  \
bareboat build --from catalog:cc --arch amd64,arm64 --add 'dist/{arch}/server:/app/server' --entrypoint /app/server -o oci:out:server\n  \
bareboat build --from docker://registry.example/base/cc:1 --add app:/app/app -o docker://registry.example/app:1\n  \
SOURCE_DATE_EPOCH=1700000000 bareboat build catalog:static -o oci:out:static   clamp file times"
    )]
    Build(Box<BuildArgs>),
    /// Resolve a spec into bareboat.lock and fetch its packages into the cache
    #[command(
        after_help = "Examples:\n  bareboat lock catalog:static\n  bareboat lock catalog:base --release bookworm --arch amd64,arm64\n  \
bareboat lock bareboat.toml --upgrade            move every package to its newest version\n  \
bareboat lock --upgrade libssl3t64               move one package\n  \
bareboat lock --check                            exit 3 if bareboat.lock would change\n  \
bareboat lock catalog:cc --offline               re-lock from the cache alone"
    )]
    Lock(LockArgs),
    /// Download the packages a lockfile names into the cache, verifying each
    #[command(
        after_help = "Examples:\n  bareboat fetch\n  bareboat fetch --lockfile ci/bareboat.lock --offline   fail if anything is missing"
    )]
    Fetch(FetchArgs),
    /// Inspect and maintain the package cache
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// List the built-in images, their variants, packages and sizes
    #[command(
        after_help = "Sizes come from resolving each image against the archive's indexes (cached after the first run): the .deb downloads, and Debian's Installed-Size before slicing drops documentation.\n\nExample:\n  bareboat catalog --release bookworm --arch arm64"
    )]
    Catalog(CatalogArgs),
    /// Show what programs and scripts need at run time, and which packages provide it
    #[command(
        after_help = "Each FILE is analysed as if added at DST (default /app/NAME): its ELF interpreter, \
DT_NEEDED libraries and RUNPATH, or its #! interpreter. Needs are looked up among the files \
given and in the archive's Contents index; what the base image already installs is not added.\n\n\
Example:\n  bareboat deps target/release/server --from catalog:cc"
    )]
    Deps(DepsArgs),
    /// Copy an image between layouts and archives, keeping its digest where the format allows
    #[command(
        after_help = "References: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], docker://REGISTRY/REPO[:TAG|@DIGEST].\n\n\
Examples:\n  bareboat copy oci:out:app docker-archive:app.tar:example.com/team/app:1.0   for docker load\n  \
bareboat copy oci:out:multi oci-archive:multi.tar:v1\n  \
bareboat copy --arch arm64 oci:out:multi docker-archive:app-arm64.tar:app:arm64\n  \
bareboat copy docker-archive:saved.tar oci:out:imported\n  \
bareboat copy oci:out:app docker://registry.example.com/team/app:1.0\n  \
bareboat copy --insecure docker://127.0.0.1:5000/team/app:1.0 oci:out:pulled"
    )]
    Copy(CopyArgs),
    /// Check and store credentials for a registry (where podman keeps them)
    #[command(
        after_help = "The password is read from standard input. Credentials go to $REGISTRY_AUTH_FILE, \
else $XDG_RUNTIME_DIR/containers/auth.json, else ~/.docker/config.json; pushes and pulls also \
read Docker's config.json and its credential helpers.\n\n\
Example:\n  echo \"$TOKEN\" | bareboat login ghcr.io -u me"
    )]
    Login(LoginArgs),
    /// Report what any image holds: config, layers, sizes, packages, waste
    #[command(
        after_help = "The image is read from any source, a layer at a time, each checked against its digest. The report lists the config, each layer's compressed and uncompressed size and what made it (the config's history), the largest directories and files, the packages (dpkg status, status.d, apk), files that later layers overwrite or delete with the bytes they waste, and content repeated across layers.\n\nExamples:\n  bareboat inspect oci:out:app\n  bareboat inspect docker://registry.example.com/team/app:1.0 --arch arm64 --json\n  \
bareboat inspect oci:out:app --tree /etc"
    )]
    Inspect(analysis::InspectArgs),
    /// Find what a distroless image must not have: shells, package managers, setuid files, root, secrets
    #[command(
        after_help = "Each finding has an id, a severity and the path. Rules: shell and package-manager (high) where programs are run from; debug-shell (low) for busybox in /busybox, as debug variants declare; setuid (high); root-user (medium); world-writable without the sticky bit (medium); secret (critical: private keys and tokens, also in files a later layer hides); no-package-metadata (high: scanners cannot see the packages); docs (low).\n\nExit status: 0, or 4 when --fail-on SEVERITY names a severity that a finding reaches.\n\nExamples:\n  bareboat audit oci:out:app\n  bareboat audit --fail-on high docker://registry.example.com/team/app:1.0"
    )]
    Audit(analysis::AuditArgs),
    /// Write the SBOM of any image, or fetch the one attached to a pushed image
    #[command(
        after_help = "With IMAGE, the SBOM lists the packages the image's own database names (dpkg status, status.d or apk installed), with purls for the distribution its os-release names and the licences of its machine-readable copyright files; an image without a database has none to list, which audit reports as no-package-metadata.

With --from-registry, the SBOM fetched is the one bareboat build --sbom pushed as an OCI referrer of the image: through the registry's referrers API, or, where it has none, in the index tagged sha256-<hex of the image's digest>.

Examples:
  bareboat sbom docker://registry.example.com/team/app:1.0 > app.spdx.json
  bareboat sbom oci:out:static --format cyclonedx -o static.cdx.json
  bareboat sbom --from-registry docker://registry.example.com/team/app:1.0 > app.spdx.json
  bareboat sbom --from-registry docker://registry.example.com/team/app:1.0 --format cyclonedx --arch arm64 -o app.cdx.json"
    )]
    Sbom(SbomArgs),
    /// Report an image's known vulnerabilities, offline, from the Debian Security Tracker
    #[command(
        after_help = "Each package is matched by its source package and the release codename of the image's os-release, and its source version compared with the tracker's fix in dpkg's order. Reported: issues open in the release, issues fixed in a later version than the image has (with that version), undetermined ones, and unimportant ones (severity negligible). Urgency maps to severity: unimportant negligible, low, medium, high; not yet assigned and end-of-life unknown. An image without a package database is reported as unscannable, never as clean.\n\nThe data comes from `bareboat db update`, or --db FILE.\n\nExit status: 0; 4 when --fail-on SEVERITY names a severity a vulnerability reaches; 5 with --fail-on when no package could be matched.\n\nExamples:\n  bareboat db update && bareboat scan oci:out:app\n  bareboat scan --fail-on high docker://registry.example.com/team/app:1.0\n  bareboat scan --db tracker.json --json oci-archive:app.tar"
    )]
    Scan(vulns::ScanArgs),
    /// Put images side by side: sizes, layers, packages, files, audit findings, vulnerabilities
    #[command(
        after_help = "Each image is read as inspect reads it and audited; its vulnerabilities are counted when there is data (--db FILE, or the cache's from `bareboat db update`). The table goes to standard output (or --json); --html FILE also writes one self-contained page with bar charts of size, package count, vulnerabilities and findings per image, which loads nothing from the network.\n\nExamples:\n  bareboat compare docker-archive:fat.tar oci:out:cc\n  bareboat compare docker://registry.example.com/app:fat oci:out:app --html report.html"
    )]
    Compare(compare::CompareArgs),
    /// Manage the vulnerability data scan reads
    Db {
        #[command(subcommand)]
        command: vulns::DbCommand,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["image", "from_registry"])))]
struct SbomArgs {
    /// The image to describe: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:NAME:TAG] or docker://REGISTRY/REPO[:TAG|@DIGEST]
    image: Option<String>,
    /// The pushed image whose attached SBOM to fetch (docker://REGISTRY/REPO[:TAG|@DIGEST])
    #[arg(long, value_name = "REF")]
    from_registry: Option<String>,
    /// Which SBOM
    #[arg(long, value_enum, default_value = "spdx")]
    format: SbomFormat,
    /// The platform, for a multi-platform image
    #[arg(long, default_value = "amd64")]
    arch: String,
    /// Write it here instead of standard output
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Args)]
struct LoginArgs {
    /// The registry host, with its port if any
    registry: String,
    /// The user name
    #[arg(short, long)]
    username: String,
    #[command(flatten)]
    registry_args: RegistryArgs,
}

#[derive(Args)]
struct CopyArgs {
    /// The image to read
    source: String,
    /// Where to write it
    destination: String,
    /// Copy only this architecture's image out of a multi-platform one
    #[arg(long)]
    arch: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SbomFormat {
    Spdx,
    Cyclonedx,
}

impl SbomFormat {
    fn extension(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "spdx.json",
            SbomFormat::Cyclonedx => "cdx.json",
        }
    }

    /// The artifact type an SBOM of this format is attached under.
    fn media_type(self) -> &'static str {
        match self {
            SbomFormat::Spdx => "application/spdx+json",
            SbomFormat::Cyclonedx => "application/vnd.cyclonedx+json",
        }
    }

    fn document(self, sbom: &bareboat_sbom::Sbom) -> Result<Vec<u8>> {
        let document = match self {
            SbomFormat::Spdx => sbom.spdx(),
            SbomFormat::Cyclonedx => sbom.cyclonedx(),
        };
        Ok(serde_json::to_vec_pretty(&document)?)
    }
}

#[derive(Args)]
struct RegistryArgs {
    /// Talk to registries over plain HTTP, for a local test registry
    #[arg(long)]
    insecure: bool,
    /// Trust this CA certificate (PEM) for registries, besides the system's (repeat)
    #[arg(long = "ca-cert", value_name = "FILE")]
    ca_certs: Vec<PathBuf>,
    /// Registry credentials, USER:PASSWORD
    #[arg(
        long,
        env = "BAREBOAT_REGISTRY_CREDS",
        value_name = "USER:PASSWORD",
        hide_env_values = true
    )]
    creds: Option<String>,
    /// How many blobs to push or pull at once
    #[arg(long, default_value_t = 4)]
    registry_jobs: usize,
    /// Stop (and retry) a blob transfer slower than BYTES a second over each SECONDS
    #[arg(
        long,
        env = "BAREBOAT_MIN_RATE",
        value_name = "BYTES/SECONDS",
        default_value = "32000/60"
    )]
    min_rate: MinRate,
}

impl RegistryArgs {
    fn options(&self) -> Result<RegistryOptions> {
        let creds = match &self.creds {
            Some(c) => {
                let (user, password) = c
                    .split_once(':')
                    .ok_or_else(|| anyhow!("--creds: expected USER:PASSWORD"))?;
                Some((user.to_string(), password.to_string()))
            }
            None => None,
        };
        let ca_certs = self
            .ca_certs
            .iter()
            .map(|p| std::fs::read(p).with_context(|| format!("--ca-cert {}", p.display())))
            .collect::<Result<Vec<_>>>()?;
        Ok(RegistryOptions {
            insecure: self.insecure,
            ca_certs,
            creds,
            jobs: self.registry_jobs,
            progress: Some(std::sync::Arc::new(progress::Blobs::new())),
            min_rate: self.min_rate,
        })
    }
}

#[derive(Subcommand)]
enum CacheCommand {
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

#[derive(Args)]
struct ArchiveArgs {
    /// Debian archive mirror [default: from the host's apt configuration]
    #[arg(long, env = "BAREBOAT_MIRROR", value_name = "URL")]
    mirror: Option<String>,
    /// Debian security mirror [default: from the host's apt configuration]
    #[arg(long, env = "BAREBOAT_SECURITY_MIRROR", value_name = "URL")]
    security_mirror: Option<String>,
    /// Trust this keyring (binary or armored) instead of Debian's embedded archive keys
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Accept Release files past their Valid-Until (snapshot mirrors serve a fixed date)
    #[arg(long)]
    no_check_valid_until: bool,
    /// Use only the cache; fail clearly on anything missing
    #[arg(long)]
    offline: bool,
    /// Parallel downloads
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
}

/// The spec a command reads when none is named.
const DEFAULT_SPEC: &str = "bareboat.toml";

#[derive(Args)]
struct SpecArgs {
    /// A spec file or catalog:NAME[:VARIANT]
    #[arg(default_value = DEFAULT_SPEC)]
    spec: String,
    /// Release for catalogue specs: trixie (13) or bookworm (12)
    #[arg(long)]
    release: Option<String>,
    /// Architectures for catalogue specs, comma-separated
    #[arg(long, value_delimiter = ',')]
    arch: Vec<String>,
}

#[derive(Args)]
struct BuildArgs {
    #[command(flatten)]
    spec: SpecArgs,
    /// Where to write the image: oci:DIR[:TAG], oci-archive:FILE[:TAG],
    /// docker-archive:FILE[:NAME:TAG] or docker://REGISTRY/REPO[:TAG] (repeat for several)
    #[arg(short, long = "output", value_name = "REF", required = true)]
    output: Vec<String>,
    /// Lockfile to use [default: bareboat.lock beside a spec file; a catalogue image is
    /// resolved afresh]
    #[arg(long)]
    lockfile: Option<PathBuf>,
    /// Layer compression: gzip, zstd, or none (plain tar)
    #[arg(long, default_value = "gzip")]
    compression: Compression,
    /// The most layers an image may have
    #[arg(long = "layers", default_value_t = 12, value_parser = clap::value_parser!(u16).range(1..=127))]
    max_layers: u16,
    /// Clamp every file time to this (seconds since the epoch)
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    source_date_epoch: Option<u64>,
    /// Write SBOMs beside each layout and archive output, and attach them to layouts and
    /// pushed images as OCI referrers: spdx (SPDX 2.3 JSON), cyclonedx (CycloneDX 1.6
    /// JSON), or both, comma-separated
    #[arg(long, value_delimiter = ',', value_name = "FORMATS")]
    sbom: Vec<SbomFormat>,
    #[command(flatten)]
    app: AppArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    #[command(flatten)]
    archive: ArchiveArgs,
}

/// An application on top of the spec, from the command line.
#[derive(Args)]
struct AppArgs {
    /// Start from this image instead of a spec file: catalog:NAME[:VARIANT], or any image
    /// (docker://REGISTRY/REPO[:TAG], oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE),
    /// whose Debian packages count as installed
    #[arg(long, value_name = "IMAGE")]
    from: Option<String>,
    /// Add a host file, directory or glob at an image path, in the top layer (repeat);
    /// {arch} in SRC becomes each image's architecture
    #[arg(long, value_name = "SRC:DST")]
    add: Vec<String>,
    /// The program the image starts
    #[arg(long, value_name = "PATH")]
    entrypoint: Option<String>,
    /// An argument for the entrypoint (repeat for several)
    #[arg(long = "cmd", value_name = "ARG")]
    cmd: Vec<String>,
    /// Do not add the packages that added programs and scripts need
    #[arg(long)]
    no_auto_deps: bool,
    /// Carry the static health probe /usr/local/bin/health checking this URL, and set it as
    /// the Docker HEALTHCHECK (http://HOST[:PORT]/PATH, tcp://HOST:PORT or file:///PATH)
    #[arg(long, value_name = "URL")]
    health: Option<String>,
}

impl AppArgs {
    /// Applies the command line on top of `spec`.
    fn apply(&self, spec: &mut Spec) -> Result<()> {
        for add in &self.add {
            let (src, dst) = add
                .rsplit_once(':')
                .filter(|(s, _)| !s.is_empty())
                .and_then(|(s, d)| Some((s, image_path(d)?)))
                .ok_or_else(|| {
                    anyhow!("--add {add:?}: expected SRC:DST with DST an absolute path inside the image, such as target/release/server:/app/server")
                })?;
            spec.files.push(FileSpec {
                src: PathBuf::from(src),
                dst,
                mode: None,
                uid: 0,
                gid: 0,
            });
        }
        if let Some(e) = &self.entrypoint {
            spec.run.entrypoint = Some(vec![e.clone()]);
        }
        if !self.cmd.is_empty() {
            spec.run.cmd = Some(self.cmd.clone());
        }
        if self.no_auto_deps {
            spec.auto_deps = false;
        }
        if let Some(h) = &self.health {
            bareboat_build::probe::check_target(h).map_err(|e| anyhow!("--health: {e}"))?;
            spec.run.health = Some(h.clone());
        }
        Ok(())
    }
}

#[derive(Args)]
struct LockArgs {
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
struct DepsArgs {
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

#[derive(Args)]
struct CatalogArgs {
    /// Release whose package sets to show: trixie (13) or bookworm (12)
    #[arg(long, default_value = "trixie")]
    release: String,
    /// Architecture to size the images for
    #[arg(long, default_value = "amd64")]
    arch: String,
    #[command(flatten)]
    archive: ArchiveArgs,
}

#[derive(Args)]
struct FetchArgs {
    /// The lockfile whose packages to fetch
    #[arg(long, default_value = "bareboat.lock")]
    lockfile: PathBuf,
    #[command(flatten)]
    archive: ArchiveArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,bareboat=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .init();
}

fn run(cli: Cli) -> Result<ExitCode> {
    let cache_root = cli.cache.clone().unwrap_or_else(Cache::default_root);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Build(args) => runtime.block_on(cmd_build(*args, &cache_root, cli.json)),
        Command::Lock(args) => runtime.block_on(cmd_lock(args, &cache_root, cli.json)),
        Command::Fetch(args) => runtime.block_on(cmd_fetch(args, &cache_root, cli.json)),
        Command::Cache { command } => cmd_cache(command, &cache_root, cli.json),
        Command::Catalog(args) => runtime.block_on(cmd_catalog(args, &cache_root, cli.json)),
        Command::Deps(args) => runtime.block_on(cmd_deps(args, &cache_root, cli.json)),
        Command::Copy(args) => runtime.block_on(cmd_copy(args, &cache_root, cli.json)),
        Command::Login(args) => runtime.block_on(cmd_login(args, cli.json)),
        Command::Sbom(args) => runtime.block_on(cmd_sbom(args, &cache_root, cli.json)),
        Command::Inspect(args) => {
            runtime.block_on(analysis::cmd_inspect(args, &cache_root, cli.json))
        }
        Command::Audit(args) => runtime.block_on(analysis::cmd_audit(args, &cache_root, cli.json)),
        Command::Compare(args) => {
            runtime.block_on(compare::cmd_compare(args, &cache_root, cli.json))
        }
        Command::Scan(args) => runtime.block_on(vulns::cmd_scan(args, &cache_root, cli.json)),
        Command::Db { command } => runtime.block_on(vulns::cmd_db(command, &cache_root, cli.json)),
    }
}

async fn cmd_sbom(args: SbomArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    // The image described, the document, and the artifact it was fetched as, if it was.
    let (subject, document, artifact) = match (&args.image, &args.from_registry) {
        (Some(image), _) => {
            let options = args.registry.options()?;
            let (report, fs) =
                analysis::read_image(image, &args.arch, &options, cache_root).await?;
            let sbom = bareboat_inspect::sbom::of_image(&report, &fs);
            (report.image, args.format.document(&sbom)?, None)
        }
        (None, Some(reference)) => {
            let (subject, document, artifact) = fetch_sbom(&args, reference).await?;
            (subject, document, Some(artifact))
        }
        (None, None) => unreachable!("clap requires IMAGE or --from-registry"),
    };
    let wanted = args.format.media_type();
    let Some(path) = &args.output else {
        std::io::stdout().write_all(&document)?;
        return Ok(ExitCode::SUCCESS);
    };
    write_atomic(path, &document)?;
    if json {
        print_json(&json!({
            "image": subject,
            "sbom": artifact,
            "media_type": wanted,
            "file": path,
        }))?;
    } else {
        let from = artifact.map(|a| format!(", {a}")).unwrap_or_default();
        println!("Wrote {} ({wanted}{from}) for {subject}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The SBOM attached to the pushed image `reference`: the image's platform manifest
/// digest, the document, and the artifact's digest. Only what is read is fetched: the
/// documents, and the SBOM's one layer.
async fn fetch_sbom(args: &SbomArgs, reference: &str) -> Result<(String, Vec<u8>, String)> {
    let ImageRef::Docker { name, digest } = reference.parse()? else {
        bail!(
            "--from-registry {reference}: expected docker://REGISTRY/REPO[:TAG|@DIGEST]\n  hint: to describe a layout or archive, give it as IMAGE: bareboat sbom {reference}"
        );
    };
    let client = Registry::new(&args.registry.options()?, &name.registry)?;
    let (remote, top) = Remote::open(client, &name, digest.as_ref()).await?;
    let image = bareboat_oci::model::Index::pick(&remote, &top, &args.arch)?;
    let subject = image.digest().to_string();
    let wanted = args.format.media_type();
    let artifact = remote
        .referrers_of(&image)?
        .into_iter()
        .filter(|d| d.artifact_type().as_ref().is_some_and(|t| t.to_string() == wanted))
        .max_by_key(|d| {
            let created = d.annotations().as_ref().and_then(|a| a.get("org.opencontainers.image.created"));
            created.cloned().unwrap_or_default()
        })
        .with_context(|| {
            format!(
                "no {wanted} SBOM refers to {}@{subject}\n  hint: build with --sbom {} and push with -o docker://..., or describe the image itself: bareboat sbom {reference}",
                name.full(),
                args.format.extension().trim_end_matches(".json")
            )
        })?;
    let document = referrer::content(&remote, &artifact)?;
    Ok((subject, document, artifact.digest().to_string()))
}

async fn cmd_copy(args: CopyArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let source: ImageRef = args.source.parse()?;
    let destination: ImageRef = args.destination.parse()?;
    let registry = args.registry.options()?;
    let cache = Cache::open(cache_root)?;
    let source = transport::open(&source, &cache.root().join("tmp"), &registry, Fetch::Whole)
        .await
        .with_context(|| format!("reading {}", args.source))?;
    let sink = transport::sink(&destination, &registry)?;
    let written = transport::write(&*source.blobs, &source.top, &*sink, args.arch.as_deref())
        .await
        .with_context(|| format!("writing {}", args.destination))?;
    let digest = written.top.digest().to_string();
    if json {
        print_json(&json!({
            "source": args.source,
            "destination": args.destination,
            "digest": digest,
            "push": written.push,
        }))?;
    } else {
        println!("Copied {digest} -> {}", args.destination);
        if let Some(p) = &written.push {
            print_push(p);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_login(args: LoginArgs, json: bool) -> Result<ExitCode> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!(
            "no password on standard input\n  hint: echo \"$PASSWORD\" | bareboat login {} -u {}",
            args.registry,
            args.username
        );
    }
    let creds = (args.username.clone(), password);
    let mut opts = args.registry_args.options()?;
    opts.creds = Some(creds.clone());
    Registry::new(&opts, &args.registry)?
        .check_login(&args.registry)
        .await?;
    let file = credentials::login_file()?;
    credentials::store(&file, &args.registry, &creds)?;
    if json {
        print_json(&json!({ "registry": args.registry, "file": file }))?;
    } else {
        println!(
            "Logged in to {}; credentials in {}",
            args.registry,
            file.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn settings(args: &ArchiveArgs) -> Result<Settings> {
    let mut mirrors = Mirrors::from_host(Path::new("/"))?;
    if let Some(m) = &args.mirror {
        mirrors.archive = Some(m.trim_end_matches('/').to_string());
    }
    if let Some(m) = &args.security_mirror {
        mirrors.security = Some(m.trim_end_matches('/').to_string());
    }
    Ok(Settings {
        mirrors,
        keyring: args.keyring.clone(),
        check_valid_until: !args.no_check_valid_until,
        offline: args.offline,
        jobs: usize::from(args.jobs),
    })
}

/// Loads the spec a reference names, and the default lockfile path that goes with it.
fn load_spec(args: &SpecArgs) -> Result<(Spec, PathBuf)> {
    let release = || Distribution::parse(args.release.as_deref().unwrap_or("trixie"));
    let arch = || -> Result<Vec<String>> {
        let arch = if args.arch.is_empty() {
            vec!["amd64".to_string()]
        } else {
            args.arch.clone()
        };
        for a in &arch {
            if !bareboat_build::spec::ARCHES.contains(&a.as_str()) {
                bail!(
                    "unsupported architecture {a:?}; use one of {}",
                    bareboat_build::spec::ARCHES.join(", ")
                );
            }
        }
        Ok(arch)
    };
    match SpecRef::parse(&args.spec) {
        SpecRef::Catalog { name, variant } => Ok((
            catalog::spec(&name, variant.as_deref(), release()?, arch()?)?,
            PathBuf::from("bareboat.lock"),
        )),
        SpecRef::Image(image) => Ok((
            Spec::on_image(&image, release()?, arch()?)?,
            PathBuf::from("bareboat.lock"),
        )),
        SpecRef::File(path) => {
            if !path.exists() {
                bail!(
                    "spec {} not found.\nhint: write a bareboat.toml (see `bareboat lock --help`), or lock a built-in image: `bareboat lock catalog:static`",
                    path.display()
                );
            }
            if args.release.is_some() || !args.arch.is_empty() {
                bail!(
                    "--release and --arch apply to catalog: specs; set `release` and `arch` in {} instead",
                    path.display()
                );
            }
            let spec = Spec::read(&path)?;
            let lock = path
                .parent()
                .unwrap_or(Path::new("."))
                .join("bareboat.lock");
            Ok((spec, lock))
        }
    }
}

async fn cmd_lock(args: LockArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let (spec, default_lock) = load_spec(&args.spec)?;
    let lock_path = args.lockfile.clone().unwrap_or(default_lock);
    let settings = settings(&args.archive)?;
    let previous = if lock_path.exists() {
        Some(Lockfile::read(&lock_path)?)
    } else {
        None
    };
    let upgrade = match &args.upgrade {
        None => Upgrade::Nothing,
        Some(names) if names.is_empty() => Upgrade::All,
        Some(names) => Upgrade::Only(names.clone()),
    };
    let cache = Cache::open(cache_root)?;
    let client = Client::new();
    let source = open_base(&spec, &args.registry, &cache).await?;
    let base = source.as_ref().map(|(name, s)| base_of(name, s));
    let bar = progress::Bar::new("indexes");
    let resolution = lock::resolve(
        &spec,
        base.as_ref(),
        &settings,
        previous.as_ref(),
        &upgrade,
        &client,
        &cache,
        &bar,
    )
    .await?;
    let new = resolution.lock;
    bar.finish();
    let changes = previous.as_ref().map(|p| p.diff(&new)).unwrap_or_default();

    if args.check {
        let current = previous.as_ref().is_some_and(|p| p.same_resolution(&new));
        if json {
            print_json(&json!({
                "lockfile": lock_path, "current": current, "changes": changes,
            }))?;
        } else if current {
            println!(
                "{} is current ({} packages)",
                lock_path.display(),
                new.packages.len()
            );
        } else if previous.is_none() {
            println!(
                "{} does not exist; run `bareboat lock {}`",
                lock_path.display(),
                args.spec.spec
            );
        } else {
            println!(
                "{} is out of date; `bareboat lock {}` would change:",
                lock_path.display(),
                args.spec.spec
            );
            print_changes(
                &changes,
                previous
                    .as_ref()
                    .is_some_and(|p| p.requested != new.requested || p.exclude != new.exclude),
            );
        }
        return Ok(if current {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_STALE)
        });
    }

    new.write(&lock_path)?;
    let fetched = if args.no_fetch {
        None
    } else {
        let bar = progress::Bar::new("packages");
        let report = lock::fetch(&new, &settings, &client, &cache, &bar).await?;
        bar.finish();
        cache.record_use(&lock_path, &new.sha256s())?;
        Some(report)
    };
    let elapsed = started.elapsed();
    if json {
        print_json(&json!({
            "lockfile": lock_path,
            "release": new.release,
            "arch": new.arch,
            "sources": new.sources,
            "packages": new.packages,
            "excluded": new.exclusions,
            "auto_deps": auto_json(&resolution.auto),
            "changes": changes,
            "fetch": fetched,
            "seconds": elapsed.as_secs_f64(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Locked {} packages for {} {} in {:.2}s -> {}",
        new.packages.len(),
        new.release,
        new.arch.join(","),
        elapsed.as_secs_f64(),
        lock_path.display()
    );
    let width = new.packages.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in &new.packages {
        let target = if new.arch.len() > 1 {
            format!(" [{}]", p.target)
        } else {
            String::new()
        };
        println!(
            "  {:width$}  {}{target}  ({})",
            p.name,
            p.version,
            p.reasons.join(", ")
        );
    }
    print_auto(&resolution.auto);
    if !new.exclusions.is_empty() {
        println!("Excluded:");
        for x in &new.exclusions {
            println!("  {}: dropped {}", x.name, x.dropped.join("; "));
        }
    }
    if previous.is_some() {
        print_changes(&changes, false);
    }
    if let Some(r) = fetched {
        println!(
            "Fetched {} packages: {} downloaded ({}), {} already cached",
            r.packages,
            r.downloaded,
            human_bytes(r.downloaded_bytes),
            r.cached
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_build(args: BuildArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let outputs = args
        .output
        .iter()
        .map(|o| o.parse::<ImageRef>())
        .collect::<Result<Vec<_>, _>>()?;
    let registry = args.registry.options()?;
    let sinks = outputs
        .iter()
        .map(|o| transport::sink(o, &registry))
        .collect::<Result<Vec<_>, _>>()?;

    let spec_args = match &args.app.from {
        Some(from) if args.spec.spec != DEFAULT_SPEC => {
            bail!(
                "give a spec ({}) or --from {from}, not both",
                args.spec.spec
            )
        }
        Some(from) => SpecArgs {
            spec: from.clone(),
            release: args.spec.release.clone(),
            arch: args.spec.arch.clone(),
        },
        None => args.spec,
    };
    let (mut spec, default_lock) = load_spec(&spec_args)?;
    args.app.apply(&mut spec)?;
    if spec.arch.len() > 1
        && let Some(i) = sinks.iter().position(|s| !s.holds_several_platforms())
    {
        bail!(
            "{} holds one platform's image, and this build makes {}\n  hint: write oci: or oci-archive: for a multi-arch image, or build one --arch",
            args.output[i],
            spec.arch.join(" and ")
        );
    }
    let is_file = matches!(SpecRef::parse(&spec_args.spec), SpecRef::File(_));
    let lock_path = args.lockfile.clone().or(is_file.then_some(default_lock));
    let settings = settings(&args.archive)?;
    let cache = Cache::open(cache_root)?;
    let client = Client::new();
    let source = open_base(&spec, &args.registry, &cache).await?;
    let base = source.as_ref().map(|(name, s)| base_of(name, s));
    let mut auto = Vec::new();
    let lock = match &lock_path {
        Some(path) if path.exists() => {
            let lock = Lockfile::read(path)?;
            let requested: Vec<String> = spec.packages.iter().map(ToString::to_string).collect();
            if lock.requested != requested
                || lock.exclude != spec.exclude
                || lock.arch != spec.arch
                || lock.base != base.as_ref().map(Base::digest)
            {
                bail!(
                    "{} was made for other packages, excludes, architectures or base image than the spec asks for\nhint: run `bareboat lock {}` to bring it up to date",
                    path.display(),
                    spec_args.spec
                );
            }
            lock
        }
        _ => {
            let bar = progress::Bar::new("indexes");
            let resolution =
                lock::resolve_fresh(&spec, base.as_ref(), &settings, &client, &cache, &bar).await?;
            bar.finish();
            if let Some(path) = &lock_path {
                resolution.lock.write(path)?;
            }
            if !json {
                print_auto(&resolution.auto);
            }
            auto = resolution.auto;
            resolution.lock
        }
    };
    let bar = progress::Bar::new("packages");
    lock::fetch(&lock, &settings, &client, &cache, &bar).await?;
    bar.finish();
    if let Some(path) = &lock_path {
        cache.record_use(path, &lock.sha256s())?;
    }
    let opts = BuildOptions {
        compression: args.compression,
        source_date_epoch: args.source_date_epoch,
        max_layers: usize::from(args.max_layers),
        sbom: !args.sbom.is_empty(),
        ..BuildOptions::default()
    };
    // The first layout output is built into directly; archives are written from it, or
    // from a scratch layout when there is none.
    let primary = outputs
        .iter()
        .position(|o| matches!(o, ImageRef::Oci { .. }));
    let scratch = tempfile::Builder::new()
        .prefix("bareboat-build-")
        .tempdir_in(cache.root().join("tmp"))?;
    let pending = match primary.map(|i| &outputs[i]) {
        Some(ImageRef::Oci { dir, .. }) => Layout::pending(dir)?,
        _ => Layout::pending(&scratch.path().join("layout"))?,
    };
    let layout = pending.layout();
    let mut images = Vec::new();
    for arch in &spec.arch {
        let base_image = base.as_ref().map(|b| b.image(arch)).transpose()?;
        images.push(build_arch(
            &spec,
            &lock,
            arch,
            &cache,
            layout,
            &opts,
            base_image.as_ref(),
        )?);
    }
    let top = if images.len() == 1 {
        images[0].manifest.clone()
    } else {
        write_index(layout, images.iter().map(|i| i.manifest.clone()).collect())?
    };
    // SBOMs ride along as referrers of each platform's image, into every output that
    // keeps them.
    for image in &images {
        let Some(sbom) = &image.sbom else { continue };
        for format in &args.sbom {
            let bytes = format.document(sbom)?;
            referrer::write_artifact(
                layout,
                &image.manifest,
                format.media_type(),
                &bytes,
                &sbom.created,
            )?;
        }
    }
    if let Some(ImageRef::Oci { tag, .. }) = primary.map(|i| &outputs[i]) {
        layout.tag(&top, std::slice::from_ref(tag))?;
    }
    let layout = pending.commit()?;
    let mut pushes = Vec::new();
    for (i, sink) in sinks.iter().enumerate() {
        if Some(i) != primary {
            let written = transport::write(&layout, &top, &**sink, None)
                .await
                .with_context(|| format!("writing {}", args.output[i]))?;
            pushes.extend(written.push);
        }
    }
    let sboms = write_sboms(&outputs, &images, &args.sbom)?;
    let elapsed = started.elapsed();
    if json {
        print_json(&json!({
            "digest": top.digest().to_string(),
            "media_type": top.media_type().to_string(),
            "outputs": args.output,
            "auto_deps": auto_json(&auto),
            "pushes": pushes,
            "sboms": sboms,
            "base": base.as_ref().map(|b| json!({"name": b.name, "digest": b.digest()})),
            "images": images.iter().map(|i| json!({
                "arch": i.arch,
                "manifest": i.manifest.digest().to_string(),
                "packages": i.packages,
                "base_layers": i.base_layers,
                "resumed_layers": i.resumed_layers,
                "layers": i.layers,
            })).collect::<Vec<_>>(),
            "seconds": elapsed.as_secs_f64(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for image in &images {
        let size: u64 = image.layers.iter().map(|l| l.size).sum();
        let unpacked: u64 = image.layers.iter().map(|l| l.uncompressed_size).sum();
        let resumed = match image.resumed_layers {
            0 => String::new(),
            n => format!(" ({n} unpacked by an earlier build)"),
        };
        let on_base = match &base {
            Some(b) => format!(" on {} base layers of {}", image.base_layers, b.name),
            None => String::new(),
        };
        println!(
            "{} {}: {} packages, {} layers{resumed}{on_base}, {} compressed, {} unpacked",
            image.arch,
            image.manifest.digest(),
            image.packages,
            image.layers.len(),
            human_bytes(size),
            human_bytes(unpacked)
        );
        for l in &image.layers {
            println!("  {:>10}  {}", human_bytes(l.size), l.created_by);
        }
    }
    for p in &pushes {
        print_push(p);
    }
    println!(
        "Built {} in {:.2}s -> {}",
        top.digest(),
        elapsed.as_secs_f64(),
        args.output.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// Opens the image a spec builds on, if it names one: read in place, or pulled into the
/// cache's scratch space, every blob checked. Returns the base's name with it.
async fn open_base(
    spec: &Spec,
    registry: &RegistryArgs,
    cache: &Cache,
) -> Result<Option<(String, transport::Source)>> {
    let Some(image) = &spec.base_image else {
        return Ok(None);
    };
    let name = match image {
        ImageRef::Docker { name, digest } => match digest {
            Some(d) => format!("{}@{d}", name.full()),
            None => name.full(),
        },
        ImageRef::Oci { dir, tag } => format!("oci:{}:{tag}", dir.display()),
        ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. } => {
            file.display().to_string()
        }
    };
    let options = registry.options()?;
    let source = transport::open(image, &cache.root().join("tmp"), &options, Fetch::Whole)
        .await
        .with_context(|| format!("opening the base image {name}"))?;
    Ok(Some((name, source)))
}

/// The base `source`, named `name`, as the build takes it.
fn base_of<'a>(name: &str, source: &'a transport::Source) -> bareboat_build::base::Base<'a> {
    bareboat_build::base::Base {
        name: name.to_string(),
        source: &*source.blobs,
        top: source.top.clone(),
    }
}

fn print_push(p: &bareboat_oci::registry::PushReport) {
    let mounted = match p.mounted_blobs {
        0 => String::new(),
        n => format!(", {n} mounted from the base's repository"),
    };
    let referrers = match p.referrers {
        0 => String::new(),
        n => format!(", {n} SBOMs attached"),
    };
    println!(
        "Pushed {}: {} blobs uploaded ({}), {} already there{mounted}{referrers}",
        p.digest,
        p.uploaded_blobs,
        human_bytes(p.uploaded_bytes),
        p.skipped_blobs
    );
}

/// Writes each image's SBOM in each format beside every layout and archive output, as
/// `PATH.spdx.json` (`PATH.ARCH.spdx.json` for a multi-arch build); returns the paths.
fn write_sboms(
    outputs: &[ImageRef],
    images: &[bareboat_build::build::BuiltImage],
    formats: &[SbomFormat],
) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for output in outputs {
        let base = match output {
            ImageRef::Oci { dir, .. } => dir,
            ImageRef::OciArchive { file, .. } | ImageRef::DockerArchive { file, .. } => file,
            ImageRef::Docker { .. } => continue,
        };
        for (image, sbom) in images.iter().filter_map(|i| Some((i, i.sbom.as_ref()?))) {
            for format in formats {
                let document = format.document(sbom)?;
                let arch = if images.len() > 1 {
                    format!(".{}", image.arch)
                } else {
                    String::new()
                };
                let mut name = base.as_os_str().to_owned();
                name.push(format!("{arch}.{}", format.extension()));
                let path = PathBuf::from(name);
                write_atomic(&path, &document)?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

/// Prints a `--json` report.
fn print_json<T: serde::Serialize + ?Sized>(report: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

fn print_changes(changes: &[Change], inputs_changed: bool) {
    if inputs_changed {
        println!("  (the requested packages or excludes changed)");
    }
    if changes.is_empty() {
        println!("No version changes.");
    } else {
        println!("Changes:");
        for c in changes {
            println!("  {c}");
        }
    }
}

async fn cmd_fetch(args: FetchArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let lock =
        Lockfile::read(&args.lockfile).with_context(|| "hint: create it with `bareboat lock`")?;
    let settings = settings(&args.archive)?;
    let cache = Cache::open(cache_root)?;
    let client = Client::new();
    let bar = progress::Bar::new("packages");
    let report = lock::fetch(&lock, &settings, &client, &cache, &bar).await?;
    bar.finish();
    cache.record_use(&args.lockfile, &lock.sha256s())?;
    if json {
        print_json(&report)?;
    } else {
        println!(
            "{} packages ready in {}: {} downloaded ({}), {} already cached",
            report.packages,
            cache.root().display(),
            report.downloaded,
            human_bytes(report.downloaded_bytes),
            report.cached
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_cache(command: CacheCommand, root: &Path, json: bool) -> Result<ExitCode> {
    match command {
        CacheCommand::Dir => println!("{}", root.display()),
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
        }
        CacheCommand::Export { file, lockfile } => {
            let cache = Cache::open(root)?;
            let only = match &lockfile {
                Some(l) => Some(
                    Lockfile::read(l)?
                        .packages
                        .into_iter()
                        .map(|p| p.sha256)
                        .collect::<Vec<_>>(),
                ),
                None => None,
            };
            let n = cache.export(&file, only.as_deref())?;
            if json {
                println!("{}", json!({ "file": file, "entries": n }));
            } else {
                println!("Exported {n} cache entries to {}", file.display());
            }
        }
        CacheCommand::Import { file } => {
            let cache = Cache::open_exclusive(root)?;
            let n = cache.import(&file)?;
            if json {
                println!("{}", json!({ "file": file, "entries": n }));
            } else {
                println!("Imported {n} cache entries into {}", root.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_catalog(args: CatalogArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let release = Distribution::parse(&args.release)?;
    if !bareboat_build::spec::ARCHES.contains(&args.arch.as_str()) {
        bail!(
            "unsupported architecture {:?}; use one of {}",
            args.arch,
            bareboat_build::spec::ARCHES.join(", ")
        );
    }
    let settings = settings(&args.archive)?;
    let cache = Cache::open(cache_root)?;
    let client = Client::new();
    let bar = progress::Bar::new("indexes");
    let mut rows = Vec::new();
    for image in catalog::IMAGES {
        if image.own_packages(release).is_none() {
            continue;
        }
        let spec = catalog::spec(image.name, None, release, vec![args.arch.clone()])?;
        let lock = lock::resolve_fresh(&spec, None, &settings, &client, &cache, &bar)
            .await
            .with_context(|| format!("resolving catalog:{}", image.name))?
            .lock;
        rows.push((image, spec, lock));
    }
    bar.finish();
    let variants: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
    if json {
        let images: Vec<_> = rows
            .iter()
            .map(|(i, spec, lock)| {
                let packages: Vec<_> = lock
                    .packages
                    .iter()
                    .map(|p| json!({"name": p.name, "version": p.version, "size": p.size, "installed_size": p.installed_size}))
                    .collect();
                json!({
                    "name": i.name,
                    "parent": i.parent,
                    "summary": i.summary,
                    "release": release.codename(),
                    "arch": args.arch,
                    "variants": variants,
                    "requested": spec.packages.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "exclude": spec.exclude,
                    "dropped": i.exclude.iter().map(|(name, why)| json!({"package": name, "why": why})).collect::<Vec<_>>(),
                    "entrypoint": spec.run.entrypoint,
                    "packages": packages,
                    "download_size": lock.packages.iter().map(|p| p.size).sum::<u64>(),
                    "installed_size": lock.packages.iter().map(|p| p.installed_size).sum::<u64>(),
                })
            })
            .collect();
        print_json(&images)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "Catalogue images for Debian {} ({release}, {}); variants: {}",
        release.version(),
        args.arch,
        variants.join(", ")
    );
    println!(
        "  {:<20} {:>8} {:>10} {:>10}  summary",
        "image", "packages", "debs", "installed"
    );
    for (i, _, lock) in &rows {
        let download = lock.packages.iter().map(|p| p.size).sum();
        let installed = lock.packages.iter().map(|p| p.installed_size).sum();
        println!(
            "  {:<20} {:>8} {:>10} {:>10}  {}",
            format!("catalog:{}", i.name),
            lock.packages.len(),
            human_bytes(download),
            human_bytes(installed),
            i.summary
        );
        let parent = i.parent.map(|p| format!("{p} + ")).unwrap_or_default();
        println!(
            "  {:20} requests: {parent}{}",
            "",
            i.own_packages(release).unwrap_or_default().join(" ")
        );
        for (name, why) in i.exclude {
            println!("  {:20} drops {name}: {why}", "");
        }
    }
    println!("  debug variants add busybox-static; installed sizes are before slicing");
    Ok(ExitCode::SUCCESS)
}

async fn cmd_deps(args: DepsArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let spec_args = SpecArgs {
        spec: args.from.clone(),
        release: args.release.clone(),
        arch: args.arch.clone(),
    };
    if !matches!(SpecRef::parse(&args.from), SpecRef::Catalog { .. }) {
        bail!("--from {:?}: expected catalog:NAME[:VARIANT]", args.from);
    }
    let (mut spec, _) = load_spec(&spec_args)?;
    let add: Vec<String> = args
        .files
        .iter()
        .map(|f| match f.rsplit_once(':') {
            Some((_, dst)) if dst.starts_with('/') => f.clone(),
            _ => {
                let name = Path::new(f)
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy();
                format!("{f}:/app/{name}")
            }
        })
        .collect();
    AppArgs {
        from: None,
        add,
        entrypoint: None,
        cmd: Vec::new(),
        no_auto_deps: false,
        health: None,
    }
    .apply(&mut spec)?;
    let settings = settings(&args.archive)?;
    let cache = Cache::open(cache_root)?;
    let client = Client::new();
    let bar = progress::Bar::new("indexes");
    let resolution = lock::resolve_fresh(&spec, None, &settings, &client, &cache, &bar).await?;
    bar.finish();
    if json {
        print_json(&json!({
            "base": args.from,
            "files": resolution.analysis,
            "auto_deps": auto_json(&resolution.auto),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for a in &resolution.analysis {
        use bareboat_build::deps::FileKind;
        match &a.kind {
            FileKind::Static { arch } => println!("{}: static {arch} ELF", a.path),
            FileKind::Dynamic {
                arch,
                interpreter,
                needed,
                search,
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
    for (arch, found) in &resolution.auto {
        for line in found
            .already_installed
            .iter()
            .chain(&found.satisfied_by_added)
        {
            println!("  [{arch}] {line}");
        }
    }
    print_auto(&resolution.auto);
    Ok(ExitCode::SUCCESS)
}

/// What auto-deps found, per architecture, as JSON.
fn auto_json(auto: &[(String, Found)]) -> serde_json::Value {
    auto.iter()
        .map(|(arch, found)| (arch.clone(), json!(found)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Says what auto-deps added and why, and what it noticed.
fn print_auto(auto: &[(String, Found)]) {
    for (arch, found) in auto {
        let arch = if auto.len() > 1 {
            format!(" [{arch}]")
        } else {
            String::new()
        };
        if found.packages.is_empty() {
            println!("Auto-deps{arch}: the added files need no packages beyond the base");
        }
        for (package, why) in &found.packages {
            println!("Auto-deps{arch}: + {package} ({})", why.join("; "));
        }
        for note in &found.notes {
            println!("  note: {note}");
        }
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
