//! The bareboat command line: argument parsing, progress and output. The work happens in
//! the library crates.

mod analysis;
mod args;
mod build;
mod catalog;
mod compare;
mod debug;
mod images;
mod key;
mod lock;
mod output;
mod progress;
mod rebase;
mod rebuild;
mod resolve;
mod signing;
mod slim;
mod terminal;
mod vulns;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use bareboat_apt::cache::Cache;
use clap::{Parser, Subcommand};

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
Exit status: 0 success, 1 error, 2 usage error, 3 `lock --check` found the lock out of date (or `rebase --check` a base that moved), \
4 `audit` or `scan` found what --fail-on names, 5 `scan --fail-on` could not see the image's packages, \
6 `verify` found no valid signature (or attestation, or the policy failed), 7 `rebuild` did not reproduce the digest, \
8 a `slim` probe gave another result in the slim image."
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
SOURCE_DATE_EPOCH=1700000000 bareboat build catalog:static -o oci:out:static   clamp file times\n  \
bareboat build app.toml -o docker://registry.example/app:1 --cache-to docker://registry.example/cache:main --cache-sign-key env://CACHE_KEY\n  \
bareboat build app.toml -o docker://registry.example/app:pr --cache-from docker://registry.example/cache:main --cache-verify-key cache.pub"
    )]
    Build(Box<build::BuildArgs>),
    /// Resolve a spec into bareboat.lock and fetch its packages into the cache
    #[command(
        after_help = "Examples:\n  bareboat lock catalog:static\n  bareboat lock catalog:base --release bookworm --arch amd64,arm64\n  \
bareboat lock bareboat.toml --upgrade            move every package to its newest version\n  \
bareboat lock --upgrade libssl3t64               move one package\n  \
bareboat lock --check                            exit 3 if bareboat.lock would change\n  \
bareboat lock catalog:cc --offline               re-lock from the cache alone"
    )]
    Lock(lock::LockArgs),
    /// Download the packages a lockfile names into the cache, verifying each
    #[command(
        after_help = "Examples:\n  bareboat fetch\n  bareboat fetch --lockfile ci/bareboat.lock --offline   fail if anything is missing"
    )]
    Fetch(lock::FetchArgs),
    /// Inspect and maintain the package cache
    Cache {
        #[command(subcommand)]
        command: catalog::CacheCommand,
    },
    /// List the built-in images, their variants, packages and sizes
    #[command(
        after_help = "Sizes come from resolving each image against the archive's indexes (cached after the first run): the .deb downloads, and Debian's Installed-Size before slicing drops documentation.\n\nExample:\n  bareboat catalog --release bookworm --arch arm64"
    )]
    Catalog(catalog::CatalogArgs),
    /// Show what programs and scripts need at run time, and which packages provide it
    #[command(
        after_help = "Each FILE is analysed as if added at DST (default /app/NAME): its ELF interpreter, \
DT_NEEDED libraries and RUNPATH, or its #! interpreter. Needs are looked up among the files \
given and in the archive's Contents index; what the base image already installs is not added. \
The image is put together in scratch, and each program's symbol versions (GLIBC_2.38, say) checked against the \
libraries it would hold: a program that could not start is reported, with the fix.\n\n\
Example:\n  bareboat deps target/release/server --from catalog:cc"
    )]
    Deps(catalog::DepsArgs),
    /// Copy an image between layouts and archives, keeping its digest where the format allows
    #[command(
        after_help = "References: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG], docker://REGISTRY/REPO[:TAG|@DIGEST].\n\n\
Examples:\n  bareboat copy oci:out:app docker-archive:app.tar:example.com/team/app:1.0   for docker load\n  \
bareboat copy oci:out:multi oci-archive:multi.tar:v1\n  \
bareboat copy --arch arm64 oci:out:multi docker-archive:app-arm64.tar:app:arm64\n  \
bareboat copy docker-archive:saved.tar oci:out:imported\n  \
bareboat copy oci:out:app docker://registry.example.com/team/app:1.0\n  \
bareboat copy --insecure docker://127.0.0.1:5000/team/app:1.0 oci:out:pulled\n\n\
What is attached to the image comes along, to every kind of destination: its referrers of the artifact \
types bareboat knows (SBOMs, signatures, attestations, VEX), or with --all-referrers every one, and cosign's \
legacy sha256-<hex>.sig and .att images. Of each manifest, at most 64 \
referrers holding at most 64 MiB are followed; past that the copy fails."
    )]
    Copy(images::CopyArgs),
    /// Sign an image with a cosign-compatible key, wherever it is
    #[command(
        after_help = "Each manifest the image consists of (an index and each platform's image) is signed, in \
both of cosign's schemes unless --signature-format chooses one: a Sigstore bundle v0.3 stored as an OCI 1.1 referrer \
(cosign 3's default), and a simple-signing layer in the image tagged sha256-<hex>.sig (what older verifiers read). \
Signatures are attached where the image is: a layout lists them in index.json, an archive keeps them inside without \
disturbing docker load, podman load or skopeo, and a registry gets them through the referrers API or the \
sha256-<hex> tag. Of a registry image only its manifest is fetched. Signing is deterministic: signing again with the \
same key writes nothing.\n\n\
Keyed signatures have no transparency-log entry: verify them with `bareboat verify`, or \
`cosign verify --key cosign.pub --insecure-ignore-tlog=true IMAGE`.\n\n\
Examples:\n  bareboat key generate\n  bareboat sign --key cosign.key docker://registry.example.com/team/app:1.0\n  \
bareboat sign --key env://SIGNING_KEY --signature-format bundle oci:out:app\n  \
bareboat sign --key cosign.key --identity registry.example.com/team/app oci-archive:app.tar"
    )]
    Sign(signing::SignArgs),
    /// Attest a predicate (SLSA provenance, an SBOM, anything) about an image, signed with a key
    #[command(
        after_help = "The predicate is wrapped in an in-toto v1 Statement about the image's digest and signed as a DSSE \
envelope, stored as cosign stores attestations: a Sigstore bundle referrer with the dev.sigstore.bundle.predicateType \
annotation, and a layer of the image tagged sha256-<hex>.att (--signature-format chooses).\n\n\
Examples:\n  bareboat attest --key cosign.key --type slsaprovenance1 --predicate provenance.json oci:out:app\n  \
bareboat attest --key cosign.key --type openvex --predicate app.vex.json docker://registry.example.com/team/app:1.0\n  \
bareboat attest --key cosign.key --type custom --predicate review.json docker://registry.example.com/team/app:1.0"
    )]
    Attest(signing::AttestArgs),
    /// Check an image's signatures with a public key
    #[command(
        after_help = "Signatures are looked for in both of cosign's schemes. The image passes when at least one \
signature is valid: made by the key, over this image's own digest. Each signature found is listed with why it \
is not valid, if it is not.\n\n\
With --attestation TYPE, attestations of that type are checked instead: each one's signature, and that its statement \
is about this image's digest. A --policy FILE (TOML) can require attestation types, predicate fields, the origin of every \
resolved dependency, and a recent build; every check is reported.\n\n\
Exit status: 0 verified; 6 nothing is signed, no signature or attestation is valid, or the policy failed; 1 the image \
could not be read.\n\n\
Examples:\n  bareboat verify --key cosign.pub docker://registry.example.com/team/app:1.0\n  \
bareboat verify --key cosign.pub --attestation slsaprovenance1 --policy policy.toml oci:out:app\n  \
bareboat verify --key cosign.pub --platform-only --arch arm64 oci:out:app\n  \
bareboat verify --key cosign.pub --json oci-archive:app.tar"
    )]
    Verify(signing::VerifyArgs),
    /// Build the images Kubernetes YAML names as bareboat://SPEC, push them, and write the YAML with their digests
    #[command(
        after_help = "Every scalar bareboat://SPEC (SPEC a catalogue image or a spec file) in the YAML (multi-document files, \
Helm values, any nesting) is built once, pushed to --repo REGISTRY/PREFIX as PREFIX/NAME, and replaced by \
REGISTRY/PREFIX/NAME@sha256:…; --pin replaces the tag references of `image` keys with the digest their tag names \
now. Each reference is replaced where it is, byte for byte: comments, anchors, quoting and flow style stay as they \
were. Nothing is written unless every reference resolves.\n\n\
Examples:\n  bareboat resolve -f deploy/ --repo registry.example.com/team -o resolved/\n  \
bareboat resolve -f app.yaml --repo registry.example.com/team --pin --sign cosign.key | kubectl apply -f -"
    )]
    Resolve(resolve::ResolveArgs),
    /// Put an image's own layers on another base, without rebuilding them
    #[command(
        after_help = "The old base is the one the image's org.opencontainers.image.base.name and base.digest \
annotations name (bareboat records them when it builds on a base), or --old-base. Its layers must be the image's \
first; they are replaced by the new base's, and the config's history and rootfs.diff_ids, the base annotations and \
the SBOMs (of the formats the image had) follow. Refused when the new base installs a package the image's own layers \
install too, or when a program of the image needs symbol versions the new base's libraries lack.\n\n\
--check says whether the base's tag now names another image, and which packages changed; exit 3 when a rebase is \
due.\n\n\
Examples:\n  bareboat rebase oci:out:app --onto docker://registry.example.com/base/cc:2 -o oci:out:app-rebased\n  \
bareboat rebase --check docker://registry.example.com/team/app:1.0"
    )]
    Rebase(rebase::RebaseArgs),
    /// Build an image again from its SLSA provenance and compare the digests
    #[command(
        after_help = "The newest SLSA provenance attested about the image (verified with --key, else read as it says) gives \
the spec and application options, the lockfile, SOURCE_DATE_EPOCH and the compression. Its lockfile must name each .deb \
with the SHA256 its resolvedDependencies give; where a source serves the InRelease the provenance names (a snapshot \
archive given with --mirror, however old), each package must be in its signed indexes. The added files come from the \
image's own layer, each checked against its SHA256 in the provenance. The image is built again, and the digests compared; \
when they differ, the first layer that differs, and the first file in it, are named.\n\n\
Exit status: 0 reproduced; 7 not reproduced; 6 no valid provenance; 1 an error.\n\n\
Examples:\n  bareboat rebuild --key cosign.pub docker://registry.example.com/team/app:1.0\n  \
bareboat rebuild --key cosign.pub --mirror http://snapshot.example/archive/debian/20261201T000000Z oci:out:app"
    )]
    Rebuild(rebuild::RebuildArgs),
    /// Make and read cosign-compatible signing keys
    Key {
        #[command(subcommand)]
        command: key::KeyCommand,
    },
    /// Turn an existing image into a distroless one, from verified Debian packages
    #[command(
        after_help = "The source's application is found without running anything of it: the program its entrypoint \
starts, that program's libraries as the image's own loader finds them, #! interpreters, the language runtimes' \
library trees (Python's prefix, sys.path, pyvenv.cfg and .pth files; Node's node_modules; the JVM's lib/ and the \
jars a command line or a MANIFEST.MF Class-Path names; Ruby's and PHP's), the files the command line names, and the \
files under the working directory, /app, /srv, /opt and /usr/local that no package owns. What packages own is \
installed again from the archive, verified, at the versions the image has, sliced to what is needed, on the \
catalogue level (static, base-nossl, base, cc or a runtime) that covers it; a package file whose MD5 differs from \
its package's is copied from the image and reported as modified. Shells and package managers go unless the \
entrypoint runs one, setuid bits go unless --keep-setuid, and a source that ran as root runs as 65532. The static pass executes nothing of the source. --probe and --http-probe run it, as root, under runc from a tmpfs of its own, record what it \
opens, executes or looks at (fanotify and strace) and keep that too; the slim image must then give the same exit status, or HTTP status and body. The report compares the two images as `bareboat compare` does.\n\n\
Examples:\n  bareboat slim docker-archive:app.tar -o oci:out:app-slim\n  \
bareboat slim docker://registry.example.com/team/app:1.0 -o docker://registry.example.com/team/app:1.0-slim --keep 'usr/lib/app/plugins/**'\n  \
bareboat slim oci:fat:web -o oci:out:web --http-probe http://127.0.0.1:8080/healthz --probe '/app/server --self-test'\n\n\
Exit status: 0 slimmed; 8 a probe gave another result in the slim image (nothing is written); 1 an error."
    )]
    Slim(slim::SlimArgs),
    /// Debug a running container or an image with a toolbox of Debian packages
    #[command(
        after_help = "The toolbox (busybox, and the packages --with names) is built from verified Debian \
packages for the target's release and this machine's architecture, cached by its lockfile. It runs in the \
target's PID, network, IPC and UTS namespaces, as root with CAP_SYS_PTRACE (or --as-target-user), with \
the toolbox as its read-only root: the target's files are at /target (/proc/1/root) and are never written, \
and nothing of the session outlives it. An image is debugged beside its files, mounted read-only at \
/target, with its config's environment and working directory. Needs root.\n\n\
Examples:\n  bareboat debug runc:web\n  bareboat debug docker:web --with strace,curl -- strace -p 1\n  \
bareboat debug podman:web --as-target-user\n  bareboat debug pid:4242\n  \
bareboat debug oci:out:app                        an image that will not start\n  \
bareboat debug docker://registry.example/app:1 -- ls -l /target/app\n  \
bareboat debug --print-kubectl web-0 -c app -n shop --push docker://registry.example/tools/debug:1\n  \
bareboat debug --print-kubectl web-0 -c app --pod-security restricted --toolbox docker://registry.example/tools/debug:1"
    )]
    Debug(Box<debug::DebugArgs>),
    /// Check and store credentials for a registry (where podman keeps them)
    #[command(
        after_help = "The password is read from standard input. Credentials go to $REGISTRY_AUTH_FILE, \
else $XDG_RUNTIME_DIR/containers/auth.json, else ~/.docker/config.json; pushes and pulls also \
read Docker's config.json and its credential helpers.\n\n\
Example:\n  echo \"$TOKEN\" | bareboat login ghcr.io -u me"
    )]
    Login(images::LoginArgs),
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
    /// Write the SBOM of any image, or fetch the one attached to it
    #[command(
        after_help = "With IMAGE, the SBOM lists the packages the image's own database names (dpkg status, status.d or apk installed), with purls for the distribution its os-release names and the licences of its machine-readable copyright files; an image without a database has none to list, which audit reports as no-package-metadata.

With --attached (or --from-registry), the SBOM is the one bareboat build --sbom attached to the image as an OCI referrer, wherever the image is: a layout lists it in index.json, an archive inside itself, a registry through its referrers API or, where it has none, in the index tagged sha256-<hex of the image's digest>.

Examples:
  bareboat sbom docker://registry.example.com/team/app:1.0 > app.spdx.json
  bareboat sbom oci:out:static --format cyclonedx -o static.cdx.json
  bareboat sbom --attached docker://registry.example.com/team/app:1.0 > app.spdx.json
  bareboat sbom --attached oci-archive:app.tar --format cyclonedx --arch arm64 -o app.cdx.json"
    )]
    Sbom(images::SbomArgs),
    /// Report an image's known vulnerabilities, offline, from the Debian Security Tracker
    #[command(
        after_help = "Each package is matched by its source package and the release codename of the image's os-release, and its source version compared with the tracker's fix in dpkg's order. Reported: issues open in the release, issues fixed in a later version than the image has (with that version), undetermined ones, and unimportant ones (severity negligible). Urgency maps to severity: unimportant negligible, low, medium, high; not yet assigned and end-of-life unknown. An image without a package database is reported as unscannable, never as clean.\n\nThe data comes from `bareboat db update`, or --db FILE.\n\nExit status: 0; 4 when --fail-on SEVERITY names a severity a vulnerability reaches; 5 with --fail-on when no package could be matched.\n\nExamples:\n  bareboat db update && bareboat scan oci:out:app\n  bareboat scan --fail-on high docker://registry.example.com/team/app:1.0\n  bareboat scan --db tracker.json --json oci-archive:app.tar"
    )]
    Scan(vulns::ScanArgs),
    /// Write an OpenVEX document of what the tracker's data means for an image
    #[command(
        after_help = "Each vulnerability the tracker's data has for a package of the image, in the image's release, gets a statement about the image (pkg:oci/NAME@sha256:…?repository_url=…, as trivy --vex oci matches it) and that package (pkg:deb/debian/NAME@VERSION?arch=ARCH): affected with what to do, fixed with the fixed version, or under_investigation. not_affected is stated only with evidence from the image: vulnerable_code_not_present when a --rules rule names the paths a CVE's code is in and none is in the image (the paths checked are in status_notes), component_not_present when the tracker's source package has no binary in the image though a package in it depends on one. The document is the same for the same image, data and rules, but for its timestamp (SOURCE_DATE_EPOCH, when set).\n\nExamples:\n  bareboat vex oci:out:app --rules vex-rules.toml -o app.vex.json\n  trivy image --vex app.vex.json registry.example.com/team/app:1.0\n  grype registry.example.com/team/app:1.0 --vex app.vex.json\n  bareboat scan --vex app.vex.json oci:out:app"
    )]
    Vex(vulns::VexArgs),
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
        Command::Build(args) => runtime.block_on(build::cmd_build(*args, &cache_root, cli.json)),
        Command::Lock(args) => runtime.block_on(lock::cmd_lock(args, &cache_root, cli.json)),
        Command::Fetch(args) => runtime.block_on(lock::cmd_fetch(args, &cache_root, cli.json)),
        Command::Cache { command } => catalog::cmd_cache(command, &cache_root, cli.json),
        Command::Catalog(args) => {
            runtime.block_on(catalog::cmd_catalog(args, &cache_root, cli.json))
        }
        Command::Deps(args) => runtime.block_on(catalog::cmd_deps(args, &cache_root, cli.json)),
        Command::Key { command } => key::cmd_key(command, cli.json),
        Command::Sign(args) => runtime.block_on(signing::cmd_sign(args, &cache_root, cli.json)),
        Command::Resolve(args) => {
            runtime.block_on(resolve::cmd_resolve(args, &cache_root, cli.json))
        }
        Command::Rebase(args) => runtime.block_on(rebase::cmd_rebase(args, &cache_root, cli.json)),
        Command::Rebuild(args) => {
            runtime.block_on(rebuild::cmd_rebuild(args, &cache_root, cli.json))
        }
        Command::Attest(args) => runtime.block_on(signing::cmd_attest(args, &cache_root, cli.json)),
        Command::Verify(args) => runtime.block_on(signing::cmd_verify(args, &cache_root, cli.json)),
        Command::Slim(args) => runtime.block_on(slim::cmd_slim(args, &cache_root, cli.json)),
        Command::Debug(args) => runtime.block_on(debug::cmd_debug(*args, &cache_root, cli.json)),
        Command::Copy(args) => runtime.block_on(images::cmd_copy(args, &cache_root, cli.json)),
        Command::Login(args) => runtime.block_on(images::cmd_login(args, cli.json)),
        Command::Sbom(args) => runtime.block_on(images::cmd_sbom(args, &cache_root, cli.json)),
        Command::Inspect(args) => {
            runtime.block_on(analysis::cmd_inspect(args, &cache_root, cli.json))
        }
        Command::Audit(args) => runtime.block_on(analysis::cmd_audit(args, &cache_root, cli.json)),
        Command::Compare(args) => {
            runtime.block_on(compare::cmd_compare(args, &cache_root, cli.json))
        }
        Command::Scan(args) => runtime.block_on(vulns::cmd_scan(args, &cache_root, cli.json)),
        Command::Vex(args) => runtime.block_on(vulns::cmd_vex(args, &cache_root)),
        Command::Db { command } => runtime.block_on(vulns::cmd_db(command, &cache_root, cli.json)),
    }
}
