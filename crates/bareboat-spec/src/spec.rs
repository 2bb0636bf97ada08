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

use crate::Error;
use crate::accounts::{self, BUILTIN_USERS};
use crate::catalog;
use crate::model::Variant;
pub use crate::model::{FileSpec, GroupSpec, Level, RunSpec, SliceSpec, Spec, UserSpec};

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

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Spec {
    /// Reads and validates a spec file. Relative keyring paths are taken from its directory.
    pub fn read(path: &Path) -> Result<Spec, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Invalid {
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
    pub fn parse(text: &str, origin: &str) -> Result<Spec, Error> {
        let at = Origin { text, origin };
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            let reason = e.message().to_string();
            at.err(e.span(), reason)
        })?;
        let release = match &raw.release {
            Some(r) => Distribution::parse(r.get_ref()).map_err(|e| at.spanned(r, e))?,
            None => Distribution::DEFAULT,
        };
        let arch = match &raw.arch {
            None => vec!["amd64".to_string()],
            Some(a) => {
                let list = match a.get_ref() {
                    OneOrMany::One(s) => vec![s.clone()],
                    OneOrMany::Many(v) => v.clone(),
                };
                if list.is_empty() {
                    return Err(at.spanned(a, "arch must name at least one architecture"));
                }
                arches(list, release).map_err(|e| at.spanned(a, e))?
            }
        };
        let from = at.base(&raw, release, &arch)?;
        if raw.packages.is_empty() && from.is_none() {
            return Err(at.err(
                None,
                "packages is empty: name at least one package to install, or a base with from = \"catalog:NAME\"",
            ));
        }
        let remove = at.remove(&raw, &from)?;
        let (packages, exclude) = at.packages(&raw)?;
        let run = at.run_config(&raw)?;
        let (users, groups) = at.accounts(&raw)?;
        let files = at.files(&raw.files)?;
        let sources = at.sources(&raw.sources)?;
        let spec = Spec {
            release,
            arch,
            levels: vec![Level {
                name: "packages".into(),
                roots: packages.iter().map(|r| r.name.clone()).collect(),
                exclude: Vec::new(),
            }],
            packages,
            exclude,
            sources,
            variant: Variant::Nonroot,
            run,
            files,
            auto_deps: raw.auto_deps.unwrap_or(true),
            ca_certs: raw.ca_certs,
            users,
            groups,
            slice: raw.slice,
            keep_setuid: raw.keep_setuid,
            base_image: None,
            remove,
            keep_only: Vec::new(),
        };
        Ok(match from {
            None => spec,
            Some(Base::Catalog(base)) => spec.on_catalogue(*base),
            Some(Base::Image(image)) => Spec {
                base_image: Some(image),
                ..spec
            },
        })
    }

    /// The spec built on the catalogue image `base`: its levels first and its packages
    /// with the spec's, and its entrypoint (python3's interpreter, java -jar) unless the
    /// spec sets its own.
    fn on_catalogue(self, base: Spec) -> Spec {
        // As with exclusions, a package the spec asks for itself comes whole.
        let keep_only = base
            .keep_only
            .into_iter()
            .filter(|(p, _)| !self.packages.iter().any(|r| r.name == *p))
            .collect();
        let mut levels = base.levels;
        levels.extend(self.levels.into_iter().filter(|l| !l.roots.is_empty()));
        let mut packages = base.packages;
        packages.extend(self.packages);
        let mut exclude: Vec<String> = base
            .exclude
            .into_iter()
            .filter(|x| !packages.iter().any(|p| p.name == *x))
            .collect();
        exclude.extend(self.exclude);
        let inherited = base.run;
        let run = RunSpec {
            entrypoint: self.run.entrypoint.or(inherited.entrypoint),
            cmd: self.run.cmd.or(inherited.cmd),
            health: self.run.health.or(inherited.health),
            ..self.run
        };
        Spec {
            levels,
            variant: base.variant,
            packages,
            exclude,
            keep_only,
            run,
            ..self
        }
    }
}

/// What a spec's `from` names.
enum Base {
    Catalog(Box<Spec>),
    Image(ImageRef),
}

/// The text a spec was parsed from, for errors that name their line; each method checks
/// one part of the spec.
struct Origin<'a> {
    text: &'a str,
    origin: &'a str,
}

impl Origin<'_> {
    fn err(&self, span: Option<std::ops::Range<usize>>, reason: impl Into<String>) -> Error {
        Error::Invalid {
            origin: self.origin.to_string(),
            line: span.map(|s| line_of(self.text, s.start)),
            reason: reason.into(),
        }
    }

    fn spanned<T>(&self, at: &Spanned<T>, reason: impl ToString) -> Error {
        self.err(Some(at.span()), reason.to_string())
    }

    /// The catalogue image or the image the spec builds on.
    fn base(
        &self,
        raw: &RawSpec,
        release: Distribution,
        arch: &[String],
    ) -> Result<Option<Base>, Error> {
        let Some(f) = &raw.from else {
            return Ok(None);
        };
        Ok(Some(match SpecRef::parse(f.get_ref()) {
            SpecRef::Catalog { name, variant } => Base::Catalog(Box::new(
                catalog::spec(&name, variant.as_deref(), release, arch.to_vec())
                    .map_err(|e| self.spanned(f, e))?,
            )),
            SpecRef::File(_) | SpecRef::Image(_) => {
                Base::Image(f.get_ref().parse::<ImageRef>().map_err(|e| {
                    self.spanned(f, format!(
                        "from = {:?}: {e}\n  hint: a base is catalog:NAME[:VARIANT], or an image such as docker://REGISTRY/REPO:TAG or oci:DIR:TAG",
                        f.get_ref()
                    ))
                })?)
            }
        }))
    }

    /// The packages requested and excluded.
    fn packages(&self, raw: &RawSpec) -> Result<(Vec<Request>, Vec<String>), Error> {
        let mut packages = Vec::new();
        for p in &raw.packages {
            let r = Request::parse(p.get_ref());
            if !is_package_name(&r.name) || r.version.as_deref() == Some("") {
                return Err(self.spanned(
                    p,
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
                return Err(self.spanned(
                    x,
                    format!("invalid package name {:?} in exclude", x.get_ref()),
                ));
            }
            exclude.push(x.get_ref().clone());
        }
        Ok((packages, exclude))
    }

    /// The paths to delete from an image base.
    fn remove(&self, raw: &RawSpec, from: &Option<Base>) -> Result<Vec<String>, Error> {
        let mut remove = Vec::new();
        for r in &raw.remove {
            if !matches!(from, Some(Base::Image(_))) {
                return Err(self.spanned(
                    r,
                    "remove deletes paths from a base image (from = \"docker://...\"); to leave out a package's files, use [slice] drop",
                ));
            }
            remove.push(image_path(r.get_ref()).ok_or_else(|| {
                self.spanned(
                    r,
                    format!(
                        "remove {:?}: expected an absolute path inside the image",
                        r.get_ref()
                    ),
                )
            })?);
        }
        Ok(remove)
    }

    /// The spec's users and groups, each name and id once and none a built-in account's.
    fn accounts(&self, raw: &RawSpec) -> Result<(Vec<UserSpec>, Vec<GroupSpec>), Error> {
        let groups: Vec<GroupSpec> = raw.groups.iter().map(|g| g.get_ref().clone()).collect();
        for (i, g) in raw.groups.iter().enumerate() {
            let GroupSpec { name, gid } = g.get_ref();
            let at = |e: String| self.spanned(g, e);
            accounts::check_account_name(name).map_err(|e| at(format!("group name {e}")))?;
            accounts::builtin_group(name, *gid).map_err(at)?;
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
        for (i, u) in raw.users.iter().enumerate() {
            let user = u.get_ref();
            let at = |e: String| self.spanned(u, e);
            accounts::check_account_name(&user.name).map_err(|e| at(format!("user name {e}")))?;
            if let Some(home) = &user.home {
                accounts::check_passwd_field("home", home).map_err(at)?;
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
            if let Some(own) = accounts::own_group(u.get_ref(), &groups) {
                accounts::builtin_group(&own.name, own.gid).map_err(|e| {
                    self.spanned(
                        u,
                        format!("user {:?} would get a group of its own: {e}", own.name),
                    )
                })?;
            }
            let name = &u.get_ref().name;
            if BUILTIN_USERS.iter().any(|(builtin, _)| builtin == name) {
                return Err(self.spanned(
                    u,
                    format!("user name {name:?} is reserved: every image has it"),
                ));
            }
        }
        let users = raw.users.iter().map(|u| u.get_ref().clone()).collect();
        Ok((users, groups))
    }

    /// How the image runs: its user, entrypoint, workdir, health check, environment, ports,
    /// labels and annotations.
    fn run_config(&self, raw: &RawSpec) -> Result<RunSpec, Error> {
        let mut ports = Vec::new();
        for port in &raw.ports {
            let (num, proto) = port
                .get_ref()
                .split_once('/')
                .unwrap_or((port.get_ref(), "tcp"));
            if num.parse::<u16>().is_err() || !matches!(proto, "tcp" | "udp" | "sctp") {
                return Err(self.spanned(
                    port,
                    format!(
                        "invalid port {:?}: expected PORT or PORT/tcp|udp|sctp",
                        port.get_ref()
                    ),
                ));
            }
            ports.push(format!("{num}/{proto}"));
        }
        // Kubernetes' runAsNonRoot can only check a numeric user, so names become numbers.
        let user = match &raw.user {
            Some(u) => Some(
                uid_of(u.get_ref(), &raw.users)
                    .ok_or_else(|| {
                        self.spanned(
                            u,
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
        if let Some(env) = &raw.env {
            for (key, value) in env.get_ref() {
                if key.is_empty() || key.contains(['=', '\0']) || value.contains('\0') {
                    return Err(self.spanned(
                        env,
                        format!(
                            "env {key:?}: a variable's name must be non-empty without '=' or NUL, and its value without NUL"
                        ),
                    ));
                }
            }
        }
        if let Some(w) = &raw.workdir
            && !w.get_ref().starts_with('/')
        {
            return Err(self.spanned(w, format!("workdir {:?} must be absolute", w.get_ref())));
        }
        if let Some(h) = &raw.health {
            crate::health::check_target(h.get_ref()).map_err(|e| self.spanned(h, e))?;
        }
        Ok(RunSpec {
            user,
            entrypoint: raw.entrypoint.clone(),
            cmd: raw.cmd.clone(),
            workdir: raw.workdir.as_ref().map(|w| w.get_ref().clone()),
            health: raw.health.as_ref().map(|h| h.get_ref().clone()),
            env: raw
                .env
                .as_ref()
                .map(|e| e.get_ref().clone().into_iter().collect())
                .unwrap_or_default(),
            ports,
            labels: raw.labels.clone().into_iter().collect(),
            annotations: raw.annotations.clone().into_iter().collect(),
        })
    }

    /// The host files to add, with their image paths, modes and owners.
    fn files(&self, raw: &[Spanned<RawFile>]) -> Result<Vec<FileSpec>, Error> {
        let mut files = Vec::new();
        for spanned in raw {
            let f = spanned.get_ref();
            let at = |reason: String| self.spanned(spanned, reason);
            let dst = image_path(&f.dst).ok_or_else(|| {
                at(format!(
                    "dst {:?} must be an absolute path inside the image",
                    f.dst
                ))
            })?;
            let mode = match &f.mode {
                Some(m) => Some(
                    u32::from_str_radix(m.trim_start_matches("0o"), 8)
                        .ok()
                        .filter(|m| *m <= 0o7777)
                        .ok_or_else(|| {
                            at(format!(
                                "mode {m:?} is not octal permission bits such as \"0755\""
                            ))
                        })?,
                ),
                None => None,
            };
            let (uid, gid) = match &f.owner {
                Some(o) => {
                    let (u, g) = o.split_once(':').unwrap_or((o, o));
                    u.parse()
                        .ok()
                        .zip(g.parse().ok())
                        .ok_or_else(|| at(format!("owner {o:?} must be numeric UID:GID")))?
                }
                None => (0, 0),
            };
            files.push(FileSpec {
                src: f.src.clone(),
                dst,
                mode,
                uid,
                gid,
            });
        }
        Ok(files)
    }

    /// The archive sources that replace the default mirrors.
    fn sources(&self, raw: &[Spanned<Source>]) -> Result<Vec<Source>, Error> {
        let mut sources = Vec::new();
        for s in raw {
            let mut source = s.get_ref().clone();
            if !(source.url.starts_with("http://") || source.url.starts_with("https://")) {
                return Err(self.spanned(
                    s,
                    format!(
                        "source url {:?} must start with http:// or https://",
                        source.url
                    ),
                ));
            }
            source.url = source.url.trim_end_matches('/').to_string();
            sources.push(source);
        }
        Ok(sources)
    }
}

/// The architectures named for `release`, each once, `all` standing for every one Debian
/// releases it for, and each checked to be one of those: the one place an architecture is
/// validated.
pub fn arches(list: Vec<String>, release: Distribution) -> Result<Vec<String>, Error> {
    let released = release.architectures();
    let mut out: Vec<String> = Vec::new();
    for arch in list {
        let named: Vec<String> = match arch.as_str() {
            "all" => released.iter().map(|a| a.to_string()).collect(),
            a if released.contains(&a) => vec![arch],
            _ => return Err(Error::UnsupportedArch { arch, release }),
        };
        for a in named {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

impl Spec {
    /// A spec that builds on `image` and adds nothing yet: `--from IMAGE` on the command
    /// line.
    pub fn on_image(image: &str, release: Distribution, arch: Vec<String>) -> Result<Spec, Error> {
        let mut table = toml::Table::new();
        table.insert("from".into(), image.into());
        table.insert("release".into(), release.codename().into());
        table.insert("arch".into(), arch.into());
        Spec::parse(&table.to_string(), "--from")
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
    /// A spec file.
    File(PathBuf),
    /// An image to build on.
    Image(String),
    /// A catalogue image and variant.
    Catalog {
        /// The image's name.
        name: String,
        /// The variant, if one is named.
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

impl SpecRef {
    /// Loads the spec, giving a catalogue spec or an image base `release` (default trixie)
    /// and `arch` (default amd64), and the lockfile that goes with it by default: beside a
    /// spec file, else in the current directory.
    pub fn load(&self, release: Option<&str>, arch: &[String]) -> Result<(Spec, PathBuf), Error> {
        let here = PathBuf::from("bareboat.lock");
        let options_given = release.is_some() || !arch.is_empty();
        let release = || Distribution::parse(release.unwrap_or("trixie"));
        let arch = || match arch {
            [] => Ok(vec!["amd64".to_string()]),
            list => arches(list.to_vec(), release()?),
        };
        match self {
            SpecRef::Catalog { name, variant } => Ok((
                catalog::spec(name, variant.as_deref(), release()?, arch()?)?,
                here,
            )),
            SpecRef::Image(image) => Ok((Spec::on_image(image, release()?, arch()?)?, here)),
            SpecRef::File(path) => {
                if !path.exists() {
                    return Err(Error::NotFound(path.clone()));
                }
                if options_given {
                    return Err(Error::OptionsOnFile(path.clone()));
                }
                let lock = path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join("bareboat.lock");
                Ok((Spec::read(path)?, lock))
            }
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
            assert_eq!(e.line(), Some(line), "{text}: {e}");
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
        assert_eq!(e.line(), Some(2), "{e}");
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
