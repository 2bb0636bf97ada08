//! `bareboat.toml`: what an image is made of.
//!
//! ```toml
//! release = "trixie"          # or "bookworm"; the default is trixie
//! arch = ["amd64", "arm64"]   # or a single string; the default is amd64
//! packages = ["python3"]      # NAME or NAME=VERSION
//! exclude = ["dpkg"]          # dependencies not needed at run time
//!
//! [[source]]                  # optional; replaces the default Debian mirrors
//! url = "http://mirror.example/debian"
//! suite = "trixie"
//! components = ["main"]
//! keyring = "archive-key.asc" # optional, relative to the spec
//! check_valid_until = true
//!
//! from = "catalog:cc"         # a catalogue image (and variant) to start from, or any
//!                             # image: docker://REG/REPO:TAG, oci:DIR:TAG, oci-archive:FILE,
//!                             # docker-archive:FILE; its packages count as installed
//! remove = ["/usr/share/doc"]  # paths deleted from an image base, by whiteouts
//! user = "65532"              # numeric, or a name from [[users]]; 65532 unless a root variant
//! entrypoint = ["/app/server"]
//! cmd = ["--port", "8080"]
//! workdir = "/app"
//! env = { RUST_LOG = "info" }
//! ports = ["8080/tcp"]
//! labels = { "org.opencontainers.image.source" = "https://example.invalid/app" }
//! annotations = { "org.opencontainers.image.vendor" = "Example" }
//! ca_certs = ["corp-root.pem"]     # added to the CA bundle, relative to the spec
//! keep_setuid = ["usr/bin/ping"]   # globs; setuid/setgid bits are stripped elsewhere
//! health = "http://127.0.0.1:8080/healthz"  # or tcp://HOST:PORT, file:///PATH: adds the
//!                             # static probe /usr/local/bin/health and a Docker HEALTHCHECK
//!
//! [slice]                     # what to leave out of packages
//! defaults = true             # drop docs (but copyright), man, info, lintian, bug, locales
//! keep = ["usr/share/doc/**"]
//! drop = ["usr/share/zoneinfo/right/**"]
//!
//! auto_deps = true            # add the packages that added programs and scripts need
//!
//! [[files]]                   # files or directories from the host, in a layer of their own
//! src = "target/release/server"  # a file, a directory, or a glob such as "dist/*.so";
//!                                # {arch} becomes amd64 or arm64 in multi-arch builds
//! dst = "/app/server"            # for a glob: the directory the matches go into
//! mode = "0755"               # default: the host file's permission bits
//! owner = "65532:65532"       # default: 0:0
//!
//! [[users]]
//! name = "app"
//! uid = 1000                  # gid defaults to uid; home to /home/NAME
//!
//! [[groups]]                  # root 0, tty 5, staff 50, nogroup 65534 and nonroot 65532
//! name = "web"                # exist already: one may be named again with its gid
//! gid = 2000
//! ```

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use bareboat_apt::relation::is_package_name;
use bareboat_apt::solver::Request;
use bareboat_apt::sources::{Distribution, Source};
use bareboat_oci::reference::ImageRef;
use serde::Deserialize;
use toml::Spanned;

use crate::catalog::{self, Variant};
use crate::synth;

/// Architectures a spec may name.
pub const ARCHES: &[&str] = &["amd64", "arm64"];

/// A spec error, naming the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{origin}{}: {reason}", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SpecError {
    pub origin: String,
    pub line: Option<usize>,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    release: Option<Spanned<String>>,
    arch: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    packages: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    #[serde(default, rename = "source")]
    sources: Vec<Spanned<Source>>,
    from: Option<Spanned<String>>,
    #[serde(default)]
    remove: Vec<Spanned<String>>,
    user: Option<Spanned<String>>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    workdir: Option<Spanned<String>>,
    health: Option<Spanned<String>>,
    env: Option<Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    ca_certs: Vec<PathBuf>,
    #[serde(default)]
    keep_setuid: Vec<String>,
    #[serde(default)]
    slice: SliceSpec,
    #[serde(default)]
    files: Vec<Spanned<RawFile>>,
    auto_deps: Option<bool>,
    #[serde(default)]
    users: Vec<Spanned<UserSpec>>,
    #[serde(default)]
    groups: Vec<Spanned<GroupSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    src: PathBuf,
    dst: String,
    mode: Option<String>,
    owner: Option<String>,
}

/// What slicing keeps and drops, as the spec says.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SliceSpec {
    #[serde(default = "yes")]
    pub defaults: bool,
    #[serde(default)]
    pub keep: Vec<String>,
    #[serde(default)]
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
    pub name: String,
    pub uid: u32,
    pub gid: Option<u32>,
    pub home: Option<String>,
}

/// An extra group.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    pub gid: u32,
}

/// A file or directory to copy from the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub src: PathBuf,
    /// Where it goes, relative to the image root.
    pub dst: String,
    /// Permission bits; `None` keeps the host's.
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
}

/// How the image runs, for its config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSpec {
    /// The numeric user; `None`: 65532, or 0 for root variants.
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    /// What the health probe checks (`http://`, `tcp://` or `file:///`), if the image
    /// carries it.
    pub health: Option<String>,
    pub env: Vec<(String, String)>,
    pub ports: Vec<String>,
    pub labels: Vec<(String, String)>,
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

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A validated spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub release: Distribution,
    pub arch: Vec<String>,
    pub packages: Vec<Request>,
    pub exclude: Vec<String>,
    /// Explicit sources; empty means the default Debian mirrors.
    pub sources: Vec<Source>,
    /// The layer groups, lowest first.
    pub levels: Vec<Level>,
    pub variant: Variant,
    pub run: RunSpec,
    pub files: Vec<FileSpec>,
    /// Whether to add the packages that the added files need.
    pub auto_deps: bool,
    pub ca_certs: Vec<PathBuf>,
    pub users: Vec<UserSpec>,
    pub groups: Vec<GroupSpec>,
    pub slice: SliceSpec,
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
    /// Reads and validates a spec file. Relative keyring paths are taken from its directory.
    pub fn read(path: &Path) -> Result<Spec, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError {
            origin: path.display().to_string(),
            line: None,
            reason: e.to_string(),
        })?;
        let mut spec = Spec::parse(&text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for s in &mut spec.sources {
            if let Some(k) = &s.keyring {
                s.keyring = Some(dir.join(k));
            }
        }
        for c in &mut spec.ca_certs {
            *c = dir.join(&*c);
        }
        for f in &mut spec.files {
            f.src = dir.join(&f.src);
        }
        match &mut spec.base_image {
            Some(ImageRef::Oci { dir: path, .. })
            | Some(ImageRef::OciArchive { file: path, .. })
            | Some(ImageRef::DockerArchive { file: path, .. }) => *path = dir.join(&*path),
            _ => {}
        }
        Ok(spec)
    }

    /// Parses and validates spec text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec, SpecError> {
        let err = |span: Option<std::ops::Range<usize>>, reason: String| SpecError {
            origin: origin.to_string(),
            line: span.map(|s| line_of(text, s.start)),
            reason,
        };
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let reason = e.message().to_string();
            err(e.span(), reason)
        })?;
        let release = match &raw.release {
            Some(r) => {
                Distribution::parse(r.get_ref()).map_err(|e| err(Some(r.span()), e.to_string()))?
            }
            None => Distribution::DEFAULT,
        };
        let arch = match raw.arch {
            None => vec!["amd64".to_string()],
            Some(a) => {
                let span = a.span();
                let list = match a.into_inner() {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                };
                if list.is_empty() {
                    return Err(err(
                        Some(span),
                        "arch must name at least one architecture".into(),
                    ));
                }
                for a in &list {
                    if !ARCHES.contains(&a.as_str()) {
                        return Err(err(
                            Some(span),
                            format!(
                                "unsupported architecture {a:?}; use one of {}",
                                ARCHES.join(", ")
                            ),
                        ));
                    }
                }
                list
            }
        };
        let mut base = None;
        let mut base_image = None;
        if let Some(f) = &raw.from {
            match SpecRef::parse(f.get_ref()) {
                SpecRef::Catalog { name, variant } => {
                    base = Some(
                        catalog::spec(&name, variant.as_deref(), release, arch.clone())
                            .map_err(|e| err(Some(f.span()), e.to_string()))?,
                    )
                }
                SpecRef::File(_) | SpecRef::Image(_) => {
                    let image = f.get_ref().parse::<ImageRef>().map_err(|e| {
                        err(
                            Some(f.span()),
                            format!(
                                "from = {:?}: {e}\n  hint: a base is catalog:NAME[:VARIANT], or an image such as docker://REGISTRY/REPO:TAG or oci:DIR:TAG",
                                f.get_ref()
                            ),
                        )
                    })?;
                    base_image = Some(image);
                }
            }
        }
        if raw.packages.is_empty() && base.is_none() && base_image.is_none() {
            return Err(err(
                None,
                "packages is empty: name at least one package to install, or a base with from = \"catalog:NAME\"".into(),
            ));
        }
        let mut remove = Vec::new();
        for r in &raw.remove {
            if base_image.is_none() {
                return Err(err(
                    Some(r.span()),
                    "remove deletes paths from a base image (from = \"docker://...\"); to leave out a package's files, use [slice] drop".into(),
                ));
            }
            remove.push(image_path(r.get_ref()).ok_or_else(|| {
                err(
                    Some(r.span()),
                    format!(
                        "remove {:?}: expected an absolute path inside the image",
                        r.get_ref()
                    ),
                )
            })?);
        }
        let mut packages = Vec::new();
        for p in &raw.packages {
            let r = Request::parse(p.get_ref());
            if !is_package_name(&r.name) || r.version.as_deref() == Some("") {
                return Err(err(
                    Some(p.span()),
                    format!(
                        "invalid package {:?}: expected NAME or NAME=VERSION",
                        p.get_ref()
                    ),
                ));
            }
            packages.push(r);
        }
        let mut exclude = Vec::new();
        for x in &raw.exclude {
            if !is_package_name(x.get_ref()) {
                return Err(err(
                    Some(x.span()),
                    format!("invalid package name {:?} in exclude", x.get_ref()),
                ));
            }
            exclude.push(x.get_ref().clone());
        }
        for port in &raw.ports {
            let (num, proto) = port
                .get_ref()
                .split_once('/')
                .unwrap_or((port.get_ref(), "tcp"));
            if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                return Err(err(
                    Some(port.span()),
                    format!(
                        "invalid port {:?}: expected PORT or PORT/tcp|udp|sctp",
                        port.get_ref()
                    ),
                ));
            }
        }
        // Kubernetes' runAsNonRoot can only check a numeric user, so names become numbers.
        let user = match &raw.user {
            Some(u) => Some(
                uid_of(u.get_ref(), &raw.users)
                    .ok_or_else(|| {
                        err(
                            Some(u.span()),
                            format!(
                                "user {:?} is neither a number nor a name from [[users]]",
                                u.get_ref()
                            ),
                        )
                    })?
                    .to_string(),
            ),
            None => None,
        };
        let groups: Vec<GroupSpec> = raw.groups.iter().map(|g| g.get_ref().clone()).collect();
        for (i, g) in raw.groups.iter().enumerate() {
            let GroupSpec { name, gid } = g.get_ref();
            let at = |e: String| err(Some(g.span()), e);
            synth::check_account_name(name).map_err(|e| at(format!("group name {e}")))?;
            synth::builtin_group(name, *gid).map_err(at)?;
            if let Some(other) = groups[..i]
                .iter()
                .find(|o| o.name == *name || o.gid == *gid)
            {
                return Err(at(format!(
                    "group {name:?} with gid {gid} repeats group {:?} with gid {}: each name and gid may appear once",
                    other.name, other.gid
                )));
            }
        }
        if let Some(env) = &raw.env {
            for (key, value) in env.get_ref() {
                if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                    return Err(err(
                        Some(env.span()),
                        format!(
                            "env {key:?}: a variable's name must be non-empty without '=' or NUL, and its value without NUL"
                        ),
                    ));
                }
            }
        }
        for (i, u) in raw.users.iter().enumerate() {
            let user = u.get_ref();
            let at = |e: String| err(Some(u.span()), e);
            synth::check_account_name(&user.name).map_err(|e| at(format!("user name {e}")))?;
            if let Some(home) = &user.home {
                synth::check_passwd_field("home", home).map_err(at)?;
                if !home.starts_with('/') {
                    return Err(at(format!("home {home:?} must be an absolute path")));
                }
            }
            if let Some((builtin, _)) = BUILTIN_USERS.iter().find(|(_, uid)| *uid == user.uid) {
                return Err(at(format!(
                    "user {:?} has uid {}, the built-in user {builtin}'s: uids must be unique (uid 0 is root alone)",
                    user.name, user.uid
                )));
            }
            let earlier = raw.users[..i].iter().map(|o| o.get_ref());
            if let Some(other) = earlier
                .into_iter()
                .find(|o| o.name == user.name || o.uid == user.uid)
            {
                return Err(at(format!(
                    "user {:?} with uid {} repeats user {:?} with uid {}: each name and uid may appear once",
                    user.name, user.uid, other.name, other.uid
                )));
            }
        }
        for u in &raw.users {
            if let Some(own) = synth::own_group(u.get_ref(), &groups) {
                synth::builtin_group(&own.name, own.gid).map_err(|e| {
                    err(
                        Some(u.span()),
                        format!("user {:?} would get a group of its own: {e}", own.name),
                    )
                })?;
            }
            let name = &u.get_ref().name;
            if BUILTIN_USERS.iter().any(|(builtin, _)| builtin == name) {
                return Err(err(
                    Some(u.span()),
                    format!("user name {name:?} is reserved: every image has it"),
                ));
            }
        }
        if let Some(w) = &raw.workdir
            && !w.get_ref().starts_with('/')
        {
            return Err(err(
                Some(w.span()),
                format!("workdir {:?} must be absolute", w.get_ref()),
            ));
        }
        if let Some(h) = &raw.health {
            crate::probe::check_target(h.get_ref()).map_err(|e| err(Some(h.span()), e))?;
        }
        let mut files = Vec::new();
        for f in raw.files {
            let span = f.span();
            let f = f.into_inner();
            let dst = image_path(&f.dst).ok_or_else(|| {
                err(
                    Some(span.clone()),
                    format!("dst {:?} must be an absolute path inside the image", f.dst),
                )
            })?;
            let mode = match &f.mode {
                Some(m) => Some(
                    u32::from_str_radix(m.trim_start_matches("0o"), 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            err(
                                Some(span.clone()),
                                format!("mode {m:?} is not octal permission bits such as \"0755\""),
                            )
                        })?,
                ),
                None => None,
            };
            let (uid, gid) = match &f.owner {
                Some(o) => {
                    let (u, g) = o.split_once(':').unwrap_or((o, o));
                    u.parse().ok().zip(g.parse().ok()).ok_or_else(|| {
                        err(
                            Some(span.clone()),
                            format!("owner {o:?} must be numeric UID:GID"),
                        )
                    })?
                }
                None => (0, 0),
            };
            files.push(FileSpec {
                src: f.src,
                dst,
                mode,
                uid,
                gid,
            });
        }
        let own_level = Level {
            name: "packages".into(),
            roots: packages.iter().map(|r| r.name.clone()).collect(),
            exclude: Vec::new(),
        };
        // A catalogue base's entrypoint (python3's interpreter, java -jar) holds unless the
        // spec sets its own.
        let inherited = base.as_ref().map(|b| b.run.clone()).unwrap_or_default();
        let (levels, variant, packages, exclude, keep_only) = match base {
            Some(b) => {
                // As with exclusions, a package the spec asks for itself comes whole.
                let keep_only = b
                    .keep_only
                    .into_iter()
                    .filter(|(p, _)| !packages.iter().any(|r| r.name == *p))
                    .collect();
                let mut levels = b.levels;
                if !own_level.roots.is_empty() {
                    levels.push(own_level);
                }
                let mut all = b.packages;
                all.extend(packages);
                let mut ex: Vec<String> = b
                    .exclude
                    .into_iter()
                    .filter(|x| !all.iter().any(|p| p.name == *x))
                    .collect();
                ex.extend(exclude);
                (levels, b.variant, all, ex, keep_only)
            }
            None => (
                vec![own_level],
                Variant::Nonroot,
                packages,
                exclude,
                Vec::new(),
            ),
        };
        let run = RunSpec {
            user,
            entrypoint: raw.entrypoint.or(inherited.entrypoint),
            cmd: raw.cmd.or(inherited.cmd),
            workdir: raw.workdir.map(|w| w.into_inner()),
            health: raw.health.map(|h| h.into_inner()).or(inherited.health),
            env: raw
                .env
                .map(|e| e.into_inner().into_iter().collect())
                .unwrap_or_default(),
            ports: raw
                .ports
                .into_iter()
                .map(|p| {
                    let p = p.into_inner();
                    if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    }
                })
                .collect(),
            labels: raw.labels.into_iter().collect(),
            annotations: raw.annotations.into_iter().collect(),
        };
        let mut sources = Vec::new();
        for s in raw.sources {
            let span = s.span();
            let mut source = s.into_inner();
            if !(source.url.starts_with("http://") || source.url.starts_with("https://")) {
                return Err(err(
                    Some(span),
                    format!(
                        "source url {:?} must start with http:// or https://",
                        source.url
                    ),
                ));
            }
            source.url = source.url.trim_end_matches('/').to_string();
            sources.push(source);
        }
        Ok(Spec {
            release,
            arch,
            packages,
            exclude,
            sources,
            levels,
            variant,
            run,
            files,
            auto_deps: raw.auto_deps.unwrap_or(true),
            ca_certs: raw.ca_certs,
            users: raw.users.into_iter().map(|u| u.into_inner()).collect(),
            groups,
            slice: raw.slice,
            keep_setuid: raw.keep_setuid,
            base_image,
            remove,
            keep_only,
        })
    }
}

impl Spec {
    /// A spec that builds on `image` and adds nothing yet: `--from IMAGE` on the command
    /// line.
    pub fn on_image(
        image: &str,
        release: Distribution,
        arch: Vec<String>,
    ) -> Result<Spec, SpecError> {
        let mut table = toml::Table::new();
        table.insert("from".into(), image.into());
        table.insert("release".into(), release.codename().into());
        table.insert("arch".into(), arch.into());
        Spec::parse(&table.to_string(), "--from")
    }

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

/// An absolute path inside the image, normalized and relative to the root; `None` for a
/// relative path, the root itself, or one that escapes it.
pub fn image_path(dst: &str) -> Option<String> {
    if !dst.starts_with('/') {
        return None;
    }
    bareboat_oci::overlay::normalize(dst.trim_start_matches('/'))
        .ok()
        .filter(|d| !d.is_empty())
}

/// The users every image has, with their uids.
const BUILTIN_USERS: [(&str, u32); 3] =
    [("root", 0), ("nonroot", synth::NONROOT), ("nobody", 65534)];

/// The uid of a numeric user, a built-in account or one of the spec's users.
fn uid_of(user: &str, users: &[Spanned<UserSpec>]) -> Option<u32> {
    match BUILTIN_USERS.iter().find(|(name, _)| *name == user) {
        Some((_, uid)) => Some(*uid),
        None => user.parse().ok().or_else(|| {
            users
                .iter()
                .find(|u| u.get_ref().name == user)
                .map(|u| u.get_ref().uid)
        }),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where a spec comes from: a file, or the built-in catalogue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecRef {
    File(PathBuf),
    /// An image to build on.
    Image(String),
    Catalog {
        name: String,
        variant: Option<String>,
    },
}

impl SpecRef {
    /// `catalog:NAME[:VARIANT]`, an image in a transport's syntax (`docker://`, `oci:`,
    /// `oci-archive:`, `docker-archive:`), or a path.
    pub fn parse(s: &str) -> SpecRef {
        const TRANSPORTS: [&str; 4] = ["docker://", "oci:", "oci-archive:", "docker-archive:"];
        if TRANSPORTS.iter().any(|t| s.starts_with(t)) {
            return SpecRef::Image(s.to_string());
        }
        match s.strip_prefix("catalog:") {
            Some(rest) => {
                let (name, variant) = match rest.split_once(':') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (rest.to_string(), None),
                };
                SpecRef::Catalog { name, variant }
            }
            None => SpecRef::File(PathBuf::from(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_spec() {
        let s = Spec::parse(
            "release = \"bookworm\"\narch = [\"amd64\", \"arm64\"]\npackages = [\"python3\", \"libc6=2.36-9\"]\n\
exclude = [\"dpkg\"]\n[[source]]\nurl = \"http://127.0.0.1:1/debian/\"\nsuite = \"bookworm\"\ncheck_valid_until = false\n",
            "t",
        )
        .unwrap();
        assert_eq!(s.release, Distribution::Bookworm);
        assert_eq!(s.arch, ["amd64", "arm64"]);
        assert_eq!(s.packages[1].version.as_deref(), Some("2.36-9"));
        assert_eq!(s.sources[0].url, "http://127.0.0.1:1/debian");
        assert_eq!(s.sources[0].components, ["main"]);
        assert!(!s.sources[0].check_valid_until);
    }

    #[test]
    fn errors_name_the_line() {
        for (text, line, needle) in [
            (
                "packages = [\"a0\"]\nrelaese = \"trixie\"\n",
                2,
                "unknown field `relaese`",
            ),
            (
                "packages = [\"a0\"]\n\nrelease = \"jessie\"\n",
                3,
                "unknown release",
            ),
            (
                "arch = \"s390\"\npackages = [\"a0\"]\n",
                1,
                "unsupported architecture",
            ),
            (
                "packages = [\n  \"ok\",\n  \"Bad Name\",\n]\n",
                3,
                "invalid package",
            ),
            (
                "packages = [\"a0\"]\nexclude = [\"x\"]\n",
                2,
                "invalid package name",
            ),
            (
                "packages = [\"a0\"]\n[[source]]\nurl = \"ftp://x\"\nsuite = \"s\"\n",
                2,
                "http://",
            ),
            (
                "packages = [\"a0\"]\n[[source]]\nurl = \"http://x\"\nsuite = \"s\"\nextra = 1\n",
                5,
                "unknown field `extra`",
            ),
            (
                "packages = [\"a0\"]\n[[groups]]\nname = \"staff\"\ngid = 50\n[[groups]]\nname = \"staff\"\ngid = 51\n",
                5,
                "group \"staff\" with gid 51: every image has group staff with gid 50",
            ),
            (
                "packages = [\"a0\"]\n\n[[groups]]\nname = \"wheel\"\ngid = 5\n",
                3,
                "group \"wheel\" with gid 5: gid 5 is the built-in group tty",
            ),
            (
                "packages = [\"a0\"]\n[[users]]\nname = \"staff\"\nuid = 1000\n",
                2,
                "user \"staff\" would get a group of its own: group \"staff\" with gid 1000",
            ),
        ] {
            let e = Spec::parse(text, "bareboat.toml").unwrap_err();
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert!(e.to_string().contains(needle), "{e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("bareboat.toml:{line}: ")),
                "{e}"
            );
        }
        assert!(
            Spec::parse("", "t")
                .unwrap_err()
                .to_string()
                .contains("packages is empty")
        );
    }

    #[test]
    fn groups_equal_to_built_in_ones_are_merged() {
        let s = Spec::parse(
            "packages = [\"a0\"]\n[[groups]]\nname = \"staff\"\ngid = 50\n\
             [[users]]\nname = \"app\"\nuid = 1000\ngid = 5\n",
            "t",
        )
        .unwrap();
        let group = synth::group(&s.users, &s.groups);
        assert_eq!(group.matches("staff").count(), 1, "{group}");
        assert!(!group.contains("app"), "{group}");
    }

    #[test]
    fn a_catalogue_base_keeps_part_of_a_package_unless_the_spec_asks_for_it() {
        let parts = |text: &str| -> Vec<String> {
            let s = Spec::parse(text, "t").unwrap();
            s.keep_only.into_iter().map(|(p, _)| p).collect()
        };
        assert_eq!(
            parts("from = \"catalog:cc\"\n"),
            ["ca-certificates", "libc-bin"]
        );
        assert_eq!(
            parts("from = \"catalog:cc\"\npackages = [\"libc-bin\"]\n"),
            ["ca-certificates"]
        );
        assert!(parts("packages = [\"libc-bin\"]\n").is_empty());
    }

    #[test]
    fn user_names_become_numbers() {
        let s = Spec::parse(
            "packages = [\"a0\"]\nuser = \"app\"\n[[users]]\nname = \"app\"\nuid = 1000\n",
            "t",
        )
        .unwrap();
        assert_eq!(s.run.user.as_deref(), Some("1000"));
        let s = Spec::parse("packages = [\"a0\"]\nuser = \"nonroot\"\n", "t").unwrap();
        assert_eq!(s.run.user.as_deref(), Some("65532"));
        let e = Spec::parse("packages = [\"a0\"]\nuser = \"ghost\"\n", "t").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn spec_references() {
        assert_eq!(
            SpecRef::parse("catalog:cc:debug"),
            SpecRef::Catalog {
                name: "cc".into(),
                variant: Some("debug".into())
            }
        );
        assert_eq!(
            SpecRef::parse("x/bareboat.toml"),
            SpecRef::File("x/bareboat.toml".into())
        );
    }
}
