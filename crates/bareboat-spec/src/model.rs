//! What a spec says, once read and checked: the types the rest of bareboat builds from.
//! [`crate::spec`] reads them from `bareboat.toml`, and [`crate::catalog`] makes them for
//! the built-in images.

use std::path::PathBuf;

use bareboat_apt::solver::Request;
use bareboat_apt::sources::{Distribution, Source};
use bareboat_oci::reference::ImageRef;
use serde::Deserialize;

/// What slicing keeps and drops, as the spec says.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SliceSpec {
    #[serde(default = "yes")]
    /// Whether to drop what no program reads at run time (docs but copyright, man pages, locales).
    pub defaults: bool,
    #[serde(default)]
    /// Globs of paths to keep even so.
    pub keep: Vec<String>,
    #[serde(default)]
    /// Globs of paths to drop as well.
    pub drop: Vec<String>,
}

impl Default for SliceSpec {
    fn default() -> Self {
        SliceSpec {
            defaults: true,
            keep: Vec::new(),
            drop: Vec::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// An extra account.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group's gid; the uid when unset.
    pub gid: Option<u32>,
    /// Its home directory; /home/NAME when unset.
    pub home: Option<String>,
}

/// An extra group.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Its name.
    pub name: String,
    /// Its gid.
    pub gid: u32,
}

/// A file or directory to copy from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    /// The host path: a file, a directory, or a glob.
    pub src: PathBuf,
    /// Where it goes, relative to the image root.
    pub dst: String,
    /// Permission bits; `None` keeps the host's.
    pub mode: Option<u32>,
    /// The owner's uid in the image.
    pub uid: u32,
    /// The group's gid in the image.
    pub gid: u32,
}

/// How the image runs, for its config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSpec {
    /// The numeric user; `None`: 65532, or 0 for root variants.
    pub user: Option<String>,
    /// The program the image starts.
    pub entrypoint: Option<Vec<String>>,
    /// Its arguments.
    pub cmd: Option<Vec<String>>,
    /// The working directory.
    pub workdir: Option<String>,
    /// What the health probe checks (`http://`, `tcp://` or `file:///`), if the image
    /// carries it.
    pub health: Option<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Exposed ports, each PORT/PROTOCOL.
    pub ports: Vec<String>,
    /// Config labels.
    pub labels: Vec<(String, String)>,
    /// Manifest annotations.
    pub annotations: Vec<(String, String)>,
}

/// A group of packages that gets its own layer, lowest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Level {
    /// What the layer is called in the image history: a catalogue image's name, or
    /// `packages` for the spec's own.
    pub name: String,
    /// The packages requested at this level; their dependencies join them unless a lower
    /// level already has them.
    pub roots: Vec<String>,
    /// Dependencies this level leaves out (a catalogue image's excludes), so that a higher
    /// level that installs them gets them in its own layer.
    pub exclude: Vec<String>,
}

/// A validated spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The Debian release.
    pub release: Distribution,
    /// The architectures to build.
    pub arch: Vec<String>,
    /// The packages requested, a catalogue base's first.
    pub packages: Vec<Request>,
    /// Dependencies to leave out.
    pub exclude: Vec<String>,
    /// Explicit sources; empty means the default Debian mirrors.
    pub sources: Vec<Source>,
    /// The layer groups, lowest first.
    pub levels: Vec<Level>,
    /// Who the image runs as, and whether it carries busybox.
    pub variant: Variant,
    /// How the image runs.
    pub run: RunSpec,
    /// Host files to add.
    pub files: Vec<FileSpec>,
    /// Whether to add the packages that the added files need.
    pub auto_deps: bool,
    /// CA certificates (PEM) to add to the bundle and keystores.
    pub ca_certs: Vec<PathBuf>,
    /// Users beyond the built-in ones.
    pub users: Vec<UserSpec>,
    /// Groups beyond the built-in ones.
    pub groups: Vec<GroupSpec>,
    /// What slicing keeps and drops.
    pub slice: SliceSpec,
    /// Globs of files that keep their setuid and setgid bits.
    pub keep_setuid: Vec<String>,
    /// An image to build on instead of a catalogue image.
    pub base_image: Option<ImageRef>,
    /// Paths (relative to the root) to delete from `base_image`.
    pub remove: Vec<String>,
    /// Packages of which the image keeps only some paths (relative to the root), with what
    /// lies under them: a catalogue image's, unless the spec requests the package itself.
    pub keep_only: Vec<(String, Vec<String>)>,
}

impl Spec {
    /// The files to add on `arch`: `{arch}` in a source path becomes the architecture's
    /// Debian name, so one spec adds `dist/{arch}/server` to each image of a multi-arch
    /// build.
    pub fn files_for(&self, arch: &str) -> Vec<FileSpec> {
        self.files
            .iter()
            .map(|f| FileSpec {
                src: PathBuf::from(f.src.to_string_lossy().replace("{arch}", arch)),
                ..f.clone()
            })
            .collect()
    }

    /// The spec with `packages`, found for its added files, requested in a layer of their
    /// own below the files.
    pub fn with_auto_deps(&self, packages: &[String]) -> Spec {
        let mut spec = self.clone();
        let new: Vec<String> = packages
            .iter()
            .filter(|p| !spec.packages.iter().any(|r| &r.name == *p))
            .cloned()
            .collect();
        if new.is_empty() {
            return spec;
        }
        spec.packages.extend(new.iter().map(|p| Request::parse(p)));
        spec.exclude.retain(|x| !new.contains(x));
        spec.levels.push(Level {
            name: "auto-deps".into(),
            roots: new,
            exclude: Vec::new(),
        });
        spec
    }
}

/// An image flavour: who it runs as, and whether it carries a busybox shell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Runs as nonroot (65532): the default.
    Nonroot,
    /// Runs as root.
    Root,
    /// Runs as nonroot, with busybox's shell in /busybox.
    Debug,
    /// Runs as root, with busybox's shell in /busybox.
    DebugRoot,
}

impl Variant {
    /// Every variant, the default first.
    pub const ALL: [Variant; 4] = [
        Variant::Nonroot,
        Variant::Root,
        Variant::Debug,
        Variant::DebugRoot,
    ];

    /// Parses a variant name, accepting distroless's names (`latest` is `root`,
    /// `debug-nonroot` is `debug`).
    pub fn parse(s: &str) -> Option<Variant> {
        Some(match s {
            "nonroot" => Variant::Nonroot,
            "root" | "latest" => Variant::Root,
            "debug" | "debug-nonroot" => Variant::Debug,
            "debug-root" => Variant::DebugRoot,
            _ => return None,
        })
    }

    /// Its name, as in `catalog:NAME:VARIANT`.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Nonroot => "nonroot",
            Variant::Root => "root",
            Variant::Debug => "debug",
            Variant::DebugRoot => "debug-root",
        }
    }

    /// Whether it carries busybox.
    pub fn is_debug(self) -> bool {
        matches!(self, Variant::Debug | Variant::DebugRoot)
    }
}
