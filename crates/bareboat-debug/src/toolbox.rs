//! The toolbox: busybox and the Debian packages asked for, built like any image from
//! verified packages for the target's release, locked and cached, and written out as a
//! directory a session uses as its root. An image's files are written out the same way,
//! for a session beside an image.

use std::path::{Path, PathBuf};

use bareboat_build::base::Base;
use bareboat_build::pipeline::{Build, Context};
use bareboat_oci::overlay::Limits;
use bareboat_oci::reference::ImageRef;
use bareboat_oci::referrer::Follow;
use bareboat_oci::transport::{self, Fetch};
use bareboat_rootfs::policy::{self, Slicing};
use bareboat_rootfs::rootfs::{NodeKind, Rootfs};
use bareboat_spec::spec::Spec;
use oci_spec::image::ImageConfiguration;
use sha2::{Digest, Sha256};

use crate::Error;

/// Where a session's root starts the target's filesystem: `/proc/1/root`, of the target's
/// PID namespace.
pub const TARGET_LINK: &str = "target";

/// The tools a session gets: busybox (the catalogue's debug variant puts it in `/busybox`,
/// applets linked) on `base`, and `with`.
#[derive(Clone, Debug)]
pub struct Toolbox {
    /// The Debian release, the target's where it has one.
    pub release: String,
    /// The Debian architecture: the machine's.
    pub arch: String,
    /// More packages: `strace`, `curl`, `gdb`, `procps`, `tcpdump`...
    pub with: Vec<String>,
}

impl Toolbox {
    /// The toolbox's spec.
    pub fn spec(&self) -> String {
        let quoted: Vec<String> = self.with.iter().map(|p| format!("{p:?}")).collect();
        format!(
            "from = \"catalog:base:debug-root\"\nrelease = {:?}\narch = [{:?}]\npackages = [{}]\n",
            self.release,
            self.arch,
            quoted.join(", ")
        )
    }

    /// The toolbox's directory in the cache, named by its spec.
    fn dir(&self, cx: &Context<'_>) -> PathBuf {
        let key = hex::encode(&Sha256::digest(self.spec().as_bytes())[..12]);
        cx.archive.cache.toolboxes_dir().join(key)
    }

    /// Builds the toolbox into `outputs`, from its lockfile (resolved and written the
    /// first time), and returns the image's digest.
    async fn build(&self, outputs: Vec<String>, cx: &Context<'_>) -> Result<String, Error> {
        let dir = self.dir(cx);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let spec =
            Spec::parse(&self.spec(), "the toolbox").map_err(|e| Error::Toolbox(e.to_string()))?;
        let lockfile = Some(dir.join("bareboat.lock"));
        let report = Build::new(spec, "the toolbox", lockfile, outputs, Default::default())
            .run(cx)
            .await
            .map_err(|e| Error::Toolbox(e.to_string()))?;
        Ok(report.digest)
    }

    /// The toolbox's root, built (or resolved and locked, the first time) and written out
    /// unless the cache has it already.
    pub async fn ensure(&self, cx: &Context<'_>) -> Result<PathBuf, Error> {
        let dir = self.dir(cx);
        let root = dir.join("rootfs");
        if root.is_dir() && dir.join("bareboat.lock").is_file() {
            // Its age is the time since it was last used, for `cache prune`.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.set_modified(std::time::SystemTime::now());
            }
            return Ok(root);
        }
        let layout = format!("oci:{}:toolbox", dir.join("layout").display());
        self.build(vec![layout.clone()], cx).await?;
        write_toolbox(&layout, &self.arch, &dir, cx).await
    }

    /// Pushes the toolbox to `reference` (`docker://REGISTRY/REPO[:TAG]`), for a cluster
    /// to pull, and returns its digest.
    pub async fn push(&self, reference: &str, cx: &Context<'_>) -> Result<String, Error> {
        self.build(vec![reference.to_string()], cx).await
    }
}

/// A prebuilt toolbox image (`--toolbox IMAGE`), written out for this session alone
/// (a tag may have moved since last time) and removed with what this returns.
pub async fn prebuilt(reference: &str, arch: &str, cx: &Context<'_>) -> Result<ImageFiles, Error> {
    let files = write_out(reference, arch, cx).await?;
    prepare(&files.rootfs)?;
    Ok(files)
}

/// Writes the image `reference` out as `dir/rootfs`, prepared for sessions, through a
/// temporary directory renamed into place.
async fn write_toolbox(
    reference: &str,
    arch: &str,
    dir: &Path,
    cx: &Context<'_>,
) -> Result<PathBuf, Error> {
    let staged = tempfile::Builder::new()
        .prefix("rootfs.tmp-")
        .tempdir_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    let rootfs = staged.path().join("rootfs");
    write_image(reference, arch, &rootfs, Setuid::Drop, cx).await?;
    prepare(&rootfs)?;
    let root = dir.join("rootfs");
    match std::fs::rename(&rootfs, &root) {
        Ok(()) => Ok(root),
        // Another session wrote the same toolbox out meanwhile: it is used.
        Err(_) if root.is_dir() => Ok(root),
        Err(e) => Err(Error::io(&root, e)),
    }
}

/// Gives a toolbox written out at `rootfs` the mount points a session needs and the
/// `/target` link.
fn prepare(rootfs: &Path) -> Result<(), Error> {
    for mount_point in ["proc", "dev", "tmp"] {
        let at = rootfs.join(mount_point);
        if !at.is_dir() {
            std::fs::create_dir(&at).map_err(|e| Error::io(&at, e))?;
        }
    }
    let link = rootfs.join(TARGET_LINK);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/proc/1/root", &link).map_err(|e| Error::io(&link, e))
}

/// An image's files, written out in the cache's `tmp/` (removed when this is dropped),
/// and what its config says about starting it.
pub struct ImageFiles {
    /// Where its files are.
    pub rootfs: PathBuf,
    /// The image's config.
    pub config: ImageConfiguration,
    /// The program its entrypoint (or cmd) names, when the image does not have it.
    pub missing_program: Option<String>,
    /// The first bytes of its `/etc/debian_version`, links followed inside the image.
    pub debian_version: Option<String>,
    _dir: tempfile::TempDir,
}

/// Writes the files of the image `reference` (its platform for `arch`) out, stacked as a
/// runtime stacks them, for a session beside it.
pub async fn write_out(reference: &str, arch: &str, cx: &Context<'_>) -> Result<ImageFiles, Error> {
    let tmp = cx.archive.cache.root().join("tmp");
    let dir = tempfile::Builder::new()
        .prefix("debug-")
        .tempdir_in(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    let rootfs =
        std::path::absolute(dir.path().join("rootfs")).map_err(|e| Error::io(dir.path(), e))?;
    let written = write_image(reference, arch, &rootfs, Setuid::Keep, cx).await?;
    Ok(ImageFiles {
        rootfs,
        config: written.config,
        missing_program: written.missing_program,
        debian_version: written.debian_version,
        _dir: dir,
    })
}

/// Whether setuid and setgid bits are written out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setuid {
    /// As the image has them: its files, in a directory only root reads, are looked at.
    Keep,
    /// Dropped: a toolbox is kept in the cache, where a setuid program owned by root would
    /// be a way to root for anyone who can reach it.
    Drop,
}

/// What writing an image out found.
struct Written {
    config: ImageConfiguration,
    missing_program: Option<String>,
    debian_version: Option<String>,
}

/// Writes the files of the image `reference` (its platform for `arch`) out into `dest`.
async fn write_image(
    reference: &str,
    arch: &str,
    dest: &Path,
    setuid: Setuid,
    cx: &Context<'_>,
) -> Result<Written, Error> {
    let scratch = cx.archive.cache.root().join("tmp");
    let name = reference.to_string();
    let bad = |e: String| Error::Image(format!("reading {name}: {e}"));
    let parsed: ImageRef = reference
        .parse()
        .map_err(|e: bareboat_oci::Error| bad(e.to_string()))?;
    let source = transport::open(&parsed, &scratch, cx.registry, Fetch::Whole(Follow::None))
        .await
        .map_err(|e| bad(e.to_string()))?;
    let base = Base {
        name: name.clone(),
        source: &*source.blobs,
        top: source.top.clone(),
    };
    let image = base.image(arch).map_err(|e| bad(e.to_string()))?;
    let whole = Slicing::new(false, &[], &[]).map_err(|e| bad(e.to_string()))?;
    let kept: &[String] = match setuid {
        Setuid::Keep => &["**".to_string()],
        Setuid::Drop => &[],
    };
    let keep_setuid = policy::globs(kept).map_err(|e| bad(e.to_string()))?;
    let mut tree =
        Rootfs::new(&scratch, whole, keep_setuid, Limits::BUILD).map_err(|e| bad(e.to_string()))?;
    image.unpack(&mut tree).map_err(|e| bad(e.to_string()))?;
    let owners = unsafe { libc::geteuid() } == 0;
    tree.materialize(dest, owners)
        .map_err(|e| bad(e.to_string()))?;
    let missing_program = program(&image.config).filter(|p| !found(&tree, p, &image.config));
    Ok(Written {
        debian_version: small_file(&tree, "etc/debian_version"),
        config: image.config,
        missing_program,
    })
}

/// The content of the file at `path` in `tree` (links followed inside it), if it is a
/// regular file of at most 64 bytes.
fn small_file(tree: &Rootfs, path: &str) -> Option<String> {
    let real = tree.resolve(path)?;
    match tree.get(&real)?.kind {
        NodeKind::File { size, .. } if size <= 64 => tree
            .read(&real)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

/// The program the image starts: its entrypoint's first word, else its cmd's.
fn program(config: &ImageConfiguration) -> Option<String> {
    let run = config.config().as_ref()?;
    let first = |v: &Option<Vec<String>>| v.as_ref().and_then(|v| v.first().cloned());
    first(run.entrypoint()).or_else(|| first(run.cmd()))
}

/// Whether the image has `program`: at its path, or, for a bare name, in a directory of the
/// config's `PATH`, following links inside the image as the runtime would.
fn found(tree: &Rootfs, program: &str, config: &ImageConfiguration) -> bool {
    if program.contains('/') {
        return tree.exists(program.trim_start_matches('/'));
    }
    let env = config
        .config()
        .as_ref()
        .and_then(|c| c.env().clone())
        .unwrap_or_default();
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .any(|dir| tree.exists(&format!("{}/{program}", dir.trim_matches('/'))))
}
