//! `bareboat debug`: a toolbox beside a running container, or beside an image.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use bareboat_build::pipeline::Context;
use bareboat_debug::environment;
use bareboat_debug::kubectl::{self, PodSecurity};
use bareboat_debug::session::{self, Attach, Session, User};
use bareboat_debug::target::{self, Process, Target};
use bareboat_debug::toolbox::{self, Toolbox};
use bareboat_oci::reference::ImageRef;
use clap::Args;

use crate::args::{ArchiveArgs, Machinery, RegistryArgs};
use crate::output::print_json;

#[derive(Args)]
pub struct DebugArgs {
    /// What to debug: runc:ID, podman:NAME, docker:NAME, pid:N (or N), or an image
    /// (oci:DIR:TAG, oci-archive:FILE, docker-archive:FILE, docker://REF)
    target: String,
    /// Debian packages to add to the toolbox, which always has busybox (comma-separated:
    /// strace,curl,gdb,procps,tcpdump)
    #[arg(long, value_delimiter = ',', value_name = "PKG")]
    with: Vec<String>,
    /// A prebuilt toolbox image to use instead of building one
    #[arg(long, value_name = "IMAGE", conflicts_with = "with")]
    toolbox: Option<String>,
    /// Run as the target's own uid and gid (for targets whose policy forbids root), not as
    /// root with CAP_SYS_PTRACE
    #[arg(long)]
    as_target_user: bool,
    /// The toolbox's Debian release [default: the target's, else trixie]
    #[arg(long)]
    release: Option<String>,
    /// Print the `kubectl debug` command that runs the toolbox as an ephemeral container
    /// of the pod TARGET, instead of debugging here
    #[arg(long)]
    print_kubectl: bool,
    /// The pod's container whose processes the toolbox joins (kubectl's --target)
    #[arg(short = 'c', long, requires = "print_kubectl")]
    container: Option<String>,
    /// The pod's namespace
    #[arg(short = 'n', long, requires = "print_kubectl")]
    namespace: Option<String>,
    /// The Pod Security level the namespace enforces: privileged takes the general
    /// profile (with SYS_PTRACE), baseline and restricted their own, as the target's user
    #[arg(
        long,
        value_enum,
        default_value = "privileged",
        requires = "print_kubectl"
    )]
    pod_security: PodSecurityArg,
    /// The target container's UID:GID, which a baseline or restricted debug container runs
    /// as [default: the catalogue's nonroot]
    #[arg(long, value_name = "UID:GID", default_value = "65532:65532")]
    run_as: String,
    /// Where to write the partial container spec kubectl's --custom reads
    #[arg(
        long,
        value_name = "FILE",
        default_value = "bareboat-debug-custom.json"
    )]
    custom: PathBuf,
    /// Push the toolbox to this registry (docker://REGISTRY/REPO[:TAG]) for the cluster to
    /// pull
    #[arg(long, value_name = "REF", requires = "print_kubectl")]
    push: Option<String>,
    #[command(flatten)]
    archive: ArchiveArgs,
    #[command(flatten)]
    registry: RegistryArgs,
    /// The command to run in the toolbox [default: /busybox/sh]
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// A Pod Security level, as the command line names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PodSecurityArg {
    Privileged,
    Baseline,
    Restricted,
}

pub async fn cmd_debug(args: DebugArgs, cache_root: &Path, json: bool) -> Result<ExitCode> {
    let machinery = Machinery::new(cache_root, &args.archive, Some(&args.registry))?;
    let cx = machinery.context();
    let arch = target::host_arch();
    if args.print_kubectl {
        return print_kubectl(&args, arch, &cx, json).await;
    }
    let argv = match args.command.is_empty() {
        true => vec!["/busybox/sh".to_string()],
        false => args.command.clone(),
    };
    let code = match Target::parse(&args.target) {
        Target::Image(reference) => {
            session::check_root()?;
            let files = toolbox::write_out(&reference, arch, &cx).await?;
            let found = files.debian_version.as_deref();
            let toolbox = toolbox_root(&args, found, arch, &cx).await?;
            let run = files.config.config().clone().unwrap_or_default();
            if let Some(program) = &files.missing_program {
                eprintln!(
                    "note: the image's entrypoint {program} is not in it: /target/{} does not exist",
                    program.trim_start_matches('/')
                );
            }
            let (mut env, cwd) = environment::beside_image(&run);
            env.extend(terminal_env());
            let user = match args.as_target_user {
                true => Some(environment::image_user(&run)?),
                false => None,
            };
            eprintln!(
                "debugging the image {}: its files are at /target (read-only)",
                args.target
            );
            Session {
                toolbox: toolbox.path(),
                attach: Attach::Image {
                    rootfs: &files.rootfs,
                },
                user,
                env,
                cwd,
                argv,
            }
            .run()?
        }
        running => {
            let pid = running.pid()?;
            let process = Process::of(pid)?;
            // Refused before a toolbox is built for it.
            session::check_joinable(pid)?;
            let found = target::debian_version(pid);
            let toolbox = toolbox_root(&args, found.as_deref(), arch, &cx).await?;
            let (mut env, cwd) = environment::beside_process();
            env.extend(terminal_env());
            eprintln!(
                "debugging {} (process {pid}, uid {}): its files are at /target",
                args.target, process.uid
            );
            Session {
                toolbox: toolbox.path(),
                attach: Attach::Process { pid },
                user: args.as_target_user.then_some(User {
                    uid: process.uid,
                    gid: process.gid,
                    capabilities: process.capabilities,
                }),
                env,
                cwd,
                argv,
            }
            .run()?
        }
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Prints the `kubectl debug` command for the pod `args.target`, pushing the toolbox first
/// if asked, and writes the partial container spec it names.
async fn print_kubectl(
    args: &DebugArgs,
    arch: &str,
    cx: &Context<'_>,
    json: bool,
) -> Result<ExitCode> {
    let image = match (&args.push, &args.toolbox) {
        (Some(reference), _) => {
            let digest = toolbox_of(args, None, arch).push(reference, cx).await?;
            let ImageRef::Docker { name, .. } = reference.parse::<ImageRef>()? else {
                bail!("--push takes a registry reference, docker://REGISTRY/REPO[:TAG]");
            };
            format!("{}/{}@{digest}", name.registry, name.repository)
        }
        (None, Some(toolbox)) => match toolbox.parse::<ImageRef>()? {
            ImageRef::Docker { .. } => toolbox.trim_start_matches("docker://").to_string(),
            _ => {
                bail!("--toolbox must be an image a cluster can pull: docker://REGISTRY/REPO[:TAG]")
            }
        },
        (None, None) => bail!(
            "--print-kubectl needs a toolbox image the cluster can pull\n  hint: add --push docker://REGISTRY/REPO:TAG to publish one, or --toolbox docker://... for one published already"
        ),
    };
    let run_as = numeric_user(&args.run_as)?;
    let custom_path = args.custom.display().to_string();
    let invocation = kubectl::Debug {
        pod: &args.target,
        container: args.container.as_deref(),
        namespace: args.namespace.as_deref(),
        image: &image,
        level: match args.pod_security {
            PodSecurityArg::Privileged => PodSecurity::Privileged,
            PodSecurityArg::Baseline => PodSecurity::Baseline,
            PodSecurityArg::Restricted => PodSecurity::Restricted,
        },
        run_as,
        custom_path: &custom_path,
    }
    .invocation();
    if let Some(custom) = &invocation.custom {
        let text = serde_json::to_string_pretty(custom)? + "\n";
        std::fs::write(&args.custom, text)
            .with_context(|| format!("writing {}", args.custom.display()))?;
    }
    for warning in &invocation.warnings {
        eprintln!("warning: {warning}");
    }
    if json {
        print_json(&invocation)?;
    } else {
        println!("{}", kubectl::shell_line(&invocation.command));
    }
    Ok(ExitCode::SUCCESS)
}

/// The toolbox to build: for the release the target's files say, else trixie.
fn toolbox_of(args: &DebugArgs, debian_version: Option<&str>, arch: &str) -> Toolbox {
    let release = match &args.release {
        Some(r) => r.clone(),
        None => debian_version
            .and_then(target::release_of)
            .unwrap_or("trixie")
            .to_string(),
    };
    Toolbox {
        release,
        arch: arch.to_string(),
        with: args.with.clone(),
    }
}

/// A toolbox's root: a built one in the cache, or a prebuilt one written out for this
/// session, removed when this is dropped.
enum ToolboxRoot {
    Cached(PathBuf),
    Written(Box<toolbox::ImageFiles>),
}

impl ToolboxRoot {
    fn path(&self) -> &Path {
        match self {
            ToolboxRoot::Cached(root) => root,
            ToolboxRoot::Written(files) => &files.rootfs,
        }
    }
}

/// The toolbox: the prebuilt one named, or one built for the target's release.
async fn toolbox_root(
    args: &DebugArgs,
    debian_version: Option<&str>,
    arch: &str,
    cx: &Context<'_>,
) -> Result<ToolboxRoot> {
    Ok(match &args.toolbox {
        Some(image) => ToolboxRoot::Written(Box::new(toolbox::prebuilt(image, arch, cx).await?)),
        None => {
            let root = toolbox_of(args, debian_version, arch).ensure(cx).await?;
            ToolboxRoot::Cached(std::path::absolute(root)?)
        }
    })
}

/// The terminal's settings, for the toolbox's shell.
fn terminal_env() -> Vec<(String, String)> {
    ["TERM", "COLUMNS", "LINES"]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect()
}

/// `--run-as UID:GID`.
fn numeric_user(user: &str) -> Result<(u32, u32)> {
    let parsed = user
        .split_once(':')
        .and_then(|(uid, gid)| Some((uid.parse().ok()?, gid.parse().ok()?)));
    match parsed {
        Some(ids) => Ok(ids),
        None => bail!("--run-as takes UID:GID in numbers, as in 65532:65532, not {user:?}"),
    }
}
